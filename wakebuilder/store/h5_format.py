"""The HDF5 store file's format: its datasets and attributes, written and read back with their checks.

One dataset per field of ``store.base``, chunked along the clip axis (``layout.chunk_rows_for``). Integrity: the
numeric datasets carry HDF5's Fletcher-32 checksum filter (a damaged chunk fails to read, named by ``read_rows``);
variable-length strings cannot take filters in HDF5, so ``wb store verify`` checks their rows parse instead.
Attributes hold scalars; dicts and lists are stored as JSON text, named in ``json_attrs``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.errors import StoreError
from wakebuilder.store.layout import STRING_FIELDS, Layout, chunk_rows_for


def encode_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """HDF5 attributes hold scalars; dicts and lists are stored as JSON text."""
    return {k: json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v for k, v in attrs.items()}


def decode_attrs(raw: Any) -> dict[str, Any]:
    """The attributes ``encode_attrs`` wrote, their JSON text (those named in ``json_attrs``) parsed again."""
    json_names = set(json.loads(raw.get("json_attrs", "[]")))
    out = {}
    for key, value in raw.items():
        value = value.item() if isinstance(value, np.generic) else value
        out[key] = json.loads(value) if key in json_names else value
    return out


def write_empty_file(path: Path, layout: Layout, attrs: dict[str, Any], *, max_chunk_rows: int) -> None:
    """An HDF5 file at ``path`` of no rows: a dataset per field of ``layout`` (the numeric ones under Fletcher-32)
    and ``attrs`` plus the store's own (its fields, ``committed`` 0, a fresh ``store_uuid``)."""
    import h5py

    json_names = [k for k, v in attrs.items() if isinstance(v, (dict, list))] + ["fields"]
    with h5py.File(str(path), "w", locking=False) as handle:
        for name, (row_shape, dtype) in layout.items():
            handle.create_dataset(
                name, shape=(0, *row_shape), maxshape=(None, *row_shape),
                chunks=(chunk_rows_for(row_shape, dtype, max_chunk_rows), *row_shape),
                dtype=h5py.string_dtype() if dtype is None else dtype,
                fletcher32=dtype is not None,
            )
        full = {
            **attrs, "fields": list(layout), "committed": 0, "json_attrs": json.dumps(json_names),
            "store_uuid": uuid.uuid4().hex, "checksums": "fletcher32",
        }
        handle.attrs.update(encode_attrs(full))


def field_names(attrs: dict[str, Any], *, path: Path) -> list[str]:
    """The names of the store's datasets (``attrs.fields``); a ``StoreError`` when edited into something else."""
    names = attrs.get("fields")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):  # edited by hand
        raise StoreError(f"{path}: attrs.fields is {names!r}, not a list of array names; rebuild the "
                         "store with wb embed --overwrite")
    return names


def file_layout(datasets: list[Any]) -> Layout:
    """The ``Layout`` of the file's datasets (a string dataset's dtype is None)."""
    return {
        ds.name.lstrip("/"): (ds.shape[1:], None if ds.dtype.kind == "O" else ds.dtype.name)
        for ds in datasets
    }


def read_rows(handle: Any, name: str, *, start: int, stop: int, path: Path) -> np.ndarray:
    """Rows ``start:stop`` of the file's dataset ``name``; a chunk that fails its checksum is a ``StoreError``."""
    dataset = handle[name]
    strings = name in STRING_FIELDS
    try:
        data = dataset.asstr()[start:stop] if strings else dataset[start:stop]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"{path}: cannot read '{name}' rows {start}:{stop} ({exc}); the store is damaged "
            "(wb store verify lists every damaged row); rebuild it with --overwrite"
        ) from exc
    return np.asarray(data, dtype=object) if strings else np.asarray(data)
