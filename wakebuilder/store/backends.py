"""The two storage backends behind ``EmbeddingStore``: a Zarr v3 directory and an HDF5 file.

Each backend offers the same small surface over named, resizable, clip-chunked
arrays plus attributes; the crash-safety protocol lives in ``EmbeddingStore``.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.errors import StoreError

CHUNK_ROWS = 256
STRING_FIELDS = ("id", "kind", "group", "row")


def is_hdf5(path: str | Path) -> bool:
    """HDF5 when the path ends in .h5 or .hdf5; a Zarr directory otherwise."""
    return Path(path).suffix.lower() in (".h5", ".hdf5")


def field_layout(seq_len: int, dim: int, dtype: str) -> dict[str, tuple[tuple[int, ...], Any]]:
    """Per-row shape and dtype of every array (``None`` dtype means variable-length string)."""
    return {
        "pooled": ((dim,), dtype),
        "sequence": ((seq_len, dim), dtype),
        "label": ((), "int8"),
        **{name: ((), None) for name in STRING_FIELDS},
    }


class ZarrBackend:
    """A Zarr v3 group: one array per field, chunked by 256 clips, Blosc-LZ4 for embeddings."""

    name = "zarr"

    def __init__(self, path: Path, *, create: bool, layout: dict[str, Any] | None = None) -> None:
        import zarr

        self.path = path
        try:
            self.group = zarr.open_group(str(path), mode="a" if create else "r+", zarr_format=3)
        except (FileNotFoundError, ValueError, KeyError) as exc:
            raise StoreError(f"{path}: not a wakebuilder store ({exc}); build one with wb embed") from exc
        if create and layout is not None:
            self._create_arrays(layout)

    def _create_arrays(self, layout: dict[str, Any]) -> None:
        from zarr.codecs import BloscCodec

        fast = BloscCodec(cname="lz4", clevel=1, shuffle="shuffle")
        for name, (row_shape, dtype) in layout.items():
            self.group.create_array(
                name,
                shape=(0, *row_shape),
                chunks=(CHUNK_ROWS, *row_shape),
                dtype=str if dtype is None else dtype,
                compressors=fast if dtype is not None else "auto",
                overwrite=True,
            )

    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    def set_attrs(self, values: dict[str, Any]) -> None:
        self.group.attrs.update(values)

    def rows(self, name: str) -> int:
        return int(self.group[name].shape[0])

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        array = self.group[name]
        end = start + values.shape[0]
        if array.shape[0] < end:
            array.resize((end, *array.shape[1:]))
        array[start:end] = values

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        out = self.group[name][start:stop]
        return np.asarray(out, dtype=object) if name in STRING_FIELDS else np.asarray(out)

    def flush(self) -> None:
        """Zarr writes each chunk to its own file (an atomic rename) when assigned."""

    def finalize(self, committed: int) -> None:
        """Nothing to merge: rows are final when written."""

    def close(self) -> None:
        """Nothing to release."""

    @staticmethod
    def remove(path: Path) -> None:
        shutil.rmtree(path, ignore_errors=True)


class HDF5Backend:
    """An HDF5 file, made crash-safe by a Zarr journal beside it.

    HDF5 rewrites partly filled chunks in place, so a writer killed mid-write can
    corrupt rows that were already committed (seen here: "filter returned failure",
    "bad heap index"). So the HDF5 file is never modified in place: appends go to
    ``<file>.journal`` (a Zarr group, whose chunk writes are atomic renames), reads
    span file + journal, and a clean close merges the journal into a copy of the
    file that atomically replaces it. A kill at any moment leaves the old file and
    the journal intact; the next writer resumes, the next clean close merges. The
    price is one copy of the file per writing session.
    """

    name = "hdf5"

    def __init__(self, path: Path, *, create: bool, layout: dict[str, Any] | None = None) -> None:
        self.path = path
        self.journal_path = path.with_name(path.name + ".journal")
        path.with_name(path.name + ".incomplete").unlink(missing_ok=True)  # a merge that was killed
        if create and layout is not None:
            self._create(layout)
        self._open_main()
        self._journal: ZarrBackend | None = None
        if self.journal_path.exists():
            journal = ZarrBackend(self.journal_path, create=False)
            if journal.attrs().get("journal_id") == self._main_attrs.get("merged_journal"):
                self.remove_journal()  # merged already; killed before deleting it
            else:
                self._journal = journal

    def _open_main(self) -> None:
        import h5py

        try:
            with h5py.File(str(self.path), "r", locking=False) as handle:
                raw = handle.attrs.get("wakebuilder")
                self._main_attrs = json.loads(raw) if raw is not None else {}
                self._main_rows = int(handle["label"].shape[0]) if "label" in handle else 0
        except (OSError, FileNotFoundError) as exc:
            raise StoreError(f"{self.path}: cannot open the HDF5 store ({exc}); rebuild it with --overwrite") from exc
        self._reader = h5py.File(str(self.path), "r", locking=False)

    def _create(self, layout: dict[str, Any]) -> None:
        import h5py

        work = self.path.with_name(self.path.name + ".incomplete")
        with h5py.File(str(work), "w", locking=False) as handle:
            for name, (row_shape, dtype) in layout.items():
                handle.create_dataset(
                    name, shape=(0, *row_shape), maxshape=(None, *row_shape), chunks=(CHUNK_ROWS, *row_shape),
                    dtype=h5py.string_dtype() if dtype is None else dtype,
                    compression="lzf" if dtype is not None else None,
                )
            handle.attrs["layout"] = json.dumps({k: [list(v[0]), v[1]] for k, v in layout.items()})
        os.replace(work, self.path)

    def _layout(self) -> dict[str, Any]:
        return {k: (tuple(v[0]), v[1]) for k, v in json.loads(self._reader.attrs["layout"]).items()}

    def attrs(self) -> dict[str, Any]:
        return dict(self._main_attrs)

    def set_attrs(self, values: dict[str, Any]) -> None:
        """Attributes are set once, on creation, before any row is written."""
        import h5py

        self._reader.close()
        self._main_attrs = {**self._main_attrs, **values}
        with h5py.File(str(self.path), "r+", locking=False) as handle:
            handle.attrs["wakebuilder"] = json.dumps(self._main_attrs, sort_keys=True)
        self._open_main()

    def rows(self, name: str) -> int:
        return self._main_rows + (self._journal.rows(name) if self._journal is not None else 0)

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        if start < self._main_rows:
            raise StoreError(f"{self.path}: rows before {self._main_rows} are final and cannot be rewritten")
        if self._journal is None:
            self._journal = ZarrBackend(self.journal_path, create=True, layout=self._layout())
            self._journal.set_attrs({"journal_id": uuid.uuid4().hex})
        self._journal.write(name, start - self._main_rows, values)

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        parts = []
        if start < self._main_rows:
            dataset = self._reader[name]
            end = min(stop, self._main_rows)
            parts.append(
                np.asarray(dataset.asstr()[start:end], dtype=object) if name in STRING_FIELDS
                else np.asarray(dataset[start:end])
            )
        if stop > self._main_rows and self._journal is not None:
            parts.append(self._journal.read(name, max(start - self._main_rows, 0), stop - self._main_rows))
        return np.concatenate(parts) if len(parts) > 1 else parts[0] if parts else self._empty(name)

    def _empty(self, name: str) -> np.ndarray:
        return np.asarray(self._reader[name][0:0]) if name not in STRING_FIELDS else np.array([], dtype=object)

    def flush(self) -> None:
        """Journal chunk writes are complete files when ``write`` returns."""

    def finalize(self, committed: int) -> None:
        """Merge the journal's committed rows into a copy of the file, then swap it in."""
        import h5py

        if self._journal is None or committed <= self._main_rows:
            return
        journal_id = self._journal.attrs()["journal_id"]
        work = self.path.with_name(self.path.name + ".incomplete")
        self._reader.close()
        shutil.copyfile(self.path, work)
        with h5py.File(str(work), "r+", locking=False) as handle:
            for name in handle:
                values = self._journal.read(name, 0, committed - self._main_rows)
                dataset = handle[name]
                dataset.resize((committed, *dataset.shape[1:]))
                dataset[self._main_rows : committed] = values
            handle.attrs["wakebuilder"] = json.dumps({**self._main_attrs, "merged_journal": journal_id})
        with open(work, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(work, self.path)
        self.remove_journal()
        self._open_main()

    def remove_journal(self) -> None:
        shutil.rmtree(self.journal_path, ignore_errors=True)
        self._journal = None

    def close(self) -> None:
        if self._reader.id.valid:
            self._reader.close()

    @staticmethod
    def remove(path: Path) -> None:
        path.unlink(missing_ok=True)
        shutil.rmtree(path.with_name(path.name + ".journal"), ignore_errors=True)
