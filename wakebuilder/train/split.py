"""Train/validation split by whole groups, so nothing leaks into validation.

A group is a voice, a speaker, or a real-audio source file. Validation holds
out whole groups; an augmented copy joins its parent's group (through
``parent_id``) so it always lands on its parent's side. The split is
stratified: groups holding positives and negative-only groups are each split
about ``val_fraction`` by rows, so both sides get both classes where the
groups allow it.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from wakebuilder.errors import ConfigError, TrainingError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Split:
    """The groups on each side; saved as ``split.json``."""

    seed: int
    val_fraction: float
    train_groups: tuple[str, ...]
    val_groups: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        """The ``split.json`` document."""
        return {
            "seed": self.seed,
            "val_fraction": self.val_fraction,
            "train_groups": list(self.train_groups),
            "val_groups": list(self.val_groups),
        }

    def masks(self, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Boolean (train, val) row masks for a group column."""
        groups = np.asarray(groups).astype(str)
        return np.isin(groups, list(self.train_groups)), np.isin(groups, list(self.val_groups))


def resolve_groups(ids: Sequence[str], groups: Sequence[str], parent_ids: Sequence[str | None]) -> np.ndarray:
    """Each row's group, with derived clips moved to their root parent's group.

    Augmented copies normally carry their parent's group already; this makes
    it so even when they do not. A parent missing from the store leaves the
    row's own group.
    """
    group_of = dict(zip(ids, groups, strict=True))
    parent_of = {i: p for i, p in zip(ids, parent_ids, strict=True) if p}
    out = []
    for clip_id, group in zip(ids, groups, strict=True):
        seen = {clip_id}
        node = clip_id
        while node in parent_of and parent_of[node] in group_of and parent_of[node] not in seen:
            node = parent_of[node]
            seen.add(node)
        out.append(group_of[node] if node != clip_id else group)
    return np.asarray(out, dtype=object).astype(str)


def store_rows(store: Any) -> tuple[Any, list[str]]:
    """An open store's labels, kinds and leak-proof groups (``resolve_groups``) without its embeddings, and
    its texts: what ``wb fit`` splits on and ``wb calibrate`` finds the validation rows by."""
    arrays = store.load(pooled=False, sequence=False)
    records = {r.id: r for r in store.records()}
    ids = [str(i) for i in arrays.id]
    parents = [records[i].parent_id if i in records else None for i in ids]
    groups = resolve_groups(ids, [str(g) for g in arrays.group], parents)
    texts = [records[i].text if i in records else "" for i in ids]
    return dataclasses.replace(arrays, group=groups), texts


def split_groups(
    groups: np.ndarray,
    labels: np.ndarray,
    kinds: np.ndarray,
    *,
    val_fraction: float = 0.25,
    seed: int = 0,
    keep_recordings_in_train: bool = False,
) -> Split:
    """Hold out whole groups for validation, stratified by class.

    Raises:
        ConfigError: ``val_fraction`` is not in (0, 1).
        TrainingError: fewer than two groups, or training would lack a class.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"--val-fraction {val_fraction}: must be between 0 and 1 (exclusive)")
    groups = np.asarray(groups).astype(str)
    labels = np.asarray(labels)
    names, inverse = np.unique(groups, return_inverse=True)
    if len(names) < 2:
        raise TrainingError(
            f"too few groups to split: {len(groups)} clips in {len(names)} group(s) "
            f"{', '.join(map(repr, names.tolist()))}; add clips from other voices, speakers or source files"
        )
    n_pos = np.bincount(inverse, weights=(labels == 1), minlength=len(names))
    n_all = np.bincount(inverse, minlength=len(names)).astype(float)
    forced = np.zeros(len(names), dtype=bool)
    if keep_recordings_in_train:
        forced[np.unique(inverse[np.asarray(kinds).astype(str) == "recording"])] = True
    rng = np.random.default_rng(seed)
    in_val = np.zeros(len(names), dtype=bool)
    for stratum in (n_pos > 0, n_pos == 0):
        in_val |= _pick_val(stratum, forced, n_all, val_fraction, rng)
    split = Split(seed, val_fraction, tuple(names[~in_val]), tuple(names[in_val]))
    _check(split, groups, labels)
    return split


def _pick_val(
    stratum: np.ndarray, forced: np.ndarray, sizes: np.ndarray, fraction: float, rng: np.random.Generator
) -> np.ndarray:
    """Greedy pick of shuffled groups bringing the held-out rows nearest the target."""
    chosen = np.zeros(len(sizes), dtype=bool)
    members = np.flatnonzero(stratum)
    candidates = rng.permutation(np.flatnonzero(stratum & ~forced))
    if len(members) < 2 or len(candidates) == 0:
        return chosen  # a lone group stays in training
    target = fraction * sizes[members].sum()
    held = 0.0
    for g in candidates:
        if abs(held + sizes[g] - target) < abs(held - target):
            chosen[g] = True
            held += sizes[g]
    if not chosen.any():
        chosen[min(candidates, key=lambda g: sizes[g])] = True
    if chosen[members].all():  # keep at least one group of the stratum for training
        chosen[max(members, key=lambda g: sizes[g])] = False
    return chosen


def _check(split: Split, groups: np.ndarray, labels: np.ndarray) -> None:
    train, val = split.masks(groups)
    for name, mask in (("training", train), ("validation", val)):
        classes = set(np.unique(labels[mask]).tolist())
        if {0, 1} <= classes:
            continue
        missing = "positives" if 1 not in classes else "negatives"
        message = (
            f"the {name} split has no {missing} ({len(split.train_groups)} training and "
            f"{len(split.val_groups)} validation groups); add {missing} from more voices or source files"
        )
        if name == "training" or not val.any():
            raise TrainingError(message)
        log.warning("%s; validation metrics will be one-sided", message)
