"""Peak memory of `wb detect` on a file does not grow with its length: 10 against 60 minutes.

A quickstart-like detector is built first from a tiny fit: synthetic tone "positives" and noise
"negatives", `wb embed --backbone speech-embedding`, `wb fit` (2 epochs), `wb calibrate`,
`wb export`. Then deterministic synthetic WAVs of each length are written a block at a time and
`wb detect NAME.onnx FILE` runs in a fresh process; its peak RSS comes from getrusage
(RUSAGE_CHILDREN) of a wrapper process. For contrast, the whole-file path that `wb detect` used
before (`load_audio` + `detect_waveform`) is measured on the shortest file.

Run: nice .venv/bin/python benchmarks/detect_memory.py [--minutes 10,60] [--skip-whole-file]
Writes benchmarks/results/detect_memory.json; the target is the longest/shortest ratio <= 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from wakebuilder.audio import quantize_pcm16, wav_bytes  # noqa: E402
from wakebuilder.fingerprint import audio_id  # noqa: E402
from wakebuilder.manifest import ClipRecord, write_manifest  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "detect_memory.json"
RATE = 16_000
WRAPPER = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)
WHOLE_FILE = (  # the pre-streaming code path of `wb detect FILE`, for contrast
    "import sys\nfrom wakebuilder.audio import load_audio\n"
    "from wakebuilder.detect import DetectConfig, detect_waveform, load_detector\n"
    "d = load_detector(sys.argv[1])\nprint(len(detect_waveform(d, load_audio(sys.argv[2]), DetectConfig())))\n"
)


def wb(*args: str, env: dict[str, str]) -> str:
    command = [sys.executable, "-m", "wakebuilder.cli", *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()


def tiny_model(root: Path, env: dict[str, str]) -> Path:
    """Embed 96 synthetic clips, fit 2 epochs, calibrate and export; returns the NAME.onnx path."""
    rng = np.random.default_rng(0)
    records = []
    t = np.arange(int(1.5 * RATE)) / RATE
    for i in range(96):
        label = i % 2
        clip = 0.05 * rng.standard_normal(t.size)
        if label:
            clip += 0.3 * np.sin(2 * np.pi * (400 + 40 * (i % 12)) * t)
        clip = clip.astype(np.float32)
        (root / f"{i}.wav").write_bytes(wav_bytes(clip))
        records.append(ClipRecord(id=audio_id(quantize_pcm16(clip)), path=f"{i}.wav", label=label,
                                  kind="tts" if label else "hard_negative", group=f"voice{i % 12}",
                                  text="hey bench" if label else "", duration_s=1.5))
    manifest = write_manifest(root / "manifest.jsonl", records)
    store = wb("embed", str(manifest), "--store", str(root / "store.zarr"), "--backbone", "speech-embedding",
               env=env)
    model = wb("fit", "--store", store, "--out", str(root / "model"), "--max-epochs", "2", "--width", "16",
               "--hidden", "32,16", "--device", "cpu", env=env)
    wb("calibrate", "--model", model, "--store", store, "--device", "cpu", env=env)
    export = wb("export", "--model", model, "--out", str(root / "export"), "--name", "bench", env=env)
    return Path(export) / "bench.onnx"


def write_long_wav(path: Path, minutes: float) -> None:
    """Tones wandering in pitch plus noise, written a minute at a time (the writer stays small)."""
    rng = np.random.default_rng(int(minutes))
    with sf.SoundFile(str(path), "w", samplerate=RATE, channels=1, subtype="PCM_16") as handle:
        for minute in range(int(np.ceil(minutes))):
            n = int(min(60.0, minutes * 60 - minute * 60) * RATE)
            t = (minute * 60 * RATE + np.arange(n)) / RATE
            tone = 0.2 * np.sin(2 * np.pi * (300 + 200 * np.sin(0.5 * t)) * t)
            handle.write((tone + 0.05 * rng.standard_normal(n)).astype(np.float32))


def peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in MB of ``command`` run in a fresh process, wall seconds)."""
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", WRAPPER, *command], env=env, capture_output=True, text=True,
                         check=True)
    return int(out.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default="10,60")
    parser.add_argument("--skip-whole-file", action="store_true", help="Do not measure the old whole-file path.")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    rows = []
    with tempfile.TemporaryDirectory(prefix="wb-detect-mem-") as tmp:
        root = Path(tmp)
        onnx = tiny_model(root, env)
        minutes = [float(m) for m in args.minutes.split(",")]
        for length in minutes:
            audio = root / f"long-{length:g}min.wav"
            write_long_wav(audio, length)
            command = [sys.executable, "-m", "wakebuilder.cli", "detect", str(onnx), str(audio), "--threads", "1"]
            rss, wall = peak_rss_mb(command, env)
            rows.append({"path": "wb detect (blocks)", "minutes": length, "peak_rss_mb": round(rss, 1),
                         "wall_s": round(wall, 1), "wav_mb": round(audio.stat().st_size / 1e6, 1)})
            print(f"wb detect  {length:>5g} min  peak RSS {rss:8.1f} MB  {wall:7.1f} s", flush=True)
        if not args.skip_whole_file:
            audio = root / f"long-{minutes[0]:g}min.wav"
            rss, wall = peak_rss_mb([sys.executable, "-c", WHOLE_FILE, str(onnx), str(audio)], env)
            rows.append({"path": "whole file (before)", "minutes": minutes[0], "peak_rss_mb": round(rss, 1),
                         "wall_s": round(wall, 1)})
            print(f"whole file {minutes[0]:>5g} min  peak RSS {rss:8.1f} MB  {wall:7.1f} s", flush=True)
    streamed = [r for r in rows if r["path"] == "wb detect (blocks)"]
    ratio = streamed[-1]["peak_rss_mb"] / streamed[0]["peak_rss_mb"]
    summary = {"rows": rows, "longest_over_shortest": round(ratio, 3), "target": "<= 1.2",
               "met": ratio <= 1.2, "machine": platform.machine(), "cpus": os.cpu_count(),
               "load_avg": [round(x, 2) for x in os.getloadavg()]}
    print(f"peak RSS ratio {streamed[-1]['minutes']:g} min / {streamed[0]['minutes']:g} min: {ratio:.3f} "
          f"(target <= 1.2: {'met' if ratio <= 1.2 else 'NOT met'})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
