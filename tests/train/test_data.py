from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.train.conftest import planted
from wakebuilder.errors import TrainingError
from wakebuilder.train.data import (
    BalancedBatches, MemoryLoop, StreamLoop, fits_on_device, sequence_bytes, stream_batches, to_device,
)


class FakeStore:
    """The part of EmbeddingStore that streaming uses, over in-memory arrays."""

    def __init__(self, arrays: object) -> None:
        self.arrays = arrays
        self.reads = 0

    def iter_batches(self, batch_size: int, *, pooled: bool = False, sequence: bool = True):
        from wakebuilder.store.base import StoreArrays

        a = self.arrays
        for start in range(0, len(a), batch_size):
            self.reads += 1
            s = slice(start, start + batch_size)
            seq = a.sequence[s] if sequence else None
            yield StoreArrays(None, seq, a.label[s], a.id[s], a.kind[s], a.group[s])


def test_balanced_batches_hold_equal_classes_and_cover_the_majority() -> None:
    labels = np.array([1] * 10 + [0] * 90)
    sampler = BalancedBatches(labels, 20, np.random.default_rng(0))
    epoch = sampler.epoch()
    assert epoch.shape == (5, 20)
    for row in epoch:
        assert labels[row].sum() == 10
    negatives = np.concatenate([sampler.epoch(), epoch]).ravel()
    negatives = negatives[labels[negatives] == 0]
    assert len(set(negatives.tolist())) == 90  # two epochs draw 100 negatives: every one seen


def test_balanced_batches_need_both_classes() -> None:
    with pytest.raises(TrainingError, match="only one class"):
        BalancedBatches(np.zeros(10), 4, np.random.default_rng(0))


def test_to_device_keeps_float16_and_rows() -> None:
    a = planted(50)
    data = to_device(a.sequence, a.label, np.array([3, 7, 9]), "cpu")
    assert data.sequence.dtype == torch.float16 and len(data) == 3
    seq, lab = data.batch(torch.tensor([1]))
    assert seq.dtype == torch.float32
    assert np.array_equal(seq[0].numpy(), a.sequence[7].astype(np.float32))
    assert lab.tolist() == [float(a.label[7])]


def test_to_device_names_the_nan_row() -> None:
    a = planted(50)
    sequence = a.sequence.copy()
    sequence[17, 2, 5] = np.nan
    with pytest.raises(TrainingError, match="row 17"):
        to_device(sequence, a.label, np.arange(50), "cpu")


def test_stream_batches_yield_each_kept_row_once_with_bounded_reads() -> None:
    a = planted(5000, dim=4)
    keep = np.zeros(5000, dtype=bool)
    keep[::3] = True
    store = FakeStore(a)
    seen = []
    for seq, lab in stream_batches(store, keep, 64, np.random.default_rng(0), "cpu"):
        assert seq.shape[0] <= 64 and seq.dtype == torch.float32
        seen.append(seq[:, 0, 0].numpy())
    values = np.sort(np.concatenate(seen))
    assert np.array_equal(values, np.sort(a.sequence[keep, 0, 0].astype(np.float32)))
    assert store.reads == 3  # 2048-row reads


def test_stream_loop_weights_balance_classes() -> None:
    a = planted(400)
    train = np.arange(400) < 300
    loop = StreamLoop(FakeStore(a), a.label.astype(int), train, ~train, batch_size=32,
                      rng=np.random.default_rng(0), device="cpu")
    total = {0: 0.0, 1: 0.0}
    for _, target, weights in loop.train_batches():
        for t, w in zip(target.tolist(), weights.tolist(), strict=True):
            total[int(t)] += w
    assert total[0] == pytest.approx(total[1], rel=1e-4)
    assert sum(len(t) for t, _ in loop.val_batches()) == 100


def test_memory_loop_batches() -> None:
    a = planted(300)
    train = np.arange(300) < 200
    loop = MemoryLoop(a.sequence, a.label.astype(int), train, ~train, batch_size=16,
                      rng=np.random.default_rng(0), device="cpu")
    batches = list(loop.train_batches())
    assert len(batches) == loop.steps_per_epoch == 13
    assert all(float(t.sum()) == 8 for _, t, _ in batches)
    assert sum(len(t) for _, t in loop.val_batches()) == 100


def test_memory_estimate() -> None:
    assert sequence_bytes(10, 12, 768) == 10 * 12 * 768 * 2
    assert fits_on_device(1_000, "cpu")
    assert not fits_on_device(1 << 60, "cpu")
