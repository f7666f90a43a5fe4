"""A store made of parts reads as one store; its index, orphan parts, merging, and URLs (memory://)."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.store.kill_writer import SPEC, clips
from wakebuilder.cli import main
from wakebuilder.errors import ConfigError, LockedError, StoreError, StoreMismatchError
from wakebuilder.store import StoreSpec, open_store, store_info
from wakebuilder.store.merge import compact_store, merge_store
from wakebuilder.store.opening import new_store_attrs
from wakebuilder.store.parts import PartedStore, is_parted, part_location, read_index, write_index
from wakebuilder.store.parts_index import PartsIndex
from wakebuilder.store.union import open_stores
from wakebuilder.store.verify import verify_store

pytest.importorskip("fsspec", reason="stores at URLs need fsspec (pip install 'wakebuilder[dask]')")
FIELDS = ("pooled", "sequence", "label", "id", "kind", "group")
BOUNDS = [(0, 10), (10, 27), (27, 40)]


def memory_url() -> str:
    return f"memory://wb-test-{uuid.uuid4().hex}/store"


@pytest.fixture(params=["local", "memory"])
def where(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    return tmp_path / "parted" if request.param == "local" else memory_url()


def write_part(store: Path | str, name: str, start: int, stop: int) -> None:
    """What a worker does: its own part, its own lock, its own committed count."""
    with open_store(part_location(store, name), "a", spec=SPEC) as part:
        part.append(*clips(start, stop))


def build_parted(store: Path | str, bounds: list[tuple[int, int]] = BOUNDS) -> None:
    index = PartsIndex(store, spec=SPEC)
    try:
        for k, (start, stop) in enumerate(bounds):
            write_part(store, f"p{k}", start, stop)
            index.register(f"p{k}")
    finally:
        index.close()


def assert_same_rows(a: object, b: object) -> None:
    with open_store(a) as left, open_store(b) as right:  # type: ignore[arg-type]
        x, y = left.load(), right.load()
        for field in FIELDS:
            assert np.array_equal(getattr(x, field), getattr(y, field)), field
        assert left.records() == right.records() and left.ids() == right.ids()
        assert left.fingerprint == right.fingerprint and left.spec == right.spec


def test_parts_read_as_one_store(where: Path | str, tmp_path: Path) -> None:
    build_parted(where)
    with open_store(tmp_path / "one.zarr", "a", spec=SPEC) as one:
        one.append(*clips(0, 40))
    assert is_parted(where)
    assert_same_rows(where, tmp_path / "one.zarr")
    with open_store(where) as store:
        assert isinstance(store, PartedStore) and len(store) == 40 and store.attrs["parts"] == 3
        batches = list(store.iter_batches(16, pooled=True))
        assert [len(b) for b in batches] == [10, 16, 1, 13]  # at most 16, ending at part ends
        assert np.array_equal(np.concatenate([b.pooled for b in batches]), store.load().pooled)
    info = store_info(where)
    assert info["clips"] == 40 and info["parts"] == 3 and info["backend"] == "zarr-parts"
    assert info["labels"] == {"0": 20, "1": 20} and info["size_bytes"] > 0


def test_an_empty_parted_store_has_its_spec(where: Path | str) -> None:
    PartsIndex(where, spec=SPEC).close()
    with open_store(where) as store:
        arrays = store.load()
        assert len(store) == 0 and store.spec == SPEC and arrays.sequence.shape == (0, 3, 4)


def test_orphan_parts_are_adopted_and_empty_ones_dropped(where: Path | str) -> None:
    build_parted(where, BOUNDS[:1])
    write_part(where, "orphan", 10, 15)  # a coordinator died before listing it
    with open_store(part_location(where, "empty"), "a", spec=SPEC):
        pass
    index = PartsIndex(where, spec=SPEC)
    try:
        with open_store(where) as before:
            assert len(before) == 10  # unlisted parts are invisible
        assert index.adopt_orphans() == ["orphan"] and index.names == ["p0", "orphan"]
        assert index.on_disk() == ["orphan", "p0"]
        assert len(index.ids()) == 15
    finally:
        index.close()


def test_an_unlisted_part_still_being_written_stops_adoption(tmp_path: Path) -> None:
    store = tmp_path / "parted"
    build_parted(store, BOUNDS[:1])
    write_part(store, "busy", 10, 12)
    with open_store(part_location(store, "busy"), "a", spec=SPEC):  # a live worker holds it
        index = PartsIndex(store, spec=SPEC)
        try:
            with pytest.raises(LockedError, match="busy"):
                index.adopt_orphans()
        finally:
            index.close()


def test_one_coordinator_at_a_time_and_the_spec_is_checked(tmp_path: Path) -> None:
    store = tmp_path / "parted"
    index = PartsIndex(store, spec=SPEC)
    try:
        with pytest.raises(LockedError):
            PartsIndex(store, spec=SPEC)
    finally:
        index.close()
    other = StoreSpec(backbone={"name": "other"}, seq_len=3, dim=4)
    with pytest.raises(StoreMismatchError, match="backbone.name"):
        PartsIndex(store, spec=other)
    PartsIndex(store, spec=other, overwrite=True).close()
    assert read_index(store)["attrs"]["backbone"] == {"name": "other"}
    with open_store(tmp_path / "single.zarr", "a", spec=SPEC):
        pass
    with pytest.raises(StoreError, match="single-part"):
        PartsIndex(tmp_path / "single.zarr", spec=SPEC)
    (tmp_path / "kept.h5").write_bytes(b"not touched")
    with pytest.raises(StoreError, match="without .h5"):
        PartsIndex(tmp_path / "kept.h5", spec=SPEC, overwrite=True)
    assert (tmp_path / "kept.h5").read_bytes() == b"not touched"


def test_overwrite_deletes_only_a_store(tmp_path: Path) -> None:
    notes, text = tmp_path / "notes", tmp_path / "notes.txt"  # a --store path mistyped onto other files
    (notes / "recordings").mkdir(parents=True)
    text.write_text("kept")
    for other, match in ((notes, "non-empty directory without a store"), (text, "is a file")):
        with pytest.raises(StoreError, match=match):
            PartsIndex(other, spec=SPEC, overwrite=True)
    assert (notes / "recordings").is_dir() and text.read_text() == "kept"
    single, parted, remnant = tmp_path / "single.zarr", tmp_path / "parted", tmp_path / "remnant"
    with open_store(single, "a", spec=SPEC) as store:
        store.append(*clips(0, 3))
    build_parted(parted)
    build_parted(remnant)
    (remnant / "parts.json").unlink()  # a removal killed after the index went (remove_store)
    for store in (single, parted, remnant):
        PartsIndex(store, spec=SPEC, overwrite=True).close()
        with open_store(store) as reader:
            assert isinstance(reader, PartedStore) and len(reader) == 0


def test_overwrite_at_a_url_deletes_only_a_store() -> None:
    """At a URL as at a local path, only a store is deleted (--overwrite, or a creation that was killed is redone):
    objects that are not a store, one object, or another program's Zarr group are refused and kept."""
    import fsspec
    import zarr

    fs, source, base = fsspec.filesystem("memory"), memory_url(), memory_url()
    build_parted(source, [(0, 4)])
    notes, text, group = f"{base}/notes", f"{base}/notes.txt", f"{base}/group.zarr"
    fs.pipe_file(f"{notes}/recordings/a.wav", b"kept")
    fs.pipe_file(text, b"kept")
    zarr.open_group(group, mode="w", zarr_format=3, attributes={"owner": "another program"})
    attempts = {
        "open_store": lambda where, overwrite: open_store(where, "a", spec=SPEC, overwrite=overwrite).close(),
        "PartsIndex": lambda where, overwrite: PartsIndex(where, spec=SPEC, overwrite=overwrite).close(),
        "merge_store": lambda where, overwrite: merge_store(source, where, overwrite=overwrite),
    }
    for name, attempt in attempts.items():
        for other, overwrite in [(notes, True), (notes, False), (text, True), (text, False), (group, False)]:
            with pytest.raises(StoreError):
                attempt(other, overwrite)
                pytest.fail(f"{name} took {other} (overwrite={overwrite})")
            assert fs.cat_file(f"{notes}/recordings/a.wav") == b"kept" and fs.cat_file(text) == b"kept", name
            assert zarr.open_group(group, mode="r").attrs["owner"] == "another program", name
    single, parted, remnant = (f"{base}/{name}" for name in ("single", "parted", "remnant"))
    with open_store(single, "a", spec=SPEC) as store:
        store.append(*clips(0, 3))
    build_parted(parted)
    build_parted(remnant)
    fs.rm_file(f"{remnant}/parts.json")  # a removal killed after the index went (remove_store)
    for store in (single, parted, remnant, group):  # a Zarr group counts as a store (maybe damaged), as locally
        PartsIndex(store, spec=SPEC, overwrite=True).close()
        with open_store(store) as reader:
            assert isinstance(reader, PartedStore) and len(reader) == 0


def test_overwrite_through_a_symlink_replaces_the_store_it_points_to(tmp_path: Path) -> None:
    real, link = tmp_path / "data" / "parted", tmp_path / "parted-link"
    build_parted(real)
    link.symlink_to(real)
    PartsIndex(link, spec=SPEC, overwrite=True).close()  # wb embed --executor processes:N --overwrite
    assert link.is_symlink()
    with open_store(link) as store:
        assert isinstance(store, PartedStore) and len(store) == 0
    build_parted(real, [(0, 5)])
    with open_store(link, "a", spec=SPEC, overwrite=True) as single:  # wb embed --overwrite
        single.append(*clips(0, 3))
    assert link.is_symlink() and not is_parted(real)
    with open_store(link) as store:
        assert len(store) == 3 and store.backend == "zarr"


def test_a_clip_in_two_parts_is_an_error(where: Path | str, tmp_path: Path) -> None:
    build_parted(where, [(0, 10), (8, 12)])
    with open_store(where) as store, pytest.raises(StoreError, match="another part holds too"):
        store.ids()
    for read in (lambda s: s.load(pooled=False, sequence=False), lambda s: s.records(),
                 lambda s: next(s.iter_batches(4))):
        with open_store(where) as store, pytest.raises(StoreError, match=r"p1.*clip00008.*p0.*--overwrite"):
            read(store)
    with pytest.raises(StoreError, match="another part holds too"):
        store_info(where)
    with pytest.raises(StoreError, match="another part holds too"), open_stores([where]):  # wb fit, wb calibrate
        pass
    with pytest.raises(StoreError, match="another part holds too"):  # before the merged store is created
        merge_store(where, tmp_path / "merged.zarr")
    assert not (tmp_path / "merged.zarr").exists()


def test_a_part_listed_twice_is_an_error(where: Path | str) -> None:
    build_parted(where)
    index = read_index(where)
    write_index(where, {**index, "parts": ["p0", "p1", "p2", "p0"]})
    with pytest.raises(StoreError, match=r"parts.json: lists part 'p0' twice; remove"):
        open_store(where)


@pytest.mark.parametrize("name", ["../../../outside", "/abs/outside", "sub/p0", "..", ".", "", 5, None])
def test_a_part_name_that_leaves_the_parts_folder_is_refused(tmp_path: Path, name: object) -> None:
    outside = tmp_path / "outside"  # a store of the same spec outside the parted store
    with open_store(outside, "a", spec=SPEC) as other:
        other.append(*clips(100, 105))
    store = tmp_path / "a" / "b"
    build_parted(store)
    index = read_index(store)
    named = str(outside) if name == "/abs/outside" else name
    write_index(store, {**index, "parts": ["p0", named]})
    with pytest.raises(StoreError, match=r"parts.json: part name .* is not a plain name"):
        open_store(store)
    with pytest.raises(StoreError, match=r"parts.json: part name .* is not a plain name"):
        PartsIndex(store, spec=SPEC)


@pytest.mark.parametrize("attrs", [[], "x", {"schema_version": 1}, "no backbone", "dim not a number"])
def test_an_index_with_damaged_attributes_is_a_one_line_error(tmp_path: Path, attrs: object) -> None:
    store = tmp_path / "parted"
    build_parted(store)
    index = read_index(store)
    if attrs == "no backbone":
        attrs = {k: v for k, v in index["attrs"].items() if k != "backbone"}
    elif attrs == "dim not a number":
        attrs = {**index["attrs"], "dim": "four"}
    write_index(store, {**index, "attrs": attrs})
    with pytest.raises(StoreError, match=r"parts.json: .*rebuild the store"):
        open_store(store)
    with pytest.raises(StoreError, match=r"parts.json: .*rebuild the store"):
        PartsIndex(store, spec=SPEC)


def test_verify_reports_a_clip_in_two_parts(where: Path | str) -> None:
    build_parted(where, [(0, 10), (8, 12), (20, 25), (11, 13)])
    result = verify_store(where)
    assert not result["ok"] and result["clips"] == 21
    assert result["damaged_rows"] == [10, 11, 19]  # the later copies: rows 0-1 of p1, row 0 of p3
    assert [(p["field"], p["rows"]) for p in result["problems"]] == [("id", [10, 12]), ("id", [19, 20])]
    assert "p0" in result["problems"][0]["reason"] and "p1" in result["problems"][1]["reason"]


def test_cli_verify_and_fit_refuse_a_clip_in_two_parts(tmp_path: Path) -> None:
    store = tmp_path / "dup"
    build_parted(store, [(0, 10), (8, 12)])
    runner = CliRunner()
    verify = runner.invoke(main, ["store", "verify", str(store)])
    assert verify.exit_code == 1 and "no damage found" not in verify.output
    assert "2 of 14 rows damaged (rows 10-11)" in verify.stderr and "--overwrite" in verify.stderr
    assert "clip id also stored in part" in verify.stdout
    fit = runner.invoke(main, ["fit", "--store", str(store), "--out", str(tmp_path / "m")])
    assert fit.exit_code == 1 and "another part holds too" in fit.stderr, fit.output
    assert len(fit.stderr.strip().splitlines()) == 1


def test_append_mode_on_a_parted_store_points_to_the_ways_out(where: Path | str) -> None:
    build_parted(where)
    with pytest.raises(StoreError, match="wb store merge"):
        open_store(where, "a", spec=SPEC)
    with open_store(where, "a", spec=SPEC, overwrite=True) as single:  # --overwrite: a new single store
        single.append(*clips(0, 3))
    assert not is_parted(where)
    with open_store(where) as store:
        assert len(store) == 3 and store.backend == "zarr"


@pytest.mark.parametrize("out", ["merged.zarr", "merged.h5", "memory"])
def test_merge_gives_a_single_part_store_equal_to_the_parts(where: Path | str, tmp_path: Path, out: str) -> None:
    build_parted(where)
    target: Path | str = memory_url() if out == "memory" else tmp_path / out
    summary = merge_store(where, target)
    assert summary["clips"] == 40 and summary["parts_merged"] == 3
    assert not is_parted(target)
    with open_store(target) as merged:
        assert merged.backend == ("hdf5" if out.endswith(".h5") else "zarr")
    assert_same_rows(target, where)
    with pytest.raises(StoreError, match="already holds 40"):
        merge_store(where, target)
    with pytest.raises(ConfigError):
        merge_store(where, where)


def test_merge_in_place_and_a_killed_swap_finishes(tmp_path: Path) -> None:
    store, reference = tmp_path / "parted", tmp_path / "reference"
    build_parted(store)
    build_parted(reference)
    summary = compact_store(store)
    assert summary["clips"] == 40 and not is_parted(store)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["parted", "parted.lock", "reference", "reference.lock"]
    assert_same_rows(store, reference)
    with pytest.raises(StoreError, match="not a store made of parts"):
        compact_store(store)
    # killed between the two renames of the swap: no store, the merged one and the old parts beside it
    os.replace(store, tmp_path / "parted.merging")
    build_parted(tmp_path / "parted.parts-old")
    assert compact_store(store)["finished_swap"]
    assert not (tmp_path / "parted.merging").exists() and not (tmp_path / "parted.parts-old").exists()
    assert_same_rows(store, reference)


def test_merge_in_place_through_a_symlink_merges_the_store_it_points_to(tmp_path: Path) -> None:
    real, link, reference = tmp_path / "data" / "parted", tmp_path / "parted-link", tmp_path / "reference"
    build_parted(real)
    build_parted(reference)
    link.symlink_to(real)
    assert compact_store(link)["clips"] == 40
    assert link.is_symlink() and not is_parted(real)  # the link still points to the store, merged in place
    assert sorted(p.name for p in real.parent.iterdir()) == ["parted", "parted.lock"]
    assert_same_rows(link, reference)


def test_url_single_store_and_an_unfinished_creation_is_redone() -> None:
    import zarr

    url = memory_url()
    attrs = {**new_store_attrs(SPEC), "committed": 0, "checksums": "crc32c"}  # what creation writes before fields
    zarr.open_group(url, mode="w", zarr_format=3, attributes=attrs)  # killed mid-creation
    with pytest.raises(StoreError, match="no embedding store"):
        open_store(url)
    with open_store(url, "a", spec=SPEC) as store:
        store.append(*clips(0, 5))
    with open_store(url, "a", spec=SPEC) as store:  # reopened: appends after the committed rows
        store.append(*clips(5, 9))
    with open_store(url) as store:
        assert len(store) == 9 and [r.id for r in store.records()] == [r.id for r in clips(0, 9)[0]]
    with pytest.raises(StoreError, match="must be local"):
        open_store(url + ".h5", "a", spec=SPEC)


def test_url_store_whose_committed_count_was_raised_into_its_last_chunk_is_refused() -> None:
    """At a URL as on a disk: ``committed`` edited from 5 to 12 (inside the 16-row chunk) read 7 rows of fill values."""
    import zarr

    url = memory_url()
    with open_store(url, "a", spec=SPEC, chunk_rows=16) as store:
        store.append(*clips(0, 5))
    zarr.open_group(url, mode="r+", zarr_format=3).attrs["committed"] = 12
    for mode in ("r", "a"):
        with pytest.raises(StoreError, match=rf"{url}: attrs\.committed is 12, .*row 5 of 'id'.*rebuild"):
            open_store(url, mode, spec=SPEC)


def test_clips_are_left_out_in_place_of_a_single_or_parted_store(tmp_path: Path) -> None:
    """The negative bank's store drops the clips of the voices it replaced: rewritten in place without them."""
    single, parted = tmp_path / "single.zarr", tmp_path / "parted"
    with open_store(single, "a", spec=SPEC) as store:
        store.append(*clips(0, 10))
    with open_store(single) as store:
        before = store.load()
    drop = {before.id[i] for i in (0, 3, 9)}
    build_parted(parted)
    for where, total in ((single, 10), (parted, 40)):
        assert compact_store(where, drop=drop)["clips"] == total - 3
        with open_store(where) as kept:
            assert not is_parted(where) and len(kept) == total - 3 and not kept.ids() & drop
    with open_store(single) as kept:
        after, rest = kept.load(), ~np.isin(before.id, list(drop))
        assert after.id.tolist() == before.id[rest].tolist() and np.array_equal(after.pooled, before.pooled[rest])
        assert np.array_equal(after.sequence, before.sequence[rest])
    with open_store(tmp_path / "s.h5", "a", spec=SPEC) as store:
        store.append(*clips(0, 2))
    with pytest.raises(StoreError, match="Zarr store only"):
        compact_store(tmp_path / "s.h5", drop=drop)
