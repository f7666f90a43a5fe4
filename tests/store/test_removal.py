"""A local store's removal (``--overwrite``) killed at any file: the store is whole, or gone and the next run builds
it anew (any settings, no --overwrite), the debris the removal left deleted."""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path

import pytest

from tests.store.kill_writer import SPEC, clips
from tests.store.kills import build_new_parts, kill_at_each_call, remove_with_overwrite
from wakebuilder.errors import StoreError
from wakebuilder.store import open_store
from wakebuilder.store.opening import spec_fingerprint
from wakebuilder.store.parts import PartedStore, part_location
from wakebuilder.store.parts_index import PartsIndex

OTHER = dataclasses.replace(SPEC, backbone={**SPEC.backbone, "name": "other"})  # other settings


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


def build_again(path: Path, how: str) -> None:
    """The next run: new settings, no --overwrite, in parts or not; it holds the 2 new clips only."""
    if how == "parts":
        build_new_parts(path)
    else:
        with open_store(path, "a", spec=SPEC) as store:
            store.append(*clips(0, 2))
    with open_store(path) as store:
        assert isinstance(store, PartedStore) == (how == "parts")
        assert len(store) == 2 and store.fingerprint == spec_fingerprint(SPEC)
        assert [r.id for r in store.records()] == [r.id for r in clips(0, 2)[0]]


@pytest.mark.parametrize("how", ["parts", "single"])
@pytest.mark.parametrize("old", [single_store, parted_store])
def test_a_removal_killed_at_any_file_leaves_the_store_or_debris(tmp_path: Path, old: object, how: str) -> None:
    """The removal deleted the store's directory in place (shutil.rmtree), in the order the file system lists it: a
    kill after the store's zarr.json (or parts.json) went left a directory without it, refused by every later run
    ('non-empty directory without a store', --overwrite too; in parts, 'holds a single-part store or other files'
    without --overwrite). Now the directory is renamed aside first, and what a kill leaves there is deleted by the
    next run."""
    template = tmp_path / "old"
    old(template)  # type: ignore[operator]
    files = [f for _, _, names in os.walk(template) for f in names]

    def arrange(count: int) -> Path:
        path = tmp_path / f"store-{count}"
        shutil.copytree(template, path)  # faster than building it again
        return path

    whole: list[int] = []  # the kills that left the new store whole

    def check(count: int, path: Path) -> None:
        try:
            with open_store(path) as store:
                assert len(store) == 0 and store.fingerprint == spec_fingerprint(SPEC)
            whole.append(count)
        except StoreError as exc:
            assert "no embedding store here" in str(exc)
        build_again(path, how)
        assert sorted(p.name for p in tmp_path.glob(f"store-{count}*")) == [f"store-{count}", f"store-{count}.lock"]

    # os.unlink: what shutil.rmtree and Path.unlink call
    count = kill_at_each_call(os, "unlink", arrange=arrange, action=lambda path: remove_with_overwrite(path, how),
                              check=check)
    assert count >= len(files) > 14  # a kill landed at every file of the old store (and at any the run deletes after)
    # only a kill at the last unlink, of the writer lock's file in the temp dir as it is released, comes after the new
    # store is made (where the removal makes one, not parted_store-single)
    assert set(whole) <= {count - 1}
