"""The validation split ``wb calibrate`` fits Platt scaling on, read from the stores the model was fit on.

Stores that hold one backbone's embeddings share a fingerprint, so the fingerprint alone does not say they
are the model's: the rows and their ids recorded in model.json, the bank as the fit read it and the wake
word of the validation positives are checked too, and other stores are refused.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from wakebuilder.errors import StoreMismatchError, TrainingError
from wakebuilder.modeldir import LoadedModel
from wakebuilder.scoring import head_logits

if TYPE_CHECKING:
    from wakebuilder.bank.retired import BankView


def validation_logits(
    model: LoadedModel, store_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of the model's validation groups, read from the stores it was fit on.

    Several stores are read as one, leaving out the bank rows the fit left out
    (the phrase and distance recorded in model.json); a bank is read as the fit read it (``bank_views``).
    """
    from wakebuilder.bank.exclude import open_for_phrase
    from wakebuilder.train.split import store_rows

    paths = [store_path] if isinstance(store_path, (str, os.PathLike)) else list(store_path)
    excluded = model.meta.get("bank_exclusion") or {}
    with open_for_phrase(paths, excluded.get("phrase"), max_distance=excluded.get("max_distance"),
                         views=bank_views(model, paths)) as (store, _):
        if store.fingerprint != model.meta.get("store_fingerprint") or store.spec.backbone != model.backbone:
            raise StoreMismatchError(
                f"{', '.join(map(str, paths))}: store fingerprint {store.fingerprint} does not match the "
                f"model's {model.meta.get('store_fingerprint')} ({model.path}); use the stores the model was fit on"
            )
        _check_stores(model, store.describe())
        groups = set(model.split.get("val_groups", []))
        # the fit's groups: an augmented copy in its parent's group, so no copy of a training clip validates
        rows, texts = store_rows(store)
        in_val = np.isin(rows.group, list(groups))
        _check_wake_word(model, [t for t, v, y in zip(texts, in_val, rows.label, strict=True) if v and y == 1], paths)
        logits, labels, start = [], [], 0
        for batch in store.iter_batches(1024, pooled=False, sequence=True):
            keep, start = in_val[start : start + len(batch)], start + len(batch)
            if keep.any():
                logits.append(head_logits(model.head, batch.sequence[keep]))
                labels.append(batch.label[keep].astype(np.int64))
    if not logits:
        raise TrainingError(
            f"{', '.join(map(str, paths))}: none of the model's {len(groups)} validation groups are in the store"
        )
    return np.concatenate(logits), np.concatenate(labels)


def bank_views(model: LoadedModel, paths: Sequence[str | os.PathLike[str]]) -> list[BankView | None]:
    """Per path: for a bank store that model.json's ``stores`` lists, how the fit read it (``BankView``: the rows
    it held then and their ids' hash, the retired clips it left out), else None. Another phrase's recipe may have
    grown the shared bank and retired clips since."""
    from wakebuilder.bank.location import is_bank_store
    from wakebuilder.bank.retired import BankView
    from wakebuilder.store.union import resolved_location

    fitted = {d["path"]: d for d in model.meta.get("stores") or [] if isinstance(d.get("path"), str)}
    views = []
    for path in paths:
        entry = fitted.get(resolved_location(path)) if is_bank_store(path) else None
        views.append(BankView(entry["rows"], entry.get("retired_sha256"), entry.get("ids_sha256"))
                     if entry else None)
    return views


def _check_stores(model: LoadedModel, given: list[dict[str, Any]]) -> None:
    """Refuse stores other than those the model was fit on (model.json ``stores``: each one's fingerprint, rows,
    their ids' sha256 and precision), which share a fingerprint when they hold one backbone's embeddings: a subset
    would calibrate on part of the validation split, another store's rows on clips the split never saw, a store
    embedded again at another precision on embeddings the head was not fit on."""
    fitted = model.meta.get("stores")
    if not fitted:  # a model written before model.json recorded its stores
        return
    want = sorted((d.get("fingerprint"), d.get("rows")) for d in fitted)
    if sorted((d["fingerprint"], d["rows"]) for d in given) != want:
        listed = ", ".join(f"{d.get('path')} ({d.get('rows')} rows)" for d in fitted)
        found = ", ".join(f"{d['path']} ({d['rows']} rows)" for d in given)
        raise StoreMismatchError(f"{model.path}: fit on {listed}, given {found}; calibrate on the stores the model "
                                 "was fit on (wb fit's --store), all of them")
    recorded = {d.get("ids_sha256") for d in fitted} - {None}  # absent in a model.json written before it was
    for store in given:
        if recorded and store["ids_sha256"] not in recorded:
            raise StoreMismatchError(f"{store['path']}: holds {store['rows']} rows as when {model.path} was fit, but "
                                     "other clips (made again since the fit); fit the model again (wb fit) on it")
    fit_at = fit_precisions([model])
    for store in given:
        if fit_at and store.get("compute_dtype") not in (None, *fit_at):
            was = "/".join(fit_at)
            raise StoreMismatchError(f"{store['path']}: embedded in {store['compute_dtype']}, but {model.path} was fit "
                                     f"on it embedded in {was}; fit the model again (wb fit) on it, or embed it again "
                                     f"at the fit's precision (wb embed --dtype {was} --overwrite)")


def fit_precisions(models: Sequence[LoadedModel]) -> list[str]:
    """The precisions model.json records for the stores ``models`` were fit on, sorted; none where it records none
    (a model.json written before it was, stores of an ONNX backbone, an ensemble's)."""
    return sorted({d.get("compute_dtype") for m in models for d in m.meta.get("stores") or []} - {None})


def _check_wake_word(model: LoadedModel, positive_texts: list[str], paths: list[Any]) -> None:
    """Refuse validation positives (their texts) of another phrase (stores of one backbone share voice group
    names)."""
    from wakebuilder.data.phonetics import plain_text

    wake_word = plain_text(model.meta.get("wake_word") or "")
    if not wake_word or not positive_texts:
        return
    texts = Counter(plain for text in positive_texts if (plain := plain_text(text)))
    found = texts.most_common(1)[0][0] if texts else ""
    if found and found != wake_word:
        raise StoreMismatchError(
            f"{', '.join(map(str, paths))}: its validation positives say {found!r}, the model's wake word is "
            f"{wake_word!r} ({model.path}); use the stores the model was fit on"
        )
