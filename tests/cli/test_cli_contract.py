"""Every command answers --help; `wb --help` stays light (no torch import)."""

from __future__ import annotations

import subprocess
import sys

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
