"""``wb store merge`` into OUT: never over its own source, and all or nothing."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.store.kill_writer import SPEC, clips
from tests.store.test_parts import assert_same_rows, build_parted, memory_url
from wakebuilder.cli import main
from wakebuilder.errors import ConfigError, StoreError
from wakebuilder.store import EmbeddingStore, open_store
from wakebuilder.store.merge import compact_store, merge_store
from wakebuilder.store.remote import url_exists

SPELLINGS: dict[str, Callable[[Path], str]] = {
    "absolute": lambda store: str(store.resolve()),
    "relative": lambda store: os.path.relpath(store),
    "dot slash": lambda store: f"./{os.path.relpath(store)}/",
    "dot dot": lambda store: f"{os.path.relpath(store)}/../{store.name}",
    "file url": lambda store: f"file://{store.resolve()}",
    "symlink": lambda store: str(_link(store)),
}


def _link(store: Path) -> Path:
    link = store.with_name(store.name + "-link")
    link.symlink_to(store)
    return link


def build_single(path: Path) -> Path:
    with open_store(path, "a", spec=SPEC) as store:
        store.append(*clips(0, 40))
    return path


@pytest.mark.parametrize("kind", ["parted", "single.zarr", "single.h5"])
@pytest.mark.parametrize("spelling", sorted(SPELLINGS))
def test_out_that_is_the_source_spelled_differently_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str, spelling: str
) -> None:
    monkeypatch.chdir(tmp_path)
    source = tmp_path / kind
    build_parted(source) if kind == "parted" else build_single(source)
    out = SPELLINGS[spelling](source)
    with pytest.raises(ConfigError, match="is the store .* itself"):
        merge_store(kind, out, overwrite=True)
    with open_store(source) as kept:
        assert len(kept) == 40 and len(kept.load().id) == 40


def test_out_inside_the_source_or_around_it_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "parted"
    build_parted(source)
    with pytest.raises(ConfigError, match="lies inside the source store"):
        merge_store(source, source / "parts" / "p0", overwrite=True)
    with pytest.raises(ConfigError, match="holds the source store"):
        merge_store(source / "parts" / "p0", source, overwrite=True)
    with open_store(source) as kept:
        assert len(kept) == 40 and len(kept.load().id) == 40


def test_a_url_spelled_differently_is_the_same_store() -> None:
    url = memory_url()
    build_parted(url)
    with pytest.raises(ConfigError, match="itself"):
        merge_store(url, url.replace("memory://", "memory:///") + "/", overwrite=True)
    with open_store(url) as kept:
        assert len(kept) == 40


def test_cli_merge_onto_its_source_is_one_line_and_keeps_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    build_parted(tmp_path / "ok")
    result = CliRunner().invoke(main, ["store", "merge", "ok", str(tmp_path / "ok"), "--overwrite"])
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "omit OUT to merge in place" in result.stderr
    with open_store(tmp_path / "ok") as kept:
        assert len(kept) == 40


def out_location(tmp_path: Path, out: str) -> Path | str:
    return memory_url() if out == "memory" else tmp_path / out


def leftovers(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("merged"))


@pytest.mark.parametrize("out", ["merged.zarr", "merged.h5", "memory"])
def test_a_source_with_a_clip_in_two_parts_is_refused_before_out_exists(tmp_path: Path, out: str) -> None:
    source, target = tmp_path / "dup", out_location(tmp_path, out)
    build_parted(source, [(0, 10), (8, 12)])
    with pytest.raises(StoreError, match=r"dup/parts/p1: .*clip00008.*dup/parts/p0.*wb embed --overwrite"):
        merge_store(source, target)
    assert leftovers(tmp_path) in ([], ["merged.zarr.lock"], ["merged.h5.lock"])
    assert not (url_exists(target) if isinstance(target, str) else target.exists())


@pytest.mark.parametrize("out", ["merged.zarr", "merged.h5", "memory"])
def test_a_merge_that_fails_leaves_no_out_and_a_rerun_merges(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, out: str
) -> None:
    source, target = tmp_path / "parted", out_location(tmp_path, out)
    build_parted(source)
    real_append, calls = EmbeddingStore.append, []

    def failing_append(self: EmbeddingStore, *args: object) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_append(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(EmbeddingStore, "append", failing_append)
    with pytest.raises(OSError, match="No space"):
        merge_store(source, target, batch_rows=4)
    assert not (url_exists(target) if isinstance(target, str) else target.exists())
    assert leftovers(tmp_path) in ([], [f"{out}.lock"])
    monkeypatch.undo()
    assert merge_store(source, target)["clips"] == 40
    assert_same_rows(target, source)
    assert leftovers(tmp_path) in ([], [out, f"{out}.lock"])


def test_a_failed_overwrite_keeps_the_old_out_and_a_killed_merge_is_cleaned_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source, target = tmp_path / "parted", tmp_path / "merged.zarr"
    build_parted(source)
    with open_store(target, "a", spec=SPEC) as old:
        old.append(*clips(100, 103))
    monkeypatch.setattr(EmbeddingStore, "append", lambda *_: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        merge_store(source, target, overwrite=True)
    with open_store(target) as kept:
        assert len(kept) == 3
    monkeypatch.undo()
    work = tmp_path / "merged.zarr.incomplete"
    (work / "stale").mkdir(parents=True)  # what a merge killed mid-copy leaves
    assert merge_store(source, target, overwrite=True)["clips"] == 40
    assert not work.exists() and leftovers(tmp_path) == ["merged.zarr", "merged.zarr.lock"]
    assert_same_rows(target, source)


def _damage_zarr_json(out: Path) -> None:
    (out / "zarr.json").write_text('{"zarr_format": 3, "node_type": "gro')  # cut off


def _old_schema(out: Path) -> None:
    meta = json.loads((out / "zarr.json").read_text())
    meta["attributes"]["schema_version"] = 0
    (out / "zarr.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(("out", "damage"), [
    ("merged.zarr", _damage_zarr_json), ("merged.zarr", _old_schema),
    ("merged.h5", lambda out: out.write_bytes(b"not an hdf5 file")),
])
def test_overwrite_replaces_an_out_too_damaged_to_open(tmp_path: Path, out: str,
                                                        damage: Callable[[Path], None]) -> None:
    source, target = tmp_path / "parted", tmp_path / out
    build_parted(source)
    with open_store(target, "a", spec=SPEC) as old:
        old.append(*clips(100, 103))
    damage(target)
    with pytest.raises(StoreError, match="--overwrite"):  # without it: refused, OUT kept
        merge_store(source, target)
    assert merge_store(source, target, overwrite=True)["clips"] == 40
    assert_same_rows(target, source)
    notes = tmp_path / "notes"  # not a store at all: refused even with --overwrite, nothing deleted
    (notes / "keep").mkdir(parents=True)
    with pytest.raises(StoreError, match="non-empty directory without a store"):
        merge_store(source, notes, overwrite=True)
    assert (notes / "keep").is_dir()


def test_a_killed_merge_at_a_url_leaves_a_store_that_refuses_to_open(monkeypatch: pytest.MonkeyPatch) -> None:
    """At a URL OUT is built in place: a merge killed mid-copy (no cleanup runs) must not leave a store that
    reads as complete with some of the rows; it refuses to open, and merging again with --overwrite finishes."""
    source, target = memory_url(), memory_url()
    build_parted(source)
    real_append, calls = EmbeddingStore.append, []

    def killed_append(self: EmbeddingStore, *args: object) -> None:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # stands for SIGKILL: with the cleanup below skipped
        real_append(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(EmbeddingStore, "append", killed_append)
    monkeypatch.setattr("wakebuilder.store.merge._discard", lambda *_: None)
    with pytest.raises(KeyboardInterrupt):
        merge_store(source, target, batch_rows=4)
    monkeypatch.undo()
    with pytest.raises(StoreError, match="merge into it was cut off.*--overwrite"):
        open_store(target)
    with pytest.raises(StoreError, match="cut off"):
        merge_store(source, target)  # without --overwrite
    result = CliRunner().invoke(main, ["store", "info", target])
    assert result.exit_code != 0 and "cut off" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert merge_store(source, target, overwrite=True)["clips"] == 40
    assert_same_rows(target, source)  # and it opens again


def test_cli_merge_of_a_source_with_a_clip_in_two_parts(tmp_path: Path) -> None:
    build_parted(tmp_path / "dup", [(0, 10), (8, 12)])
    result = CliRunner().invoke(main, ["store", "merge", str(tmp_path / "dup"), str(tmp_path / "dupout")])
    assert result.exit_code == 1 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert "dup/parts/p1" in result.stderr and "dupout" not in result.stderr
    assert not (tmp_path / "dupout").exists() and not (tmp_path / "dupout.incomplete").exists()


def test_cli_merge_in_place_of_the_negative_bank_is_refused(tmp_path: Path) -> None:
    """The bank is read by every phrase's recipe without a lock: compacting it in place would replace it under
    them, so it is refused (made of parts, or a Zarr store with clips left out) and merging it elsewhere still works."""
    bank = tmp_path / "banks" / "ast-native"
    bank.mkdir(parents=True)
    (bank / "bank.json").write_text(json.dumps({"kind": "wakebuilder negative bank", "manifests": []}))
    build_parted(bank / "store.zarr")
    result = CliRunner().invoke(main, ["store", "merge", str(bank / "store.zarr")])
    assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert str(bank / "store.zarr") in result.stderr and "negative bank" in result.stderr
    assert "new path" in result.stderr
    assert (bank / "store.zarr" / "parts.json").is_file() and not (bank / "store.zarr.merging").exists()
    single = tmp_path / "banks" / "single" / "store.zarr"
    single.parent.mkdir()
    (single.parent / "bank.json").write_text("{}")
    build_single(single)
    with pytest.raises(StoreError, match="negative bank"):
        compact_store(single, drop={"nothing"})
    merged = CliRunner().invoke(main, ["store", "merge", str(bank / "store.zarr"), str(tmp_path / "copy.zarr")])
    assert merged.exit_code == 0, merged.output


@pytest.mark.parametrize("spelling", ["direct", "symlink"])
def test_cli_merge_into_the_negative_bank_is_refused(tmp_path: Path, spelling: str) -> None:
    """Merging another store into OUT the bank's store with --overwrite replaced the bank under the recipes reading
    it without a lock (a8b81bf refused only the merge in place); it is refused in one line, the bank left as it was,
    with or without --overwrite and through a symlink to the bank's folder."""
    bank = tmp_path / "banks" / "ast-native"
    bank.mkdir(parents=True)
    (bank / "bank.json").write_text(json.dumps({"kind": "wakebuilder negative bank", "manifests": []}))
    build_single(bank / "store.zarr")
    with open_store(bank / "store.zarr") as before:
        ids = before.load().id.tolist()
    build_parted(tmp_path / "other")
    out = bank / "store.zarr"
    if spelling == "symlink":
        (tmp_path / "link").symlink_to(bank)
        out = tmp_path / "link" / "store.zarr"
    for flags in (["--overwrite"], []):
        result = CliRunner().invoke(main, ["store", "merge", str(tmp_path / "other"), str(out), *flags])
        assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1, result.output
        assert str(out) in result.stderr and "negative bank" in result.stderr and "new path" in result.stderr
        with open_store(bank / "store.zarr") as kept:
            assert kept.load().id.tolist() == ids
        assert not (bank / "store.zarr.incomplete").exists()
    merged = CliRunner().invoke(main, ["store", "merge", str(tmp_path / "other"), str(bank / "copy.zarr")])
    assert merged.exit_code == 0, merged.output
