"""The coordinator's side of a store made of parts: its lock, its index, and orphan parts.

One ``PartsIndex`` at a time per store (the ``<store>.lock`` file lock on a local file
system; at a URL, see ``store.remote``). It creates the index or checks the store's
fingerprint against the run's, lists each finished part with one atomic index
write, and adopts the parts a coordinator that died left unlisted.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from wakebuilder.atomic import clear_removed, writer_lock
from wakebuilder.errors import StoreError, StoreMismatchError
from wakebuilder.store.base import StoreSpec
from wakebuilder.store.embedding_store import EmbeddingStore
from wakebuilder.store.layout import is_hdf5
from wakebuilder.store.opening import (
    backend_class, describe_mismatch, new_store_attrs, precision_mismatch, spec_fingerprint, store_exists,
)
from wakebuilder.store.parts import (
    INDEX_FORMAT, PARTS_DIR, Location, PartedStore, store_child, is_parted, part_location, parts_without_index,
    read_index, remove_store, write_index,
)
from wakebuilder.store.remote import filesystem, list_names


class PartsIndex:
    """The coordinator's handle on a parted store: its lock, its index, adoption of orphan parts."""

    def __init__(self, store: Location, *, spec: StoreSpec, overwrite: bool = False) -> None:
        # the real path: through a symlink, --overwrite would leave a dangling link to write the index through
        self.path: Location = Path(os.path.realpath(store)) if isinstance(store, Path) else store
        self._lock = writer_lock(self.path) if isinstance(self.path, Path) else contextlib.nullcontext()
        self._lock.__enter__()
        try:
            self._index = self._prepare(spec, overwrite=overwrite)
        except BaseException:
            self.close()
            raise

    def _prepare(self, spec: StoreSpec, *, overwrite: bool) -> dict[str, Any]:
        store, fingerprint = self.path, spec_fingerprint(spec)
        if is_hdf5(store):
            raise StoreError(f"{store}: a store made of parts is a Zarr directory; use a path without .h5")
        if overwrite:
            _refuse_other_files(store)
            remove_store(store)
        elif parts_without_index(store):  # a removal killed after the index went: no store, its parts go too
            remove_store(store)
        if is_parted(store):
            index = read_index(store)
            if index.get("attrs", {}).get("fingerprint") != fingerprint:
                raise StoreMismatchError(f"{store}: {describe_mismatch(index.get('attrs', {}), spec)}")
            if error := precision_mismatch(store, index["attrs"], spec):
                raise error
            return index
        if _entries(store) != []:
            raise StoreError(
                f"{store}: holds a single-part store or other files, not a store made of parts; use "
                "--executor local for it, or another --store path"
            )
        if isinstance(store, Path):
            clear_removed(store)  # what a removal at this path that was killed left beside it
        index = {"format": INDEX_FORMAT, "version": 1, "attrs": new_store_attrs(spec), "parts": []}
        write_index(store, index)
        return index

    @property
    def fingerprint(self) -> str:
        return str(self._index["attrs"]["fingerprint"])

    @property
    def names(self) -> list[str]:
        return list(self._index["parts"])

    def register(self, name: str) -> None:
        """List a finished part in the index (one atomic write)."""
        if name not in self._index["parts"]:
            self._index["parts"].append(name)
            write_index(self.path, self._index)

    def on_disk(self) -> list[str]:
        """Names of the parts present on disk, listed or not."""
        folder = store_child(self.path, PARTS_DIR)
        if isinstance(folder, str):
            return list_names(folder)
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.endswith(".incomplete"))

    def adopt_orphans(self) -> list[str]:
        """List parts a dead coordinator left unlisted (rows kept), dropping those with no rows.

        Raises:
            LockedError: a process still writes an unlisted part (a live worker of another run).
        """
        adopted = []
        for name in sorted(set(self.on_disk()) - set(self.names)):
            where = part_location(self.path, name)
            with writer_lock(where) if isinstance(where, Path) else contextlib.nullcontext():
                rows = self._committed_rows(where)
                if rows:
                    self.register(name)
                    adopted.append(name)
                else:
                    backend_class(where).remove(where)  # type: ignore[arg-type]
        return adopted

    def _committed_rows(self, where: Location) -> int:
        if not store_exists(where):  # a URL part whose creation was killed
            return 0
        backend = backend_class(where).open(where, writable=False)  # type: ignore[arg-type]
        with EmbeddingStore(where, backend, lock=None) as part:  # type: ignore[arg-type]
            if part.fingerprint != self.fingerprint:
                raise StoreMismatchError(f"{where}: part built for another embedding; delete it or --overwrite")
            return len(part)

    def ids(self) -> set[str]:
        """Ids of every clip in the listed parts."""
        with PartedStore(self.path) as reader:
            return reader.ids()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.__exit__(None, None, None)
            self._lock = None  # type: ignore[assignment]


def _entries(store: Location) -> list[str] | None:
    """Names in the directory ``store`` (local or at a URL): None for a file, [] when absent or empty."""
    if isinstance(store, str):
        fs, inner = filesystem(store)
        return None if fs.isfile(inner) else list_names(store)
    if store.is_file():
        return None
    return sorted(p.name for p in store.iterdir()) if store.is_dir() else []


def _refuse_other_files(store: Location) -> None:
    """Raise unless ``store`` is absent, empty, a store (made of parts or not) or what a killed removal of a store
    made of parts left (its parts: ``remove_store`` deletes a URL's index first, and did a local one's before it
    renamed the store aside): ``--overwrite`` deletes only stores."""
    entries = _entries(store)
    if is_parted(store) or (entries is not None and set(entries) <= {PARTS_DIR}):
        return
    store_exists(store)  # raises for a file, or a directory that holds something other than a store
