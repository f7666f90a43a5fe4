"""The backbone's cached passes over held-out streams that are gone (``stream_cache``), which ``wb bank reclaim``
removes.

A pass is named by a hash of its stream's bytes, the backbone and the hop, so its name does not tell whose it is;
it records the streams it was made or read for (``stream_cache.recorded_passes``). It is dead when each of them
was a held-out stream (under ``heldout/``) that is gone (its folder removed by this reclaim, an earlier one or by
hand) and no held-out stream kept has its bytes. Kept: a pass that served any other stream (``wb calibrate
--cache-streams`` on a file of the user's, which may be scored again), and one made before passes recorded their
streams, unless read since (nothing tells whose it is).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from filelock import FileLock, Timeout

from wakebuilder.atomic import remove_path
from wakebuilder.bank.heldout import TRASH_DIR, heldout_dir
from wakebuilder.bank.location import cache_dir
from wakebuilder.fingerprint import cached_file_sha256
from wakebuilder.stream_cache import (FOLDER, RECORD_SUFFIX, CachedPass, pass_files, pass_lock, read_record,
                                      recorded_passes)

log = logging.getLogger(__name__)


def dead_passes(cache: str | os.PathLike[str] | None, removed: Sequence[Path]) -> list[CachedPass]:
    """The passes of held-out streams gone once the held-out folders ``removed`` are (see the module docstring).

    Only for a caller holding ``heldout/read.lock`` alone (``bank.reading.excluding_readers``): no recipe is reading
    a held-out stream or making one.
    """
    root = Path(os.path.realpath(heldout_dir(cache)))
    folders = [Path(os.path.realpath(folder)) for folder in removed]

    def gone(stream: str | os.PathLike[str]) -> bool:
        path = Path(stream)
        return path.is_relative_to(root) and (not path.exists() or any(path.is_relative_to(f) for f in folders))

    kept = {cached_file_sha256(stream) for stream in root.glob("stream-*/stream.wav") if not gone(stream)}
    return [cached for cached in recorded_passes(cache)
            if cached.streams and all(map(gone, cached.streams)) and cached.sha256 not in kept]


def passes_trash(cache: str | os.PathLike[str] | None) -> Path:
    """Where reclaim moves a pass's files before deleting them (what a killed reclaim left there goes next time)."""
    return cache_dir(cache) / FOLDER / TRASH_DIR


def remove_passes(passes: Sequence[CachedPass], *, cache: str | os.PathLike[str] | None
                  ) -> tuple[list[CachedPass], int]:
    """Delete ``passes``' files, each pass under its lock (``stream_cache.pass_lock``) taken without waiting and its
    record read again: one being read or made, or recorded for another stream since, is kept. The files are moved
    into ``passes_trash`` first, so a kill leaves no pass half there. Returns the passes removed and their bytes."""
    folder, aside = cache_dir(cache) / FOLDER, passes_trash(cache)
    remove_path(aside)  # a killed reclaim's
    removed, freed = [], 0
    for cached in passes:
        lock = FileLock(str(pass_lock(folder / cached.key)))
        try:
            lock.acquire(timeout=0)
        except Timeout:
            log.info("stream pass %s: in use (its lock is held); kept", folder / cached.key)
            continue
        try:
            if read_record(folder / f"{cached.key}{RECORD_SUFFIX}") == (cached.sha256, cached.streams):
                aside.mkdir(exist_ok=True)
                for path in pass_files(folder, cached.key):  # as they are now, under its lock
                    freed += path.stat().st_size
                    os.replace(path, aside / path.name)
                removed.append(cached)
                log.info("stream pass %s removed (of held-out streams removed)", folder / cached.key)
        finally:
            lock.release()
    remove_path(aside)
    return removed, freed
