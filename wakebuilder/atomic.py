"""Atomic writes, build-then-rename directories and a writer lock.

Finished work is never lost: files are written to a temporary sibling and
renamed into place, so a reader sees either the old or the new version.
"""

from __future__ import annotations

import array
import contextlib
import errno
import json
import logging
import os
import shutil
import struct
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from wakebuilder.errors import ArtifactExistsError, ConfigError, LockedError, WakebuilderError

try:
    import fcntl
except ImportError:  # Windows: the identity lock is a filelock.FileLock, its file left in place
    fcntl = None  # type: ignore[assignment]

INCOMPLETE_SUFFIX = ".incomplete"
# Where ``remove_directory`` moves a directory before deleting it: a kill leaves it there, not half deleted in place.
REMOVED_SUFFIX = ".removed" + INCOMPLETE_SUFFIX
# Linux's ioctl reading an inode's generation: _IOR('v', 1, long).
_FS_IOC_GETVERSION = (2 << 30) | (struct.calcsize("l") << 16) | (ord("v") << 8) | 1
# The process umask, read once at import (reading it means setting it, which is not thread-safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file and an atomic rename."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise _naming(exc, target) from exc
    try:
        # mkstemp makes 0600 files; give the file the mode open() would (or the replaced file's)
        try:
            mode = target.stat().st_mode & 0o777
        except FileNotFoundError:
            mode = 0o666 & ~_UMASK
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise _naming(exc, target) from exc
        raise
    _fsync_dir(target.parent)
    return target


def _naming(exc: OSError, target: Path) -> OSError:
    """``exc`` naming ``target``: the temporary file it names (or none, a full disk's write) never exists for the
    user, who is told what was being written."""
    if exc.errno is None:
        return exc
    return OSError(exc.errno, exc.strerror, str(target))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 text atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike[str], obj: Any) -> Path:
    """Write JSON (indented, sorted keys) atomically."""
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def read_json(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file, raising a clear error when it is missing or corrupt."""
    try:
        with open(path, encoding="utf-8-sig") as handle:  # -sig: a byte order mark an editor put first
            return json.load(handle)
    except FileNotFoundError as exc:
        raise WakebuilderError(f"{path}: file not found") from exc
    except json.JSONDecodeError as exc:
        raise WakebuilderError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    except UnicodeDecodeError as exc:
        raise WakebuilderError(f"{path}: not valid JSON (not UTF-8 text, byte {exc.start})") from exc
    except RecursionError:  # brackets nested past the parser's stack
        raise WakebuilderError(f"{path}: not valid JSON (nested too deeply)") from None


def refuse_existing(path: str | os.PathLike[str], *, overwrite: bool, option: str = "--out") -> Path:
    """Raise unless ``path`` is free or ``overwrite`` allows replacing it (the error names the path)."""
    target = Path(path)
    if target.exists() and not overwrite:
        raise ArtifactExistsError(
            f"{target}: already exists; pass --overwrite to replace it, or choose another {option}"
        )
    return target


def refuse_unwritable_folder(folder: str | os.PathLike[str], fix: str) -> None:
    """Raise unless this process can make a file in the existing ``folder``, so that a command writing there only at
    the end of its work fails before that work.

    The probe makes a real file rather than asking ``os.access``: it sees a read-only mount, ACLs and root alike. It
    is a nameless temporary file (Linux ``O_TMPFILE``; elsewhere made and deleted at once), so nothing is left.

    Raises:
        ConfigError: the folder refuses new files (permissions, a read-only file system), naming it and ``fix``.
    """
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise
        raise ConfigError(f"{folder}: this process cannot write in it ({exc.strerror}); {fix}") from exc


def lock_paths(path: str | os.PathLike[str]) -> list[Path]:
    """The lock files guarding ``path``: one beside its resolved real path, one per file identity.

    Resolving symlinks makes every path to the same store one writer; the second
    lock (keyed on ``_file_identity``, in the temp dir) also catches hard links and
    bind mounts of an existing store.
    """
    real = Path(os.path.realpath(path))
    locks = [real.with_name(real.name + ".lock")]
    if (identity := _file_identity(real)) is not None:
        locks.append(Path(tempfile.gettempdir()) / "wakebuilder-locks" / f"{identity}.lock")
    return locks


def _file_identity(path: Path) -> str | None:
    """``<device>-<inode>-<generation>`` of the file or directory at ``path`` (None when nothing is there).

    An inode number names a file only while the file exists: ext4 gives a freed number to the next new file at
    once, anywhere on the file system. A writer that replaces what it locked (``--overwrite``, an HDF5 merge) holds
    its lock on to the end, so keyed on the number alone it refused the writer of an unrelated new file. The
    generation (Linux ``FS_IOC_GETVERSION``: ext4, XFS, Btrfs) changes when a number is given again; where the file
    system keeps none (tmpfs, overlayfs, NFS, macOS, Windows) the key is ``<device>-<inode>``.
    """
    try:
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError:  # nothing there, or unreadable (stat needs no read permission) or a directory on Windows
        with contextlib.suppress(OSError):
            stat = path.stat()
            return f"{stat.st_dev}-{stat.st_ino}"
        return None
    try:
        stat = os.fstat(descriptor)  # the inode the generation is read from, whatever the path names meanwhile
        generation = _inode_generation(descriptor)
    finally:
        os.close(descriptor)
    key = f"{stat.st_dev}-{stat.st_ino}"
    return key if generation is None else f"{key}-{generation}"


def _inode_generation(descriptor: int) -> int | None:
    try:
        import fcntl
    except ImportError:  # Windows
        return None
    buffer = array.array("l", [0])
    try:
        fcntl.ioctl(descriptor, _FS_IOC_GETVERSION, buffer)
    except OSError:  # ENOTTY: the file system keeps no generations
        return None
    return buffer[0]


@contextlib.contextmanager
def writer_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the locks of ``lock_paths(path)`` while writing ``path``; a second writer fails at once.

    The lock file of the file's identity, in the temp dir, is deleted on release (``_deleted_lock``): kept, one was
    left there for every artifact ever written.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as held:
        beside, *identity = lock_paths(target)
        for lock_file in (beside, *identity):
            lock_file.parent.mkdir(parents=True, exist_ok=True)
        held.enter_context(_kept_lock(beside, target))
        for lock_file in identity:
            held.enter_context(_kept_lock(lock_file, target) if fcntl is None else _deleted_lock(lock_file, target))
        yield


@contextlib.contextmanager
def _kept_lock(lock_file: Path, target: Path) -> Iterator[None]:
    """Hold the ``filelock.FileLock`` of ``lock_file`` for writing ``target``; its file stays on release."""
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout as exc:
        raise _locked_error(target, lock_file) from exc
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _deleted_lock(lock_file: Path, target: Path) -> Iterator[None]:
    """Hold ``lock_file`` (``fcntl.flock``) for writing ``target`` and delete it on release, still holding it.

    Deleting a lock file opens a race: a writer that opened it just before the holder deleted it would lock the
    deleted file while a third writer makes and locks a new one at the path, and both would write. So a lock
    counts only while ``lock_file`` still names the file locked; when it does not, the writer opens it again.
    """
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = True
            except BlockingIOError:
                locked = False
            current = _names_descriptor(lock_file, fd)
        except BaseException:
            os.close(fd)
            raise
        if current and locked:
            break
        os.close(fd)  # releases what it locked of a deleted file
        if current:  # held by a live writer
            raise _locked_error(target, lock_file)
    try:
        yield
    finally:
        try:
            lock_file.unlink(missing_ok=True)  # before the release: a writer waiting on this file opens it again
        finally:
            os.close(fd)  # releases the lock


def _names_descriptor(path: Path, fd: int) -> bool:
    """Whether ``path`` names the file open as ``fd`` (not deleted or replaced since it was opened)."""
    try:
        return os.path.samestat(os.stat(path), os.fstat(fd))
    except FileNotFoundError:
        return False


def _locked_error(target: Path, lock_file: Path) -> LockedError:
    return LockedError(f"{target}: another wakebuilder process is writing it (lock {lock_file}); wait for it to finish")


@contextlib.contextmanager
def waiting_lock(path: str | os.PathLike[str], what: str) -> Iterator[None]:
    """Hold the lock file ``path``, waiting (with a log line) while another process holds it.

    For shared work that a second process should wait for rather than fail on: two phrases' recipes
    building or reusing the one negative bank in the cache at the same time.
    """
    lock_file = Path(path)
    lock_file.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logging.getLogger(__name__).info("%s: another process holds %s; waiting for it", what, lock_file)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike[str], *, overwrite: bool = False, lock: bool = True) -> Iterator[Path]:
    """Build a directory as ``<path>.incomplete`` and rename it into place on success.

    The writer lock of ``path`` is held throughout (``lock`` False: the caller holds ``writer_lock(path)`` already,
    as from before work it does first), so a second writer fails at once instead of sharing the work folder. A
    failed or killed run leaves ``.incomplete`` behind for inspection; the next run empties it first, since no
    caller resumes from it and its stale files (another config's clips, a half-written file) would otherwise end up
    in the finished directory. The rename happens only when the ``with`` block finishes without an exception; a
    replaced directory is moved aside first and deleted after the rename.
    """
    target = Path(path)
    refuse_current_folder(target)
    refuse_existing(target, overwrite=overwrite)
    with writer_lock(target) if lock else contextlib.nullcontext():
        refuse_existing(target, overwrite=overwrite)  # again: another writer may have finished meanwhile
        work = target.with_name(target.name + INCOMPLETE_SUFFIX)
        if work.exists() or work.is_symlink():
            logging.getLogger(__name__).info("%s: removing the work folder a failed or killed run left", work)
            remove_path(work)
        work.mkdir(parents=True)
        yield work
        old = target.with_name(f"{target.name}.replaced-{os.getpid()}")
        if target.exists() or target.is_symlink():
            os.replace(target, old)
        os.replace(work, target)
        _fsync_dir(target.parent)
        remove_path(old)


def refuse_current_folder(path: Path) -> None:
    """Refuse the current folder or one holding it as a directory to build: replacing it would move the folder the
    process works in aside and delete it (``.`` and ``..`` cannot even be renamed).

    Raises:
        ConfigError: naming the path and a new folder inside it to choose instead.
    """
    try:
        here = Path(os.path.realpath(os.getcwd()))
    except FileNotFoundError:  # the current folder was deleted: there is none to protect
        return
    real = Path(os.path.realpath(path))
    if here == real or here.is_relative_to(real):
        raise ConfigError(f"{path}: the current folder, or one holding it, cannot be replaced by this output; "
                          f"choose a new folder, such as {os.path.join(path, 'out')}")


def remove_path(path: Path) -> None:
    """Delete whatever is at ``path``: a folder with its contents, a file, or a link itself (never what it
    points to); nothing there is fine."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def remove_directory(path: Path) -> None:
    """Delete the directory ``path`` (nothing there is fine) so that a kill leaves it whole or gone.

    Deleting in place goes in the order the file system lists the files, so a kill could leave a directory that
    lost the file marking what it is (a store's ``zarr.json`` or ``parts.json``) but not the rest, which every later
    run refuses. The directory is renamed to ``<path>.removed.incomplete`` first, then deleted there; what a kill
    leaves there is deleted by the next removal at ``path`` (or ``clear_removed``).
    """
    clear_removed(path)
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():  # as shutil.rmtree: never a link's target, nor a file
        raise NotADirectoryError(f"{path}: not a directory to remove")
    aside = path.with_name(path.name + REMOVED_SUFFIX)
    os.replace(path, aside)
    _fsync_dir(path.parent)
    shutil.rmtree(aside)


def clear_removed(path: Path) -> None:
    """Delete what a ``remove_directory(path)`` that was killed left beside ``path``."""
    aside = path.with_name(path.name + REMOVED_SUFFIX)
    if os.path.lexists(aside):
        remove_path(aside)
