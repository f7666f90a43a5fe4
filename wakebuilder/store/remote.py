"""Stores at fsspec URLs (``memory://``, ``s3://``, ``gs://``, ``abfs://``...): Zarr through FsspecStore.

Local paths, and ``file://`` URLs, keep the local backends with their atomic renames
and file locks. At a URL:

- **Commits** work as on a local disk: every chunk and every ``zarr.json`` is one
  object write (one PUT: all or nothing on object stores and in fsspec's memory
  file system), rows are written first and the group's ``committed`` attribute
  last, so rows past it (a killed writer's) are ignored and overwritten.
- **Creation** cannot be renamed into place: the group is written without its
  ``fields`` attribute, the arrays are created, and ``fields`` is set last. A group
  without ``fields`` is a creation that was killed; it holds no rows and is redone.
- **Removal** (``--overwrite``, or before a creation is redone) runs the other way:
  ``fields`` is dropped first, then the arrays are deleted, the group's ``zarr.json``
  last, so a kill at any object leaves a killed creation (or nothing). Arrays left
  without their group (by a removal killed before it ran in this order) hold no
  committed rows either, and are redone too. A store made of parts goes index
  first (``parts.remove_store``): parts left without an index are no store either.
- **Locks**: none. Object stores have no lock that survives a killed holder and is
  safe under concurrent writers (a lock object written "if absent" races without
  conditional writes). Safety rests on the layout instead: one coordinating
  ``wb embed`` per store writes the parts index, and each part is written by the
  one task the scheduler runs for it. Do not run two ``wb embed`` on one URL at once.
  One gap remains: a worker cut off from the scheduler but still running keeps
  writing its part while the scheduler runs the task again elsewhere; on a local or
  shared file system the part's lock stops the second attempt, at a URL nothing does.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

from wakebuilder.errors import StoreError
from wakebuilder.store.base import ARRAY_FIELDS
from wakebuilder.store.layout import CHUNK_ROWS, Layout
from wakebuilder.store.zarr_backend import CHECKSUMS, ZarrBackend, create_arrays

_OPEN_ERRORS = (OSError, ValueError, KeyError, TypeError)


def is_url(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is an fsspec URL other than ``file://`` (those are plain local paths)."""
    text = os.fspath(path)
    return "://" in text and not text.startswith("file://")


def local_path(path: str | os.PathLike[str]) -> str:
    """``path`` without a ``file://`` prefix."""
    text = os.fspath(path)
    return text[len("file://"):] if text.startswith("file://") else text


def join(url: str, *names: str) -> str:
    """``url/name/...``."""
    return "/".join([url.rstrip("/"), *names])


# At a URL, ``wb store merge`` builds OUT in place (nothing renames): this object marks OUT until every row is
# copied, so a merge that was killed leaves a store that refuses to open instead of one that lacks rows.
MERGE_MARKER = "wb-merge-incomplete"


def mark_merging(url: str, merging: bool) -> None:
    """Write (``merging``) or delete the marker of a merge into the store at ``url``."""
    fs, path = filesystem(url)
    marker = join(path, MERGE_MARKER)
    if merging:
        fs.pipe_file(marker, b"a wb store merge into this store has not finished\n")
    elif fs.exists(marker):
        fs.rm_file(marker)


def merge_cut_off(url: str) -> bool:
    """Whether a merge into the store at ``url`` started and never finished."""
    fs, path = filesystem(url)
    return bool(fs.exists(join(path, MERGE_MARKER)))


def cut_off_merge_error(url: str) -> StoreError:
    """The error for a store at ``url`` that ``merge_cut_off`` found: its rows are only some of the source's."""
    return StoreError(f"{url}: a wb store merge into it was cut off, so it holds only some of the rows; "
                      f"run the merge again with --overwrite")


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec file system of ``url`` and the path inside it."""
    try:
        from fsspec.core import url_to_fs
    except ImportError as exc:
        raise StoreError(f"{url}: store URLs need fsspec (pip install 'wakebuilder[dask]')") from exc
    try:
        return url_to_fs(url)
    except (ImportError, ValueError) as exc:
        raise StoreError(f"{url}: no fsspec file system for this URL ({exc}); install its package") from exc


def url_exists(url: str) -> bool:
    fs, path = filesystem(url)
    return bool(fs.exists(path))


def read_bytes(url: str) -> bytes:
    fs, path = filesystem(url)
    return bytes(fs.cat_file(path))


def write_bytes(url: str, data: bytes) -> None:
    """One object write: atomic on object stores and in the memory file system."""
    fs, path = filesystem(url)
    fs.pipe_file(path, data)


def remove_url(url: str) -> None:
    fs, path = filesystem(url)
    if fs.exists(path):
        fs.rm(path, recursive=True)


def remove_store_url(url: str) -> None:
    """Delete the Zarr store at ``url`` so that a kill at any object leaves a creation that was killed, or nothing:
    its ``fields`` attribute first, then every other object, the group's ``zarr.json`` last."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return
    group = join(path, "zarr.json")
    if fs.isfile(group):
        try:
            meta = json.loads(fs.cat_file(group))
        except ValueError:  # not JSON: no store to mark, the order below still holds
            meta = None
        if isinstance(meta, dict) and isinstance(meta.get("attributes"), dict) and "fields" in meta["attributes"]:
            del meta["attributes"]["fields"]
            fs.pipe_file(group, json.dumps(meta).encode())
        if others := [p for p in fs.find(path) if p.strip("/") != group.strip("/")]:
            fs.rm(others)
    fs.rm(path, recursive=True)


# An object of a store's array, its path inside the store: the array's zarr.json or one of its chunks.
ARRAY_OBJECT = rf"({'|'.join(ARRAY_FIELDS)})/(zarr\.json|c/[0-9/]+)"


def holds_only(url: str, pattern: str) -> bool:
    """Whether ``url`` holds objects and every one's path inside it matches ``pattern`` (a regular expression)."""
    fs, path = filesystem(url)
    root, objects = path.strip("/") + "/", re.compile(pattern)
    names = [p.strip("/") for p in fs.find(path)]
    return bool(names) and all(n.startswith(root) and objects.fullmatch(n[len(root):]) for n in names)


def arrays_without_group(url: str) -> bool:
    """Whether ``url`` holds only a store's arrays (their ``zarr.json`` and chunks) and no group: what a removal
    killed before it deleted the group last left. They hold no committed rows."""
    return holds_only(url, ARRAY_OBJECT)


def list_names(url: str) -> list[str]:
    """Names of the entries directly under ``url`` (empty when it does not exist)."""
    fs, path = filesystem(url)
    if not fs.exists(path):
        return []
    return sorted(entry.rstrip("/").rsplit("/", 1)[-1] for entry in fs.ls(path, detail=False))


def disk_bytes_url(url: str) -> int:
    fs, path = filesystem(url)
    return int(fs.du(path)) if fs.exists(path) else 0


class FsspecZarrBackend(ZarrBackend):
    """The Zarr backend on any fsspec file system that zarr's FsspecStore supports."""

    @classmethod
    def create(  # type: ignore[override]
        cls, path: str, layout: Layout, attrs: dict[str, Any], *, max_chunk_rows: int = CHUNK_ROWS
    ) -> FsspecZarrBackend:
        """Create an empty store at ``path``; ``fields`` is written last and marks it finished."""
        import zarr

        cls.remove(path)
        full = {**attrs, "committed": 0, "checksums": CHECKSUMS}
        group = zarr.open_group(path, mode="w", zarr_format=3, attributes=full)
        create_arrays(group, layout, max_chunk_rows)
        group.attrs["fields"] = list(layout)
        return cls.open(path, writable=True)

    def _chunk_exists(self, name: str, key: str) -> bool:
        return url_exists(join(str(self.path), name, key))

    @classmethod
    def open(cls, path: str, *, writable: bool) -> FsspecZarrBackend:  # type: ignore[override]
        import zarr

        try:
            group = zarr.open_group(path, mode="r+" if writable else "r", zarr_format=3)
        except _OPEN_ERRORS as exc:
            raise StoreError(f"{path}: not a readable Zarr store ({exc}); rebuild it with --overwrite") from exc
        return cls(path, group, writable=writable)  # type: ignore[arg-type]

    @staticmethod
    def unfinished(path: str) -> bool:
        """A store whose creation was killed before ``fields`` was written (it holds no rows). A group without
        ``wakebuilder_version`` is not one (another program's, kept unless ``--overwrite``)."""
        import zarr

        try:
            attrs = zarr.open_group(path, mode="r", zarr_format=3).attrs
        except _OPEN_ERRORS:
            return False  # unreadable: a damaged store, which only --overwrite replaces
        return "fields" not in attrs and "wakebuilder_version" in attrs

    @staticmethod
    def parts(path: str) -> list[str]:  # type: ignore[override]
        return [path]

    @staticmethod
    def remove(path: str) -> None:  # type: ignore[override]
        remove_store_url(path)
