"""Benchmark `wb fit` on a store-sized synthetic dataset against the original per-epoch AST cost.

Dataset: 35,000 clips in 700 groups (about 26,250 train / 8,750 validation after the group split),
random float16 embeddings of the AST sequence shape (T=12, D=768 for a 1.28 s window; T=29 for 3 s)
with a planted, partly ambiguous signal: positives carry a pattern over a few frames, hard negatives
a weaker copy of it. For each head config: seconds per epoch, the whole fit (early stopping as in a
real fit), epochs, validation F1, peak memory (RSS; CUDA max allocated on a GPU). Then the cost the
original WakeBuilder paid every epoch: a full-size random AST (transformers ASTConfig() defaults, no
download) forward over every training clip, timed on a small sample and scaled; reported as a ratio.

Usage: .venv/bin/python benchmarks/fit_speed.py [--device cpu] [--threads 1] [--configs default,seed32]
       [--seq-lens 12,29] [--max-epochs 60]
Writes benchmarks/results/fit_speed.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np
import torch

from wakebuilder.store.base import StoreArrays
from wakebuilder.train.fit import FitConfig, fit_head

RESULTS = Path(__file__).parent / "results" / "fit_speed.json"
N_CLIPS, N_GROUPS, DIM = 35_000, 700, 768
CONFIGS = {
    "default": {},
    "seed-b32-w128": {"batch_size": 32, "width": 128, "lr": 1e-4, "max_epochs": 3},  # per-epoch cost only
    "b128-w64": {"batch_size": 128, "width": 64, "lr": 4e-4},
}


def synthetic_arrays(seq_len: int, seed: int = 0) -> StoreArrays:
    """Deterministic float16 embeddings with a planted signal (see the module docstring)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, N_GROUPS, N_CLIPS)
    role = rng.choice(3, N_CLIPS, p=[0.25, 0.15, 0.60])  # positive, hard negative, negative
    sequence = rng.standard_normal((N_CLIPS, seq_len, DIM), dtype=np.float32)
    pattern = rng.standard_normal(DIM).astype(np.float32)
    span = max(2, seq_len // 3)
    for rows, strength in ((role == 0, 0.09), (role == 1, 0.045)):
        for row in np.flatnonzero(rows):
            start = rng.integers(0, seq_len - span + 1)
            sequence[row, start : start + span] += strength * pattern
    return StoreArrays(
        pooled=None, sequence=sequence.astype(np.float16), label=(role == 0).astype(np.int8),
        id=np.array([f"clip{i}" for i in range(N_CLIPS)]), kind=np.array(["tts"] * N_CLIPS),
        group=np.array([f"voice{g}" for g in group]),
    )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_fit(arrays: StoreArrays, name: str, overrides: dict, device: str, max_epochs: int) -> dict:
    config = FitConfig(**{"max_epochs": max_epochs, **overrides})
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = fit_head(arrays, config, device=device, progress=True)
    total_s = time.perf_counter() - start
    epoch_s = [r["seconds"] for r in result.history]
    train_mask, val_mask = result.split.masks(arrays.group)
    return {
        "config": name, "overrides": overrides, "seq_len": int(arrays.sequence.shape[1]),
        "n_train": int(train_mask.sum()), "n_val": int(val_mask.sum()),
        "batch_size": config.batch_size, "width": config.width, "tcn": config.tcn,
        "epochs": len(result.history), "best_epoch": result.best_epoch, "stopped_early": result.stopped_early,
        "s_per_epoch": float(np.median(epoch_s)), "fit_s": total_s, "val_f1": result.best["f1"],
        "val_loss": result.best["val_loss"], "peak_rss_mb": peak_rss_mb(),
        "cuda_max_allocated_mb": (
            torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
        ),
    }


def bench_ast_epoch(n_train: int, device: str, sample: int = 16, frames: int = 128) -> dict:
    """Seconds the original paid per epoch: a full-size AST forward over every training clip."""
    from transformers import ASTConfig, ASTModel

    config = ASTConfig(max_length=frames)
    model = ASTModel(config).eval().to(device)
    inputs = torch.randn(sample, frames, config.num_mel_bins, device=device)
    with torch.inference_mode():
        model(inputs[:2])  # warm-up
        start = time.perf_counter()
        model(inputs)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
    return {"sample_clips": sample, "frames": frames, "s_per_clip": seconds / sample,
            "s_per_epoch": seconds / sample * n_train}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--seq-lens", default="12,29")
    parser.add_argument("--max-epochs", type=int, default=60)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rows = []
    for seq_len in [int(t) for t in args.seq_lens.split(",")]:
        arrays = synthetic_arrays(seq_len)
        names = args.configs.split(",") if seq_len == 12 else ["default"]
        for name in names:
            rows.append(bench_fit(arrays, name, CONFIGS[name], args.device, args.max_epochs))
            print(json.dumps(rows[-1]), flush=True)
        del arrays
    ast = bench_ast_epoch(rows[0]["n_train"], args.device)
    print(f"\n{'config':<20} {'T':>3} {'batch':>5} {'s/epoch':>8} {'epochs':>6} {'fit s':>7} {'val F1':>7} "
          f"{'RSS MB':>7} {'AST s/epoch / ours':>19}")
    for r in rows:
        ratio = ast["s_per_epoch"] / r["s_per_epoch"]
        r["ast_epoch_ratio"] = ratio
        print(f"{r['config']:<20} {r['seq_len']:>3} {r['batch_size']:>5} {r['s_per_epoch']:>8.2f} "
              f"{r['epochs']:>6} "
              f"{r['fit_s']:>7.1f} {r['val_f1']:>7.3f} {r['peak_rss_mb']:>7.0f} {ratio:>19.0f}")
    print(f"\noriginal per-epoch cost: full-size AST forward {ast['s_per_clip'] * 1e3:.0f} ms/clip x "
          f"{rows[0]['n_train']} clips = {ast['s_per_epoch']:.0f} s per epoch")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    meta = {"device": args.device, "threads": torch.get_num_threads(), "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(), "clips": N_CLIPS}
    RESULTS.write_text(json.dumps({"meta": meta, "fits": rows, "ast_original": ast}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
