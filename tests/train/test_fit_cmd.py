from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.train.test_run_fit import make_store
from wakebuilder.cli import main
from wakebuilder.train.fit import FitConfig


def test_help_lists_the_switches() -> None:
    result = CliRunner().invoke(main, ["fit", "--help"])
    assert result.exit_code == 0
    switches = ("--no-attention", "--no-se", "--no-tcn", "--hidden", "--init", "--stream", "--val-fraction")
    for switch in switches:
        assert switch in result.output


def test_cli_defaults_match_the_config() -> None:
    from wakebuilder.cli.fit_cmd import fit

    defaults = {p.name: p.default for p in fit.params}
    for field in dataclasses.fields(FitConfig):
        if field.name in defaults and field.name not in ("hidden", "seed"):
            assert defaults[field.name] == field.default, field.name
    assert defaults["hidden"] == ",".join(map(str, FitConfig.hidden))


def test_the_head_choices_are_the_one_tuple_of_head_kinds() -> None:
    """``wb fit --head``, ``FitConfig.head`` and ``HeadConfig.kind`` read one tuple: a new kind cannot be offered by
    one and refused by another."""
    from wakebuilder.cli.fit_cmd import fit
    from wakebuilder.train.head import HeadConfig
    from wakebuilder.train.head_kinds import HEAD_KINDS

    head = next(p for p in fit.params if p.name == "head")
    assert tuple(head.type.choices) == HEAD_KINDS and head.default == HEAD_KINDS[0] == FitConfig.head
    for kind in HEAD_KINDS:  # each accepted by both configs
        assert FitConfig(head=kind).head_config(seq_len=2, dim=4).kind == kind
        assert HeadConfig(input_dim=4, seq_len=2, members=2, combine="probability", member_kinds=(kind, kind))


def test_missing_store_exits_non_zero(tmp_path: Path) -> None:
    args = ["fit", "--store", str(tmp_path / "none.zarr"), "--out", str(tmp_path / "m")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "no embedding store" in result.output


def test_bad_hidden_exits_non_zero(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["fit", "--store", "s", "--out", "m", "--hidden", "256,x"])
    assert result.exit_code == 2


def test_fit_json_summary(tmp_path: Path) -> None:
    store = make_store(tmp_path / "store.h5", n=200, augmented=False)
    args = ["fit", "--store", str(store), "--out", str(tmp_path / "model"), "--width", "16", "--hidden", "32",
            "--no-se", "--no-attention", "--max-epochs", "2", "--batch-size", "32", "--device", "cpu",
            "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["path"] == str(tmp_path / "model") and summary["epochs_run"] == 2
    meta = json.loads((tmp_path / "model" / "model.json").read_text())
    head = meta["head"]
    assert head["se"] is False and head["attention"] is False and head["hidden"] == [32]


def test_an_existing_out_is_refused_as_other_commands_refuse_it(tmp_path: Path) -> None:
    """An existing --out is the same refusal (exit 1, the same message) as wb export's, wb ensemble's and others'."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "mine.txt").write_text("keep me")
    args = ["fit", "--store", str(tmp_path / "store.zarr"), "--out", str(tmp_path / "model")]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr == (f"wb: error: {tmp_path / 'model'}: already exists; pass --overwrite to replace it, "
                             "or choose another --out\n")
    assert (tmp_path / "model" / "mine.txt").read_text() == "keep me"


def test_fit_head_centroids_writes_a_model_wb_calibrate_accepts(tmp_path: Path) -> None:
    from wakebuilder.modeldir import load_model
    from wakebuilder.train.head import CentroidHead

    assert "--head [network|centroids]" in CliRunner().invoke(main, ["fit", "--help"]).output
    store = make_store(tmp_path / "store.h5", n=200, augmented=False)
    model = tmp_path / "model"
    args = ["fit", "--store", str(store), "--out", str(model), "--head", "centroids", "--device", "cpu", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["epochs_run"] == 1  # its F1 at logit 0 is no measure: calibration finds the threshold
    meta = json.loads((model / "model.json").read_text())
    assert meta["head"]["kind"] == "centroids" and meta["fit"]["head"] == "centroids"
    assert isinstance(load_model(model).head, CentroidHead)
    result = CliRunner().invoke(main, ["calibrate", "--model", str(model), "--store", str(store), "--json"])
    assert result.exit_code == 0, result.output
    calibration = json.loads((model / "calibration.json").read_text())
    assert 0.0 < calibration["threshold"] < 1.0 and calibration["metrics"]["f1"] > 0.7  # chance: about 0.46


def test_fit_head_refusals_are_one_line(tmp_path: Path) -> None:
    bad = CliRunner().invoke(main, ["fit", "--store", "s", "--out", "m", "--head", "tree"])
    assert bad.exit_code == 2
    args = ["fit", "--store", str(tmp_path / "s.h5"), "--out", str(tmp_path / "m"), "--head", "centroids",
            "--members", "2"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("wb: error: ") and "--members 1" in result.stderr


def test_fit_head_centroids_with_a_shrinkage_writes_a_model_that_loads_and_scores(tmp_path: Path) -> None:
    import numpy as np
    import torch

    from tests.train.conftest import planted
    from wakebuilder.modeldir import load_model

    help_text = " ".join(CliRunner().invoke(main, ["fit", "--help"]).output.split())
    assert "--shrinkage" in help_text and "--head centroids" in help_text and "0.2" in help_text
    store = make_store(tmp_path / "store.h5", n=200, augmented=False)
    model = tmp_path / "model"
    args = ["fit", "--store", str(store), "--out", str(model), "--head", "centroids", "--shrinkage", "0.2",
            "--device", "cpu", "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    meta = json.loads((model / "model.json").read_text())
    assert meta["fit"]["head"] == "centroids" and meta["fit"]["shrinkage"] == 0.2
    head = load_model(model).head
    assert float(torch.linalg.vector_norm(head.direction)) == pytest.approx(1.0, abs=1e-5)
    arrays = planted(200, signal=0.6)  # make_store's clips
    with torch.no_grad():
        logits = head(torch.from_numpy(np.asarray(arrays.sequence, dtype=np.float32))).numpy()
    assert np.isfinite(logits).all() and logits[arrays.label == 1].mean() > logits[arrays.label == 0].mean()


@pytest.mark.parametrize(("extra", "code", "message"), [
    (["--head", "centroids", "--shrinkage", "1.5"], 2, "--shrinkage '1.5': must be in [0, 1]"),
    (["--head", "centroids", "--shrinkage", "nan"], 2, "--shrinkage"),
    (["--shrinkage", "0.2"], 2, "--head centroids"),
])
def test_a_bad_shrinkage_is_a_one_line_refusal(tmp_path: Path, extra: list[str], code: int, message: str) -> None:
    args = ["fit", "--store", str(tmp_path / "s.h5"), "--out", str(tmp_path / "m"), *extra]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == code and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("wb: error: ") and message in result.stderr
    assert not (tmp_path / "m").exists()
