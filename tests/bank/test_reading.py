"""The read locks of the bank and of the held-out streams: readers share them, reclaim takes them alone."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

import wakebuilder.recipe as recipe
import wakebuilder.recipe_data as recipe_data
from tests.bank.test_bank import write_bank
from tests.store.test_union import rows, write
from wakebuilder.bank.heldout import heldout_dir
from wakebuilder.bank.location import bank_store_path
from wakebuilder.bank.reading import READ_LOCK, excluding_readers, reading
from wakebuilder.bank.retired import open_served
from wakebuilder.errors import LockedError
from wakebuilder.recipe import RecipeConfig, RecipeData, RecipeResult


def test_a_bank_is_read_holding_its_read_lock(tmp_path: Path) -> None:
    """wb fit and wb calibrate read the bank through open_served: while it is open, reclaim (which takes the lock
    alone) is refused in one line, and may run once it is closed. Other stores are read without a lock."""
    phrase = write(tmp_path / "phrase.zarr", [rows(20, seed=0, prefix="p")])
    bank = bank_store_path("test", 1.0, cache=tmp_path / "cache")
    write_bank(bank, 10, seed=1, prefix="b")
    with open_served([phrase, bank]) as (union, _), pytest.raises(LockedError) as refused:
        with excluding_readers(bank.parent, "the bank"):
            pass
    assert len(union.rows) == 2 and "\n" not in str(refused.value)
    assert "a recipe" in str(refused.value) and "again when none runs" in str(refused.value)
    with excluding_readers(bank.parent, "the bank"):
        pass
    assert not (tmp_path / READ_LOCK).exists()  # the phrase's store has none


def test_a_reader_waits_while_reclaim_holds_the_lock(tmp_path: Path) -> None:
    bank = bank_store_path("test", 1.0, cache=tmp_path / "cache")
    write_bank(bank, 10, seed=1, prefix="b")
    read: list[int] = []

    def fit() -> None:
        with open_served([bank]) as (union, _):
            read.append(len(union))

    with excluding_readers(bank.parent, "the bank"):
        reader = threading.Thread(target=fit)
        reader.start()
        reader.join(timeout=1.0)
        assert reader.is_alive() and not read  # waiting, not failing
    reader.join(timeout=10.0)
    assert read == [10]


def test_the_recipe_holds_the_read_locks_till_its_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recipe reads the shared held-out streams from its first step to its report and the bank from its fit to its
    calibration: a reclaim in between would remove the stream it calibrates on or the bank rows its fit read (and
    its calibration then be refused). It holds both read locks meanwhile."""
    bank = bank_store_path("test", 1.0)
    held: list[str] = []

    def build_data(config: RecipeConfig, out: Path, **_: object) -> RecipeData:
        held.append(locked(heldout_dir()))
        return RecipeData(train_manifests=[], negatives=out / "n.jsonl", heldout_positives=None,
                          heldout_negatives=None, calibration_stream=out / "s.wav", report_stream=None)

    def train_and_export(config: RecipeConfig, out: Path, store: Path, data: RecipeData, **kwargs: object
                         ) -> RecipeResult:
        held.extend([locked(heldout_dir()), locked(bank.parent)])
        return RecipeResult(config=config, out_dir=out, onnx=out / "x.onnx", model_dir=out / "model", store=store,
                            data=data, threshold=0.5, report=None, seconds=1.0)

    monkeypatch.setattr(recipe, "build_data", build_data)
    monkeypatch.setattr(recipe, "embed_data", lambda *args, **kwargs: tmp_path / "store.zarr")
    monkeypatch.setattr(recipe_data, "bank", lambda *args, **kwargs: bank)
    monkeypatch.setattr(recipe, "train_and_export", train_and_export)
    recipe.run_recipe(RecipeConfig.preset("tiny", engines=("espeak",)), out_dir=tmp_path / "run")
    assert held == ["held", "held", "held"]
    assert locked(heldout_dir()) == locked(bank.parent) == "free"  # released with the run


def locked(folder: Path) -> str:
    """Whether a reader holds ``folder``'s read lock (reclaim's lock is refused)."""
    try:
        with excluding_readers(folder, "it"):
            return "free"
    except LockedError:
        return "held"


def test_a_folder_one_may_not_write_is_read_without_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                             ) -> None:
    """A cache shared read-only: its bank is read as before (no reclaim can run there either)."""
    import errno
    import os

    opened = os.open

    def read_only(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        if Path(path).name == READ_LOCK:
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return opened(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    with reading(tmp_path):
        pass
    with pytest.raises(PermissionError):
        with excluding_readers(tmp_path, "it"):
            pass


def test_without_flock_readers_read_and_reclaim_refuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where fcntl is missing (Windows) the package still imports and reads the bank; only reclaim refuses."""
    from wakebuilder.bank import reading as module
    from wakebuilder.errors import ConfigError

    monkeypatch.setattr(module, "fcntl", None)
    with module.reading(tmp_path / "bank"):
        pass
    assert not (tmp_path / "bank" / module.READ_LOCK).exists()
    with pytest.raises(ConfigError, match="POSIX file locks"):
        with module.excluding_readers(tmp_path / "bank", "the bank"):
            pass
