from __future__ import annotations

import contextlib
import dataclasses
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from wakebuilder.atomic import (
    atomic_directory, atomic_write_json, read_json, refuse_unwritable_folder, writer_lock,
)
from wakebuilder.config import StageConfig
from wakebuilder.errors import ConfigError, LockedError, WakebuilderError
from wakebuilder.fingerprint import audio_id, canonical_json, fingerprint


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Example(StageConfig):
    rate: float = 1.0
    layers: int = 2
    name: str = "x"
    sizes: tuple[int, ...] = (256, 128)
    optional: float | None = None
    flag: bool = False


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_config_round_trip(tmp_path: Path, suffix: str) -> None:
    config = _Example(rate=0.5, sizes=(8, 4), optional=2.0, flag=True)
    assert _Example.load(config.save(tmp_path / f"c{suffix}")) == config


def test_config_rejects_unknown_and_wrong_types() -> None:
    with pytest.raises(ConfigError, match="unknown setting"):
        _Example.from_dict({"nope": 1})
    with pytest.raises(ConfigError, match="expected an integer"):
        _Example.from_dict({"layers": "2"})
    with pytest.raises(ConfigError, match="expected a number"):
        _Example.from_dict({"rate": True})


@dataclasses.dataclass(frozen=True, kw_only=True)
class _Required(StageConfig):
    input_dim: int
    seq_len: int
    rate: float = 1.0


def test_config_missing_required_setting_is_a_config_error() -> None:
    # A model.json whose head config lost a key must give a one-line error, not a TypeError traceback.
    with pytest.raises(ConfigError, match=r"_Required: missing setting\(s\) input_dim, seq_len"):
        _Required.from_dict({"rate": 2.0})
    assert _Required.from_dict({"input_dim": 3, "seq_len": 4}) == _Required(input_dim=3, seq_len=4)


def test_fingerprint_is_canonical_and_loud() -> None:
    a = fingerprint("embed", 1, {"b": 1, "a": [1, 2]})
    b = fingerprint("embed", 1, {"a": [1, 2], "b": 1})
    assert a == b and a != fingerprint("embed", 2, {"a": [1, 2], "b": 1})
    assert canonical_json({"b": 1, "a": 2}) == '{"a":2,"b":1}'
    with pytest.raises(ConfigError):
        fingerprint("embed", 1, {"x": object()})
    with pytest.raises(ConfigError):
        fingerprint("embed", 1, {"x": float("nan")})


def test_audio_id_depends_on_content_only() -> None:
    x = np.linspace(-1, 1, 100, dtype=np.float32)
    assert audio_id(x) == audio_id(x.copy()) != audio_id(x * 0.5)


@pytest.mark.parametrize("tmpfile", [True, False])
def test_the_writability_probe_leaves_nothing_and_names_the_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                   tmpfile: bool) -> None:
    """The probe leaves the folder as it was, with O_TMPFILE or (a file system without it) a named file deleted at
    once; a folder that refuses new files is one ConfigError naming it and the caller's fix."""
    import errno

    opened = os.open

    def without_tmpfile(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        if flags & getattr(os, "O_TMPFILE", 0) == getattr(os, "O_TMPFILE", -1):
            raise OSError(errno.EOPNOTSUPP, "Operation not supported", str(path))
        return opened(path, flags, *args)

    if not tmpfile:
        monkeypatch.setattr(os, "open", without_tmpfile)
    (tmp_path / "kept.txt").write_text("x")
    refuse_unwritable_folder(tmp_path, "fix it")
    assert [p.name for p in tmp_path.iterdir()] == ["kept.txt"]

    def refused(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        raise OSError(errno.EROFS, "Read-only file system", str(path))

    monkeypatch.setattr(os, "open", refused)
    with pytest.raises(ConfigError, match=f"^{tmp_path}: .*Read-only file system.*; fix it$"):
        refuse_unwritable_folder(tmp_path, "fix it")


def test_atomic_json_and_directory(tmp_path: Path) -> None:
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert read_json(tmp_path / "a.json") == {"x": 1}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(WakebuilderError, match="not valid JSON"):
        read_json(tmp_path / "bad.json")
    with pytest.raises(RuntimeError):
        with atomic_directory(tmp_path / "out") as work:
            (work / "part").write_text("1")
            raise RuntimeError("killed")
    assert not (tmp_path / "out").exists() and (tmp_path / "out.incomplete" / "part").exists()
    with atomic_directory(tmp_path / "out") as work:
        (work / "done").write_text("1")
    # the failed run's file does not end up in the next finished directory
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["done"]
    assert not (tmp_path / "out.incomplete").exists()
    with pytest.raises(WakebuilderError, match="--overwrite"):
        with atomic_directory(tmp_path / "out"):
            pass


def test_a_failed_atomic_write_names_the_file_it_was_writing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A folder that refuses the temporary file named that file (``.plot.png.k3x9.tmp``, which never exists), and a
    full disk named none (``wb: error: a file: No space left on device``); the error now names the file being
    written, and the temporary file is gone."""
    import errno
    import tempfile

    from wakebuilder.atomic import atomic_write_bytes

    target = tmp_path / "plot.png"

    def refused(*args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / ".plot.png.k3x9.tmp"))

    with monkeypatch.context() as patch:
        patch.setattr(tempfile, "mkstemp", refused)
        with pytest.raises(PermissionError) as refusal:
            atomic_write_bytes(target, b"png")
    assert refusal.value.filename == str(target) and refusal.value.errno == errno.EACCES

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError) as no_space:
        atomic_write_bytes(target, b"png")
    assert no_space.value.filename == str(target) and no_space.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_holds_the_writer_lock_and_replaces_whole(tmp_path: Path) -> None:
    """A second writer of the same directory fails at once instead of sharing its work folder; a replaced
    directory keeps none of its old files."""
    from wakebuilder.errors import LockedError

    with atomic_directory(tmp_path / "model") as work:
        (work / "a").write_text("first")
        with pytest.raises(LockedError, match="another wakebuilder process"):
            with atomic_directory(tmp_path / "model", overwrite=True):
                pass
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["a"]
    with atomic_directory(tmp_path / "model", overwrite=True) as work:
        (work / "b").write_text("second")
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == ["model"]
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["b"]


@pytest.mark.parametrize("out", [".", "./", "..", "ABSOLUTE"])
@pytest.mark.parametrize("overwrite", [False, True])
def test_atomic_directory_refuses_the_current_folder_or_one_holding_it(out: str, overwrite: bool, tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """``wb export --out . --overwrite`` ended in a ValueError traceback (Path('.').with_name), and a folder holding
    the current one would be moved aside and deleted under it; it is refused in one line, naming the path, and
    nothing is touched."""
    here = tmp_path / "project" / "here"
    here.mkdir(parents=True)
    (here / "keep.txt").write_text("mine")
    monkeypatch.chdir(here)
    target = str(here) if out == "ABSOLUTE" else out
    with pytest.raises(ConfigError, match=r"current folder.*choose a new folder"):
        with atomic_directory(target, overwrite=overwrite):
            pass
    assert (here / "keep.txt").read_text() == "mine"
    assert sorted(p.name for p in here.parent.iterdir()) == ["here"]


def test_atomic_directory_works_from_a_deleted_current_folder(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A shell left in a folder deleted under it: os.getcwd() fails, and the check of the current folder must not
    turn that into a FileNotFoundError traceback for an output elsewhere."""
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()
    with atomic_directory(tmp_path / "out") as work:
        (work / "a").write_text("made")
    assert (tmp_path / "out" / "a").read_text() == "made"


def test_atomic_write_gives_the_mode_open_would(tmp_path: Path) -> None:
    """mkstemp makes 0600 files: an exported model must be as readable as any file the user writes."""
    import os

    from wakebuilder import atomic

    plain = tmp_path / "plain"
    plain.write_bytes(b"")
    atomic_write_json(tmp_path / "a.json", {"x": 1})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == plain.stat().st_mode & 0o777 == 0o666 & ~atomic._UMASK
    os.chmod(tmp_path / "a.json", 0o640)  # a replaced file keeps its mode
    atomic_write_json(tmp_path / "a.json", {"x": 2})
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o640 and read_json(tmp_path / "a.json") == {"x": 2}


def test_writer_lock_refuses_a_second_process(tmp_path: Path) -> None:
    target = tmp_path / "store.zarr"
    code = (
        "import sys\nfrom wakebuilder.atomic import writer_lock\nfrom wakebuilder.errors import LockedError\n"
        f"try:\n    with writer_lock({str(target)!r}):\n        pass\nexcept LockedError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    with writer_lock(target):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 3 and "another wakebuilder process" in result.stdout
    with writer_lock(target):  # released again
        pass


def test_writer_lock_tells_a_reused_inode_number_from_the_file_it_named(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock on a file's identity was keyed on its device and inode number only. A writer that replaced what it
    locked (--overwrite deletes the store and makes a new one; an HDF5 merge renames a new file over it) held on to the
    key of a freed inode number, which ext4 gives to the next new file at once, anywhere on the file system: that
    file's writer was refused, 'another wakebuilder process is writing it' (tests/store/test_removal.py, while
    another run of it replaced its stores). The key now holds the inode's generation too, which a reused number
    does not keep; a hard link is still the same file, refused."""
    from wakebuilder.errors import LockedError

    held, new = tmp_path / "held.h5", tmp_path / "new.h5"
    held.write_bytes(b"")
    new.write_bytes(b"")
    if not _has_inode_generations(held):
        pytest.skip(f"{tmp_path}: the file system keeps no inode generations (tmpfs, overlayfs, NFS, macOS)")
    (tmp_path / "link.h5").hardlink_to(held)
    old, reused = held.stat(), new.stat()
    for name in ("stat", "lstat", "fstat"):  # new.h5 gets held.h5's inode number, as a freed number is given again
        real = getattr(os, name)

        def reporting(*args: object, real: Callable[..., os.stat_result] = real, **kwargs: object) -> os.stat_result:
            result = real(*args, **kwargs)
            if (result.st_dev, result.st_ino) != (reused.st_dev, reused.st_ino):
                return result
            sequence, extra = result.__reduce__()[1]
            return os.stat_result((sequence[0], old.st_ino, *sequence[2:]), extra)

        monkeypatch.setattr(os, name, reporting)
    assert new.stat().st_ino == held.stat().st_ino
    with writer_lock(held):
        with writer_lock(new):  # another file, though of the same inode number
            pass
        with pytest.raises(LockedError, match="another wakebuilder process"), writer_lock(tmp_path / "link.h5"):
            pass  # a hard link: the same file


@pytest.fixture
def identity_locks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The folder of the identity lock files, in a temp dir of the test's own (its subprocesses' too)."""
    pytest.importorskip("fcntl", reason="Windows: the identity lock is a filelock.FileLock, its file kept")
    temp = tmp_path / "temp"
    temp.mkdir()
    monkeypatch.setenv("TMPDIR", str(temp))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    return temp / "wakebuilder-locks"


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_writer_lock_deletes_its_identity_lock_file(kind: str, tmp_path: Path, identity_locks: Path) -> None:
    """The lock file of the written file's identity was left in <temp>/wakebuilder-locks on release, one for every
    artifact ever written (13,000 on one machine); the writer now deletes it as it releases it."""
    target = tmp_path / "store.h5"
    target.write_bytes(b"") if kind == "file" else target.mkdir()
    with writer_lock(target):
        assert len(list(identity_locks.iterdir())) == 1
    assert list(identity_locks.iterdir()) == []


def test_writer_lock_refuses_a_hard_link_at_once_and_deletes_the_lock_after(tmp_path: Path,
                                                                           identity_locks: Path) -> None:
    """A second writer of the same file through a hard link (another lock beside it, the same identity) still fails
    at once, in another process, while the first holds the identity lock; after the release nothing is left."""
    held = tmp_path / "held.h5"
    held.write_bytes(b"")
    (tmp_path / "link.h5").hardlink_to(held)
    code = (
        "import sys\nfrom wakebuilder.atomic import writer_lock\nfrom wakebuilder.errors import LockedError\n"
        f"try:\n    with writer_lock({str(tmp_path / 'link.h5')!r}):\n        pass\nexcept LockedError as e:\n"
        "    print(e); sys.exit(3)\n"
    )
    with writer_lock(held):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 3 and "another wakebuilder process" in result.stdout, result.stderr
    assert str(identity_locks) in result.stdout
    with writer_lock(tmp_path / "link.h5"):  # released again
        pass
    assert list(identity_locks.iterdir()) == []


def test_writer_lock_never_grants_a_deleted_identity_lock(tmp_path: Path, identity_locks: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Deleting a lock file on release races a writer that opened it just before: A holds the lock of held.h5's
    identity; B (writing it through a hard link) opens the lock file; A releases and deletes it; C makes and locks a
    new one; B's flock then succeeds on A's deleted file. B must see that the path names another file now, open it
    again and be refused while C holds it, not write beside C."""
    held = tmp_path / "held.h5"
    held.write_bytes(b"")
    (tmp_path / "link.h5").hardlink_to(held)
    first, third = contextlib.ExitStack(), contextlib.ExitStack()
    first.enter_context(writer_lock(held))
    [lock_file] = identity_locks.iterdir()
    real_open = os.open
    interleaved: list[str] = []

    def opening(path: object, *args: object, **kwargs: object) -> int:
        fd = real_open(path, *args, **kwargs)
        if Path(os.fsdecode(path)) == lock_file and not interleaved:  # B, between its open and its flock
            interleaved.append("A releases, C locks")
            first.close()
            third.enter_context(writer_lock(held))
        return fd

    monkeypatch.setattr(os, "open", opening)
    with third, pytest.raises(LockedError, match="another wakebuilder process"):
        with writer_lock(tmp_path / "link.h5"):
            pytest.fail("B was granted the lock C holds")
    assert interleaved and list(identity_locks.iterdir()) == []


def _has_inode_generations(path: Path) -> bool:
    """Whether the file system of ``path`` keeps inode generations (Linux ``FS_IOC_GETVERSION``)."""
    import array
    import struct

    try:
        import fcntl
    except ImportError:  # Windows
        return False
    descriptor = os.open(path, os.O_RDONLY)
    try:
        fcntl.ioctl(descriptor, (2 << 30) | (struct.calcsize("l") << 16) | (ord("v") << 8) | 1, array.array("l", [0]))
    except OSError:
        return False
    finally:
        os.close(descriptor)
    return True
