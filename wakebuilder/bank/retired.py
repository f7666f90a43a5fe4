"""The bank's retired clips (still in its store, no longer served) and the bank's rows as a reader sees them.

The bank's store is shared by every phrase's recipe and read without its build
lock (fit, calibrate), so it only grows: when its voices change, the old voices'
clips are not removed from it (rewriting the store under a reader would break
it) but listed in ``retired.json`` beside it, written whole (atomically) under
the bank's build lock, each list also kept as ``retired/<sha256>.json``. A reader
(``open_served``) reads the list once, when it opens the stores, and leaves those
rows out: the rows it opened stay as they were while another phrase retires or
adds clips. A fit records the rows it read (their count and a hash of their ids)
and which list it left out (``BankView``), so its calibration reads the bank as
the fit did, however the bank grew in between, and refuses a bank made again.
Readers hold the bank's read lock (``bank.reading``); ``wb bank reclaim``,
holding it alone, removes the retired rows and the lists naming none left
(``bank.reclaim``), after which a model fitted before is refused and fit again.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from wakebuilder.atomic import atomic_write_json, read_json
from wakebuilder.bank.location import is_bank_store
from wakebuilder.bank.reading import reading
from wakebuilder.errors import ConfigError, StoreMismatchError
from wakebuilder.fingerprint import canonical_json
from wakebuilder.store.merge import finish_swap
from wakebuilder.store.union import StoreUnion, open_stores

log = logging.getLogger(__name__)
RETIRED_NAME = "retired.json"
VERSIONS_DIR = "retired"


@dataclass(frozen=True)
class BankView:
    """How a fit read a bank store: its first ``rows`` rows (their ids' ``rows_digest`` ``ids_sha256``; None in a
    model.json written before it was recorded), less the clips of the list ``retired_sha256``."""

    rows: int
    retired_sha256: str | None
    ids_sha256: str | None = None


def retired_digest(ids: Collection[str]) -> str | None:
    """The name of a list of retired clips (a sha256 of the sorted ids); None for none."""
    return hashlib.sha256(canonical_json(sorted(ids)).encode("utf-8")).hexdigest() if ids else None


def retired_ids(store: str | os.PathLike[str]) -> frozenset[str]:
    """The ids of the clips a bank store holds but no longer serves (none for a store that is no bank).

    Raises:
        WakebuilderError: ``retired.json`` is not JSON.
        ConfigError: it is no list of clip ids (edited by hand).
    """
    path = Path(store).parent / RETIRED_NAME
    return _read_ids(path) if is_bank_store(store) and path.is_file() else frozenset()


def retired_as_fitted(store: str | os.PathLike[str], digest: str | None) -> frozenset[str]:
    """The ids of the list of retired clips named ``digest`` (``retired_digest``; None: none), which a fit left out.

    Raises:
        ConfigError: no such list beside the bank store (or not one of clip ids).
    """
    if digest is None:
        return frozenset()
    path = Path(store).parent / VERSIONS_DIR / f"{digest}.json"
    if not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest) and path.is_file()):
        raise ConfigError(f"{store}: no list of retired clips named {digest!r} (model.json's stores say the fit "
                          "left it out); fit the model again")
    return _read_ids(path)


def retired_lists(store: str | os.PathLike[str]) -> dict[Path, frozenset[str]]:
    """Every list of retired clips beside a bank store (``retired.json`` and ``retired/<sha256>.json``), with its ids.

    Raises:
        ConfigError: a list is no list of clip ids (edited by hand).
    """
    folder = Path(store).parent
    paths = [folder / RETIRED_NAME, *sorted((folder / VERSIONS_DIR).glob("*.json"))]
    return {path: _read_ids(path) for path in paths if path.is_file()}


def _read_ids(path: Path) -> frozenset[str]:
    ids = read_json(path)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ConfigError(f"{path}: not a list of clip ids; delete it and run the recipe again")
    return frozenset(ids)


def retire(store: str | os.PathLike[str], *, add: Collection[str] = (), serve: Collection[str] = ()) -> None:
    """List the clips ``add`` as retired in ``store``'s bank and ``serve`` (clips wanted again) as served.

    The list is read, changed and written whole: callers hold the bank's build lock (``bank.build.bank_lock``).
    """
    before = retired_ids(store)
    after = (before | set(add)) - set(serve)
    if after == before:
        return
    path = Path(store).parent / RETIRED_NAME
    if digest := retired_digest(after):
        atomic_write_json(path.with_name(VERSIONS_DIR) / f"{digest}.json", sorted(after))  # before it is current
        atomic_write_json(path, sorted(after))
    else:
        path.unlink()


def _read_locked(paths: Sequence[str | os.PathLike[str]], held: contextlib.ExitStack
                 ) -> Sequence[str | os.PathLike[str]]:
    """``paths``, with each bank store's read lock held in ``held`` and a compaction of it that was killed in its
    swap (``wb bank reclaim``) finished, so the store is there."""
    for path in paths:
        if is_bank_store(path):
            held.enter_context(reading(Path(path).parent))
            finish_swap(path)
    return paths


def check_rows(union: StoreUnion, views: Sequence[BankView | None]) -> None:
    """Refuse a bank store whose first ``view.rows`` rows are not the clips the fit read (``view.ids_sha256``): the
    bank was made again at the same path (its cache deleted) since, and those rows are other clips. ``union`` reads
    each store as its view says (``first_rows``); its hash of those rows (``ids_digest``) is the one ``describe``
    gives.

    Raises:
        StoreMismatchError: naming the store, with the fix.
    """
    for index, (store, view) in enumerate(zip(union.stores, views, strict=True)):
        if view is not None and view.ids_sha256 is not None and union.ids_digest(index) != view.ids_sha256:
            raise StoreMismatchError(f"{store.path}: its first {view.rows} rows are not the clips the model was fit "
                                     "on (the bank was made again since the fit); fit the model again (wb fit) on it")


@contextlib.contextmanager
def open_served(paths: Sequence[str | os.PathLike[str]], *, views: Sequence[BankView | None] = ()
                ) -> Iterator[tuple[StoreUnion, list[str | None]]]:
    """``open_stores``, less the rows of clips a bank store retired; with ``views`` (one per path, or none), a bank
    store read as a fit read it (refused when those rows are other clips: ``check_rows``). Yields the union and, per
    store, the name of the list left out (``retired_digest``).

    The retired clips are read once, here: the rows opened stay the same while another phrase's ``ensure_bank``
    retires or adds clips (the store only grows). A bank store is read holding its folder's read lock
    (``bank.reading``), so ``wb bank reclaim`` removes none of its rows meanwhile.
    """
    views = list(views) or [None] * len(paths)
    with contextlib.ExitStack() as held, open_stores(_read_locked(paths, held)) as union:
        union = union.first_rows([v.rows if v else None for v in views])
        check_rows(union, views)
        retired = [retired_as_fitted(s.path, v.retired_sha256) if v else retired_ids(s.path)
                   for s, v in zip(union.stores, views, strict=True)]
        names = [retired_digest(ids) for ids in retired]
        if not any(retired):
            yield union, names
            return
        ids, source = union.load(pooled=False, sequence=False).id.astype(str), union.source()
        gone = np.array([i in retired[s] for i, s in zip(ids, source, strict=True)], dtype=bool)
        if gone.any():
            log.info("left out %d bank row(s) of voices since replaced (retired)", int(gone.sum()))
        yield union.restrict(~gone), names
