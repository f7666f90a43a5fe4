"""`wb fit`: train the head on a store's cached embeddings, never on audio.

``fit_head`` takes in-memory arrays (a ``StoreArrays``); ``run_fit`` reads a
store, trains, and writes a model directory (see ``wakebuilder.modeldir``).

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
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from wakebuilder.atomic import atomic_directory
from wakebuilder.devices import resolve_device
from wakebuilder.errors import ConfigError, StoreMismatchError, TrainingError
from wakebuilder.fingerprint import canonical_json
from wakebuilder.modeldir import load_model, save_model
from wakebuilder.train import data as tdata
from wakebuilder.train.fit_config import HEAD_FIELDS, FitConfig
from wakebuilder.train.head import HeadEnsemble, WakeHead
from wakebuilder.train.loop import evaluate_head, train_loop
from wakebuilder.train.plots import CURVES_NAME, METRICS_NAME, plot_training_curves, write_metrics_log
from wakebuilder.train.split import Split, split_groups, store_rows

log = logging.getLogger(__name__)
# The fit's version, in the identity of a head the recipe keeps (``recipe_keep``): bump it when a release fits
# another head from the same stores and settings (``stage_version``).
VERSION = 1


@dataclass
class FitResult:
    """The trained head (best epoch restored) and how it got there."""

    head: WakeHead
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
    chunk order instead of read from ``arrays.sequence``.

    Raises:
        TrainingError: empty data, one class only, too few groups, NaN embeddings.
    """
    labels = _check_arrays(arrays, streaming=stream_source is not None)
    config = cap_batch_size(config, len(labels))
    split = split or split_groups(
        arrays.group, labels, arrays.kind, val_fraction=config.val_fraction, seed=config.seed,
        keep_recordings_in_train=config.keep_recordings_in_train,
    )
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
    """Seed torch's generators (weights, dropout) without touching the caller's state."""
    devices = [torch.device(device).index or 0] if device.startswith("cuda") else []
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        torch.use_deterministic_algorithms(True, warn_only=not device.startswith("cpu"))
        try:
            yield
        finally:
            torch.use_deterministic_algorithms(enabled, warn_only=warn_only)


def run_fit(
    store_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    config: FitConfig,
    *,
    device: str = "auto",
    init: str | os.PathLike[str] | None = None,
    wake_word: str | None = None,
    stream: bool = False,
    overwrite: bool = False,
    progress: bool = True,
) -> tuple[Path, FitResult]:
    """Train on one store or several (read as one) and write the model directory.

    Several stores must hold the same embeddings (backbone, window, schema);
    rows of a negative bank that say the wake word are left out and counted, and those it retired
    (``wakebuilder.bank.exclude``). Streams from the stores (bounded memory)
    when ``stream`` is set or the float16 sequences would not fit in the
    device's free memory. With ``init`` the head (its shape included) starts
    from that model directory, and ``config``'s head settings are replaced by that head's (and recorded
    so). The directory is built as ``.incomplete``, then renamed.

    Raises:
        StoreError: no store at a path.
        StoreMismatchError: stores of different embeddings, or ``init``'s head trained on another backbone.
        TrainingError: the stores cannot train a head.
    """
    from wakebuilder.bank.exclude import bank_exclusion
    from wakebuilder.bank.retired import open_served

    target = Path(out_dir)
    if target.exists() and not overwrite:
        raise ConfigError(f"{target}: already exists; pass --overwrite to replace it")
    device = resolve_device(device)
    paths = [store_path] if isinstance(store_path, (str, os.PathLike)) else list(store_path)
    with open_served(paths) as (store, retired):
        init_model = _load_init(init, store.spec) if init is not None else None
        if init_model is not None:
            config = _with_init_head(config, init_model.head.config, init)
        meta_arrays, texts = store_rows(store)
        wake_word = wake_word if wake_word is not None else _wake_word(texts, meta_arrays.label)
        exclusion = bank_exclusion(store, texts, meta_arrays.label, wake_word)
        stored = store.describe()
        if exclusion.count:
            store = store.restrict(~exclusion.mask)
            meta_arrays, texts = store_rows(store)
        config = cap_batch_size(config, len(store))
        n_bytes = tdata.sequence_bytes(len(store), store.spec.seq_len, store.spec.dim)
        # On the CPU the loaded array and the training copy coexist for a moment.
        streaming = stream or not tdata.fits_on_device(n_bytes * (2 if device == "cpu" else 1), device)
        if streaming:
            arrays, source = meta_arrays, store
        else:
            arrays, source = _with_sequences(store, meta_arrays), None
        log.info("fit: %d clips, %.1f MB of float16 sequences, %s on %s", len(store), n_bytes / 1e6,
                 "streaming" if streaming else "in memory", device)
        result = fit_head(arrays, config, device=device, stream_source=source, progress=progress,
                          init_head=init_model.head if init_model is not None else None)
        meta = {
            "backbone": store.spec.backbone,
            "store_fingerprint": store.fingerprint,
            "store_path": stored[0]["path"],
            "stores": [{**d, "excluded": int(exclusion.mask[rows].sum()), **({"retired_sha256": r} if r else {})}
                       for d, rows, r in zip(stored, _source_masks(exclusion.mask, stored), retired, strict=True)],
            "bank_exclusion": exclusion.to_json(),
            "wake_word": wake_word,
            "fit": config.to_dict(),
            "init_from": str(Path(init).resolve()) if init is not None else None,
            "training": _summary(result, arrays, device),
        }
    result.bank_excluded = exclusion.count
    with atomic_directory(target, overwrite=overwrite) as work:
        save_model(work, result.head.cpu(), meta=meta, split=result.split.to_json())
        write_metrics_log(work / METRICS_NAME, result.metrics_log())
        plot_training_curves(result.history, work / CURVES_NAME, best_epoch=result.best_epoch)
    return target, result


def _source_masks(mask: np.ndarray, stored: list[dict[str, Any]]) -> list[slice]:
    """The slice of union rows (before exclusion) that each store contributed."""
    bounds = np.cumsum([0] + [d["kept"] for d in stored])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def _load_init(init: str | os.PathLike[str], spec: Any) -> Any:
    loaded = load_model(init)
    if loaded.meta.get("ensemble"):
        raise ConfigError(f"--init {init}: an ensemble of calibrated models (wb ensemble) is not fine-tuned as "
                          "one head; pass one of its members")
    if canonical_json(loaded.backbone) != canonical_json(spec.backbone):
        raise StoreMismatchError(
            f"--init {init}: its head was trained on backbone {loaded.backbone.get('name')!r} "
            f"({loaded.backbone.get('spec')!r}, window {loaded.backbone.get('window_s')} s) but the store "
            f"holds {spec.backbone.get('name')!r} ({spec.backbone.get('spec')!r}, window "
            f"{spec.backbone.get('window_s')} s); fine-tune on a store from the same backbone"
        )
    head_cfg = loaded.head.config
    if (head_cfg.seq_len, head_cfg.input_dim) != (spec.seq_len, spec.dim):
        raise StoreMismatchError(
            f"--init {init}: head expects sequences ({head_cfg.seq_len}, {head_cfg.input_dim}), "
            f"the store holds ({spec.seq_len}, {spec.dim})"
        )
    return loaded


def _with_init_head(config: FitConfig, head: Any, init: str | os.PathLike[str]) -> FitConfig:
    """``config`` with ``--init``'s head settings, logging those that differ from the ones asked for."""
    kept = [f"{name} {getattr(head, name)!r}" for name in HEAD_FIELDS
            if getattr(config, name) != getattr(head, name)]
    if kept:
        log.info("fit: --init %s: fine-tuning keeps its head's %s", init, ", ".join(kept))
    return config.with_head_of(head)


def training_arrays(store: Any) -> Any:
    """An open store's arrays as ``wb fit`` trains on them in memory (leak-proof groups, float16 sequences),
    for fitting heads in-process with :func:`fit_head`."""
    return _with_sequences(store, store_rows(store)[0])


def _with_sequences(store: Any, meta_arrays: Any) -> Any:
    return dataclasses.replace(meta_arrays, sequence=store.load(pooled=False, sequence=True).sequence)


def _wake_word(texts: list[str], labels: np.ndarray) -> str:
    """The most common text among positive clips, in lower case without punctuation ('' when none has one).

    Synthesized positives say the phrase with punctuation and casing variants ("Computer?", "hey, jarvis"),
    which must count as the one phrase: the bank's exclusion looks for it in other texts.
    """
    from wakebuilder.data.phonetics import plain_text

    counts = Counter(plain for t, y in zip(texts, labels, strict=True) if int(y) == 1 and (plain := plain_text(t)))
    return counts.most_common(1)[0][0] if counts else ""


def _summary(result: FitResult, arrays: Any, device: str) -> dict[str, Any]:
    train_mask, val_mask = result.split.masks(arrays.group)
    best = result.best
    return {
        "mode": result.mode,
        "balance": "balanced batches" if result.mode == "memory" else "class weights",
        "device": device,
        "n_train": int(train_mask.sum()),
        "n_val": int(val_mask.sum()),
        "epochs_run": len(result.history),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "val_loss": best["val_loss"],
        "val_f1": best["f1"],
        "seconds": float(sum(r["seconds"] for m in (result.members or [result]) for r in m.history)),
        "members": [{"member": k, "best_epoch": m.best_epoch, "val_loss": m.best["val_loss"],
                     "val_f1": m.best["f1"]} for k, m in enumerate(result.members)],
    }
