"""``wb embed --executor`` and ``wb store merge`` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_embed import make_manifest
from wakebuilder.cli import main

pytest.importorskip("fsspec", reason="sharded wb embed needs the [dask] extra (pip install 'wakebuilder[dask]')")


def test_help_names_the_executors_and_merge() -> None:
    runner = CliRunner()
    embed = runner.invoke(main, ["embed", "--help"])
    assert embed.exit_code == 0 and "processes:N" in embed.output and "tcp://HOST:PORT" in embed.output
    merge = runner.invoke(main, ["store", "merge", "--help"])
    assert merge.exit_code == 0 and merge.output.startswith("Usage: ")


@pytest.mark.parametrize("executor", ["processes:0", "threads:2", "nowhere"])
def test_a_bad_executor_is_one_line_and_exit_2(tmp_path: Path, executor: str) -> None:
    manifest = make_manifest(tmp_path / "clips", 2)
    result = CliRunner().invoke(main, ["embed", str(manifest), "--store", str(tmp_path / "s"),
                                       "--backbone", "speech-embedding", "--executor", executor])
    assert result.exit_code == 2 and result.stderr.startswith("wb: error: --executor")
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "s").exists()


def test_embed_in_parts_then_info_then_merge(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 9)
    store, runner = tmp_path / "parted", CliRunner()
    result = runner.invoke(main, ["embed", str(manifest), "--store", str(store), "--backbone", "speech-embedding",
                                  "--shard-clips", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["embedded"] == 9 and summary["parts"] == summary["tasks"] >= 2
    assert f"9 in store ({summary['parts']} parts; {summary['tasks']} tasks on 1 worker(s))" in result.stderr
    info = runner.invoke(main, ["store", "info", str(store)])
    assert info.exit_code == 0 and f"zarr-parts, {summary['parts']} part(s)" in info.stdout
    merged = runner.invoke(main, ["store", "merge", str(store), str(tmp_path / "one.h5")])
    assert merged.exit_code == 0 and merged.stdout.strip() == str(tmp_path / "one.h5")
    assert f"9 clips from {summary['parts']} part(s)" in merged.stderr
    in_place = runner.invoke(main, ["store", "merge", str(store), "--json"])
    assert in_place.exit_code == 0 and json.loads(in_place.stdout)["clips"] == 9
    info = runner.invoke(main, ["store", "info", str(store), "--json"])
    assert json.loads(info.stdout)["parts"] == 1 and json.loads(info.stdout)["backend"] == "zarr"
    again = runner.invoke(main, ["store", "merge", str(store)])
    assert again.exit_code == 1 and "not a store made of parts" in again.stderr


def test_verify_reads_every_part_and_names_rows_across_parts(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 6)
    store, runner = tmp_path / "parted", CliRunner()
    built = runner.invoke(main, ["embed", str(manifest), "--store", str(store), "--backbone", "speech-embedding",
                                 "--shard-clips", "3", "--json"])
    assert built.exit_code == 0, built.output
    ok = runner.invoke(main, ["store", "verify", str(store), "--json"])
    assert ok.exit_code == 0, ok.output
    result = json.loads(ok.stdout)
    assert result["ok"] and result["clips"] == 6 and result["checksums"] == "crc32c"
    chunks = sorted(p for p in store.glob("parts/*/pooled/c/**/*") if p.is_file())
    assert len(chunks) >= 2  # every part is a checksummed zarr store
    chunks[-1].unlink()
    damaged = runner.invoke(main, ["store", "verify", str(store), "--json"])
    assert damaged.exit_code == 1
    assert json.loads(damaged.stdout)["damaged_rows"]
