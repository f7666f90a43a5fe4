"""The model directory's readers: a hand-edited model.json or split.json is a one-line error in every command."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from tests.model_helpers import copy_model, tone_setup
from wakebuilder.cli import main

# key (dotted for a nested one) -> value written there by hand -> what the error says
BAD_KEYS: list[tuple[str, Any, str]] = [
    ("wake_word", 5, "wake_word must be a string or null, not 5"),
    ("wake_word", ["hey"], "wake_word must be a string or null, not ['hey']"),
    ("fit", "x", "fit must be an object or null, not 'x'"),
    ("stores", 5, "stores must be a list or null, not 5"),
    ("stores", [5], "stores[0] must be an object, not 5"),
    ("stores", [{}], "missing key stores[0].fingerprint"),
    ("stores", [{"fingerprint": "f", "rows": "240"}], "stores[0].rows must be a count of rows, not '240'"),
    ("bank_exclusion", "x", "bank_exclusion must be an object or null, not 'x'"),
    ("bank_exclusion", {"phrase": 5}, "bank_exclusion.phrase must be a string or null, not 5"),
    ("bank_exclusion", {"phrase": "hey", "max_distance": "x"},
     "bank_exclusion.max_distance must be a finite number >= 0 or null, not 'x'"),
    ("store_fingerprint", ["x"], "store_fingerprint must be a string or null, not ['x']"),
    ("ensemble", "x", "ensemble must be an object or null, not 'x'"),
    ("backbone.spec", 5, "backbone.spec must be a string, not 5"),
    ("backbone.window_s", "1.5", "backbone.window_s must be a finite number above 0, not '1.5'"),
]


def _damaged(tmp_path: Path, key: str, value: Any) -> Path:
    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    meta = json.loads((model / "model.json").read_text())
    *parents, last = key.split(".")
    target = meta
    for name in parents:
        target = target[name]
    target[last] = value
    (model / "model.json").write_text(json.dumps(meta))
    return model


@pytest.mark.parametrize(("key", "value", "problem"), BAD_KEYS, ids=[f"{k}={v!r}" for k, v, _ in BAD_KEYS])
def test_a_model_json_key_edited_by_hand_is_one_line_in_every_command(key: str, value: Any, problem: str,
                                                                      tmp_path: Path) -> None:
    """A key of model.json of the wrong type crashed wb calibrate, wb ensemble and wb export (and wb detect, eval,
    web: every reader of the model) with an AttributeError or TypeError traceback, some only after work."""
    setup = tone_setup()
    model = _damaged(tmp_path, key, value)
    commands = {
        "calibrate": ["calibrate", "--model", str(model), "--store", str(setup["store"])],
        "ensemble": ["ensemble", "--model", str(setup["calibrated"]), "--model", str(model),
                     "--out", str(tmp_path / "ensemble")],
        "export": ["export", "--model", str(model), "--out", str(tmp_path / "export")],
        "detect": ["detect", str(model), str(tmp_path / "none.wav")],
    }
    for name, args in commands.items():
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, (name, result.output)
        assert result.stderr.startswith(f"wb: error: {model / 'model.json'}: {problem}; "), (name, result.stderr)
        assert "wb fit" in result.stderr, (name, result.stderr)
