"""Embedding store throughput: Zarr against HDF5, for speech-embedding and AST-sized rows.

Measures, per backend and row shape: append speed (batches of 32, committed after each), the
writing session's close (HDF5 merges its journal there: one copy of the file), ``load()``,
``iter_batches(256)``, and adding 10 clips to the full store (open, append, close).

Run: ``.venv/bin/python benchmarks/store_throughput.py [--clips-ast 512] [--clips-se 8192]``
Writes ``benchmarks/results/store_throughput.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from wakebuilder.manifest import ClipRecord
from wakebuilder.store import StoreSpec, open_store
from wakebuilder.store.info import disk_bytes

SHAPES = {"speech-embedding": (9, 96), "ast-base": (146, 768)}
BATCH = 32


def make_batch(start: int, n: int, seq_len: int, dim: int, rng: np.random.Generator) -> tuple:
    records = [ClipRecord(id=f"c{i:07d}", path=f"{i}.wav", label=i % 2, kind="tts", group=f"g{i % 50}")
               for i in range(start, start + n)]
    sequence = rng.standard_normal((n, seq_len, dim), dtype=np.float32)
    return records, sequence.mean(axis=1), sequence


def timed(fn) -> float:  # noqa: ANN001
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench(path: Path, shape: str, n: int) -> dict:
    seq_len, dim = SHAPES[shape]
    spec = StoreSpec(backbone={"name": shape, "spec": shape}, seq_len=seq_len, dim=dim)
    rng = np.random.default_rng(0)
    batches = [make_batch(s, min(BATCH, n - s), seq_len, dim, rng) for s in range(0, n, BATCH)]
    store = open_store(path, "a", spec=spec)
    append_s = timed(lambda: [store.append(*b) for b in batches])
    close_s = timed(store.close)
    mb = disk_bytes(path) / 1e6
    with open_store(path) as reader:
        load_s = timed(lambda: reader.load(pooled=False))
        iter_s = timed(lambda: sum(len(b) for b in reader.iter_batches(256)))
    extra = make_batch(n, 10, seq_len, dim, rng)

    def add_ten() -> None:
        with open_store(path, "a", spec=spec) as writer:
            writer.append(*extra)

    add_s = timed(add_ten)
    return {"backend": "hdf5" if path.suffix == ".h5" else "zarr", "shape": shape, "clips": n, "size_mb": mb,
            "append_clips_per_s": n / append_s, "append_mb_per_s": mb / append_s, "close_s": close_s,
            "load_mb_per_s": mb / load_s, "iter_mb_per_s": mb / iter_s, "add_10_clips_s": add_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips-ast", type=int, default=512)
    parser.add_argument("--clips-se", type=int, default=8192)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="wb-store-bench-"))
    rows = []
    try:
        for shape, n in (("speech-embedding", args.clips_se), ("ast-base", args.clips_ast)):
            for name in ("store.zarr", "store.h5"):
                rows.append(bench(root / f"{shape}-{name}", shape, n))
    finally:
        shutil.rmtree(root)
    header = (f"{'backend':7} {'shape':17} {'clips':>6} {'MB':>7} {'append/s':>9} {'MB/s':>6} {'close s':>7} "
              f"{'load MB/s':>9} {'iter MB/s':>9} {'+10 s':>6}")
    print(header)
    for r in rows:
        print(f"{r['backend']:7} {r['shape']:17} {r['clips']:6d} {r['size_mb']:7.1f} "
              f"{r['append_clips_per_s']:9.0f} {r['append_mb_per_s']:6.0f} {r['close_s']:7.2f} "
              f"{r['load_mb_per_s']:9.0f} {r['iter_mb_per_s']:9.0f} {r['add_10_clips_s']:6.2f}")
    out = Path(__file__).parent / "results" / "store_throughput.json"
    out.write_text(json.dumps({"batch": BATCH, "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
