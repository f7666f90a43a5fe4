"""``wb store merge``: a store made of parts into the single-part layout (a new store, or in place).

Merging copies every committed row, part by part in index order, into an ordinary
store (Zarr, HDF5 for a ``.h5`` path, or Zarr at a URL) with the same spec. A
source with a clip held by two parts is refused before OUT is touched. A local OUT
is built as ``<OUT>.incomplete`` and renamed into place when every row is copied,
so a merge that fails leaves no OUT (and an OUT it was to replace intact); one that
is killed leaves ``<OUT>.incomplete``, removed by the next merge. At a URL nothing
renames: OUT is built in place, marked as a merge in progress until every row is
copied, and removed if the merge fails; a killed merge leaves OUT marked, and a
marked store refuses to open (merge again with ``--overwrite``).
In place (local stores only), the merged store is built beside the parted one as
``<store>.merging`` and swapped in with two renames: ``<store>`` to
``<store>.parts-old``, then ``<store>.merging`` to ``<store>``. A kill between
them leaves no ``<store>`` for a moment; running the merge again, or ``finish_swap`` (the negative bank's next
run, for a bank an earlier release compacted), finishes the swap. A merge may leave clips out (``drop``), made of
parts or not. In place it replaces the store under its readers: the negative bank, read by every phrase's recipe
without its build lock, is refused (``refuse_bank``), and so is OUT the bank's store; its replaced clips are retired
instead (``bank.retired``), and removed by ``wb bank reclaim`` holding its readers off (``bank.reclaim``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Collection, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import INCOMPLETE_SUFFIX, remove_path, writer_lock
from wakebuilder.bank.location import is_bank_store
from wakebuilder.errors import ConfigError, StoreError
from wakebuilder.store.base import StoreSpec
from wakebuilder.store.embedding_store import EmbeddingStore
from wakebuilder.store.layout import Backend, field_layout, is_hdf5
from wakebuilder.store.opening import (
    backend_class, new_store_attrs, open_store, same_store, store_exists, store_identity, store_location,
)
from wakebuilder.store.parts import PartedStore, is_parted, remove_store
from wakebuilder.store.remote import cut_off_merge_error, mark_merging, merge_cut_off

MERGE_ROWS = 4096


def merge_store(
    source: str | os.PathLike[str], out: str | os.PathLike[str], *, overwrite: bool = False,
    batch_rows: int = MERGE_ROWS, drop: Collection[str] = (),
) -> dict[str, Any]:
    """Copy every committed row of ``source`` (made of parts or not) into a single-part store ``out``, but those of
    the clips ``drop`` (ids).

    Raises:
        ConfigError: ``out`` is ``source`` (however spelled), or one lies inside the other.
        StoreError: ``out`` is the negative bank's store (``refuse_bank``), already holds clips (pass ``overwrite``),
            or a clip is in two parts.
    """
    src, dst = store_location(source), store_location(out)
    refuse_same_store(src, dst)  # before OUT is opened: opening it with overwrite deletes what is there
    if isinstance(dst, Path):
        refuse_bank(dst, out=True)
    with open_store(src) as reader:
        parts = reader.parts if isinstance(reader, PartedStore) else [reader]
        if isinstance(reader, PartedStore):
            reader.ids()  # a clip in two parts: an error naming the source's parts, before OUT exists
        with _new_store(dst, reader.spec, overwrite=overwrite) as writer:
            for part in parts:
                records, start = part.records(), 0
                for batch in part.iter_batches(batch_rows, pooled=True, sequence=True):
                    rows = records[start : start + len(batch)]
                    keep = np.array([row.id not in drop for row in rows], dtype=bool)
                    writer.append([row for row, kept in zip(rows, keep) if kept], batch.pooled[keep],
                                  batch.sequence[keep])
                    start += len(batch)
            clips, backend = len(writer), writer.backend
    return {"source": str(src), "store": str(dst), "clips": clips, "parts_merged": len(parts), "backend": backend}


@contextlib.contextmanager
def _new_store(dst: Path | str, spec: StoreSpec, *, overwrite: bool) -> Iterator[EmbeddingStore]:
    """An empty store for ``dst``, renamed into place when the block succeeds (see the module docstring).

    Raises:
        StoreError: ``dst`` holds clips and ``overwrite`` is off, or holds something other than a store.
        LockedError: another process writes ``dst``.
    """
    with writer_lock(dst) if isinstance(dst, Path) else contextlib.nullcontext():
        if isinstance(dst, str) and merge_cut_off(dst):
            if not overwrite:
                raise cut_off_merge_error(dst)
        elif (is_parted(dst) or store_exists(dst)) and not overwrite:  # --overwrite: replaced unread (may not open)
            with open_store(dst) as existing:
                held = len(existing)
            if held:
                raise StoreError(f"{dst}: already holds {held} clips; merge into a new path or --overwrite")
        if isinstance(dst, Path):  # built beside the real path: renaming over a symlink would replace the link
            dst = Path(os.path.realpath(dst))
        work = dst if isinstance(dst, str) else dst.with_name(dst.name + INCOMPLETE_SUFFIX)
        cls = backend_class(dst)  # by OUT's name: the work path ends in .incomplete, not .h5
        _discard(work, cls)  # a killed merge's work (at a URL: the store being replaced)
        backend = cls.create(work, field_layout(spec), new_store_attrs(spec))  # type: ignore[arg-type]
        writer = EmbeddingStore(work, backend, lock=contextlib.nullcontext())  # type: ignore[arg-type]
        try:
            try:
                if isinstance(work, str):
                    mark_merging(work, True)
                yield writer
            finally:
                writer.close()  # HDF5 merges its journal into the file
        except BaseException:
            _discard(work, cls)
            raise
        if isinstance(work, str):
            mark_merging(work, False)
        if isinstance(dst, Path) and isinstance(work, Path):
            _discard(dst, cls)
            os.replace(work, dst)


def _discard(where: Path | str, cls: type[Backend]) -> None:
    """Delete the store at ``where`` if there is one: made of parts, or a single store of backend ``cls``."""
    if is_parted(where):
        remove_store(where)
    else:
        cls.remove(where)  # type: ignore[arg-type]


def refuse_same_store(src: Path | str, dst: Path | str) -> None:
    """Refuse an OUT that is the source (another spelling, a ``file://`` URL, a symlink) or lies in or around it.

    Raises:
        ConfigError: naming OUT, with the fix.
    """
    (src_fs, src_path), (dst_fs, dst_path) = store_identity(src), store_identity(dst)
    if same_store(src, dst):
        raise ConfigError(f"{dst}: is the store {src} itself (merging would delete it); give a new OUT path, "
                          "or omit OUT to merge in place")
    if src_fs == dst_fs and (src_path.startswith(dst_path.rstrip("/") + "/")
                             or dst_path.startswith(src_path.rstrip("/") + "/")):
        where = "lies inside the source store" if len(dst_path) > len(src_path) else "holds the source store"
        raise ConfigError(f"{dst}: {where} {src} (merging would overwrite it); give an OUT path outside "
                          "the source store")


def compact_store(path: str | os.PathLike[str], *, drop: Collection[str] = (), readers_excluded: bool = False
                  ) -> dict[str, Any]:
    """Merge a local store made of parts in place (see the module docstring for the swap); with ``drop`` (clip ids)
    a local Zarr store too, leaving those clips out. ``readers_excluded``: the caller holds the negative bank's
    build lock and its read lock alone (``bank.reclaim``), so the bank's store may be compacted.

    Raises:
        StoreError: a URL or (without ``readers_excluded``) the negative bank's store (merge it into a new path
            instead), an HDF5 store with ``drop``, or no store at ``path`` (of parts, without ``drop``).
        LockedError: another process writes the store.
    """
    where = store_location(path)
    if isinstance(where, str):
        raise StoreError(f"{where}: in-place merge needs a local store; give an OUT path to merge into")
    if not readers_excluded:
        refuse_bank(where)
    if drop and is_hdf5(where):  # its journal beside it would not follow the renames
        raise StoreError(f"{where}: clips are left out in place of a Zarr store only; merge it into a new path")
    # Swapped at the real path: through a symlink, the renames would move the link and rmtree would refuse it.
    shown, where = str(where), Path(os.path.realpath(where))
    merging, old = _swap_paths(where)
    with writer_lock(where):
        if _finish_swap(where):  # a swap that was killed
            with open_store(where) as done:
                return {"source": shown, "store": shown, "clips": len(done), "parts_merged": 0,
                        "backend": done.backend, "finished_swap": True}
        if not (where / "parts.json").is_file() and not (drop and store_exists(where)):
            raise StoreError(f"{shown}: not a store made of parts; nothing to merge")
        summary = merge_store(where, merging, drop=drop)
        os.replace(where, old)
        os.replace(merging, where)
        shutil.rmtree(old)
        _remove(merging)  # its lock file
    return {**summary, "source": shown, "store": shown}


def refuse_bank(where: Path, *, out: bool = False) -> None:
    """Refuse to merge the negative bank's store in place, or (``out``) another store into its path, also through a
    symlink: every phrase's recipe reads it, and the merge would replace it under them (``wb bank reclaim``, which
    holds them off, compacts it: ``compact_store(readers_excluded=True)``).

    Raises:
        StoreError: naming the store, with the fix.
    """
    if is_bank_store(where) or is_bank_store(os.path.realpath(where)):
        merging, fix = ("merging into it", "merge into a new path instead") if out else (
            "merging it in place", "merge it into a new path instead, or wb bank reclaim to remove its retired clips")
        raise StoreError(f"{where}: is a negative bank's store, which recipes read; {merging} would replace it under "
                         f"them (it only grows): {fix}")


def finish_swap(path: str | os.PathLike[str]) -> bool:
    """Finish an in-place merge's swap that a kill cut off (``compact_store``), and remove the copies it left beside
    the store; whether the merged store was swapped in now. Nothing to do (a URL, no copies) takes no lock.

    Raises:
        LockedError: another process writes the store.
    """
    where = store_location(path)
    if isinstance(where, str):
        return False
    where = Path(os.path.realpath(where))
    if not any(leftover.exists() for leftover in _swap_paths(where)):
        return False
    with writer_lock(where):
        return _finish_swap(where)


def _swap_paths(where: Path) -> tuple[Path, Path]:
    """The merged store built beside ``where`` and the old one moved aside by the swap."""
    return where.with_name(where.name + ".merging"), where.with_name(where.name + ".parts-old")


def _finish_swap(where: Path) -> bool:
    """Under ``where``'s lock: with no store at ``where`` but the old one moved aside, the merged one (complete once
    it has its name: ``_new_store`` renames it into place) is swapped in, or without it the old one is put back;
    then both copies go. Whether the merged store was swapped in."""
    merging, old = _swap_paths(where)
    swapped = not where.exists() and old.exists() and merging.exists()
    if not where.exists() and old.exists():
        os.replace(merging if swapped else old, where)
    remove_path(old)  # the swap finished but this was not removed
    _remove(merging)  # a merge done but not swapped in: the store it was made of may have grown since
    return swapped


def _remove(path: Path) -> None:
    """Delete ``path`` and its lock file, whatever is there."""
    for leftover in (path, path.with_name(path.name + ".lock")):
        remove_path(leftover)
