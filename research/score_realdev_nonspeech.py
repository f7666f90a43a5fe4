"""Score research/nonspeech_negatives.sh's models on realdev: false accepts on music, noise and speech, recall.

False accepts: ``wb detect MODEL FILES...`` (its streaming protocol: hop 0.1 s, refractory 1 s, the calibrated
threshold) over realdev's ``negatives/music_debian`` (20 min), ``negatives/noise_debian`` (10 min) and its
speech negatives (``negatives/**/*.wav``, 19 min); one line per detection, counted per folder and divided by
the folder's audio hours. Recall: the share of ``positives/WORD/*.wav`` with a detection, each clip padded with
1 s of silence as research/real_transfer.py does. realdev is only scored, never trained or calibrated on.

Usage: .venv/bin/python research/score_realdev_nonspeech.py [--work /tmp/nsneg] [--word sheila] [--models A,B,C]
       [--kinds music,noise,speech]
Writes research/results/nonspeech_negatives_<word>.json and prints a table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "research"))
from real_transfer import REALDEV, n_detected, padded_traces  # noqa: E402

from wakebuilder.detect import load_detector  # noqa: E402

FOLDERS = {"music": sorted((REALDEV / "negatives" / "music_debian").glob("*.flac")),
           "noise": sorted((REALDEV / "negatives" / "noise_debian").glob("*.flac")),
           "speech": sorted((REALDEV / "negatives").rglob("*.wav"))}


def detections(model: Path, files: list[Path]) -> int:
    """Lines ``wb detect`` prints for these files (one per detection)."""
    done = subprocess.run([str(ROOT / ".venv" / "bin" / "wb"), "detect", str(model), *map(str, files)],
                          capture_output=True, text=True, check=True)
    return sum(1 for line in done.stdout.splitlines() if line.strip())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--work", type=Path, default=Path("/tmp/nsneg"))
    p.add_argument("--word", default="sheila")
    p.add_argument("--models", default="A,B,C")
    p.add_argument("--kinds", default="music,noise", help="music,noise[,speech] (speech: 1,111 files, slow)")
    args = p.parse_args()
    kinds = args.kinds.split(",")
    hours = {k: sum(sf.info(str(f)).duration for f in files) / 3600 for k, files in FOLDERS.items()}
    positives = sorted((REALDEV / "positives" / args.word).glob("*.wav"))
    results = {}
    for name in args.models.split(","):
        model = args.work / f"export-{name}" / f"{args.word}.onnx"
        detector = load_detector(model)
        traces, _ = padded_traces(detector, positives)
        row = {"threshold": detector.threshold, "recall": n_detected(traces, detector.threshold) / len(positives),
               "positives": len(positives)}
        for kind in kinds:
            count = detections(model, FOLDERS[kind])
            row[f"{kind}_fa"], row[f"{kind}_fa_per_hour"] = count, count / hours[kind]
        results[name] = row
        print(f"{name}: thr {row['threshold']:.3f} recall {row['recall']:.2f} ({len(positives)} clips) | " + " ".join(
            f"{k} {row[f'{k}_fa_per_hour']:.0f} FA/h ({row[f'{k}_fa']} in {hours[k]:.3f} h)" for k in kinds), flush=True)
    out = ROOT / "research" / "results" / f"nonspeech_negatives_{args.word}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    earlier = json.loads(out.read_text())["models"] if out.is_file() else {}  # runs of other models are kept
    out.write_text(json.dumps({"hours": hours, "models": {**earlier, **results}}, indent=2, sort_keys=True) + "\n")
    print(out)


if __name__ == "__main__":
    main()
