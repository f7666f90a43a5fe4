"""Deterministic store rows, and a writer process for the kill -9 tests.

Run as ``python -m tests.store.kill_writer PATH TOTAL``: appends clips from the
store's committed count up to TOTAL, 7 at a time, in writing sessions of 5
appends (so HDF5 merges its journal often and kills land in merges too).
Imports nothing from pytest, so it starts fast.
"""

from __future__ import annotations

import sys

import numpy as np

from wakebuilder.manifest import ClipRecord
from wakebuilder.store import StoreSpec, open_store

SPEC = StoreSpec(backbone={"name": "fake", "spec": "fake", "window_s": 1.0}, seq_len=3, dim=4)
CHUNK = 16


def clips(start: int, stop: int) -> tuple[list[ClipRecord], np.ndarray, np.ndarray]:
    """Clips ``start:stop``: records plus pooled and sequence embeddings that encode i and position."""
    records = [
        ClipRecord(id=f"clip{i:05d}", path=f"{i}.wav", label=i % 2, kind="tts" if i % 2 else "hard_negative",
                   group=f"voice{i % 7}", text="hey", duration_s=1.0, params={"i": i})
        for i in range(start, stop)
    ]
    base = np.arange(start, stop, dtype=np.float32) % 256
    pooled = base[:, None] + np.arange(4, dtype=np.float32) / 8
    sequence = base[:, None, None] + np.arange(12, dtype=np.float32).reshape(3, 4) / 16
    return records, pooled, sequence


def main(path: str, total: int) -> None:
    """Append up to ``total`` clips, resuming from what the store holds."""
    import h5py  # noqa: F401  (imported before "ready", so kills land in store work, not in imports)
    import zarr  # noqa: F401

    print("ready", flush=True)
    done = 0
    while done < total:
        with open_store(path, "a", spec=SPEC, chunk_rows=CHUNK) as store:
            for _ in range(5):
                done = len(store)
                if done >= total:
                    break
                store.append(*clips(done, min(done + 7, total)))
            done = len(store)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
