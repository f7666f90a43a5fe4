"""Peak memory of `wb embed` does not grow with the number of clips: 1,000 against 10,000.

Run: .venv/bin/python benchmarks/embed_memory.py [--sizes 1000,10000]
Each size runs `python -m wakebuilder.cli embed` (speech-embedding backbone, 1 s clips) in a fresh
process; its peak RSS comes from getrusage of a wrapper process. Writes benchmarks/results/embed_memory.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wakebuilder.audio import quantize_pcm16, wav_bytes  # noqa: E402
from wakebuilder.fingerprint import audio_id  # noqa: E402
from wakebuilder.manifest import ClipRecord, write_manifest  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "embed_memory.json"
WRAPPER = (
    "import resource, subprocess, sys\n"
    "subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def make_manifest(folder: Path, n: int) -> Path:
    rng = np.random.default_rng(n)
    records = []
    for i in range(n):
        clip = (rng.standard_normal(16_000) * 0.1).astype(np.float32)
        (folder / f"{i}.wav").write_bytes(wav_bytes(clip))  # test data: no fsync per file
        records.append(ClipRecord(id=audio_id(quantize_pcm16(clip)), path=f"{i}.wav", label=i % 2, kind="tts",
                                  group=f"g{i % 50}", duration_s=1.0))
    return write_manifest(folder / "manifest.jsonl", records)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000")
    args = parser.parse_args()
    rows = []
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    with tempfile.TemporaryDirectory(prefix="wb-mem-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            folder = Path(tmp) / str(n)
            folder.mkdir()
            manifest = make_manifest(folder, n)
            command = [sys.executable, "-m", "wakebuilder.cli", "embed", str(manifest), "--store",
                       str(folder / "store.zarr"), "--backbone", "speech-embedding", "--batch-size", "64"]
            started = time.perf_counter()
            out = subprocess.run([sys.executable, "-c", WRAPPER, *command], env=env, capture_output=True,
                                 text=True, check=True)
            seconds = time.perf_counter() - started
            rows.append({"clips": n, "peak_rss_mb": round(int(out.stdout.strip()) / 1024, 1),
                         "seconds": round(seconds, 1), "clips_per_s": round(n / seconds, 1)})
            print(rows[-1], flush=True)
    result = {"backbone": "speech-embedding", "rows": rows,
              "growth": round(rows[-1]["peak_rss_mb"] / rows[0]["peak_rss_mb"], 3) if len(rows) > 1 else None}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
