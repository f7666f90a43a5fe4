"""Every command answers --help; `wb --help` stays light (no torch import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wakebuilder.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_top_level_help_does_not_import_heavy_libraries() -> None:
    code = "import sys; from wakebuilder.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit: pass\n" \
        "heavy = [m for m in ('torch', 'numba', 'onnx', 'transformers') if m in sys.modules]\nprint('HEAVY', heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_unknown_command_fails() -> None:
    result = CliRunner().invoke(main, ["nope"])
    assert result.exit_code != 0


@pytest.mark.parametrize(("error", "fix"), [
    (PermissionError(13, "Permission denied", "/data/out/manifest.jsonl"), "check its permissions"),
    (OSError(30, "Read-only file system", "/data/out"), "check its permissions"),
    (OSError(28, "No space left on device", "/data/out/clip.wav"), "free disk space"),
])
def test_file_system_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: OSError,
                                         fix: str) -> None:
    """A read-only, full or forbidden folder gives `wb: error: PATH: reason; fix`, not a traceback."""
    import wakebuilder.data.validate as validate

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(validate, "validate_recordings", refuse)
    (tmp_path / "a.wav").write_bytes(b"")
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "a.wav"), "--out", str(tmp_path / "v")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    line = result.output.strip()
    assert line.count("\n") == 0 and line.startswith(f"wb: error: {error.filename}: {error.strerror}; ")
    assert fix in line and "Traceback" not in result.output


def test_a_reader_that_leaves_early_stops_the_command_quietly() -> None:
    """`wb negatives PHRASE --list | head -1`: exit 141 as in a shell pipeline, no error and no traceback.

    The reader is gone before the command writes (its whole list fits a pipe's buffer, so a reader that
    left after one line could race the command's exit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = subprocess.run([sys.executable, "-m", "wakebuilder.cli", "negatives", "hey jarvis", "--list"],
                                 stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    assert process.returncode == 141 and process.stderr.decode().strip() == "", process.stderr.decode()[-500:]


def test_the_stream_options_defaults_are_the_librarys() -> None:
    """The CLI spells out detect.STREAM_DEFAULTS (to keep `wb --help` light); they must not drift apart."""
    from wakebuilder.cli.options import STREAM_SETTINGS
    from wakebuilder.detect import STREAM_DEFAULTS

    assert {name: default for name, (_, _, default, _) in STREAM_SETTINGS.items()} == STREAM_DEFAULTS
