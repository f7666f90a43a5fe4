"""Synthetic embedding datasets for the training tests (no store, no audio)."""

from __future__ import annotations

import numpy as np

from wakebuilder.store.base import StoreArrays
from wakebuilder.train.fit import FitConfig

SMALL = FitConfig(width=16, hidden=(32, 16), tcn_layers=1, lr=3e-3, batch_size=32, max_epochs=25, patience=4)


def planted(
    n: int = 600, *, seq_len: int = 8, dim: int = 32, signal: float = 1.0, n_groups: int = 24,
    pos_share: float = 0.3, seed: int = 0,
) -> StoreArrays:
    """Gaussian float16 sequences; positives carry ``signal`` times a fixed pattern on a few frames."""
    rng = np.random.default_rng(seed)
    label = (rng.random(n) < pos_share).astype(np.int8)
    sequence = rng.standard_normal((n, seq_len, dim)).astype(np.float32)
    pattern = rng.standard_normal(dim).astype(np.float32)
    sequence[label == 1, 2:5] += signal * pattern
    return StoreArrays(
        pooled=None,
        sequence=sequence.astype(np.float16),
        label=label,
        id=np.array([f"clip{i}" for i in range(n)]),
        kind=np.array(["tts"] * n),
        group=np.array([f"voice{i % n_groups}" for i in range(n)]),
    )
