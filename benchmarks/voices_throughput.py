"""`wb synth` throughput of the many-voices engines: Kokoro with its v1.0 voices on 1 and 2 workers (the
speed-up of the spawned workers), and pico, rhvoice and mbrola on 2 workers. Clips/s of the whole run
(model load, files and manifest included); the 1-vs-2-worker ratio is measured in one run.

Run: .venv/bin/python benchmarks/voices_throughput.py [--n-kokoro 24] [--n 80] [--kokoro-voices FILE]
Writes benchmarks/results/voices_throughput.json.
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

RESULTS = Path(__file__).parent / "results" / "voices_throughput.json"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "voices" / "kokoro-v1.0-voices.npz"


def timed(engine: str, n: int, workers: int, **extra: object) -> dict:
    with tempfile.TemporaryDirectory(prefix="wb-voices-") as tmp:
        started = time.perf_counter()
        run_synth(SynthConfig(texts=("hey jarvis",), n=n, engines=(engine,), workers=workers, **extra), out_dir=tmp)
        seconds = time.perf_counter() - started
    return {"engine": engine, "clips": n, "workers": workers, "seconds": round(seconds, 2),
            "clips_per_s": round(n / seconds, 2), **{k: str(v) for k, v in extra.items()}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n-kokoro", type=int, default=24)
    parser.add_argument("--n", type=int, default=80)
    parser.add_argument("--kokoro-voices", default=str(SHARED) if SHARED.is_file() else None)
    args = parser.parse_args()
    rows = []
    if get_engine("kokoro").available():
        for workers in (1, 2):
            rows.append(timed("kokoro", args.n_kokoro, workers, kokoro_voices=args.kokoro_voices,
                              voice_pattern="^[ab][fm]_"))
    for engine in ("pico", "rhvoice", "mbrola"):
        if get_engine(engine).available():
            rows.append(timed(engine, args.n, 2))
        else:
            rows.append({"engine": engine, "available": False})
    print(f"{'engine':<8} {'workers':>7} {'clips':>6} {'seconds':>8} {'clips/s':>8}")
    for row in rows:
        if "clips" in row:
            print(f"{row['engine']:<8} {row['workers']:>7} {row['clips']:>6} {row['seconds']:>8.2f} "
                  f"{row['clips_per_s']:>8.2f}")
        else:
            print(f"{row['engine']:<8} not installed")
    kokoro = {row["workers"]: row["clips_per_s"] for row in rows if row["engine"] == "kokoro"}
    result = {"rows": rows, "cpu_count": os.cpu_count(), "load_avg_1min": round(os.getloadavg()[0], 2),
              "kokoro_speedup_2_vs_1_workers": round(kokoro[2] / kokoro[1], 2) if len(kokoro) == 2 else None}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
