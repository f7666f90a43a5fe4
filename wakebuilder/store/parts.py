"""A store made of parts: one independent part per task, one index listing the committed parts.

Layout (a local directory or a URL, see ``store.remote``)::

    store/parts.json          the index: store attributes and the names of the committed parts
    store/parts/<name>/       one ordinary Zarr store per part (same schema, backbone and
                              fingerprint), with its own ``committed`` count
    store/parts/<name>.lock   its writer lock (local file systems)
    store.lock                the coordinator's lock (local file systems)

Only the coordinator (the ``wb embed`` process) writes the index, always as one atomic
write, and only while it holds the store's lock. Workers write parts, never the index.
A part joins the index when its task returns; a part left unlisted by a coordinator
that died is adopted by the next one (its committed rows are final; see
``store.parts_index``), and a part whose worker died is resumed by the task's
retry, which skips the ids the part already holds. Every clip of a run goes to one
task, and clips already in any part are never sent again, so no clip is stored twice.
Readers (``open_store(path)``) get a ``PartedStore``: the parts in index order, as one store.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import atomic_write_json, read_json, remove_directory, writer_lock
from wakebuilder.errors import StoreError, StoreMismatchError
from wakebuilder.manifest import ClipRecord
from wakebuilder.store.base import ARRAY_FIELDS, SCHEMA_VERSION, StoreArrays, StoreSpec
from wakebuilder.store.embedding_store import EmbeddingStore, attrs_problem, recorded_precision
from wakebuilder.store.remote import (
    ARRAY_OBJECT, FsspecZarrBackend, holds_only, join, read_bytes, remove_url, url_exists, write_bytes,
)
from wakebuilder.store.zarr_backend import ZarrBackend

INDEX_NAME = "parts.json"
PARTS_DIR = "parts"
INDEX_FORMAT = "wakebuilder-parts"
Location = Path | str  # a local path, or a URL string


def store_child(store: Location, *names: str) -> Location:
    return join(store, *names) if isinstance(store, str) else Path(store, *names)


def part_location(store: Location, name: str) -> Location:
    """Where part ``name`` of ``store`` lives."""
    return store_child(store, PARTS_DIR, name)


def is_parted(store: Location) -> bool:
    """Whether ``store`` is a store made of parts (it has an index)."""
    index = store_child(store, INDEX_NAME)
    return url_exists(index) if isinstance(index, str) else index.is_file()


def read_index(store: Location) -> dict[str, Any]:
    index = store_child(store, INDEX_NAME)
    try:
        data = json.loads(read_bytes(index)) if isinstance(index, str) else read_json(index)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{index}: unreadable parts index ({exc}); rebuild the store with --overwrite") from exc
    if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT or not isinstance(data.get("parts"), list):
        raise StoreError(f"{index}: not a wakebuilder parts index; rebuild the store with --overwrite")
    for name in data["parts"]:  # a name is joined to <store>/parts: "..", "/" or "\\" would leave the store
        if not isinstance(name, str) or name in ("", ".", "..") or "/" in name or "\\" in name:
            raise StoreError(f"{index}: part name {name!r} is not a plain name in {PARTS_DIR}/; the index is "
                             "damaged: rebuild the store with wb embed --overwrite")
    if problem := attrs_problem(data.get("attrs")):
        raise StoreError(f"{index}: {problem}; the index is damaged: rebuild the store with wb embed --overwrite")
    return data


def write_index(store: Location, index: dict[str, Any]) -> None:
    """Replace the index in one atomic write (a rename locally, one object write at a URL)."""
    target = store_child(store, INDEX_NAME)
    if isinstance(target, str):
        write_bytes(target, (json.dumps(index, indent=2, sort_keys=True) + "\n").encode())
    else:
        atomic_write_json(target, index)


def open_part(store: Location, name: str) -> EmbeddingStore:
    """One part, read-only."""
    where = part_location(store, name)
    backend = FsspecZarrBackend if isinstance(where, str) else ZarrBackend  # parts are Zarr stores
    return EmbeddingStore(where, backend.open(where, writable=False), lock=None)  # type: ignore[arg-type]


def parts_without_index(store: Location) -> bool:
    """Whether the URL ``store`` holds only its parts' objects (Zarr stores in ``parts/``) and no index: what a
    removal killed after it deleted the index left. No index lists those rows: it is no store, and the next run
    deletes them (any settings, no ``--overwrite``) as it redoes a killed creation (see ``store.remote``)."""
    return isinstance(store, str) and holds_only(store, rf"{PARTS_DIR}/[^/]+/(zarr\.json|{ARRAY_OBJECT})")


def remove_store(store: Location) -> None:
    """Delete a parted store so that a kill leaves it whole or no store: at a URL index first (then parts without an
    index are left, ``parts_without_index``), locally renamed aside first (``atomic.remove_directory``)."""
    if isinstance(store, str):
        remove_url(store_child(store, INDEX_NAME))  # type: ignore[arg-type]
        remove_url(store)
        return
    remove_directory(Path(os.path.realpath(store)))  # through a symlink: the store it points to, not the link


def open_parted(store: Location, mode: str, *, overwrite: bool = False) -> PartedStore | None:
    """``open_store`` on a parted store: a reader; with ``overwrite`` it is deleted (None returned)."""
    if mode == "r":
        return PartedStore(store)
    if mode == "a" and overwrite:
        with writer_lock(store) if isinstance(store, Path) else contextlib.nullcontext():
            remove_store(store)
        return None
    raise StoreError(
        f"{store}: is a store made of parts; add clips with wb embed (any --executor), make it a "
        f"single-part store with wb store merge {store} OUT, or rebuild it with --overwrite"
    )


class PartedStore:
    """The committed parts of a store, read as one store (the read side of ``EmbeddingStore``).

    A clip id held by two parts (or a part the index lists twice) is an error, not a row kept once as
    ``store.union`` keeps a clip two stores hold: within one store every clip goes to one task, so a
    repeat means a damaged store whose two copies may differ, and reading on would count it twice.
    Reading rows (``load``, ``records``, ``iter_batches``) checks the ids first, once (id arrays only).
    """

    backend = "zarr-parts"
    writable = False

    def __init__(self, path: Location) -> None:
        self.path = path
        self._index = read_index(path)
        attrs = self._index.get("attrs", {})
        if attrs.get("schema_version") != SCHEMA_VERSION:
            raise StoreError(
                f"{path}: schema version {attrs.get('schema_version')!r} is not {SCHEMA_VERSION}; "
                "rebuild the store with wb embed --overwrite"
            )
        self.spec = StoreSpec(backbone=attrs["backbone"], seq_len=int(attrs["seq_len"]), dim=int(attrs["dim"]),
                              dtype=attrs["dtype"], compute_dtype=recorded_precision(attrs))
        self.fingerprint: str = attrs["fingerprint"]
        self.parts: list[EmbeddingStore] = []
        self._ids_checked = False
        names = self._index["parts"]
        if repeated := next((name for k, name in enumerate(names) if name in names[:k]), None):
            raise StoreError(
                f"{store_child(path, INDEX_NAME)}: lists part {repeated!r} twice; remove the repeated name "
                "from it, or rebuild the store with wb embed --overwrite"
            )
        try:
            for name in names:
                self.parts.append(part := open_part(path, name))
                if part.fingerprint != self.fingerprint:
                    raise StoreMismatchError(
                        f"{part.path}: part built for another embedding (fingerprint {part.fingerprint}, "
                        f"store {self.fingerprint}); rebuild the store with --overwrite"
                    )
        except BaseException:
            self.close()
            raise

    @property
    def attrs(self) -> dict[str, Any]:
        return {**self._index["attrs"], "committed": len(self), "parts": len(self.parts)}

    def __len__(self) -> int:
        return sum(len(part) for part in self.parts)

    def ids(self) -> set[str]:
        """Ids of every committed clip.

        Raises:
            StoreError: a clip is stored in two parts (both named, with the fix).
        """
        ids: set[str] = set()
        for k, part in enumerate(self.parts):
            found = part.ids()
            if not found.isdisjoint(ids):
                twice = sorted(found & ids)
                first = next(p for p in self.parts[:k] if twice[0] in p.ids())
                raise StoreError(
                    f"{part.path}: holds {len(twice)} clip id(s) another part holds too (first {twice[:3]}, also in "
                    f"{first.path}); the store is damaged: rebuild it with wb embed --overwrite"
                )
            ids |= found
        self._ids_checked = True
        return ids

    def _check_ids(self) -> None:
        """Raise (see ``ids``) before the first read of rows if a clip is stored in two parts."""
        if not self._ids_checked:
            self.ids()

    def load(self, *, pooled: bool = True, sequence: bool = True) -> StoreArrays:
        """Every committed row of every part, in index order."""
        self._check_ids()
        loaded = [part.load(pooled=pooled, sequence=sequence) for part in self.parts]
        if not loaded:
            return self._empty(pooled=pooled, sequence=sequence)
        fields = {name: None if getattr(loaded[0], name) is None else
                  np.concatenate([getattr(a, name) for a in loaded]) for name in ARRAY_FIELDS if name != "row"}
        return StoreArrays(**fields)

    def _empty(self, *, pooled: bool, sequence: bool) -> StoreArrays:
        spec, text = self.spec, np.zeros(0, dtype=object)
        return StoreArrays(
            pooled=np.zeros((0, spec.dim), spec.dtype) if pooled else None,
            sequence=np.zeros((0, spec.seq_len, spec.dim), spec.dtype) if sequence else None,
            label=np.zeros(0, np.int8), id=text, kind=text.copy(), group=text.copy(),
        )

    def iter_batches(
        self, batch_size: int = 256, *, pooled: bool = False, sequence: bool = True
    ) -> Iterator[StoreArrays]:
        """Committed rows in store order, at most ``batch_size`` at a time (batches end at part ends)."""
        self._check_ids()
        for part in self.parts:
            yield from part.iter_batches(batch_size, pooled=pooled, sequence=sequence)

    def records(self) -> list[ClipRecord]:
        self._check_ids()
        return [record for part in self.parts for record in part.records()]

    def check_chunks(self) -> None:
        """Raise when a chunk under any part's committed rows is missing (each part is an ordinary store)."""
        for part in self.parts:
            part.check_chunks()

    def close(self) -> None:
        for part in self.parts:
            part.close()

    def __enter__(self) -> PartedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
