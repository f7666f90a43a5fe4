"""The Zarr v3 backend: a directory with one clip-chunked array per field.

Crash safety comes from the file layout: zarr 3.1's local store writes every
chunk and every ``zarr.json`` to a temporary file and renames it into place, so
a process killed at any moment leaves each file either old or new. Rows are
written first, then the group attribute ``committed`` is bumped (one atomic
rename of the group's ``zarr.json``); a partial chunk that is rewritten holds
the committed rows unchanged. This guards against a killed process, not against
power loss (nothing is fsynced).

Integrity: every chunk ends in its CRC-32C (Zarr v3's ``crc32c`` codec), so a
flipped byte is an error on read, and every chunk is written even when it holds
only fill values, so a chunk file missing under the committed rows is an error
too, never rows of zeros. Stores made before this (no ``checksums`` attribute)
stay readable; only their chunk presence is checked, for the fields that cannot
be all fill values. Arrays grow a whole chunk at a time, so rows past the written
ones inside the last chunk read as fill values; a ``committed`` edited by hand to
reach them is refused on open, by reading the last committed chunk of ``id`` and
``row`` (never empty in a written row).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import remove_directory
from wakebuilder.errors import StoreError
from wakebuilder.store.layout import CHUNK_ROWS, STRING_FIELDS, Layout, chunk_rows_for, committed_problem

_OPEN_ERRORS = (OSError, ValueError, KeyError, TypeError)
CHECKSUMS = "crc32c"
# Fields never entirely fill values (zeros, ""), so a legacy store must hold every chunk of them too.
_ALWAYS_WRITTEN = ("pooled", "sequence", "id", "row")
# Fields never empty in a written row: ``id`` is a content hash, ``row`` is JSON (and written last of a row).
_NEVER_EMPTY = ("id", "row")


def _codecs(name: str) -> list[Any]:
    from zarr.codecs import Crc32cCodec, ZstdCodec

    return [Crc32cCodec()] if name in ("pooled", "sequence") else [ZstdCodec(level=0), Crc32cCodec()]


def create_arrays(group: Any, layout: Layout, max_chunk_rows: int) -> None:
    """One empty clip-chunked array per field (embeddings uncompressed, see ``store.layout``), each chunk
    with a crc32c checksum (``CHECKSUMS``; the group's attributes should say so)."""
    for name, (row_shape, dtype) in layout.items():
        group.create_array(
            name,
            shape=(0, *row_shape),
            chunks=(chunk_rows_for(row_shape, dtype, max_chunk_rows), *row_shape),
            dtype=str if dtype is None else dtype,
            compressors=_codecs(name),
            config={"write_empty_chunks": True},
        )


class ZarrBackend:
    """A Zarr v3 group: arrays ``pooled``, ``sequence``, ``label``, ``id``, ``kind``, ``group``, ``row``."""

    name = "zarr"

    def __init__(self, path: Path, group: Any, *, writable: bool) -> None:
        self.path = path
        self.writable = writable
        self._group = group
        self._attrs = dict(group.attrs)
        try:
            # write_empty_chunks is a session setting, not stored: set it on every open
            self._arrays = {
                name: group[name].with_config({"write_empty_chunks": True}) for name in self._layout_names()
            }
        except _OPEN_ERRORS as exc:
            raise StoreError(
                f"{path}: store is missing an array ({exc}); rebuild it with --overwrite"
            ) from exc
        rows = min((array.shape[0] for array in self._arrays.values()), default=0)
        if problem := committed_problem(self._attrs.get("committed"), rows) or self._unwritten_row():  # by hand
            raise StoreError(f"{path}: {problem}; rebuild the store with wb embed --overwrite")

    def _unwritten_row(self) -> str | None:
        """The first committed row of the last committed chunk that reads empty in ``id`` or ``row``, said as a
        problem: such a row was never written, so ``committed`` was raised by hand. One chunk read per field; a
        damaged chunk is left to the reads (and ``wb store verify``) to report."""
        end = self.committed
        for name in (n for n in _NEVER_EMPTY if n in self._arrays and end > 0):
            start = end - 1 - (end - 1) % self.chunk_rows(name)
            try:
                values = self.read(name, start, end).tolist()
            except StoreError:
                continue
            if empty := [start + i for i, value in enumerate(values) if not value]:
                return f"attrs.committed is {end}, but row {empty[0]} of '{name}' was never written (it reads empty)"
        return None

    def _layout_names(self) -> list[str]:
        names = self._attrs.get("fields")
        if not isinstance(names, list):
            raise StoreError(
                f"{self.path}: not a wakebuilder store (no 'fields' attribute); rebuild it with --overwrite"
            )
        return names

    @classmethod
    def create(
        cls, path: Path, layout: Layout, attrs: dict[str, Any], *, max_chunk_rows: int = CHUNK_ROWS
    ) -> ZarrBackend:
        """Create an empty store at ``path`` (which must not exist): built aside, renamed into place."""
        import zarr

        work = path.with_name(path.name + ".incomplete")
        if work.exists():  # a creation that was killed
            shutil.rmtree(work)
        full = {**attrs, "fields": list(layout), "committed": 0, "checksums": CHECKSUMS}
        group = zarr.open_group(str(work), mode="w", zarr_format=3, attributes=full)
        create_arrays(group, layout, max_chunk_rows)
        os.replace(work, path)
        return cls.open(path, writable=True)

    @classmethod
    def open(cls, path: Path, *, writable: bool) -> ZarrBackend:
        """Open an existing store; a writer also removes temporary files left by a kill."""
        import zarr

        try:
            group = zarr.open_group(str(path), mode="r+" if writable else "r", zarr_format=3)
        except _OPEN_ERRORS as exc:
            raise StoreError(
                f"{path}: not a readable Zarr store ({exc}); rebuild it with --overwrite"
            ) from exc
        if writable:
            for leftover in path.rglob("*.partial"):
                leftover.unlink(missing_ok=True)
        return cls(path, group, writable=writable)

    @property
    def committed(self) -> int:
        return int(self._attrs["committed"])

    def attrs(self) -> dict[str, Any]:
        return dict(self._attrs)

    def chunk_rows(self, name: str) -> int:
        return int(self._arrays[name].chunks[0])

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        array = self._arrays[name]
        end = start + values.shape[0]
        if array.shape[0] < end:
            # Grow a chunk at a time: one metadata rewrite per chunk, not per append.
            step = array.chunks[0]
            array.resize((-(-end // step) * step, *array.shape[1:]))
        array[start:end] = values

    def commit(self, count: int) -> None:
        self._group.attrs["committed"] = count
        self._attrs["committed"] = count

    def _chunk_exists(self, name: str, key: str) -> bool:
        return (self.path / name / key).is_file()

    def missing_chunks(self, name: str, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
        """Row ranges of committed chunks of one array whose chunk file is absent."""
        if self._attrs.get("checksums") != CHECKSUMS and name not in _ALWAYS_WRITTEN:
            return []
        array = self._arrays[name]
        step, end = array.chunks[0], min(self.committed, self.committed if stop is None else stop)
        missing = []
        for index in range(start // step, -(-end // step)):
            key = array.metadata.encode_chunk_key((index,) + (0,) * (array.ndim - 1))
            if not self._chunk_exists(name, key):
                missing.append((index * step, min((index + 1) * step, self.committed)))
        return missing

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        missing = self.missing_chunks(name, start, stop)
        if missing:
            rows = ", ".join(f"{a}:{b}" for a, b in missing[:3])
            raise StoreError(
                f"{self.path}: chunk file(s) of '{name}' missing for committed rows {rows}; the store is "
                "damaged (wb store verify lists every damaged row); rebuild it with --overwrite"
            )
        try:
            out = self._arrays[name][start:stop]
        except _OPEN_ERRORS + (RuntimeError,) as exc:
            raise StoreError(
                f"{self.path}: cannot read '{name}' rows {start}:{stop} ({exc}); rebuild it with --overwrite"
            ) from exc
        return np.asarray(out, dtype=object) if name in STRING_FIELDS else np.asarray(out)

    def finalize(self) -> None:
        """Nothing to merge: rows are final once committed."""

    def close(self) -> None:
        """Nothing to release: zarr holds no open files between calls."""

    @staticmethod
    def parts(path: Path) -> list[Path]:
        """Everything on disk that belongs to the store."""
        return [path]

    @staticmethod
    def remove(path: Path) -> None:
        """Delete the store: renamed aside first, so a kill leaves it whole or gone (``atomic.remove_directory``)."""
        remove_directory(path)
