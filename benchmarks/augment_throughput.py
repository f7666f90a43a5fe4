"""Augmentation throughput: the Numba chain against the NumPy reference chain on the same clips.

Run: .venv/bin/python benchmarks/augment_throughput.py [--clips 2000]
Writes benchmarks/results/augment_throughput.json. Targets (issue "Data preparation"): Numba >= 5x NumPy,
and >= 500 clips/s per core for 1.5 s clips. The chain is noise + gain + speed + pitch + EQ + shift (every
transform on); reverb and the formant warp (`--formant-p`, off by default) are reported separately because
their FFTs are NumPy in both chains.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from wakebuilder.data.augment.transforms import AugmentConfig, apply_params, clip_key, draw_params  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "augment_throughput.json"
VARIANTS = (("chain", {}), ("with_reverb", {"reverb": True}), ("with_formant", {"formant": True}))


def chain_params(n: int, *, reverb: bool = False, formant: bool = False) -> list[dict]:
    config = AugmentConfig(speed_p=1, pitch_p=1, eq_p=1, shift_p=1, noise_p=1, reverb_p=1 if reverb else 0,
                           formant_p=1 if formant else 0)
    return [draw_params(clip_key(0, f"{i:016x}", 0), config) for i in range(n)]


def rate(clips: np.ndarray, params: list[dict], backend: str) -> float:
    started = time.perf_counter()
    for clip, p in zip(clips, params, strict=True):
        apply_params(clip, p, backend=backend)
    return len(clips) / (time.perf_counter() - started)


def compile_times() -> dict[str, float]:
    code = ("import time; t=time.perf_counter(); import numpy as np; "
            "from wakebuilder.data.augment.transforms import apply_params as a, AugmentConfig as C, draw_params as d, "
            "clip_key as r; a(np.zeros(24000, np.float32), d(r(0, '0'*16, 0), C(speed_p=1, pitch_p=1, eq_p=1, "
            "shift_p=1, noise_p=1))); print(time.perf_counter()-t)")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    cold_env = {**env, "NUMBA_CACHE_DIR": "/tmp/wb-bench-numba-cold"}
    subprocess.run(["rm", "-rf", "/tmp/wb-bench-numba-cold"], check=True)
    cold = float(subprocess.run([sys.executable, "-c", code], env=cold_env, capture_output=True, text=True,
                                check=True).stdout)
    warm = float(subprocess.run([sys.executable, "-c", code], env=cold_env, capture_output=True, text=True,
                                check=True).stdout)
    return {"first_compile_s": round(cold, 2), "cached_load_s": round(warm, 2)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clips", type=int, default=2000)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    clips = (rng.standard_normal((args.clips, 24_000)) * 0.1).astype(np.float32)
    results: dict = {"clips": args.clips, "clip_s": 1.5, "threads": 1, "cpu_count": os.cpu_count()}
    for key, extra in VARIANTS:
        params = chain_params(args.clips, **extra)
        apply_params(clips[0], params[0])  # warm-up: compile outside the timing
        numba_rate = rate(clips, params, "numba")
        numpy_rate = rate(clips[: max(args.clips // 4, 50)], params[: max(args.clips // 4, 50)], "numpy")
        results[key] = {"numba_clips_per_s": round(numba_rate, 1), "numpy_clips_per_s": round(numpy_rate, 1),
                        "speedup": round(numba_rate / numpy_rate, 2)}
    results.update(compile_times())
    results["targets"] = {"speedup_min": 5.0, "numba_clips_per_s_per_core_min": 500.0}
    results["meets_targets"] = results["chain"]["speedup"] >= 5 and results["chain"]["numba_clips_per_s"] >= 500
    print(f"{'chain':<14}{'numba clips/s':>15}{'numpy clips/s':>15}{'speedup':>9}")
    for key, _ in VARIANTS:
        r = results[key]
        print(f"{key:<14}{r['numba_clips_per_s']:>15}{r['numpy_clips_per_s']:>15}{r['speedup']:>9}")
    print(f"first compile {results['first_compile_s']} s, cached load {results['cached_load_s']} s")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
