"""``wb bank reclaim``: remove what the bank's cache keeps for nothing.

The bank's store only grows while recipes read it (its replaced clips are retired: ``bank.retired``) and held-out
streams of other voices go into new folders (``bank.heldout``), so the cache grows with every change of voices.
Holding the read locks of the bank and of the held-out folder alone (``bank.reading``: no recipe, ``wb fit`` or
``wb calibrate`` is reading them; it refuses at once otherwise) and the bank's build lock, ``reclaim_bank``
removes the retired clips' rows (the store merged beside itself without them and swapped in:
``store.merge.compact_store``), the lists of retired clips that name no row left, the held-out folders no
recipe uses now (``heldout.stale_folders``), the bank's audio no recipe needs (``audio_folders.stale_audio``: that
of a build killed before it embedded it, or of clips no longer served; the audio of other settings whose clips the
bank serves is kept, as a recipe may build with them again) and the backbone's cached passes over held-out streams
gone (``stream_passes.dead_passes``; those of any other stream are kept). Killed at any point, the bank stays
usable: a swap cut off is finished by its next reader or build (``finish_swap``), a folder or a pass is moved aside
before it is deleted, and what is left is removed by the next reclaim. A model fitted before reads other rows of
the bank: its calibration is refused (``retired.check_rows``: fit it again).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_json, read_json, remove_path
from wakebuilder.bank.audio_folders import AUDIO_DIR, audio_key, stale_audio
from wakebuilder.bank.build import bank_lock
from wakebuilder.bank.heldout import TRASH_DIR, heldout_dir, stale_folders
from wakebuilder.bank.location import BANK_MARKER, bank_store_path, no_bank_error
from wakebuilder.bank.reading import excluding_readers, reading
from wakebuilder.bank.retired import retired_ids, retired_lists
from wakebuilder.bank.stream_passes import dead_passes, passes_trash, remove_passes
from wakebuilder.store import open_store
from wakebuilder.store.info import disk_bytes
from wakebuilder.store.merge import compact_store, finish_swap
from wakebuilder.stream_cache import CachedPass

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class Reclaimed:
    """What ``reclaim_bank`` removed (``dry_run``: would remove) and the bytes freed (``dry_run``: about, the
    store's share taken as its rows' share of its size)."""

    store: Path
    rows_removed: int
    lists_removed: tuple[Path, ...]
    folders_removed: tuple[Path, ...]
    audio_removed: tuple[Path, ...]
    passes_removed: tuple[Path, ...]
    bytes_freed: int
    dry_run: bool

    def to_dict(self) -> dict[str, Any]:
        return {"store": str(self.store), "rows_removed": self.rows_removed,
                "lists_removed": [str(p) for p in self.lists_removed],
                "folders_removed": [str(p) for p in self.folders_removed],
                "audio_removed": [str(p) for p in self.audio_removed],
                "stream_passes_removed": [str(p) for p in self.passes_removed],
                "bytes_freed": self.bytes_freed, "dry_run": self.dry_run}


@dataclasses.dataclass(frozen=True)
class _Plan:
    drop: frozenset[str]
    rows: int
    store_bytes: int
    lists: tuple[Path, ...]
    folders: tuple[Path, ...]
    audio: tuple[Path, ...]
    passes: tuple[CachedPass, ...]
    trash: Path | None  # the stream passes a killed reclaim left


def reclaim_bank(backbone: str, window_s: float | None, *, cache: str | os.PathLike[str] | None = None,
                 dry_run: bool = False) -> Reclaimed:
    """Remove the bank's retired rows, the lists of retired clips that name no row left, the held-out folders no
    recipe uses now, the bank's audio no recipe needs and the cached passes over held-out streams gone (see the
    module docstring); ``dry_run``: say what, removing nothing.

    Raises:
        StoreError: no bank for this backbone and window in the cache.
        LockedError: a recipe (or ``wb fit``, ``wb calibrate``) is reading the bank or its held-out streams.
    """
    store = bank_store_path(backbone, window_s, cache=cache)
    if not (store.parent / BANK_MARKER).is_file():
        raise no_bank_error(store)
    heldout = heldout_dir(cache)
    if dry_run:
        with reading(store.parent), reading(heldout):
            plan = _plan(store, cache)
        about = plan.store_bytes * len(plan.drop) // max(plan.rows, 1)
        about += sum(path.stat().st_size for cached in plan.passes for path in cached.files)
        return _reclaimed(store, plan, plan.passes, about + _files_bytes(plan), dry_run=True)
    with (excluding_readers(store.parent, "the bank"), excluding_readers(heldout, "the bank's held-out streams"),
          bank_lock(backbone, window_s, cache=cache)):
        finish_swap(store)  # a reclaim killed in its swap
        plan = _plan(store, cache)
        freed = _files_bytes(plan)
        if plan.drop:
            compact_store(store, drop=plan.drop, readers_excluded=True)
            freed += plan.store_bytes - disk_bytes(store)
            log.info("negative bank %s: %d retired row(s) removed", store, len(plan.drop))
        for path in plan.lists:
            path.unlink(missing_ok=True)
        _remove_folders(plan.folders, trash=heldout / TRASH_DIR, why="no recipe uses it now")
        _forget_manifests(store.parent / BANK_MARKER, plan.audio)
        _remove_folders(plan.audio, trash=store.parent / AUDIO_DIR / TRASH_DIR, why="the bank serves none of its clips")
        removed, passes_bytes = remove_passes(plan.passes, cache=cache)
    return _reclaimed(store, plan, tuple(removed), freed + passes_bytes, dry_run=False)


def _reclaimed(store: Path, plan: _Plan, passes: tuple[CachedPass, ...], freed: int, *, dry_run: bool) -> Reclaimed:
    paths = tuple(cached.files[0] for cached in passes) + ((plan.trash,) if plan.trash else ())
    return Reclaimed(store, len(plan.drop), plan.lists, plan.folders, plan.audio, paths, freed, dry_run=dry_run)


def _plan(store: Path, cache: str | os.PathLike[str] | None) -> _Plan:
    """What reclaim removes: the store's retired rows, the lists naming none of the rows kept, the stale folders and
    audio, the passes over the held-out streams gone once those folders are."""
    with open_store(store) as opened:
        ids, rows = opened.ids(), len(opened)
    drop = frozenset(retired_ids(store) & ids)
    kept = ids - drop
    lists = tuple(path for path, listed in retired_lists(store).items() if listed.isdisjoint(kept))
    audio, folders = tuple(stale_audio(store.parent, served=kept)), tuple(stale_folders(cache))
    left = passes_trash(cache) if passes_trash(cache).exists() else None
    return _Plan(drop, rows, disk_bytes(store), lists, folders, audio, tuple(dead_passes(cache, folders)), left)


def _files_bytes(plan: _Plan) -> int:
    """The bytes of the lists and folders ``plan`` removes (but its passes)."""
    folders = (*plan.folders, *plan.audio, *((plan.trash,) if plan.trash else ()))
    return sum(path.stat().st_size for path in plan.lists) + sum(map(_tree_bytes, folders))


def _remove_folders(folders: tuple[Path, ...], *, trash: Path, why: str) -> None:
    """Delete ``folders``, each moved into ``trash`` first (one rename): a reclaim killed while deleting leaves no
    half-deleted folder where a recipe would take it for one made whole."""
    remove_path(trash)  # a killed reclaim's
    for folder in folders:
        if folder != trash:
            trash.mkdir(exist_ok=True)
            os.replace(folder, trash / folder.name)
            log.info("%s removed (%s)", folder, why)
    remove_path(trash)


def _forget_manifests(marker: Path, folders: tuple[Path, ...]) -> None:
    """Leave the manifests of the audio ``folders`` out of the bank's marker (its manifests embedded), which ``wb bank
    info`` lists. Before the folders go: a kill between leaves them for the next reclaim."""
    recorded, keys = read_json(marker), {f.name for f in folders}
    listed = recorded.get("manifests") if isinstance(recorded, dict) else None
    if isinstance(listed, list) and (kept := [m for m in listed if audio_key(m) not in keys]) != listed:
        atomic_write_json(marker, {**recorded, "manifests": kept})


def _tree_bytes(path: Path) -> int:
    """Bytes of the files under the folder ``path`` (links not followed)."""
    total = 0
    for root, _, files in os.walk(path):
        total += sum(os.lstat(os.path.join(root, name)).st_size for name in files)
    return total
