"""The readers' lock of a shared cache folder (the bank's, the held-out streams'): reading it or removing from it.

The bank's store and the held-out streams are read without their build locks by every phrase's recipe
(``wb fit``, ``wb calibrate``, the report), which is why they only grow. ``wb bank reclaim`` is the one
thing that removes from them: readers hold ``read.lock`` in the folder shared for as long as they read
(``reading``), and reclaim takes it alone without waiting (``excluding_readers``), so it never removes what
a reader holds, and a reader waits while it runs. ``fcntl.flock`` locks (Linux, macOS) belong to an open
file, so two readers in one process, or a reader and reclaim, each open their own.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from wakebuilder.errors import ConfigError, LockedError

try:
    import fcntl
except ImportError:  # Windows: no flock; readers read without the lock, and reclaim refuses to run
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)
READ_LOCK = "read.lock"


@contextlib.contextmanager
def reading(folder: str | os.PathLike[str]) -> Iterator[None]:
    """Hold ``folder``'s read lock shared while the block reads it, waiting while ``wb bank reclaim`` holds it.

    A folder this user may not write (a cache shared read-only) is read without the lock: no reclaim can run
    there either.
    """
    fd = _open(Path(folder), readonly_ok=True) if fcntl is not None else None
    if fd is None:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("%s: wb bank reclaim is removing from it; waiting for it", folder)
            fcntl.flock(fd, fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # releases the lock


@contextlib.contextmanager
def excluding_readers(folder: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold ``folder``'s read lock alone while the block removes from ``what`` (its name in the error); a reader
    holding it fails this at once.

    Raises:
        LockedError: a recipe (or ``wb fit``, ``wb calibrate``) is reading the folder.
        ConfigError: no ``fcntl`` (Windows), so readers cannot be excluded.
    """
    if fcntl is None:
        raise ConfigError(f"{folder}: wb bank reclaim needs POSIX file locks (Linux, macOS) to exclude readers; "
                          "delete the cache folder by hand when no recipe runs instead")
    fd = _open(Path(folder), readonly_ok=False)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockedError(f"{folder}: a recipe (or wb fit, wb calibrate) is reading {what}; run wb bank reclaim "
                              "again when none runs") from None
        yield
    finally:
        os.close(fd)


def _open(folder: Path, *, readonly_ok: bool) -> int | None:
    """A new open file of ``folder``'s read lock (made with the folder when missing); None when ``readonly_ok`` and
    this user may not make it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        return os.open(folder / READ_LOCK, os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError as error:
        if readonly_ok and error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            log.info("%s: cannot make its read lock (%s); reading it without", folder, error.strerror)
            return None
        raise
