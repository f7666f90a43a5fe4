"""Train a head, or an ensemble of member heads, on in-memory arrays or sequences streamed from a store.

``fit_head`` is the training behind ``wb fit`` (``run_fit`` in ``wakebuilder.train.fit`` reads the store and
writes the model directory), and fits heads in-process on a ``StoreArrays`` (``fit.training_arrays``).

Recipe: AdamW, OneCycleLR (warm-up then cosine), focal loss (alpha weighs the
positive class), mixup of embedding sequences with Beta(a, a) mixing and soft
labels, explicit class balance (equal positives and negatives in every batch;
per-example class weights when streaming), early stopping on the
class-balanced validation loss with the best epoch restored. CPU runs are
bit-for-bit reproducible for a given store, seed and thread count.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from wakebuilder.errors import ConfigError, TrainingError
from wakebuilder.train import data as tdata
from wakebuilder.train.fit_config import NO_INIT_FOR_CENTROIDS, FitConfig
from wakebuilder.train.head import HeadEnsemble, WakeHead
from wakebuilder.train.loop import evaluate_head, train_loop
from wakebuilder.train.split import Split, split_groups

log = logging.getLogger(__name__)
# torch's default random generators (which weight init, nn.Dropout and the frame dropout draw from; F.dropout takes
# no generator of its own) and its deterministic-algorithms switch are process-wide. Two fits at once in two threads
# (run_recipe in a ThreadPoolExecutor, research/real_transfer.py --jobs 2) would reseed and draw from one stream and
# restore the switch under each other, so a seed would no longer give one head. Each seeded section holds this lock:
# the fits take turns (a head's fit is short). Code outside a fit that draws from torch's global generator in
# another thread meanwhile still changes the fit's draws.
_TORCH_RNG_LOCK = threading.Lock()


@dataclass
class FitResult:
    """The trained head (best epoch restored) and how it got there."""

    head: torch.nn.Module  # a WakeHead, a CentroidHead or a HeadEnsemble
    split: Split
    history: list[dict[str, float]]
    best_epoch: int
    stopped_early: bool
    mode: str  # "memory" or "stream"
    members: list[FitResult] = dataclasses.field(default_factory=list)  # an ensemble's heads, one result each
    ensemble_val: dict[str, float] | None = None  # the averaged head's validation loss and metrics
    bank_excluded: int = 0  # negative-bank rows left out because they say the wake word (set by run_fit)

    @property
    def best(self) -> dict[str, float]:
        """Validation figures of the head returned: the ensemble's, else the best epoch's."""
        return self.ensemble_val if self.ensemble_val is not None else self.history[self.best_epoch - 1]

    def metrics_log(self) -> list[dict[str, Any]]:
        """One record per epoch (per member and epoch for an ensemble, with its ``member`` index)."""
        if not self.members:
            return self.history
        return [{"member": k, **record} for k, member in enumerate(self.members) for record in member.history]


def fit_head(
    arrays: Any,
    config: FitConfig,
    *,
    device: str = "cpu",
    split: Split | None = None,
    init_head: WakeHead | None = None,
    stream_source: tdata.BatchSource | None = None,
    progress: bool = False,
) -> FitResult:
    """Train a head on ``arrays`` (StoreArrays-like: sequence, label, kind, group).

    With ``stream_source`` (a store) the sequences are streamed from it in
    chunk order instead of read from ``arrays.sequence``. Safe to call from several threads: the seeded
    training sections take turns, so a seed gives the same head whether or not another fit runs meanwhile.
    With ``config.head`` "centroids" nothing is trained: the head is computed from the training rows in one pass.

    Raises:
        ConfigError: ``init_head`` with ``config.head`` "centroids".
        TrainingError: empty data, one class only, too few groups, NaN embeddings.
    """
    labels = _check_arrays(arrays, streaming=stream_source is not None)
    config = cap_batch_size(config, len(labels))
    split = split or split_groups(
        arrays.group, labels, arrays.kind, val_fraction=config.val_fraction, seed=config.seed,
        keep_recordings_in_train=config.keep_recordings_in_train,
    )
    if config.head == "centroids":
        return _fit_centroids(arrays, labels, split, config, device=device, stream_source=stream_source,
                              init_head=init_head)
    inits = _member_inits(init_head, config)
    # an init head keeps its own shape: the ensemble of its members must be built to match it
    head_config = (config.head_config(*_shape(arrays, stream_source)) if init_head is None
                   else init_head.config.replace(members=len(inits), combine="logit"))
    runs, first_loop = [], None
    for k, init in enumerate(inits):
        member_config = config.replace(seed=config.seed + k)
        loop = _loop(arrays, labels, split, member_config, device=device, stream_source=stream_source)
        with _deterministic(member_config.seed, device):
            head = init if init is not None else WakeHead(head_config.replace(members=1))
            head.to(device)
            history, best_epoch, stopped = train_loop(head, loop, member_config, device=device, progress=progress)
        runs.append(FitResult(head.eval(), split, history, best_epoch, stopped, loop.mode))
        if first_loop is None:  # kept to validate the ensemble; the others' device copies are freed
            first_loop = loop
    if len(runs) == 1:
        return runs[0]
    ensemble = HeadEnsemble(head_config, [r.head for r in runs]).to(device).eval()
    first = runs[0]
    return FitResult(ensemble, split, first.history, first.best_epoch, first.stopped_early, first.mode,
                     members=runs, ensemble_val=evaluate_head(ensemble, first_loop, config))


def _fit_centroids(arrays: Any, labels: np.ndarray, split: Split, config: FitConfig, *, device: str,
                   stream_source: tdata.BatchSource | None, init_head: torch.nn.Module | None) -> FitResult:
    """The closed-form centroids head on the split's training rows (``wakebuilder.train.centroids``).

    Raises:
        ConfigError: an ``init_head`` (a closed-form head starts from nothing).
    """
    from wakebuilder.train.centroids import fit_centroids

    if init_head is not None:
        raise ConfigError(NO_INIT_FOR_CENTROIDS)
    loop = _loop(arrays, labels, split, config, device=device, stream_source=stream_source)
    head, history = fit_centroids(loop, config.head_config(*_shape(arrays, stream_source)), config, device=device)
    return FitResult(head, split, history, best_epoch=1, stopped_early=False, mode=loop.mode)


def cap_batch_size(config: FitConfig, n_clips: int) -> FitConfig:
    """``config`` with its batch no larger than the data (a larger one only allocates empty rows)."""
    if config.batch_size <= max(2, n_clips):
        return config
    log.info("fit: --batch-size %d is larger than the %d clips; using %d", config.batch_size, n_clips, n_clips)
    return config.replace(batch_size=max(2, n_clips))


def _loop(arrays: Any, labels: np.ndarray, split: Split, config: FitConfig, *, device: str,
          stream_source: tdata.BatchSource | None) -> tdata.Loop:
    """Batches of one member's training run (its own generator, seeded by its seed)."""
    train_mask, val_mask = split.masks(arrays.group)
    rng = np.random.default_rng(config.seed)
    if stream_source is None:
        return tdata.MemoryLoop(arrays.sequence, labels, train_mask, val_mask,
                                batch_size=config.batch_size, rng=rng, device=device)
    return tdata.StreamLoop(stream_source, labels, train_mask, val_mask,
                            batch_size=config.batch_size, rng=rng, device=device)


def _member_inits(init_head: torch.nn.Module | None, config: FitConfig) -> list[WakeHead | None]:
    """The starting head of each member: fresh, or the matching head of ``--init``."""
    if init_head is None:
        return [None] * config.members
    given = list(init_head.members) if isinstance(init_head, HeadEnsemble) else [init_head]
    if len(given) != config.members:
        raise ConfigError(f"--init holds {len(given)} head(s) but --members is {config.members}; "
                          f"pass --members {len(given)} to fine-tune it")
    return given


def _check_arrays(arrays: Any, *, streaming: bool) -> np.ndarray:
    labels = np.asarray(arrays.label).astype(np.int64)
    if len(labels) == 0:
        raise TrainingError("the store is empty: embed some clips first (wb embed)")
    present = set(np.unique(labels).tolist())
    if not present <= {0, 1}:
        raise TrainingError(f"labels must be 0 or 1, found {sorted(present)}")
    if len(present) < 2:
        missing = "positives (label 1)" if 1 not in present else "negatives (label 0)"
        raise TrainingError(
            f"the store holds only one class: no {missing}; embed both wake-word and other clips"
        )
    if not streaming and getattr(arrays, "sequence", None) is None:
        raise TrainingError("no embedding sequences loaded: load the store with sequence=True")
    return labels


def _shape(arrays: Any, source: Any) -> tuple[int, int]:
    if source is not None:
        return int(source.spec.seq_len), int(source.spec.dim)
    return int(arrays.sequence.shape[1]), int(arrays.sequence.shape[2])


@contextlib.contextmanager
def _deterministic(seed: int, device: str) -> Iterator[None]:
    """Seed torch's generators (weights, dropout) without touching the caller's state.

    Safe to call from several threads: the sections take turns (``_TORCH_RNG_LOCK``; the generators are process-wide).
    """
    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    with _TORCH_RNG_LOCK, torch.random.fork_rng(devices=devices):
        enabled = torch.are_deterministic_algorithms_enabled()
        warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=not device.startswith("cpu"))
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
