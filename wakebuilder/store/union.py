"""Several embedding stores read as one: a phrase's own store plus a shared negative bank.

``open_stores`` opens each store read-only, refuses stores whose embeddings
differ (backbone, window, shapes, dtype or schema: a one-line error naming both
stores and what differs) or were computed at different precisions (``compute_dtype``,
``bf16`` or ``fp32``), and returns a ``StoreUnion`` that reads like one
``EmbeddingStore``: ``len``, ``spec``, ``load``, ``iter_batches`` and
``records`` over the rows kept, in store order (the first store's rows, then
the next store's). A clip id stored in more than one store is kept once, from
the first store that holds it. ``restrict`` drops more rows (for example bank
rows that say the wake word; see ``wakebuilder.bank.exclude``), and ``first_rows``
reads a store that only grows as it was when it held fewer rows (``rows_digest``
tells whether those rows are still the clips they were).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.errors import ConfigError, StoreMismatchError
from wakebuilder.fingerprint import canonical_json
from wakebuilder.manifest import ClipRecord
from wakebuilder.store.base import StoreArrays, StoreSpec
from wakebuilder.store.embedding_store import EmbeddingStore
from wakebuilder.store.opening import _flatten, open_store, same_store, store_location

_FIELDS = ("pooled", "sequence", "label", "id", "kind", "group")


def spec_differences(a: EmbeddingStore, b: EmbeddingStore) -> str:
    """What differs between two stores' embeddings, ``key: A value, B value`` joined by ``; ``."""

    def described(store: EmbeddingStore) -> dict[str, Any]:
        spec = store.spec
        return _flatten({"backbone": spec.backbone, "seq_len": spec.seq_len, "dim": spec.dim,
                         "dtype": spec.dtype, "schema_version": store.attrs.get("schema_version")}, "")

    left, right = described(a), described(b)
    keys = sorted(k for k in left.keys() | right.keys() if left.get(k) != right.get(k))
    return "; ".join(f"{k.lstrip('.')}: {left.get(k)!r} vs {right.get(k)!r}" for k in keys) or "fingerprint"


def check_compatible(stores: Sequence[EmbeddingStore]) -> StoreSpec:
    """The stores' common spec, with the precision any of them records (``check_precisions``).

    Raises:
        StoreMismatchError: two stores hold different embeddings (named, with what differs).
    """
    first = stores[0]
    for other in stores[1:]:
        if other.fingerprint != first.fingerprint:
            raise StoreMismatchError(
                f"stores {first.path} and {other.path} hold different embeddings "
                f"({spec_differences(first, other)}); pass stores embedded with the same backbone and window"
            )
    return dataclasses.replace(first.spec, compute_dtype=check_precisions(stores))


def check_precisions(stores: Sequence[EmbeddingStore]) -> str | None:
    """The compute precision the stores record (``compute_dtype``; None: none records one).

    It is not in the fingerprint, so a phrase's store computed in fp32 and a bank in bf16 pass
    ``check_compatible``'s test; a head fit on both would mix them. A store that records none (made before it was
    recorded) is of unknown precision and read with any, as before.

    Raises:
        StoreMismatchError: two stores record different precisions (both named, with the fix).
    """
    recorded = [s for s in stores if s.spec.compute_dtype is not None]
    for other in recorded[1:]:
        first, was, other_was = recorded[0], recorded[0].spec.compute_dtype, other.spec.compute_dtype
        if other_was != was:
            raise StoreMismatchError(
                f"store {first.path} was embedded in {was} and {other.path} in {other_was}; embed them at one "
                f"precision: wb embed --dtype {was} --overwrite into {other.path}, or --dtype {other_was} into "
                f"{first.path}"
            )
    return recorded[0].spec.compute_dtype if recorded else None


class StoreUnion:
    """Kept rows of several compatible open stores, read as one store (see module docstring)."""

    def __init__(self, stores: Sequence[EmbeddingStore], keep: Sequence[np.ndarray] | None = None,
                 rows: Sequence[int] | None = None, *, firsts: Sequence[np.ndarray] | None = None,
                 digests: Sequence[str | None] | None = None) -> None:
        if not stores:
            raise ConfigError("no store given: pass --store at least once")
        self.stores = list(stores)
        self.spec = check_compatible(self.stores)
        self.fingerprint = self.stores[0].fingerprint
        self.rows = list(rows) if rows is not None else [len(s) for s in self.stores]  # each store's rows read
        # the rows holding each id once (of the rows read), and those kept: of these, less the rows restricted
        self.firsts = list(firsts) if firsts is not None else _first_ids(self.stores, self.rows)
        self.keep = [np.asarray(k, dtype=bool) for k in keep] if keep is not None else list(self.firsts)
        self._digests = list(digests) if digests is not None else [None] * len(self.stores)  # ``ids_digest``'s

    @property
    def paths(self) -> list[Path]:
        return [s.path for s in self.stores]

    def __len__(self) -> int:
        return int(sum(k.sum() for k in self.keep))

    def source(self) -> np.ndarray:
        """Index of the store each kept row comes from."""
        return np.concatenate([np.full(int(k.sum()), i, dtype=np.int64) for i, k in enumerate(self.keep)])

    def restrict(self, mask: np.ndarray) -> StoreUnion:
        """A union keeping only the kept rows where ``mask`` (one value per kept row) is true."""
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != (len(self),):
            raise ConfigError(f"restrict: mask of {mask.shape} for {len(self)} rows")
        keep, start = [], 0
        for k in self.keep:
            rows = np.flatnonzero(k)
            new = np.zeros_like(k)
            new[rows[mask[start : start + len(rows)]]] = True
            keep.append(new)
            start += len(rows)
        return StoreUnion(self.stores, keep, self.rows, firsts=self.firsts, digests=self._digests)

    def first_rows(self, limits: Sequence[int | None]) -> StoreUnion:
        """A union reading only the first ``limits[i]`` rows of store i (None, or more than it holds: all of them):
        a store that only grows, as it was when it held that many.

        An id held more than once is kept from the first store holding it among the rows read, so a row a store
        gained later (cut here) drops no other store's copy; rows ``restrict`` dropped stay dropped."""
        rows = [n if limit is None else min(n, limit) for n, limit in zip(self.rows, limits, strict=True)]
        firsts = _first_ids(self.stores, rows)
        # a row kept, or dropped only as a duplicate (its id then is judged again among the rows read)
        keep = [f & (k | ~old) for f, k, old in zip(firsts, self.keep, self.firsts, strict=True)]
        digests = [d if n == before else None for d, n, before in zip(self._digests, rows, self.rows, strict=True)]
        return StoreUnion(self.stores, keep, rows, firsts=firsts, digests=digests)

    def load(self, *, pooled: bool = True, sequence: bool = True) -> StoreArrays:
        """Every kept row in memory, concatenated in store order."""
        parts = [_take(s.load(pooled=pooled, sequence=sequence), k) for s, k in zip(self.stores, self.keep)]
        return _concat(parts)

    def iter_batches(self, batch_size: int = 256, *, pooled: bool = False, sequence: bool = True
                     ) -> Iterator[StoreArrays]:
        """Kept rows in store order, at most ``batch_size`` at a time (memory bounded by one batch)."""
        for store, keep in zip(self.stores, self.keep, strict=True):
            offset = 0
            for batch in store.iter_batches(batch_size, pooled=pooled, sequence=sequence):
                part = _take(batch, keep[offset : offset + len(batch)])
                offset += len(batch)
                if len(part):
                    yield part

    def records(self) -> list[ClipRecord]:
        """The manifest row of every kept clip, in store order."""
        return [r for s, k in zip(self.stores, self.keep) for r, kept in zip(s.records(), k) if kept]

    def ids_digest(self, index: int) -> str:
        """The ``rows_digest`` of the rows read of store ``index``: hashed once (reading its ids) for this union and
        those made from it reading as many rows (``restrict``, ``first_rows``)."""
        if (digest := self._digests[index]) is None:
            digest = self._digests[index] = rows_digest(self.stores[index], self.rows[index])
        return digest

    def describe(self) -> list[dict[str, Any]]:
        """Each store's path, fingerprint, kept/read row counts, the ``rows_digest`` of the rows read and the precision
        it records, if any (recorded in model.json: not in the fingerprint, a store embedded again in place at another
        precision is told by it)."""
        return [{"path": resolved_location(s.path), "fingerprint": s.fingerprint, "rows": n, "kept": int(k.sum()),
                 "ids_sha256": self.ids_digest(i),
                 **({"compute_dtype": s.spec.compute_dtype} if s.spec.compute_dtype is not None else {})}
                for i, (s, k, n) in enumerate(zip(self.stores, self.keep, self.rows, strict=True))]


def rows_digest(store: EmbeddingStore, rows: int) -> str:
    """A sha256 of the ids of ``store``'s first ``rows`` rows in store order (all it holds when fewer): which clips
    they are, so a store made again at the same path with other clips is told from one that only grew."""
    ids = store.load(pooled=False, sequence=False).id.astype(str)[:rows].tolist()
    return hashlib.sha256(canonical_json(ids).encode("utf-8")).hexdigest()


def resolved_location(path: str | os.PathLike[str]) -> str:
    """A store's absolute local path, or its URL as given (resolving a URL would make a local path of it)."""
    where = store_location(path)
    return str(where.resolve()) if isinstance(where, Path) else where


def _first_ids(stores: Sequence[EmbeddingStore], rows: Sequence[int]) -> list[np.ndarray]:
    """Keep masks that hold each clip id once, from the first store holding it, among the first ``rows[i]`` rows
    of store i (its later rows are not kept)."""
    seen: set[str] = set()
    keep = []
    for store, n in zip(stores, rows, strict=True):
        ids = store.load(pooled=False, sequence=False).id.astype(str)
        mask = np.zeros(len(ids), dtype=bool)
        mask[:n] = [i not in seen for i in ids[:n]]
        seen.update(ids[:n].tolist())
        keep.append(mask)
    return keep


def _take(arrays: StoreArrays, mask: np.ndarray) -> StoreArrays:
    return StoreArrays(**{f: (None if getattr(arrays, f) is None else getattr(arrays, f)[mask]) for f in _FIELDS})


def _concat(parts: list[StoreArrays]) -> StoreArrays:
    def join(name: str) -> np.ndarray | None:
        values = [getattr(p, name) for p in parts]
        return None if values[0] is None else np.concatenate(values)

    return StoreArrays(**{f: join(f) for f in _FIELDS})


@contextlib.contextmanager
def open_stores(paths: Sequence[str | os.PathLike[str]]) -> Iterator[StoreUnion]:
    """Open ``paths`` read-only as one ``StoreUnion``; every store is closed on exit.

    One store given twice, however spelled (``refuse_repeats``), is refused: most likely the second ``--store``
    was meant to be another store (the bank), and reading on without it would train on less than asked for.

    Raises:
        StoreError: a path holds no store.
        StoreMismatchError: the stores hold different embeddings.
        ConfigError: no path, or one store twice.
    """
    refuse_repeats(paths)
    with contextlib.ExitStack() as stack:
        stores = [stack.enter_context(open_store(p, "r")) for p in paths]
        yield StoreUnion(stores)


def refuse_repeats(paths: Sequence[str | os.PathLike[str]]) -> None:
    """Raise when two of ``paths`` name one store (another spelling, a symlink, a hard link, a ``file://`` URL).

    Raises:
        ConfigError: naming both spellings.
    """
    locations = [store_location(p) for p in paths]
    for k, here in enumerate(locations):
        for j in range(k):
            if same_store(locations[j], here):
                raise ConfigError(f"--store {paths[j]} and --store {paths[k]} are the same store; pass each store "
                                  "once")
