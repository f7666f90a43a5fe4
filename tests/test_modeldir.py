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
    ("stores", [{"fingerprint": "f", "rows": 240, "ids_sha256": "abc"}],
     "stores[0].ids_sha256 must be a sha256 (64 hex digits) or null, not 'abc'"),
    ("stores", [{"fingerprint": "f", "rows": 240, "compute_dtype": ["bf16"]}],
     "stores[0].compute_dtype must be a string or null, not ['bf16']"),
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


def test_a_file_given_as_a_model_directory_is_named_as_a_file(tmp_path: Path) -> None:
    """An exported NAME.onnx (or any file) given as --model said `model directory not found`, though it is there; the
    line now says it is a file and what to give instead."""
    setup = tone_setup()
    onnx = tmp_path / "hey_tone.onnx"
    onnx.write_bytes(b"onnx")
    commands = {
        "calibrate": ["calibrate", "--model", str(onnx), "--store", str(setup["store"])],
        "ensemble": ["ensemble", "--model", str(setup["calibrated"]), "--model", str(onnx),
                     "--out", str(tmp_path / "e")],
        "export": ["export", "--model", str(onnx), "--out", str(tmp_path / "export")],
    }
    for name, args in commands.items():
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, (name, result.output)
        assert result.stderr.startswith(f"wb: error: {onnx}: a file, not a model directory; "), (name, result.stderr)
        assert "not found" not in result.stderr and "wb fit" in result.stderr, (name, result.stderr)


@pytest.mark.parametrize("groups", [5, "val", [["val"]], [None]])
def test_split_json_val_groups_edited_by_hand_is_one_line(groups: Any, tmp_path: Path) -> None:
    """split.json's val_groups of the wrong type crashed wb calibrate (TypeError: not iterable, unhashable) or, a
    string, was read as groups of its letters ('none of the model's 3 validation groups are in the store')."""
    model = copy_model(tone_setup()["model"], tmp_path / "model")
    split = json.loads((model / "split.json").read_text())
    (model / "split.json").write_text(json.dumps(split | {"val_groups": groups}))
    result = CliRunner().invoke(main, ["calibrate", "--model", str(model), "--store", str(tone_setup()["store"])])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {model / 'split.json'}: val_groups must be a list of group names, "
                                    f"not {groups!r}; "), result.stderr
    assert "wb fit" in result.stderr


def test_loading_a_model_draws_nothing_from_torchs_random_generator() -> None:
    """load_model runs in one thread (calibrate, ensemble, export) while a fit runs in another (run_recipe in a
    ThreadPoolExecutor): a random init of the head before its weights were copied in drew from torch's process-wide
    generator, which changed that fit's dropout draws and so its head."""
    import torch
    from safetensors.torch import load_file

    from wakebuilder.modeldir import WEIGHTS_NAME, load_model

    model = tone_setup()["model"]
    before = torch.random.get_rng_state()
    head = load_model(model).head
    assert torch.equal(before, torch.random.get_rng_state())
    saved, loaded = load_file(str(model / WEIGHTS_NAME)), head.state_dict()
    assert saved.keys() == loaded.keys() and all(torch.equal(saved[k], loaded[k]) for k in saved)
    assert all(p.requires_grad for p in head.parameters())  # wb fit --init trains the loaded head on


def test_a_centroids_head_round_trips_and_a_model_json_without_its_kind_loads_as_a_network(tmp_path: Path) -> None:
    """``kind`` came after the first models were saved: their model.json has none, and their head is a network."""
    import torch

    from tests.model_helpers import make_model_dir
    from wakebuilder.modeldir import load_model
    from wakebuilder.train.head import CentroidHead, HeadConfig, WakeHead, build_head

    setup = tone_setup()
    head = build_head(HeadConfig(input_dim=96, seq_len=9, kind="centroids"))
    head.direction.copy_(torch.linspace(-1, 1, 96))
    loaded = load_model(make_model_dir(tmp_path / "centroids", head, setup["identity"])).head
    assert isinstance(loaded, CentroidHead) and loaded.config == head.config
    assert torch.equal(loaded.direction, head.direction)
    x = torch.randn(4, 9, 96)
    assert torch.equal(loaded(x), head(x))
    old = copy_model(setup["model"], tmp_path / "old")
    meta = json.loads((old / "model.json").read_text())
    del meta["head"]["kind"]
    (old / "model.json").write_text(json.dumps(meta))
    old_head = load_model(old).head
    assert isinstance(old_head, WakeHead) and old_head.config.kind == "network"
