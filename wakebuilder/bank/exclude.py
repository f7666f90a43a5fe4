"""Bank rows that say the wake word are left out of that wake word's fit and calibration.

The bank's generic speech and isolated words were made without knowing the
phrase, so a few of them may say it ("alexa, play music" in a bank fitted for
"alexa") or a sound-alike close enough to be heard as it. Labelled negative,
such a row would teach the head to reject its own wake word. A bank row is left
out when its text contains the phrase in letters, or when some stretch of its
phonemes is within ``max_distance`` of any way of saying the phrase (``phonetics.substring_distance``:
the weighted phoneme edit distance ``wb negatives`` ranks sound-alikes by; "read" is R EH D and R IY D).
Rows of the phrase's own stores are never left out: their sound-alikes are the
hard negatives made on purpose. Every reader of a bank also leaves out the clips it
retired when its voices were replaced (``bank.retired.open_served``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from wakebuilder.bank.location import is_bank_store
from wakebuilder.bank.retired import BankView, open_served
from wakebuilder.data.phonetics import plain_text
from wakebuilder.errors import WakebuilderError
from wakebuilder.store.union import StoreUnion

log = logging.getLogger(__name__)


def default_distance(n_phonemes: int) -> float:
    """0.15 per phoneme of the phrase, in 0.5 steps, at most 1.0 (0 for phrases under 4 phonemes)."""
    return min(1.0, math.floor(0.15 * n_phonemes * 2) / 2)


@dataclass
class Exclusion:
    """Which bank rows a phrase leaves out, and why (recorded in model.json)."""

    phrase: str
    max_distance: float | None  # None: no bank row was checked (the default applies next time)
    mask: np.ndarray  # True for rows left out, one per union row
    examples: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.mask.sum())

    def to_json(self) -> dict[str, Any]:
        return {"phrase": self.phrase, "max_distance": self.max_distance, "excluded": self.count,
                "examples": self.examples}


def says_phrase(texts: Sequence[str], phrase: str, *, max_distance: float | None = None) -> tuple[np.ndarray, float]:
    """Per text: whether it contains ``phrase`` in letters or a phoneme stretch near it; and the distance used."""
    from wakebuilder.data.phonetics import phrase_phonemes, phrase_pronunciations, substring_distance

    targets = phrase_pronunciations(phrase)
    limit = default_distance(len(targets[0])) if max_distance is None else max_distance
    needle = plain_text(phrase)
    verdict: dict[str, bool] = {}
    for text in set(texts):
        plain = plain_text(text)
        if not plain:
            verdict[text] = False
        elif needle in plain:
            verdict[text] = True
        else:
            verdict[text] = _phonemes_near(plain, targets, limit, phrase_phonemes, substring_distance)
    return np.array([verdict[t] for t in texts], dtype=bool), limit


def _phonemes_near(text: str, targets: Sequence[tuple[str, ...]], limit: float, to_phonemes: Any,
                   distance: Any) -> bool:
    try:
        phones = to_phonemes(text)
    except WakebuilderError as exc:  # a word no dictionary or espeak-ng can say: letters only
        log.debug("no phonemes for %r (%s); compared in letters only", text, exc)
        return False
    return bool(phones) and min(distance(phones, target) for target in targets) <= limit + 1e-9


def bank_exclusion(union: StoreUnion, texts: Sequence[str], labels: np.ndarray, phrase: str, *,
                   max_distance: float | None = None) -> Exclusion:
    """The negative rows of ``union``'s bank stores whose text says ``phrase`` (see module docstring)."""
    in_bank = np.isin(union.source(), [i for i, s in enumerate(union.stores) if is_bank_store(s.path)])
    candidates = in_bank & (np.asarray(labels) == 0) & np.array([bool(t.strip()) for t in texts], dtype=bool)
    mask = np.zeros(len(texts), dtype=bool)
    limit = max_distance
    if phrase.strip() and candidates.any():
        rows = np.flatnonzero(candidates)
        said, limit = says_phrase([texts[i] for i in rows], phrase, max_distance=max_distance)
        mask[rows[said]] = True
    examples = sorted({texts[i] for i in np.flatnonzero(mask)})[:10]
    if mask.any():
        log.info("left out %d bank row(s) that say %r or a sound-alike (e.g. %s)", int(mask.sum()), phrase,
                 ", ".join(map(repr, examples[:3])))
    return Exclusion(phrase, limit, mask, examples)


def union_texts(union: StoreUnion) -> list[str]:
    """The text of every kept row ('' when a row has none)."""
    return [r.text for r in union.records()]


@contextlib.contextmanager
def open_for_phrase(paths: Sequence[str | os.PathLike[str]], phrase: str | None, *,
                    max_distance: float | None = None, views: Sequence[BankView | None] = ()
                    ) -> Iterator[tuple[StoreUnion, Exclusion | None]]:
    """Stores opened as one (``open_served``, bank stores as ``views`` say), with the bank rows that say ``phrase``
    already left out.

    Yields the restricted union and the exclusion (None when ``phrase`` is None or empty).
    """
    with open_served(paths, views=views) as (union, _):
        if not phrase:
            yield union, None
            return
        arrays = union.load(pooled=False, sequence=False)
        exclusion = bank_exclusion(union, union_texts(union), arrays.label, phrase, max_distance=max_distance)
        yield (union.restrict(~exclusion.mask) if exclusion.count else union), exclusion
