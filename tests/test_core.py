from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from wakebuilder.atomic import atomic_directory, atomic_write_json, read_json, writer_lock
from wakebuilder.config import StageConfig
from wakebuilder.errors import ConfigError, WakebuilderError
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
