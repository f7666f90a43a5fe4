"""The embedding store: one backbone pass over all audio, read by every later stage.

Crash safety: ``append`` writes the rows past the committed count, flushes,
then atomically replaces a small commit record (``commit.json`` inside a Zarr
store, ``<file>.commit.json`` beside an HDF5 file) holding the new count. Rows
past the committed count (a killed run) are invisible and get overwritten, so a
run killed at any moment resumes with every finished clip stored exactly once.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import __version__
from wakebuilder.atomic import atomic_write_json, writer_lock
from wakebuilder.errors import StoreError, StoreMismatchError
from wakebuilder.fingerprint import fingerprint
from wakebuilder.manifest import ClipRecord
from wakebuilder.store.backends import CHUNK_ROWS, HDF5Backend, ZarrBackend, field_layout, is_hdf5
from wakebuilder.store.base import SCHEMA_VERSION, StoreArrays, StoreSpec

__all__ = ["EmbeddingStore", "StoreArrays", "StoreSpec", "open_store", "rejects_path", "store_info"]


def spec_fingerprint(spec: StoreSpec) -> str:
    """The store's identity: schema, backbone identity, shapes and dtype."""
    config = {"backbone": spec.backbone, "seq_len": spec.seq_len, "dim": spec.dim, "dtype": spec.dtype}
    return fingerprint("embed", SCHEMA_VERSION, config)


def rejects_path(store_path: str | os.PathLike[str]) -> Path:
    """Where ``wb embed`` lists the clips it skipped, beside the store."""
    path = Path(store_path)
    return path.with_name(path.name + ".rejects.jsonl")


def _commit_path(path: Path) -> Path:
    return path / "commit.json" if not is_hdf5(path) else path.with_name(path.name + ".commit.json")


class EmbeddingStore:
    """Clip embeddings with labels, ids, kinds, groups and manifest rows (see ``store.base``)."""

    def __init__(self, path: Path, backend: Any, *, writable: bool) -> None:
        self.path = path
        self._backend = backend
        self._writable = writable
        self.attrs = backend.attrs()
        if self.attrs.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{path}: schema version {self.attrs.get('schema_version')!r} is not {SCHEMA_VERSION}; "
                "rebuild the store with wb embed --overwrite"
            )
        self.spec = StoreSpec(
            backbone=self.attrs["backbone"], seq_len=self.attrs["seq_len"], dim=self.attrs["dim"],
            dtype=self.attrs["dtype"],
        )
        self.fingerprint: str = self.attrs["fingerprint"]
        self._committed = self._read_committed()
        self._ids: set[str] | None = None

    # -- commit protocol -------------------------------------------------
    def _read_committed(self) -> int:
        record = _commit_path(self.path)
        if not record.exists():
            return 0
        try:
            data = json.loads(record.read_text())
        except json.JSONDecodeError as exc:
            raise StoreError(f"{record}: corrupt commit record; rebuild with wb embed --overwrite") from exc
        if data.get("fingerprint") != self.fingerprint:
            raise StoreError(f"{record}: commit record belongs to another store; rebuild with --overwrite")
        count = int(data["committed"])
        available = min(self._backend.rows(name) for name in ("pooled", "sequence", "label", "id", "row"))
        if count > available:
            raise StoreError(f"{self.path}: commit record says {count} rows but arrays hold {available}")
        return count

    def __len__(self) -> int:
        return self._committed

    def ids(self) -> set[str]:
        """Ids of every committed clip."""
        if self._ids is None:
            self._ids = set(self._backend.read("id", 0, self._committed).tolist())
        return set(self._ids)

    def append(self, records: Sequence[ClipRecord], pooled: np.ndarray, sequence: np.ndarray) -> None:
        """Append clips; durable when this returns."""
        if not self._writable:
            raise StoreError(f"{self.path}: opened read-only")
        n = len(records)
        if pooled.shape != (n, self.spec.dim) or sequence.shape != (n, self.spec.seq_len, self.spec.dim):
            raise StoreError(
                f"{self.path}: append got pooled {pooled.shape} and sequence {sequence.shape} for {n} clips; "
                f"the store holds ({self.spec.seq_len}, {self.spec.dim})"
            )
        if not (np.all(np.isfinite(pooled)) and np.all(np.isfinite(sequence))):
            raise StoreError(f"{self.path}: refusing to store NaN or infinite embeddings")
        if n == 0:
            return
        start = self._committed
        columns = {
            "pooled": pooled.astype(self.spec.dtype),
            "sequence": sequence.astype(self.spec.dtype),
            "label": np.array([r.label for r in records], dtype=np.int8),
            "id": np.array([r.id for r in records], dtype=object),
            "kind": np.array([r.kind for r in records], dtype=object),
            "group": np.array([r.group for r in records], dtype=object),
            "row": np.array([json.dumps(r.to_dict(), sort_keys=True) for r in records], dtype=object),
        }
        for name, values in columns.items():
            self._backend.write(name, start, values)
        self._backend.flush()
        atomic_write_json(_commit_path(self.path), {"committed": start + n, "fingerprint": self.fingerprint})
        self._committed = start + n
        if self._ids is not None:
            self._ids.update(r.id for r in records)

    # -- reading -----------------------------------------------------------
    def _arrays(self, start: int, stop: int, *, pooled: bool, sequence: bool) -> StoreArrays:
        read = self._backend.read
        return StoreArrays(
            pooled=read("pooled", start, stop) if pooled else None,
            sequence=read("sequence", start, stop) if sequence else None,
            label=read("label", start, stop),
            id=read("id", start, stop),
            kind=read("kind", start, stop),
            group=read("group", start, stop),
        )

    def load(self, *, pooled: bool = True, sequence: bool = True) -> StoreArrays:
        """Every committed row in memory."""
        return self._arrays(0, self._committed, pooled=pooled, sequence=sequence)

    def iter_batches(
        self, batch_size: int = CHUNK_ROWS, *, pooled: bool = False, sequence: bool = True
    ) -> Iterator[StoreArrays]:
        """Committed rows in order, ``batch_size`` at a time (bounded memory)."""
        for start in range(0, self._committed, batch_size):
            yield self._arrays(start, min(start + batch_size, self._committed), pooled=pooled, sequence=sequence)

    def records(self) -> list[ClipRecord]:
        """The manifest rows of every committed clip."""
        rows = self._backend.read("row", 0, self._committed)
        return [ClipRecord.from_dict(json.loads(r), where=f"{self.path} row {i}") for i, r in enumerate(rows)]

    def close(self) -> None:
        """Finish writing (HDF5 merges its journal), release the writer lock."""
        if self._writable:
            self._backend.finalize(self._committed)
        self._backend.close()
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None

    _lock: contextlib.AbstractContextManager[None] | None = None

    def __enter__(self) -> EmbeddingStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _backend_class(path: Path) -> type:
    return HDF5Backend if is_hdf5(path) else ZarrBackend


def _exists(path: Path) -> bool:
    return path.is_file() if is_hdf5(path) else (path / "zarr.json").is_file()


def open_store(
    path: str | os.PathLike[str], mode: str = "r", *, spec: StoreSpec | None = None, overwrite: bool = False
) -> EmbeddingStore:
    """Open (mode ``r``) or open-or-create (mode ``a``, holding the writer lock) a store."""
    where = Path(path)
    backend_cls = _backend_class(where)
    if mode == "r":
        if not _exists(where):
            raise StoreError(f"{where}: no embedding store here; build one with wb embed")
        return EmbeddingStore(where, backend_cls(where, create=False), writable=False)
    if mode != "a":
        raise StoreError(f"open_store mode must be 'r' or 'a', not {mode!r}")
    lock = writer_lock(where)
    lock.__enter__()
    try:
        store = _open_for_append(where, backend_cls, spec, overwrite)
    except BaseException:
        lock.__exit__(None, None, None)
        raise
    store._lock = lock
    return store


def _open_for_append(where: Path, backend_cls: type, spec: StoreSpec | None, overwrite: bool) -> EmbeddingStore:
    if _exists(where) and not overwrite:
        store = EmbeddingStore(where, backend_cls(where, create=False), writable=True)
        if spec is not None and spec_fingerprint(spec) != store.fingerprint:
            store._backend.close()
            raise StoreMismatchError(
                f"{where}: built with backbone {store.spec.backbone} (seq_len {store.spec.seq_len}, dim "
                f"{store.spec.dim}); this run uses {spec.backbone} (seq_len {spec.seq_len}, dim {spec.dim}). "
                "Use another --store, or --overwrite to rebuild it"
            )
        return store
    if spec is None:
        raise StoreError(f"{where}: no store here to append to, and no spec to create one")
    backend_cls.remove(where)
    _commit_path(where).unlink(missing_ok=True)
    backend = backend_cls(where, create=True, layout=field_layout(spec.seq_len, spec.dim, spec.dtype))
    backend.set_attrs(
        {
            "schema_version": SCHEMA_VERSION, "backbone": spec.backbone, "seq_len": spec.seq_len,
            "dim": spec.dim, "dtype": spec.dtype, "wakebuilder_version": __version__,
            "fingerprint": spec_fingerprint(spec),
        }
    )
    backend.flush()
    atomic_write_json(_commit_path(where), {"committed": 0, "fingerprint": spec_fingerprint(spec)})
    return EmbeddingStore(where, backend, writable=True)


def _disk_bytes(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def store_info(path: str | os.PathLike[str], *, top_groups: int = 10) -> dict[str, Any]:
    """Counts by label, kind and group, shapes, backbone and size on disk."""
    where = Path(path)
    with open_store(where, "r") as store:
        arrays = store.load(pooled=False, sequence=False)
        groups = Counter(arrays.group.tolist())
        info: dict[str, Any] = {
            "path": str(where),
            "backend": store._backend.name,
            "clips": len(store),
            "labels": {str(k): v for k, v in sorted(Counter(arrays.label.tolist()).items())},
            "kinds": dict(sorted(Counter(arrays.kind.tolist()).items())),
            "groups": len(groups),
            "top_groups": dict(groups.most_common(top_groups)),
            "pooled_shape": [len(store), store.spec.dim],
            "sequence_shape": [len(store), store.spec.seq_len, store.spec.dim],
            "dtype": store.spec.dtype,
            "backbone": store.spec.backbone,
            "fingerprint": store.fingerprint,
            "wakebuilder_version": store.attrs.get("wakebuilder_version"),
            "size_bytes": _disk_bytes(where),
        }
    rejects = rejects_path(where)
    info["rejects"] = sum(1 for _ in rejects.open()) if rejects.exists() else 0
    return info
