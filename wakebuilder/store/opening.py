"""``open_store``: read, create, resume or rebuild a store, holding the writer lock to write."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from wakebuilder import __version__
from wakebuilder.atomic import writer_lock
from wakebuilder.errors import StoreError, StoreMismatchError
from wakebuilder.fingerprint import fingerprint
from wakebuilder.store.base import SCHEMA_VERSION, StoreSpec
from wakebuilder.store.embedding_store import EmbeddingStore
from wakebuilder.store.h5_backend import HDF5Backend
from wakebuilder.store.layout import CHUNK_ROWS, Backend, field_layout, is_hdf5
from wakebuilder.store.remote import (
    FsspecZarrBackend, arrays_without_group, cut_off_merge_error, filesystem, is_url, join, list_names, local_path,
    merge_cut_off, url_exists,
)
from wakebuilder.store.zarr_backend import ZarrBackend


def spec_fingerprint(spec: StoreSpec) -> str:
    """The store's identity: schema version, backbone identity, shapes and dtype."""
    config = {"backbone": spec.backbone, "seq_len": spec.seq_len, "dim": spec.dim, "dtype": spec.dtype}
    return fingerprint("embed", SCHEMA_VERSION, config)


def new_store_attrs(spec: StoreSpec) -> dict[str, Any]:
    """The attributes a new store (or a parted store's index) records for ``spec``."""
    attrs = {
        "schema_version": SCHEMA_VERSION, "backbone": spec.backbone, "seq_len": spec.seq_len, "dim": spec.dim,
        "dtype": spec.dtype, "wakebuilder_version": __version__, "fingerprint": spec_fingerprint(spec),
    }
    return attrs if spec.compute_dtype is None else {**attrs, "compute_dtype": spec.compute_dtype}


def precision_mismatch(where: Path | str, attrs: dict[str, Any], spec: StoreSpec) -> StoreMismatchError | None:
    """The error for adding rows computed at ``spec``'s precision to a store recorded at another, else None.

    A store without ``compute_dtype`` (made before it was recorded) or a spec without one is of unknown
    precision: nothing to compare, so rows are taken as before, and such a store stays unrecorded (its rows may
    already be of both precisions; rebuild it with ``--overwrite`` to have it recorded).
    """
    stored = attrs.get("compute_dtype")
    if stored is None or spec.compute_dtype is None or stored == spec.compute_dtype:
        return None
    return StoreMismatchError(
        f"{where}: embedded in {stored} and this run computes in {spec.compute_dtype}; pass --dtype {stored} "
        "to add to it, or use another --store (or --overwrite to rebuild it)"
    )


def store_location(path: str | os.PathLike[str]) -> Path | str:
    """A local ``Path`` (``file://`` stripped), or the URL string of a store on another file system."""
    return os.fspath(path) if is_url(path) else Path(local_path(path))


def store_identity(where: Path | str) -> tuple[str, str]:
    """The file system and normalised path of a store (``store_location``'s): a local path resolved (symlinks,
    ``..``), a URL's path as fsspec reads it (a ``local://`` URL counts as the local path it names)."""
    if isinstance(where, str):
        fs, inner = filesystem(where)
        protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
        if "file" in protocols:
            return "file", os.path.realpath(inner)
        return protocols[0], "/" + inner.strip("/")
    return "file", os.path.realpath(where)


def same_store(a: Path | str, b: Path | str) -> bool:
    """Whether two store locations name one store: however spelled, through a symlink, a hard link or a bind
    mount."""
    (a_fs, a_path), (b_fs, b_path) = store_identity(a), store_identity(b)
    if a_fs != b_fs:
        return False
    if a_path == b_path:
        return True
    return a_fs == "file" and os.path.exists(a_path) and os.path.exists(b_path) and os.path.samefile(a_path, b_path)


def backend_class(path: Path | str) -> type[Backend]:
    """HDF5 for ``.h5``/``.hdf5`` paths, Zarr otherwise (through fsspec at a URL)."""
    if is_url(path):
        if is_hdf5(path):
            raise StoreError(f"{path}: HDF5 stores must be local files; use a Zarr store at a URL")
        return FsspecZarrBackend
    return HDF5Backend if is_hdf5(path) else ZarrBackend


def store_exists(path: Path | str) -> bool:
    """Whether ``path`` holds a store (possibly corrupt); raises if it holds something else."""
    if isinstance(path, str):
        return _url_store_exists(path)
    if is_hdf5(path):
        if path.is_dir():
            raise StoreError(f"{path}: is a directory, not an HDF5 store; choose another --store path")
        return path.exists()
    if path.is_file():
        raise StoreError(f"{path}: is a file, not a Zarr store directory; choose another --store path")
    if (path / "zarr.json").exists():
        return True
    if path.is_dir() and any(path.iterdir()):
        raise StoreError(f"{path}: is a non-empty directory without a store; choose another --store path")
    return False


def _url_store_exists(url: str) -> bool:
    """``store_exists`` at a URL, by the same rule (an unfinished creation counts as no store: it is redone)."""
    fs, inner = filesystem(url)
    if fs.isfile(inner):
        raise StoreError(f"{url}: is a file, not a Zarr store; choose another --store path")
    if url_exists(join(url, "zarr.json")):
        return not FsspecZarrBackend.unfinished(url)
    from wakebuilder.store.parts import parts_without_index  # parts builds on this module

    if arrays_without_group(url) or parts_without_index(url):  # left by a killed removal: redone like a creation
        return False
    if list_names(url):
        raise StoreError(f"{url}: holds objects but no store; choose another --store path")
    return False


def open_store(
    path: str | os.PathLike[str],
    mode: str = "r",
    *,
    spec: StoreSpec | None = None,
    overwrite: bool = False,
    chunk_rows: int = CHUNK_ROWS,
) -> EmbeddingStore:
    """Open a store to read (mode ``r``) or to append (mode ``a``: creates it, holds the writer lock).

    Args:
        path: a Zarr directory, or an HDF5 file when it ends in ``.h5``/``.hdf5``.
        mode: ``r`` sees committed rows, takes no lock; ``a`` opens or creates for ``append``.
        spec: what the rows are (needed to create; compared with an existing store).
        overwrite: wipe an existing store (mode ``a``) instead of refusing a different spec.
        chunk_rows: most rows per chunk of a new store (large rows get fewer; see ``store.layout``).

    Raises:
        StoreError: missing or corrupt store, a path that holds something else, or a URL a merge into which
            was cut off.
        StoreMismatchError: the store was built for another spec, or computed at another precision
            (``compute_dtype``), and ``overwrite`` is off.
        LockedError: another process is writing the store.
    """
    from wakebuilder.store.parts import is_parted, open_parted  # parts builds on this module

    where = store_location(path)
    if isinstance(where, str) and merge_cut_off(where):
        raise cut_off_merge_error(where)
    if is_parted(where) and (parted := open_parted(where, mode, overwrite=overwrite)) is not None:
        return parted  # type: ignore[return-value]
    # Backends work on the real path: through a symlink, HDF5 would rename its merged file over the link
    # and keep its journal beside the link, splitting one store in two. (URLs are used as given.)
    real: Path | str = where if isinstance(where, str) else Path(os.path.realpath(where))
    if mode == "r":
        if not store_exists(real):
            raise StoreError(f"{where}: no embedding store here; build one with wb embed --store {where}")
        return EmbeddingStore(where, backend_class(real).open(real, writable=False), lock=None)
    if mode != "a":
        raise StoreError(f"open_store mode must be 'r' or 'a', not {mode!r}")
    if chunk_rows < 1:
        raise StoreError(f"{where}: chunk_rows must be at least 1, not {chunk_rows}")
    lock = contextlib.nullcontext() if isinstance(where, str) else writer_lock(where)  # URLs: see remote
    lock.__enter__()
    try:
        backend = _open_or_create(real, spec, overwrite=overwrite, chunk_rows=chunk_rows)
        return EmbeddingStore(where, backend, lock=lock)
    except BaseException:
        lock.__exit__(None, None, None)
        raise


def _open_or_create(where: Path | str, spec: StoreSpec | None, *, overwrite: bool, chunk_rows: int) -> Backend:
    cls = backend_class(where)
    if store_exists(where) and not overwrite:
        backend = cls.open(where, writable=True)
        if spec is not None and backend.attrs().get("fingerprint") != spec_fingerprint(spec):
            backend.close()
            raise StoreMismatchError(f"{where}: {describe_mismatch(backend.attrs(), spec)}")
        if spec is not None and (error := precision_mismatch(where, backend.attrs(), spec)):
            backend.close()
            raise error
        return backend
    if spec is None:
        raise StoreError(f"{where}: no store to append to, and no spec to create one; run wb embed first")
    cls.remove(where)
    return cls.create(where, field_layout(spec), new_store_attrs(spec), max_chunk_rows=chunk_rows)


def _flatten(value: Any, prefix: str) -> dict[str, Any]:
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in _flatten(item, f"{prefix}.{key}").items()}
    return {prefix: value}


def describe_mismatch(attrs: dict[str, Any], spec: StoreSpec) -> str:
    """Which settings differ between a store and a new spec, with both values."""
    stored = {"backbone": attrs.get("backbone"), "seq_len": attrs.get("seq_len"), "dim": attrs.get("dim"),
              "dtype": attrs.get("dtype"), "schema_version": attrs.get("schema_version")}
    wanted = {"backbone": spec.backbone, "seq_len": spec.seq_len, "dim": spec.dim, "dtype": spec.dtype,
              "schema_version": SCHEMA_VERSION}
    old, new = _flatten(stored, ""), _flatten(wanted, "")
    keys = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
    diffs = "; ".join(f"{k.lstrip('.')}: store {old.get(k)!r}, this run {new.get(k)!r}" for k in keys)
    return (
        f"built for another embedding ({diffs or 'fingerprint differs'}). "
        "Use another --store, or --overwrite to rebuild it"
    )
