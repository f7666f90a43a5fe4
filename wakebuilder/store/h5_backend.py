"""The HDF5 backend: one ``.h5`` file, kept crash-safe by a Zarr journal beside it.

HDF5 has no journal of its own: a writer killed while h5py updates chunks, the
chunk index or the global heap of variable-length strings can corrupt rows that
were committed long before (seen: "filter returned failure", "bad heap index").
So the file is never modified in place. A writing session appends to
``<file>.journal`` (a Zarr group, see ``zarr_backend``: atomic per file) and bumps
the journal's ``committed``; readers see file rows + committed journal rows. A
clean close merges: copy the file to ``<file>.incomplete``, append the journal's
rows, set ``committed`` and ``merged_journal``, fsync, rename over the file,
delete the journal. A kill at any moment leaves the old file with its journal,
or the new file with a journal it names as merged (which is then ignored). So the
file's datasets hold exactly its ``committed`` rows: another count was edited by
hand, and opening refuses it.
The price: one copy of the file per writing session (see benchmarks/store_throughput.py).

The file's datasets and attributes, and their integrity checks (Fletcher-32 checksums), are ``h5_format``'s.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.errors import StoreError
from wakebuilder.store.h5_format import decode_attrs, field_names, file_layout, read_rows, write_empty_file
from wakebuilder.store.layout import CHUNK_ROWS, Layout, committed_problem
from wakebuilder.store.zarr_backend import ZarrBackend


def _sibling(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


class HDF5Backend:
    """An HDF5 file, one dataset per field of ``store.base``, plus its journal while writing."""

    name = "hdf5"

    def __init__(self, path: Path, *, writable: bool) -> None:
        self.path = path
        self.writable = writable
        self.journal_path = _sibling(path, ".journal")
        if writable:  # leftovers of a merge that was killed
            _sibling(path, ".incomplete").unlink(missing_ok=True)
            for old in path.parent.glob(f"{glob.escape(path.name)}.journal.merged-*"):  # "[", "*" in a name
                shutil.rmtree(old)
        self._load()

    def _load(self) -> None:
        """Open the file and any journal; on any failure the file is closed again (not left to the garbage
        collector: an open handle blocks reopening the file to write, and on some platforms deleting it)."""
        import h5py

        try:
            self._file = h5py.File(str(self.path), "r", locking=False)
        except (OSError, ValueError) as exc:
            raise self._unreadable(exc) from exc
        try:
            self._read_file()
        except BaseException:
            self._file.close()
            raise

    def _unreadable(self, exc: Exception) -> StoreError:
        return StoreError(f"{self.path}: not a readable HDF5 store ({exc}); rebuild it with --overwrite")

    def _read_file(self) -> None:
        try:
            self._attrs = decode_attrs(self._file.attrs)
            self._fields = [self._file[name] for name in field_names(self._attrs, path=self.path)]
        except (OSError, KeyError, ValueError, TypeError) as exc:  # TypeError: json_attrs edited by hand
            raise self._unreadable(exc) from exc
        rows = min((dataset.shape[0] for dataset in self._fields), default=0)
        # edited by hand: a session merges its rows into a copy resized to them, so no writer leaves rows past it
        if problem := committed_problem(self._attrs.get("committed"), rows, exact=True):
            raise StoreError(f"{self.path}: {problem}; rebuild the store with wb embed --overwrite")
        self._base: int = self._attrs["committed"]
        self._journal: ZarrBackend | None = None
        if (self.journal_path / "zarr.json").exists():
            self._attach_journal(ZarrBackend.open(self.journal_path, writable=self.writable))
        elif self.journal_path.exists() and self.writable:  # not a journal (created atomically): stray
            shutil.rmtree(self.journal_path)

    def _attach_journal(self, journal: ZarrBackend) -> None:
        attrs = journal.attrs()
        if attrs.get("journal_id") == self._attrs.get("merged_journal"):
            if self.writable:  # merged already; the writer was killed before deleting it
                self._retire_journal(attrs)
            return
        if attrs.get("store_uuid") != self._attrs.get("store_uuid") or attrs.get("base") != self._base:
            raise StoreError(
                f"{self.journal_path}: journal (of store {attrs.get('store_uuid')}, continuing row "
                f"{attrs.get('base')}) does not belong to {self.path} "
                f"(store {self._attrs.get('store_uuid')}, {self._base} rows); move the journal away "
                "or rebuild with --overwrite"
            )
        self._journal = journal

    @classmethod
    def create(
        cls, path: Path, layout: Layout, attrs: dict[str, Any], *, max_chunk_rows: int = CHUNK_ROWS
    ) -> HDF5Backend:
        """Create an empty store at ``path`` (built aside, renamed into place) and open it for writing."""
        work = _sibling(path, ".incomplete")
        write_empty_file(work, layout, attrs, max_chunk_rows=max_chunk_rows)
        os.replace(work, path)
        return cls(path, writable=True)

    @classmethod
    def open(cls, path: Path, *, writable: bool) -> HDF5Backend:
        """Open an existing store (file plus any unmerged journal)."""
        return cls(path, writable=writable)

    @property
    def committed(self) -> int:
        return self._base + (self._journal.committed if self._journal is not None else 0)

    def attrs(self) -> dict[str, Any]:
        return {**self._attrs, "committed": self.committed}

    def chunk_rows(self, name: str) -> int:
        return int(self._file[name].chunks[0])

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        if start < self._base:
            raise StoreError(f"{self.path}: rows before {self._base} are final and cannot be rewritten")
        if self._journal is None:
            rows = min(self.chunk_rows(n) for n in ("label", "id"))
            attrs = {
                "journal_id": uuid.uuid4().hex, "base": self._base, "store_uuid": self._attrs["store_uuid"]
            }
            self._journal = ZarrBackend.create(self.journal_path, file_layout(self._fields), attrs, max_chunk_rows=rows)
        self._journal.write(name, start - self._base, values)

    def commit(self, count: int) -> None:
        if self._journal is None:
            if count != self._base:
                raise StoreError(f"{self.path}: nothing written past row {self._base}; cannot commit {count}")
            return
        self._journal.commit(count - self._base)

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        parts = []
        if start < self._base or self._journal is None or stop <= self._base:  # the last: an empty read
            parts.append(read_rows(self._file, name, start=start, stop=min(stop, self._base), path=self.path))
        if stop > self._base and self._journal is not None:
            merged = StoreError(f"{self.path}: a writer merged the store while it was being read; reopen it")
            try:
                parts.append(self._journal.read(name, max(start - self._base, 0), stop - self._base))
            except StoreError as exc:
                if not self._journal_on_disk():
                    raise merged from exc
                raise
            if not self._journal_on_disk():  # a writer merged it while we read (and may have begun another)
                raise merged
        return np.concatenate(parts) if len(parts) > 1 else parts[0]

    def _journal_on_disk(self) -> bool:
        """Whether the journal beside the file is still the one this backend opened (not merged, not a newer
        session's journal at the same path)."""
        if self.writable:
            return True
        try:
            attrs = json.loads((self.journal_path / "zarr.json").read_text(encoding="utf-8")).get("attributes", {})
        except (OSError, ValueError):
            return False
        return attrs.get("journal_id") == self._journal.attrs().get("journal_id")

    def missing_chunks(self, name: str, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
        """Row ranges of committed rows whose chunks are missing (in the unmerged journal only)."""
        if self._journal is None:
            return []
        end = self.committed if stop is None else min(stop, self.committed)
        inner = self._journal.missing_chunks(name, max(start - self._base, 0), max(end - self._base, 0))
        return [(a + self._base, b + self._base) for a, b in inner]

    def finalize(self) -> None:
        """Merge the journal's committed rows into a copy of the file, then swap it in."""
        import h5py

        if self._journal is None:
            return
        if self._journal.committed == 0:  # nothing committed: no copy, just drop the journal
            self._retire_journal(self._journal.attrs())
            self._journal = None
            return
        journal, total = self._journal, self.committed
        work = _sibling(self.path, ".incomplete")
        shutil.copyfile(self.path, work)
        with h5py.File(str(work), "r+", locking=False) as handle:
            for name in self._attrs["fields"]:
                dataset = handle[name]
                dataset.resize((total, *dataset.shape[1:]))
                step = 4 * dataset.chunks[0]  # bounded memory: a few chunks at a time
                for start in range(self._base, total, step):
                    stop = min(start + step, total)
                    dataset[start:stop] = journal.read(name, start - self._base, stop - self._base)
            handle.attrs.update({"committed": total, "merged_journal": journal.attrs()["journal_id"]})
        with open(work, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(work, self.path)
        self._retire_journal(journal.attrs())
        self.close()
        self._load()

    def _retire_journal(self, attrs: dict[str, Any]) -> None:
        """Delete the journal (of ``attrs``), renamed first to ``<file>.journal.merged-<id>``: a reader still holding
        it notices it is gone (see ``read``), and a kill while deleting it leaves that name, which the next writer
        deletes, not a journal whose zarr.json outlived some of its arrays (which fails to open, and the store with
        it)."""
        retired = _sibling(self.path, f".journal.merged-{attrs.get('journal_id')}")
        os.replace(self.journal_path, retired)
        shutil.rmtree(retired)

    def close(self) -> None:
        if self._file.id.valid:
            self._file.close()

    @staticmethod
    def parts(path: Path) -> list[Path]:
        """Everything on disk that belongs to the store: the file and any unmerged journal."""
        return [path, _sibling(path, ".journal")]

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)
        journal = _sibling(path, ".journal")
        if journal.exists():
            shutil.rmtree(journal)
