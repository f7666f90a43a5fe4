from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.test_embed import make_manifest
from wakebuilder.cli import main


@pytest.mark.parametrize("args", [["embed", "--help"], ["store", "--help"], ["store", "info", "--help"]])
def test_help(args: list[str]) -> None:
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and result.output.startswith("Usage: ")
    if args[0] == "embed":
        assert "--batch-size" in result.output and "default: 16" in result.output


def test_embed_prints_the_store_and_store_info_reads_it(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 4)
    store = tmp_path / "s.h5"
    runner = CliRunner()
    command = ["embed", str(manifest), "--store", str(store), "--backbone", "speech-embedding"]
    result = runner.invoke(main, [*command, "--threads", "1", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(store) and "4 embedded" in result.stderr
    again = runner.invoke(main, [*command, "--json"])
    summary = json.loads(again.stdout)
    assert summary["embedded"] == 0 and summary["skipped_existing"] == 4 and summary["clips_in_store"] == 4
    info = runner.invoke(main, ["store", "info", str(store), "--json"])
    assert info.exit_code == 0 and json.loads(info.stdout)["clips"] == 4
    text = runner.invoke(main, ["store", "info", str(store)])
    assert text.exit_code == 0 and "speech-embedding" in text.stdout and "clips       4" in text.stdout


@pytest.mark.parametrize("problem", ["missing-backbone", "bad-manifest", "window", "not-a-store"])
def test_bad_input_exits_non_zero_with_one_line(tmp_path: Path, problem: str) -> None:
    manifest = make_manifest(tmp_path / "clips", 2)
    store = str(tmp_path / "s.zarr")
    args = {
        "missing-backbone": ["embed", str(manifest), "--store", store, "--backbone", str(tmp_path / "nope")],
        "bad-manifest": ["embed", str(tmp_path / "clips" / "0.wav"), "--store", store],
        "window": ["embed", str(manifest), "--store", store, "--backbone", "speech-embedding",
                   "--window-s", "0.6"],
        "not-a-store": ["store", "info", str(manifest)],
    }[problem]
    result = CliRunner().invoke(main, args)
    assert result.exit_code not in (0, None), result.output
    assert result.stderr.startswith("wb: error: ") and len(result.stderr.strip().splitlines()) == 1
    assert result.stdout == ""


def test_a_manifest_of_rejected_clips_only_exits_non_zero(tmp_path: Path) -> None:
    from wakebuilder.manifest import ClipRecord, write_manifest

    (tmp_path / "bad.wav").write_bytes(b"")
    manifest = write_manifest(tmp_path / "m.jsonl", [ClipRecord(id="bad", path="bad.wav", label=0,
                                                                kind="real_negative", group="g")])
    store = tmp_path / "s.zarr"
    for extra in ([], ["--shard-clips", "1"]):
        result = CliRunner().invoke(main, ["embed", str(manifest), "--store", str(store), "--backbone",
                                           "speech-embedding", "--overwrite", *extra])
        assert result.exit_code == 1 and result.stdout == "", result.output
        error = result.stderr.splitlines()[-1]  # after the progress bar and the rejects warning
        assert error.startswith(f"wb: error: {manifest}: none of the 1 clip(s) could be embedded")
        assert f"{store}.rejects.jsonl" in error and result.stderr.count("wb: error:") == 1


def test_wb_embed_refuses_another_precision_than_the_stores_in_one_line(tmp_path: Path, tiny_ast_dir: Path) -> None:
    """wb embed --dtype bf16 then --dtype fp32 into one store mixed the two; the second run now exits non-zero with
    one line naming the store, both precisions and --dtype, and wb store info shows the store's precision."""
    store = str(tmp_path / "s.zarr")
    runner = CliRunner()
    first = ["embed", str(make_manifest(tmp_path / "a", 2)), "--store", store, "--backbone", str(tiny_ast_dir)]
    assert runner.invoke(main, [*first, "--dtype", "bf16"]).exit_code == 0
    info = runner.invoke(main, ["store", "info", store])
    assert info.exit_code == 0 and "computed in bf16" in info.stdout
    assert json.loads(runner.invoke(main, ["store", "info", store, "--json"]).stdout)["compute_dtype"] == "bf16"
    other = ["embed", str(make_manifest(tmp_path / "b", 2, start=5)), "--store", store, "--backbone",
             str(tiny_ast_dir), "--dtype", "fp32"]
    result = runner.invoke(main, other)
    errors = [line for line in result.stderr.splitlines() if line.startswith("wb: error: ")]
    assert result.exit_code not in (0, None) and len(errors) == 1, result.stderr
    assert store in errors[0] and "fp32" in errors[0] and "--dtype bf16" in errors[0]
