"""Training data held on the device, balanced batches, and a streaming fallback.

The store's float16 sequences are copied ONCE into device memory (GPU when
present, else RAM), kept float16 and cast per batch; batches are index
gathers there, so no per-epoch DataLoader or host-to-device copy. A store too
big for that is streamed from disk in chunk order with bounded memory.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from wakebuilder.errors import TrainingError

_COPY_ROWS = 4096
_EVAL_ROWS = 1024
_STREAM_ROWS = 2048
_BUFFER_ROWS = 8192


class BatchSource(Protocol):
    """What streaming needs from a store (``EmbeddingStore.iter_batches``)."""

    def iter_batches(
        self, batch_size: int, *, pooled: bool = False, sequence: bool = True
    ) -> Iterator[Any]: ...


@dataclass
class DeviceData:
    """Sequences (N, T, D) float16 and float32 labels, both on one device."""

    sequence: torch.Tensor
    label: torch.Tensor

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Gather rows (an index tensor on the same device), cast to float32."""
        return self.sequence[index].float(), self.label[index]


def to_device(sequence: np.ndarray, label: np.ndarray, rows: np.ndarray, device: str) -> DeviceData:
    """Copy ``rows`` of the arrays to ``device`` in chunks, keeping float16.

    Raises:
        TrainingError: an embedding holds NaN or infinity.
    """
    rows = np.asarray(rows, dtype=np.int64)
    _, t, d = sequence.shape
    out = torch.empty((len(rows), t, d), dtype=torch.float16, device=device)
    for start in range(0, len(rows), _COPY_ROWS):
        part = rows[start : start + _COPY_ROWS]
        chunk = torch.from_numpy(np.ascontiguousarray(sequence[part], dtype=np.float16)).to(device)
        check_finite(chunk, part)
        out[start : start + len(part)] = chunk
    labels = torch.from_numpy(np.asarray(label[rows], dtype=np.float32)).to(device)
    return DeviceData(out, labels)


def check_finite(chunk: torch.Tensor, rows: np.ndarray) -> None:
    """Raise a TrainingError naming the first row with a NaN or infinite value."""
    finite = torch.isfinite(chunk.reshape(chunk.shape[0], -1)).all(dim=1)
    if not bool(finite.all()):
        bad = int(rows[int(torch.nonzero(~finite)[0, 0])])
        raise TrainingError(
            f"embedding row {bad} holds NaN or infinite values; re-run wb embed "
            "(check the clip's audio and use --dtype float32 if float16 overflowed)"
        )


class BalancedBatches:
    """Batches of equal positives and negatives, drawn without replacement per class.

    An epoch has ``ceil(n / batch_size)`` batches; each class is read from its
    own endless stream of shuffled permutations, so the minority class is
    oversampled and the majority class is seen in turn over the epochs.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, rng: np.random.Generator) -> None:
        labels = np.asarray(labels)
        self._pools = [np.flatnonzero(labels == 1), np.flatnonzero(labels != 1)]
        if min(len(p) for p in self._pools) == 0:
            raise TrainingError("training rows hold only one class; a head needs positives and negatives")
        self.batch_size = batch_size
        self.n_batches = max(1, math.ceil(len(labels) / batch_size))
        self._rng = rng
        self._queues = [np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)]

    def _take(self, cls: int, count: int) -> np.ndarray:
        while len(self._queues[cls]) < count:
            self._queues[cls] = np.concatenate([self._queues[cls], self._rng.permutation(self._pools[cls])])
        taken, self._queues[cls] = self._queues[cls][:count], self._queues[cls][count:]
        return taken

    def epoch(self) -> np.ndarray:
        """Row indices (n_batches, batch_size) for one epoch, each row shuffled."""
        n_pos = self.batch_size // 2
        total = self.n_batches
        pos = self._take(0, total * n_pos).reshape(total, n_pos)
        neg = self._take(1, total * (self.batch_size - n_pos)).reshape(total, -1)
        both = np.concatenate([pos, neg], axis=1)
        return self._rng.permuted(both, axis=1)


def stream_batches(
    source: BatchSource, keep: np.ndarray, batch_size: int, rng: np.random.Generator, device: str,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Batches of the rows in ``keep`` (a row mask), read in the store's chunk order.

    Rows are gathered into a shuffle buffer of about ``_BUFFER_ROWS`` rows (so
    a store written class by class still gives mixed batches), shuffled, and
    cut into batches; memory stays bounded by the buffer.
    """
    offset, pending = 0, []
    buffered = 0
    for part in source.iter_batches(_STREAM_ROWS, pooled=False, sequence=True):
        n = len(part)
        rows = np.flatnonzero(keep[offset : offset + n])
        if len(rows):
            seq = np.ascontiguousarray(part.sequence[rows], dtype=np.float16)
            check_finite(torch.from_numpy(seq), rows + offset)
            pending.append((seq, np.asarray(part.label[rows], dtype=np.float32)))
            buffered += len(rows)
        offset += n
        if buffered >= _BUFFER_ROWS:
            yield from _emit(pending, batch_size, rng, device)
            pending, buffered = [], 0
    if pending:
        yield from _emit(pending, batch_size, rng, device)


def _emit(pending: list[tuple[np.ndarray, np.ndarray]], batch_size: int, rng: np.random.Generator,
          device: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    order = rng.permutation(sum(len(lab) for _, lab in pending))
    seq = torch.from_numpy(np.concatenate([s for s, _ in pending])[order]).to(device)
    lab = torch.from_numpy(np.concatenate([lab for _, lab in pending])[order]).to(device)
    for start in range(0, len(lab), batch_size):
        yield seq[start : start + batch_size].float(), lab[start : start + batch_size]


class Loop(Protocol):
    """Where an epoch's batches come from (memory or stream)."""

    mode: str
    steps_per_epoch: int
    rng: np.random.Generator

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]: ...

    def train_rows(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]: ...


class MemoryLoop:
    """Train and validation rows copied once to the device; balanced batches, no weights."""

    mode = "memory"

    def __init__(self, sequence: np.ndarray, labels: np.ndarray, train_mask: np.ndarray, val_mask: np.ndarray,
                 *, batch_size: int, rng: np.random.Generator, device: str) -> None:
        self.train = to_device(sequence, labels, np.flatnonzero(train_mask), device)
        self.val = to_device(sequence, labels, np.flatnonzero(val_mask), device)
        self.sampler = BalancedBatches(labels[train_mask], batch_size, rng)
        self.steps_per_epoch = self.sampler.n_batches
        self.rng, self.device = rng, device

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        index = torch.from_numpy(self.sampler.epoch()).to(self.device)
        for row in index:
            seq, target = self.train.batch(row)
            yield seq, target, None

    def train_rows(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every training row once, unbalanced (a closed-form fit's sums, ``wakebuilder.train.centroids``)."""
        yield from _in_order(self.train, self.device)

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from _in_order(self.val, self.device)


def _in_order(data: DeviceData, device: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, len(data), _EVAL_ROWS):
        yield data.batch(torch.arange(start, min(start + _EVAL_ROWS, len(data)), device=device))


class StreamLoop:
    """Rows read from the store in chunk order each epoch; class weights balance the loss."""

    mode = "stream"

    def __init__(self, source: BatchSource, labels: np.ndarray, train_mask: np.ndarray, val_mask: np.ndarray,
                 *, batch_size: int, rng: np.random.Generator, device: str) -> None:
        self.source, self.train_mask, self.val_mask = source, train_mask, val_mask
        self.batch_size, self.rng, self.device = batch_size, rng, device
        share_pos = float(np.mean(labels[train_mask] == 1))
        self.class_weight = (0.5 / share_pos, 0.5 / (1.0 - share_pos))  # (positive, negative)
        # Each shuffle buffer may end in a partial batch; the schedule needs an upper bound.
        n_chunks = int(np.ceil(len(labels) / _STREAM_ROWS))
        self.steps_per_epoch = int(np.ceil(train_mask.sum() / batch_size)) + n_chunks

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]]:
        w_pos, w_neg = self.class_weight
        batches = stream_batches(self.source, self.train_mask, self.batch_size, self.rng, self.device)
        for seq, target in batches:
            yield seq, target, target * w_pos + (1.0 - target) * w_neg

    def train_rows(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Every training row once, unweighted, in one pass over the store."""
        yield from stream_batches(self.source, self.train_mask, _EVAL_ROWS, self.rng, self.device)

    def val_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        yield from stream_batches(self.source, self.val_mask, _EVAL_ROWS, self.rng, self.device)


def sequence_bytes(n_rows: int, seq_len: int, dim: int) -> int:
    """Bytes the float16 sequences of ``n_rows`` clips take on the device."""
    return n_rows * seq_len * dim * 2


def available_bytes(device: str) -> int:
    """Free memory on ``device``: CUDA free memory, or MemAvailable of the host."""
    if device.startswith("cuda"):
        free, _ = torch.cuda.mem_get_info(torch.device(device))
        return int(free)
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass  # not Linux: fall back to the physical size below
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def fits_on_device(n_bytes: int, device: str, *, fraction: float = 0.6) -> bool:
    """Whether ``n_bytes`` fit in ``fraction`` of the device's free memory."""
    return n_bytes <= fraction * available_bytes(device)
