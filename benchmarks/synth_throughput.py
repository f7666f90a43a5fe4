"""`wb synth` throughput per engine (clips/s of the whole command, files and manifest written).

Run: .venv/bin/python benchmarks/synth_throughput.py [--n 400]
Writes benchmarks/results/synth_throughput.json. Target (issue "Data preparation"): espeak-ng >= 50 clips/s
on 2 cores. Piper and flite are timed on fewer clips when installed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wakebuilder.data.synth import SynthConfig, run_synth  # noqa: E402
from wakebuilder.data.tts import get_engine  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "synth_throughput.json"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args()
    rows = []
    for engine, n in (("espeak", args.n), ("flite", args.n // 4), ("piper", args.n // 4)):
        if not get_engine(engine).available():
            rows.append({"engine": engine, "available": False})
            continue
        with tempfile.TemporaryDirectory(prefix="wb-synth-") as tmp:
            started = time.perf_counter()
            run_synth(SynthConfig(texts=("hey jarvis",), n=n, engines=(engine,), workers=2), out_dir=tmp)
            seconds = time.perf_counter() - started
        rows.append({"engine": engine, "available": True, "clips": n, "workers": 2,
                     "seconds": round(seconds, 2), "clips_per_s": round(n / seconds, 1)})
    print(f"{'engine':<8} {'clips':>6} {'seconds':>8} {'clips/s':>8}")
    for row in rows:
        if row["available"]:
            print(f"{row['engine']:<8} {row['clips']:>6} {row['seconds']:>8.2f} {row['clips_per_s']:>8.1f}")
        else:
            print(f"{row['engine']:<8} {'not installed':>24}")
    result = {"rows": rows, "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
              "target": {"espeak_clips_per_s_min": 50}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
