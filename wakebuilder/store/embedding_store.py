"""``EmbeddingStore``: clip embeddings plus their manifest rows, on either backend.

Crash safety: ``append`` writes rows past the committed count, then bumps
``committed`` atomically (see the backends). Rows past it, left by a killed
writer, are invisible and get overwritten, so a run killed at any moment resumes
with every finished clip stored exactly once.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.errors import StoreError
from wakebuilder.manifest import ClipRecord
from wakebuilder.store.base import ARRAY_FIELDS, SCHEMA_VERSION, StoreArrays, StoreSpec
from wakebuilder.store.layout import Backend


class EmbeddingStore:
    """One row per clip: pooled and sequence embeddings, label, id, kind, group and manifest row."""

    def __init__(
        self, path: Path, backend: Backend, *, lock: contextlib.AbstractContextManager[Any] | None
    ) -> None:
        self.path = path
        self._backend = backend
        self._lock = lock
        attrs = backend.attrs()
        if attrs.get("schema_version") != SCHEMA_VERSION:
            backend.close()
            raise StoreError(
                f"{path}: schema version {attrs.get('schema_version')!r} is not {SCHEMA_VERSION}; "
                "rebuild the store with wb embed --overwrite"
            )
        if problem := attrs_problem(attrs):  # edited by hand: a key deleted or of the wrong type
            backend.close()
            raise StoreError(f"{path}: {problem}; rebuild the store with wb embed --overwrite")
        self.spec = StoreSpec(
            backbone=attrs["backbone"], seq_len=int(attrs["seq_len"]), dim=int(attrs["dim"]),
            dtype=attrs["dtype"], compute_dtype=recorded_precision(attrs),
        )
        self.fingerprint: str = attrs["fingerprint"]
        self._ids: set[str] | None = None

    @property
    def backend(self) -> str:
        """``"zarr"`` or ``"hdf5"``."""
        return self._backend.name

    @property
    def storage(self) -> Backend:
        """The backend itself (raw reads, no checks), for ``wb store verify``."""
        return self._backend

    @property
    def attrs(self) -> dict[str, Any]:
        """Store attributes: schema_version, backbone, seq_len, dim, dtype, fingerprint, committed..."""
        return self._backend.attrs()

    @property
    def writable(self) -> bool:
        return self._lock is not None

    def __len__(self) -> int:
        return self._backend.committed

    def ids(self) -> set[str]:
        """Ids of every committed clip (what ``wb embed`` skips)."""
        if self._ids is None:
            self._ids = set(self._backend.read("id", 0, len(self)).tolist())
        return set(self._ids)

    def append(self, records: Sequence[ClipRecord], pooled: np.ndarray, sequence: np.ndarray) -> None:
        """Append clips; committed (safe from a killed process) when this returns.

        Raises:
            StoreError: read-only store, wrong shapes, non-finite values, or an id already stored.
        """
        if not self.writable:
            raise StoreError(f"{self.path}: opened read-only; open it with mode 'a' to append")
        self._check(records, pooled, sequence)
        if not records:
            return
        start = len(self)
        with np.errstate(over="ignore"):  # an overflow is refused below, naming the clips
            stored = {name: np.asarray(values).astype(self.spec.dtype)
                      for name, values in (("pooled", pooled), ("sequence", sequence))}
        self._check_finite(records, {"pooled": pooled, "sequence": sequence}, stored)
        columns = {
            **stored,
            "label": np.array([r.label for r in records], dtype=np.int8),
            "id": np.array([r.id for r in records], dtype=object),
            "kind": np.array([r.kind for r in records], dtype=object),
            "group": np.array([r.group for r in records], dtype=object),
            "row": np.array([json.dumps(r.to_dict(), sort_keys=True) for r in records], dtype=object),
        }
        for name in ARRAY_FIELDS:
            self._backend.write(name, start, columns[name])
        self._backend.commit(start + len(records))
        if self._ids is not None:
            self._ids.update(r.id for r in records)

    def _check(self, records: Sequence[ClipRecord], pooled: np.ndarray, sequence: np.ndarray) -> None:
        n, spec = len(records), self.spec
        if np.shape(pooled) != (n, spec.dim) or np.shape(sequence) != (n, spec.seq_len, spec.dim):
            raise StoreError(
                f"{self.path}: append got pooled {np.shape(pooled)} and sequence {np.shape(sequence)} "
                f"for {n} clips; the store holds pooled (N, {spec.dim}) and sequence "
                f"(N, {spec.seq_len}, {spec.dim})"
            )
        counts = Counter(r.id for r in records)
        duplicates = (counts.keys() & self.ids()) | {i for i, c in counts.items() if c > 1}
        if duplicates:
            raise StoreError(
                f"{self.path}: clip id(s) already stored: {sorted(duplicates)[:3]}; skip them first"
            )

    def _check_finite(self, records: Sequence[ClipRecord], given: dict[str, np.ndarray],
                      stored: dict[str, np.ndarray]) -> None:
        """Refuse NaN or infinite embeddings, and values that became infinite in the store's dtype: stored, either
        would damage the store. One pass over the values as stored; the cause is looked up only on failure."""
        for name, values in stored.items():
            finite = np.isfinite(values.reshape(len(records), -1)).all(axis=1)
            if finite.all():
                continue
            bad = np.flatnonzero(~finite)
            ids = [records[i].id for i in bad[:3]]
            if not np.isfinite(np.asarray(given[name])[bad]).all():
                raise StoreError(f"{self.path}: refusing to store NaN or infinite embeddings ('{name}' of clip(s) "
                                 f"{ids})")
            limit = float(np.finfo(self.spec.dtype).max)
            raise StoreError(
                f"{self.path}: '{name}' of clip(s) {ids} exceeds {self.spec.dtype}'s range "
                f"(|x| > {limit:g}); refusing to store it (check those clips' audio)"
            )

    def check_chunks(self) -> None:
        """Raise when a chunk under the committed rows is missing from disk (a cheap listing, no reads).

        Raises:
            StoreError: naming the store, the field and the first damaged rows.
        """
        for name in ARRAY_FIELDS:
            missing = self._backend.missing_chunks(name)
            if missing:
                rows = ", ".join(f"{a}:{b}" for a, b in missing[:3])
                raise StoreError(
                    f"{self.path}: chunk file(s) of '{name}' missing for committed rows {rows}; the store "
                    "is damaged (wb store verify lists every damaged row); rebuild it with --overwrite"
                )

    def _embeddings(self, name: str, start: int, stop: int) -> np.ndarray:
        values = self._backend.read(name, start, stop)
        finite = np.ones(values.shape[0], dtype=bool)
        for i in range(0, values.shape[0], 1024):  # a block at a time: no full-size boolean copy
            finite[i : i + 1024] = np.isfinite(values[i : i + 1024]).reshape(-1, values[0].size).all(axis=1)
        if not finite.all():
            bad = start + np.flatnonzero(~finite)
            raise StoreError(
                f"{self.path}: '{name}' holds NaN or infinite values in {bad.size} row(s) (first: "
                f"{bad[:3].tolist()}); the store is damaged (see wb store verify); rebuild it with --overwrite"
            )
        return values

    def _arrays(self, start: int, stop: int, *, pooled: bool, sequence: bool) -> StoreArrays:
        read = self._backend.read
        return StoreArrays(
            pooled=self._embeddings("pooled", start, stop) if pooled else None,
            sequence=self._embeddings("sequence", start, stop) if sequence else None,
            label=read("label", start, stop),
            id=read("id", start, stop),
            kind=read("kind", start, stop),
            group=read("group", start, stop),
        )

    def load(self, *, pooled: bool = True, sequence: bool = True) -> StoreArrays:
        """Every committed row in memory (numpy arrays; strings as object arrays)."""
        return self._arrays(0, len(self), pooled=pooled, sequence=sequence)

    def iter_batches(
        self, batch_size: int = 256, *, pooled: bool = False, sequence: bool = True
    ) -> Iterator[StoreArrays]:
        """Committed rows in store order, ``batch_size`` at a time (memory bounded by one batch)."""
        if batch_size < 1:
            raise StoreError(f"{self.path}: batch_size must be at least 1, not {batch_size}")
        total = len(self)
        for start in range(0, total, batch_size):
            yield self._arrays(start, min(start + batch_size, total), pooled=pooled, sequence=sequence)

    def records(self) -> list[ClipRecord]:
        """The manifest row of every committed clip, in store order."""
        records = []
        for i, row in enumerate(self._backend.read("row", 0, len(self))):
            try:
                records.append(ClipRecord.from_dict(json.loads(row), where=f"{self.path} row {i}"))
            except json.JSONDecodeError as exc:
                raise StoreError(
                    f"{self.path}: row {i} is not valid JSON ({exc.msg}); rebuild it with --overwrite"
                ) from exc
        return records

    def close(self) -> None:
        """Finish the writing session (HDF5 merges its journal) and release the writer lock."""
        try:
            if self.writable:
                self._backend.finalize()
        finally:
            self._backend.close()
            if self._lock is not None:
                self._lock.__exit__(None, None, None)
                self._lock = None

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ATTR_TYPES = {"backbone": dict, "seq_len": int, "dim": int, "dtype": str, "fingerprint": str}


def attrs_problem(attrs: Any) -> str | None:
    """What is wrong with a store's attributes (those of this schema version only; a store's or a parts index's),
    or None."""
    if not isinstance(attrs, dict):
        return f"store attributes (attrs) are {type(attrs).__name__}, not an object"
    if attrs.get("schema_version") != SCHEMA_VERSION:
        return None  # another schema: the store's schema message says so
    for key, kind in _ATTR_TYPES.items():
        if not isinstance(attrs.get(key), kind) or isinstance(attrs.get(key), bool):
            return f"attrs.{key} is {attrs.get(key)!r}, not {'an' if kind is int else 'a'} {kind.__name__}"
    if not isinstance(attrs.get("compute_dtype", ""), str):  # absent: a store made before it was recorded
        return f"attrs.compute_dtype is {attrs['compute_dtype']!r}, not a str"
    return None


def recorded_precision(attrs: dict[str, Any]) -> str | None:
    """The precision the store's rows were computed at (``compute_dtype``), or None where not recorded."""
    value = attrs.get("compute_dtype")
    return value if isinstance(value, str) else None

