"""A local store's removal (``--overwrite``) killed at any file: the store is whole, or gone and the next run builds
it anew (any settings, no --overwrite), the debris the removal left deleted."""

from __future__ import annotations

import dataclasses
import itertools
import os
import shutil
from pathlib import Path

import pytest

from tests.store.kill_writer import SPEC, clips
from wakebuilder.errors import StoreError
from wakebuilder.store import open_store
from wakebuilder.store.opening import spec_fingerprint
from wakebuilder.store.parts import PartedStore, part_location
from wakebuilder.store.parts_index import PartsIndex

OTHER = dataclasses.replace(SPEC, backbone={**SPEC.backbone, "name": "other"})  # other settings


class Killed(BaseException):
    """Stands in for a kill at one file deletion (BaseException: nothing catches it)."""


def kill_at_unlink(monkeypatch: pytest.MonkeyPatch, count: int) -> list[str]:
    """Make ``os.unlink`` (which ``shutil.rmtree`` and ``Path.unlink`` call) die at its call number ``count`` (from
    0); returns the files deleted."""
    real, done = os.unlink, []

    def dying(path: str, *args: object, **kwargs: object) -> None:
        if len(done) >= count:
            raise Killed
        real(path, *args, **kwargs)  # type: ignore[arg-type]
        done.append(path)

    monkeypatch.setattr(os, "unlink", dying)
    return done


def single_store(path: Path) -> None:
    with open_store(path, "a", spec=OTHER) as store:
        store.append(*clips(0, 3))


def parted_store(path: Path) -> None:
    """A part of 3 clips (what ``wb embed --executor processes:N`` writes)."""
    index = PartsIndex(path, spec=OTHER)
    try:
        with open_store(part_location(path, "p0"), "a", spec=OTHER) as part:
            part.append(*clips(0, 3))
        index.register("p0")
    finally:
        index.close()


def remove(path: Path, how: str) -> None:
    """``wb embed --overwrite``: in parts (PartsIndex) or into a single store (open_store)."""
    if how == "parts":
        PartsIndex(path, spec=SPEC, overwrite=True).close()
    else:
        open_store(path, "a", spec=SPEC, overwrite=True).close()


def build_again(path: Path, how: str) -> None:
    """The next run: new settings, no --overwrite, in parts or not; it holds the 2 new clips only."""
    if how == "parts":
        index = PartsIndex(path, spec=SPEC)
        try:
            assert index.adopt_orphans() == []  # no part of the old store comes back
            with open_store(part_location(path, "new"), "a", spec=SPEC) as part:
                part.append(*clips(0, 2))
            index.register("new")
        finally:
            index.close()
    else:
        with open_store(path, "a", spec=SPEC) as store:
            store.append(*clips(0, 2))
    with open_store(path) as store:
        assert isinstance(store, PartedStore) == (how == "parts")
        assert len(store) == 2 and store.fingerprint == spec_fingerprint(SPEC)
        assert [r.id for r in store.records()] == [r.id for r in clips(0, 2)[0]]


@pytest.mark.parametrize("how", ["parts", "single"])
@pytest.mark.parametrize("old", [single_store, parted_store])
def test_a_removal_killed_at_any_file_leaves_the_store_or_debris(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, old: object, how: str
) -> None:
    """The removal deleted the store's directory in place (shutil.rmtree), in the order the file system lists it: a
    kill after the store's zarr.json (or parts.json) went left a directory without it, refused by every later run
    ('non-empty directory without a store', --overwrite too; in parts, 'holds a single-part store or other files'
    without --overwrite). Now the directory is renamed aside first, and what a kill leaves there is deleted by the
    next run."""
    template = tmp_path / "old"
    old(template)  # type: ignore[operator]
    files = [f for _, _, names in os.walk(template) for f in names]
    for count in itertools.count():
        path = tmp_path / f"store-{count}"
        shutil.copytree(template, path)  # faster than building it again
        deleted = kill_at_unlink(monkeypatch, count)
        try:
            remove(path, how)
        except Killed:
            pass
        else:
            break
        finally:
            monkeypatch.undo()
        assert len(deleted) == count
        with pytest.raises(StoreError, match="no embedding store here"):
            open_store(path)
        build_again(path, how)
        assert sorted(p.name for p in tmp_path.glob(f"store-{count}*")) == [f"store-{count}", f"store-{count}.lock"]
    assert count >= len(files) > 14  # a kill landed at every file of the old store (and at any the run deletes after)
