"""Commands that write a manifest refuse an existing one unless --overwrite; wb validate adds to it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.data.test_augment import _manifest
from tests.data.test_validate import speechlike, write
from wakebuilder.cli import main
from wakebuilder.manifest import read_manifest


def existing(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "manifest.jsonl"
    manifest.write_text('{"earlier": "rows"}\n')
    return manifest


@pytest.mark.parametrize("args", [
    ["synth", "hey computer", "-n", "1"],
    ["negatives", "hey computer", "-n", "1", "--speech", "0"],
])
def test_tts_commands_refuse_an_existing_manifest(tmp_path: Path, args: list[str]) -> None:
    manifest = existing(tmp_path / "out")
    result = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert f"wb: error: {manifest}: already exists; pass --overwrite" in result.output
    assert manifest.read_text() == '{"earlier": "rows"}\n'


def test_augment_refuses_then_overwrites(tmp_path: Path) -> None:
    source = _manifest(tmp_path)
    manifest = existing(tmp_path / "aug")
    args = ["augment", str(source), "--out", str(tmp_path / "aug"), "--copies", "1"]
    runner = CliRunner()
    refused = runner.invoke(main, args)
    assert refused.exit_code == 1 and f"{manifest}: already exists" in refused.output
    assert manifest.read_text() == '{"earlier": "rows"}\n'
    replaced = runner.invoke(main, [*args, "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert len(read_manifest(manifest)) == len(read_manifest(source))


def test_stream_refuses_an_existing_wav(tmp_path: Path) -> None:
    source = _manifest(tmp_path)
    out = tmp_path / "s.wav"
    out.write_bytes(b"mine")
    result = CliRunner().invoke(main, ["stream", str(source), "--out", str(out), "--duration-s", "2"])
    assert result.exit_code == 1 and f"{out}: already exists" in result.output and out.read_bytes() == b"mine"


def test_validate_adds_recordings_to_an_existing_folder(tmp_path: Path) -> None:
    a = write(tmp_path / "a.wav", speechlike(1.2))
    b = write(tmp_path / "b.flac", speechlike(1.0, 44_100), 44_100, "FLAC")
    c = write(tmp_path / "c.wav", speechlike(1.5))
    out = tmp_path / "R"
    runner = CliRunner()
    assert runner.invoke(main, ["validate", str(a), "--out", str(out)]).exit_code == 0
    second = runner.invoke(main, ["validate", str(b), str(c), str(a), "--out", str(out)])
    assert second.exit_code == 0, second.output
    rows = read_manifest(out / "manifest.jsonl")
    assert sorted(Path(r.source).name for r in rows) == ["a.wav", "b.flac", "c.wav"]  # a listed once
    assert all((out / r.path).is_file() for r in rows)
    fresh = runner.invoke(main, ["validate", str(c), "--out", str(out), "--overwrite"])
    assert fresh.exit_code == 0
    assert [Path(r.source).name for r in read_manifest(out / "manifest.jsonl")] == ["c.wav"]
    assert "added to" in runner.invoke(main, ["validate", "--help"]).output
