"""Benchmark the AST front end and backbone on deterministic synthetic audio.

1. Fbank: the batched torch KaldiFbank against ASTFeatureExtractor (NumPy path, one clip at a time):
   clips/s and the largest difference.
2. Embedding: a random AST of the base size (768 wide, 12 layers: the real checkpoint's cost) at
   128 and 300 frames, fp32 and bf16 autocast: clips/s.

Usage: .venv/bin/python benchmarks/ast_backbone.py [--threads 1] [--batch 8] [--batches 2] [--device cpu]
Writes benchmarks/results/ast_backbone.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from wakebuilder.backbones.ast import ASTBackbone
from wakebuilder.backbones.fbank import FbankSettings, compute_fbank

RESULTS = Path(__file__).parent / "results" / "ast_backbone.json"


def _clips(n: int, n_samples: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n_samples) / 16_000
    freqs = rng.uniform(100, 4_000, size=(n, 1))
    clips = 0.3 * np.sin(2 * np.pi * freqs * t) + 0.05 * rng.standard_normal((n, n_samples))
    return clips.astype(np.float32)


def bench_fbank(n_clips: int = 64) -> dict:
    from transformers import ASTFeatureExtractor

    settings = FbankSettings(max_length=128)
    clips = _clips(n_clips, settings.window_samples)
    extractor = ASTFeatureExtractor(max_length=128)
    start = time.perf_counter()
    reference = np.stack([
        extractor(c, sampling_rate=16_000, return_tensors="np")["input_values"][0] for c in clips
    ])
    numpy_s = time.perf_counter() - start
    compute_fbank(clips[:2], settings)  # warm-up
    start = time.perf_counter()
    ours = compute_fbank(clips, settings)
    torch_s = time.perf_counter() - start
    return {
        "clips": n_clips,
        "extractor_clips_per_s": n_clips / numpy_s,
        "torch_clips_per_s": n_clips / torch_s,
        "speedup": numpy_s / torch_s,
        "max_abs_diff": float(np.abs(ours - reference).max()),
    }


def bench_embed(
    directory: Path, *, window_s: float, dtype: str, device: str, batch: int, batches: int
) -> dict:
    backbone = ASTBackbone.load(str(directory), window_s=window_s, device=device, dtype=dtype)
    clips = _clips(batch, backbone.window_samples, seed=1)
    backbone.embed(clips[:1])  # warm-up
    start = time.perf_counter()
    for _ in range(batches):
        backbone.embed(clips)
    seconds = time.perf_counter() - start
    return {"frames": backbone.max_length, "dtype": dtype, "clips_per_s": batch * batches / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    # The extractor's (and our) lowest Kaldi mel filter is empty; transformers warns on each construction.
    warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
    torch.set_num_threads(args.threads)
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    fbank = bench_fbank()
    print(
        f"fbank, 64 clips of 1.295 s: extractor {fbank['extractor_clips_per_s']:.0f} clips/s, "
        f"torch batched {fbank['torch_clips_per_s']:.0f} clips/s ({fbank['speedup']:.1f}x), "
        f"max |diff| {fbank['max_abs_diff']:.1e}"
    )
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        torch.manual_seed(0)
        ASTModel(ASTConfig(max_length=128)).save_pretrained(tmp)
        ASTFeatureExtractor(max_length=128).save_pretrained(tmp)
        for window_s in (1.28, 3.0):
            for dtype in ("fp32", "bf16"):
                row = bench_embed(
                    Path(tmp), window_s=window_s, dtype=dtype, device=args.device, batch=args.batch,
                    batches=args.batches,
                )
                rows.append(row)
    print(f"\nbase-size AST embed, device {args.device}, {args.threads} thread(s), batch {args.batch}")
    print(f"{'frames':>6} {'dtype':>5} {'clips/s':>8}")
    for row in rows:
        print(f"{row['frames']:>6} {row['dtype']:>5} {row['clips_per_s']:>8.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"settings": vars(args), "fbank": fbank, "embed": rows}, indent=2) + "\n")
    print(f"\nwrote {RESULTS}")


if __name__ == "__main__":
    main()
