"""Stores at URLs (memory://), single or made of parts: a creation or a removal killed at any object is redone by
the next run."""

from __future__ import annotations

import dataclasses
import uuid

import pytest

from tests.store.kill_writer import SPEC, clips
from tests.store.kills import build_new_parts, kill_at_each_call, remove_with_overwrite
from wakebuilder.errors import StoreError
from wakebuilder.store import open_store
from wakebuilder.store.layout import field_layout
from wakebuilder.store.opening import new_store_attrs, spec_fingerprint
from wakebuilder.store.parts import PartedStore, part_location
from wakebuilder.store.parts_index import PartsIndex
from wakebuilder.store.zarr_backend import create_arrays

fsspec = pytest.importorskip("fsspec", reason="stores at URLs need fsspec (pip install 'wakebuilder[dask]')")
OTHER = dataclasses.replace(SPEC, backbone={**SPEC.backbone, "name": "other"})  # other settings
WIDE = dataclasses.replace(SPEC, dim=6)  # other settings, and arrays of other shapes


def memory_url() -> str:
    return f"memory://wb-test-{uuid.uuid4().hex}/store"


def memory_fs() -> type:
    """The memory file system's class, whose ``rm_file`` deletes an object and ``pipe_file`` writes one."""
    from fsspec.implementations.memory import MemoryFileSystem

    return MemoryFileSystem


def finished_store(url: str) -> None:
    """A store of 5 clips built with other settings."""
    with open_store(url, "a", spec=OTHER) as store:
        store.append(*clips(0, 5))


def killed_creation(url: str) -> None:
    """What a creation killed before its ``fields`` attribute leaves: the group and arrays of other shapes."""
    import zarr

    attrs = {**new_store_attrs(WIDE), "committed": 0, "checksums": "crc32c"}
    create_arrays(zarr.open_group(url, mode="w", zarr_format=3, attributes=attrs), field_layout(WIDE), 16)


def check_new_store(url: str) -> None:
    with open_store(url, "a", spec=SPEC) as store:
        store.append(*clips(0, 2))
    with open_store(url) as store:
        assert len(store) == 2 and store.fingerprint == spec_fingerprint(SPEC)
        assert [r.id for r in store.records()] == [r.id for r in clips(0, 2)[0]]


@pytest.mark.parametrize("left", [finished_store, killed_creation])
def test_a_removal_killed_at_any_object_is_redone(left: object) -> None:
    """``wb embed --overwrite`` into a URL (or the redo of a killed creation) deletes the old store before creating
    the new one. The group's zarr.json went first (fsspec deletes in reverse sorted order), so a kill during the
    deletion left arrays without a group, which every later run refused ('holds objects but no store'), with
    --overwrite too: the store had to be removed by hand. Now a kill at any deletion leaves a creation that was
    killed, which the next run (new settings, no --overwrite) redoes."""
    objects: list[str] = []

    def arrange(count: int) -> str:
        url = memory_url()
        left(url)  # type: ignore[operator]
        objects[:] = fsspec.filesystem("memory").find(url)
        return url

    count = kill_at_each_call(
        memory_fs(), "rm_file", arrange=arrange,
        action=lambda url: open_store(url, "a", spec=SPEC, overwrite=left is finished_store).close(),
        check=lambda count, url: check_new_store(url),  # run again: no --overwrite, the new settings
    )
    assert count == len(objects) > 7  # a kill landed at every deletion of the old store's objects


def test_a_creation_killed_at_any_object_is_redone_with_other_settings() -> None:
    """A creation at a URL writes the group without ``fields``, its arrays, then ``fields``: killed at any of those
    writes, the next run (other settings, other shapes, no --overwrite) redoes it."""
    count = kill_at_each_call(
        memory_fs(), "pipe_file", arrange=lambda count: memory_url(),
        action=lambda url: open_store(url, "a", spec=WIDE).close(), check=lambda count, url: check_new_store(url),
    )
    assert count == len(field_layout(WIDE)) + 2  # the group, each array, the group again with its fields


def test_arrays_a_removal_left_without_their_group_are_redone() -> None:
    """Arrays without the group's zarr.json (what a killed removal left before the group was deleted last) hold no
    committed rows: the next run creates the store again. Objects that are not a store's arrays are still refused."""
    fs = fsspec.filesystem("memory")
    url = memory_url()
    finished_store(url)
    for meta in ("zarr.json", "id/zarr.json", "row/zarr.json"):
        fs.rm_file(f"{url}/{meta}")
    with pytest.raises(StoreError, match="no embedding store here"):
        open_store(url)
    check_new_store(url)
    other = memory_url()
    finished_store(other)
    fs.rm_file(f"{other}/zarr.json")
    fs.pipe_file(f"{other}/id/notes.txt", b"kept")
    for overwrite in (False, True):
        with pytest.raises(StoreError, match="holds objects but no store"):
            open_store(other, "a", spec=SPEC, overwrite=overwrite)
    assert fs.cat_file(f"{other}/id/notes.txt") == b"kept"


def parted_store(url: str) -> None:
    """A store of two parts of 3 clips each, built with other settings (what ``wb embed`` writes at a URL)."""
    index = PartsIndex(url, spec=OTHER)
    try:
        for k in range(2):
            with open_store(part_location(url, f"p{k}"), "a", spec=OTHER) as part:
                part.append(*clips(3 * k, 3 * k + 3))
            index.register(f"p{k}")
    finally:
        index.close()


def check_new_parted_store(url: str) -> None:
    """What ``wb embed`` at a URL does (any --executor): the index, orphan parts adopted, a new part listed."""
    build_new_parts(url)
    with open_store(url) as store:
        assert isinstance(store, PartedStore) and len(store) == 2 and store.fingerprint == spec_fingerprint(SPEC)
        assert [r.id for r in store.records()] == [r.id for r in clips(0, 2)[0]]


@pytest.mark.parametrize("rerun", [check_new_parted_store, check_new_store])
@pytest.mark.parametrize("how", ["parts", "single"])
def test_a_removal_of_a_store_made_of_parts_killed_at_any_object_is_redone(how: str, rerun: object) -> None:
    """A store made of parts is removed index first: a kill after that left only its parts, which every later run
    refused ('holds objects but no store', 'holds a single-part store or other files'), open_store with
    --overwrite too. Now a kill at any deletion leaves the whole store or no store, which the next run (new
    settings, no --overwrite, in parts or not) builds anew, no part of the old one adopted."""
    fs, old = fsspec.filesystem("memory"), memory_url()
    parted_store(old)
    objects = fs.find(old)

    def arrange(count: int) -> str:
        url = memory_url()
        fs.cp(old, url, recursive=True)  # a copy of the store: faster than building it again
        return url

    def check(count: int, url: str) -> None:
        if count == 0:  # killed before its first deletion: the old store is whole
            with open_store(url) as store:
                assert isinstance(store, PartedStore) and len(store) == 6
            return
        with pytest.raises(StoreError, match="no embedding store here"):
            open_store(url)
        rerun(url)  # type: ignore[operator]

    count = kill_at_each_call(
        memory_fs(), "rm_file", arrange=arrange, action=lambda url: remove_with_overwrite(url, how), check=check
    )
    assert count == len(objects) > 20  # a kill landed at every deletion of the old store's objects


def test_parts_left_without_their_index_are_redone_and_other_objects_refused() -> None:
    """Parts without the index (what a killed removal left, or one before it) hold no listed rows: the next run, in
    parts or not, builds the store anew. Objects that are not a part's are still refused, and kept."""
    fs = fsspec.filesystem("memory")
    for rerun in (check_new_parted_store, check_new_store):
        url = memory_url()
        parted_store(url)
        fs.rm_file(f"{url}/parts.json")
        rerun(url)
    other = memory_url()
    parted_store(other)
    fs.rm_file(f"{other}/parts.json")
    fs.pipe_file(f"{other}/parts/p0/notes.txt", b"kept")
    with pytest.raises(StoreError, match="holds objects but no store"):
        open_store(other)
    for attempt in (lambda: PartsIndex(other, spec=SPEC), lambda: open_store(other, "a", spec=SPEC)):
        with pytest.raises(StoreError, match="holds"):
            attempt()
    assert fs.cat_file(f"{other}/parts/p0/notes.txt") == b"kept"
