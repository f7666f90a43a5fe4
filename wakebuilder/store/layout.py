"""What both storage backends share: the per-row layout, chunking and the backend surface.

Chunking: rows are chunked along the clip axis, at most ``CHUNK_ROWS`` (256) rows
and about ``CHUNK_BYTES`` (16 MiB) per chunk, so a 1024-frame AST sequence (about
1.9 MB a clip) gets 8-row chunks and an append never rewrites a huge partial chunk.

Compression: none on the float16 embeddings (Blosc-LZ4 with byte shuffle left
AST-like float16 data at 100 % of its size, Zstd-1 at 92 % while reading at a
fifth of the speed); the backend's default on labels and on Zarr string arrays.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from wakebuilder.store.base import StoreSpec

CHUNK_ROWS = 256
CHUNK_BYTES = 16 * 2**20
STRING_FIELDS = ("id", "kind", "group", "row")

# name -> (per-row shape, numpy dtype name, or None for a variable-length string)
Layout = dict[str, tuple[tuple[int, ...], str | None]]


def is_hdf5(path: str | Path) -> bool:
    """HDF5 when the path ends in .h5 or .hdf5; a Zarr directory otherwise."""
    return Path(path).suffix.lower() in (".h5", ".hdf5")


def field_layout(spec: StoreSpec) -> Layout:
    """Per-row shape and dtype of every array of a store built for ``spec``."""
    return {
        "pooled": ((spec.dim,), spec.dtype),
        "sequence": ((spec.seq_len, spec.dim), spec.dtype),
        "label": ((), "int8"),
        **{name: ((), None) for name in STRING_FIELDS},
    }


def chunk_rows_for(row_shape: tuple[int, ...], dtype: str | None, max_rows: int = CHUNK_ROWS) -> int:
    """Rows per chunk: ``max_rows``, fewer (a power of two) when a chunk would pass ``CHUNK_BYTES``."""
    if dtype is None:
        return max_rows
    row_bytes = int(np.prod(row_shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    rows = max_rows
    while rows > 1 and rows * row_bytes > CHUNK_BYTES:
        rows //= 2
    return rows


def committed_problem(committed: Any, rows: int, *, exact: bool = False) -> str | None:
    """What is wrong with a store's ``committed`` attribute (edited by hand) for arrays of ``rows`` rows, or None.
    ``exact``: the arrays hold exactly the committed rows (an HDF5 file), so a lower count hides rows."""
    if not isinstance(committed, int) or isinstance(committed, bool):
        return f"attrs.committed is {committed!r}, not a row count"
    if not 0 <= committed <= rows or (exact and committed != rows):
        return f"attrs.committed is {committed}, but the arrays hold {rows} rows"
    return None


class Backend(Protocol):
    """The small surface ``EmbeddingStore`` needs; the commit protocol lives in the store.

    ``ZarrBackend`` and ``HDF5Backend`` implement it; ``store.opening`` creates and opens them through it.
    """

    name: str
    path: Path

    @classmethod
    def create(cls, path: Path, layout: Layout, attrs: dict[str, Any], *, max_chunk_rows: int = ...) -> Backend:
        """Create an empty store at ``path`` (built aside, renamed into place) and open it for writing."""

    @classmethod
    def open(cls, path: Path, *, writable: bool) -> Backend:
        """Open an existing store (a writer also cleans up what a killed writer left)."""

    @staticmethod
    def parts(path: Path) -> list[Path]:
        """Every file or folder the store at ``path`` consists of."""

    @staticmethod
    def remove(path: Path) -> None:
        """Delete the store at ``path`` and its parts, if any."""

    def chunk_rows(self, name: str) -> int:
        """Rows per chunk of one array."""

    @property
    def committed(self) -> int:
        """Rows durably committed (rows past it are leftovers of a killed writer)."""

    def attrs(self) -> dict[str, Any]:
        """The store attributes (schema, backbone identity, shapes, fingerprint, committed)."""

    def write(self, name: str, start: int, values: np.ndarray) -> None:
        """Write rows ``start:start+len(values)`` of one array (not yet committed)."""

    def commit(self, count: int) -> None:
        """Make the first ``count`` rows the committed ones, atomically."""

    def read(self, name: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of one array (a damaged or missing chunk raises ``StoreError``)."""

    def missing_chunks(self, name: str, start: int = 0, stop: int | None = None) -> list[tuple[int, int]]:
        """Row ranges under the committed rows whose chunks are missing on disk."""

    def finalize(self) -> None:
        """Finish a writing session (HDF5 merges its journal)."""

    def close(self) -> None:
        """Release file handles."""
