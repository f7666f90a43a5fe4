"""Checks of single values edited by hand: a usable finite number."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from tests.model_helpers import copy_model, tone_setup
from wakebuilder.cli import main
from wakebuilder.values import finite_number


def test_a_number_past_a_floats_range_is_no_finite_number() -> None:
    """JSON holds an integer as written, so 10**400 in a file edited by hand reached math.isfinite, which raised
    OverflowError (a traceback, not the file's one-line error); it is no usable number."""
    assert not finite_number(10**400) and not finite_number(-(10**400)) and not finite_number(10**400, low=0, high=1)
    assert not finite_number(Fraction(10**400, 3))
    assert finite_number(10**300) and finite_number(np.int64(5), low=0, high=5) and not finite_number(6, high=5)
    assert not finite_number(True) and not finite_number(float("nan")) and not finite_number("1")


def test_a_huge_integer_in_calibration_json_is_one_line(tmp_path: Path) -> None:
    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    calibration = json.loads((model / "calibration.json").read_text())
    (model / "calibration.json").write_text(json.dumps(calibration | {"threshold": 10**400}))
    result = CliRunner().invoke(main, ["detect", str(model), str(tmp_path / "none.wav")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {model / 'calibration.json'}: threshold "), result.stderr
    assert "wb calibrate" in result.stderr
