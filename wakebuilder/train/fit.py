"""`wb fit`: train the head on a store's cached embeddings, never on audio.

``run_fit`` reads a store (or several, read as one), trains with ``fit_head`` (``wakebuilder.train.fit_head``,
which takes in-memory arrays, a ``StoreArrays``, and holds the training recipe; ``--init``'s head is loaded by
``wakebuilder.train.fit_init``) and writes a model directory (see ``wakebuilder.modeldir``). ``training_arrays``
gives an open store's arrays as ``run_fit`` trains on them.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wakebuilder.atomic import atomic_directory, refuse_existing, writer_lock
from wakebuilder.devices import resolve_device
from wakebuilder.errors import TrainingError
from wakebuilder.modeldir import refuse_out_holding, save_model
from wakebuilder.train import data as tdata
from wakebuilder.train.fit_config import FitConfig
from wakebuilder.train.fit_head import FitResult, cap_batch_size, fit_head
from wakebuilder.train.fit_init import start_from
from wakebuilder.train.plots import CURVES_NAME, METRICS_NAME, plot_training_curves, write_metrics_log
from wakebuilder.train.split import store_rows

if TYPE_CHECKING:
    from wakebuilder.bank.exclude import Exclusion
    from wakebuilder.store.union import StoreUnion

__all__ = ["VERSION", "FitConfig", "FitResult", "cap_batch_size", "fit_head", "run_fit", "training_arrays"]

log = logging.getLogger(__name__)
# The fit's version, in the identity of a head the recipe keeps (``recipe_keep``): bump it when a release fits
# another head from the same stores and settings (``stage_version``).
VERSION = 1


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

    Several stores must hold the same embeddings (backbone, window, schema, compute precision);
    rows of a negative bank that say the wake word are left out and counted, and those it retired
    (``wakebuilder.bank.exclude``). Streams from the stores (bounded memory)
    when ``stream`` is set or the float16 sequences would not fit in the
    device's free memory. With ``init`` the head (its shape included) starts
    from that model directory, and ``config``'s head settings are replaced by that head's (and recorded
    so). The directory is built as ``.incomplete``, then renamed.

    Raises:
        ArtifactExistsError: ``out_dir`` exists (without ``overwrite``).
        ConfigError: ``out_dir`` is or holds a store or ``init``.
        StoreError: no store at a path.
        StoreMismatchError: stores of different embeddings, or ``init``'s head trained on another backbone.
        TrainingError: the stores cannot train a head.
        LockedError, OSError: another process writes ``out_dir``, or its folder cannot be written (before training).
    """
    from wakebuilder.bank.retired import open_served

    target = Path(out_dir)
    paths = [store_path] if isinstance(store_path, (str, os.PathLike)) else list(store_path)
    refuse_out_holding(target, [("--store", p) for p in paths] + ([("--init", init)] if init is not None else []))
    refuse_existing(target, overwrite=overwrite)
    # held from before training: an --out another writer holds, or a folder that refuses its lock, fails now, and a
    # second writer starting meanwhile fails at once instead of training for nothing
    with writer_lock(target):
        device = resolve_device(device)
        with open_served(paths) as (store, retired):
            result, meta = _fit_stores(store, retired, config, device=device, init=init, wake_word=wake_word,
                                       stream=stream, progress=progress)
        with atomic_directory(target, overwrite=overwrite, lock=False) as work:
            save_model(work, result.head.cpu(), meta=meta, split=result.split.to_json())
            write_metrics_log(work / METRICS_NAME, result.metrics_log())
            plot_training_curves(result.history, work / CURVES_NAME, best_epoch=result.best_epoch)
    return target, result


def _fit_stores(store: StoreUnion, retired: list[str | None], config: FitConfig, *, device: str,
                init: str | os.PathLike[str] | None, wake_word: str | None, stream: bool,
                progress: bool) -> tuple[FitResult, dict[str, Any]]:
    """The head ``run_fit`` fits on the served stores, less the bank rows that say the wake word, and the meta of its
    model directory."""
    from wakebuilder.bank.exclude import bank_exclusion

    init_model, config = start_from(init, store.spec, config)
    meta_arrays, texts = store_rows(store)
    wake_word = wake_word if wake_word is not None else _wake_word(texts, meta_arrays.label)
    exclusion = bank_exclusion(store, texts, meta_arrays.label, wake_word)
    stored = store.describe()
    if exclusion.count:
        store = store.restrict(~exclusion.mask)
        meta_arrays, texts = store_rows(store)
    _check_classes(store, meta_arrays.label)
    config = cap_batch_size(config, len(store))
    arrays, source = _memory_or_stream(store, meta_arrays, stream=stream, device=device)
    result = fit_head(arrays, config, device=device, stream_source=source, progress=progress,
                      init_head=init_model.head if init_model is not None else None)
    result.bank_excluded = exclusion.count
    training = _summary(result, arrays, device)
    return result, _model_meta(store, stored, retired, exclusion, wake_word=wake_word, config=config, init=init,
                               training=training)


def _check_classes(store: StoreUnion, labels: np.ndarray) -> None:
    """Refuse stores with no rows, or one class only (after the exclusion), naming them: ``fit_head`` cannot.

    Raises:
        TrainingError: naming the stores, what they lack and how to get it.
    """
    names = ", ".join(str(s.path) for s in store.stores)
    present = set(np.unique(np.asarray(labels).astype(np.int64)).tolist())
    if not present:
        raise TrainingError(f"{names}: the store is empty: embed some clips first (wb embed)")
    if not {0, 1} <= present:
        missing = "positives (label 1)" if 1 not in present else "negatives (label 0)"
        raise TrainingError(f"{names}: the store holds only one class: no {missing}; embed both wake-word and "
                            "other clips")


def _memory_or_stream(store: StoreUnion, meta_arrays: Any, *, stream: bool, device: str) -> tuple[Any, Any]:
    """The arrays ``fit_head`` trains on, and the store it streams their sequences from (None: loaded in memory).

    Streams when ``stream`` is set or the float16 sequences would not fit in the device's free memory.
    """
    n_bytes = tdata.sequence_bytes(len(store), store.spec.seq_len, store.spec.dim)
    # On the CPU the loaded array and the training copy coexist for a moment.
    streaming = stream or not tdata.fits_on_device(n_bytes * (2 if device == "cpu" else 1), device)
    if streaming:
        arrays, source = meta_arrays, store
    else:
        arrays, source = _with_sequences(store, meta_arrays), None
    log.info("fit: %d clips, %.1f MB of float16 sequences, %s on %s", len(store), n_bytes / 1e6,
             "streaming" if streaming else "in memory", device)
    return arrays, source


def _model_meta(store: StoreUnion, stored: list[dict[str, Any]], retired: list[str | None], exclusion: Exclusion, *,
                wake_word: str, config: FitConfig, init: str | os.PathLike[str] | None,
                training: dict[str, Any]) -> dict[str, Any]:
    """What ``model.json`` records of a fit: the stores as described before the exclusion (their rows left out, and
    the retired clips' digest), the exclusion, the wake word, the settings, ``--init`` and ``training``."""
    return {
        "backbone": store.spec.backbone,
        "store_fingerprint": store.fingerprint,
        "store_path": stored[0]["path"],
        "stores": [{**d, "excluded": int(exclusion.mask[rows].sum()), **({"retired_sha256": r} if r else {})}
                   for d, rows, r in zip(stored, _source_masks(exclusion.mask, stored), retired, strict=True)],
        "bank_exclusion": exclusion.to_json(),
        "wake_word": wake_word,
        "fit": config.to_dict(),
        "init_from": str(Path(init).resolve()) if init is not None else None,
        "training": training,
    }


def _source_masks(mask: np.ndarray, stored: list[dict[str, Any]]) -> list[slice]:
    """The slice of union rows (before exclusion) that each store contributed."""
    bounds = np.cumsum([0] + [d["kept"] for d in stored])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


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
