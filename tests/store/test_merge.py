"""``wb store merge`` into OUT: never over its own source, and all or nothing."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.store.kill_writer import SPEC, clips
from tests.store.test_parts import build_parted, memory_url
from wakebuilder.cli import main
from wakebuilder.errors import ConfigError
from wakebuilder.store import open_store
from wakebuilder.store.merge import merge_store

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
