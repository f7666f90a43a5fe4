"""Scripts written for runs whose ``model/`` was one head refuse a recipe run whose ``model/`` is a ``wb ensemble``
of its heads (``head-*/``, the recipe's layout with more than one head or a centroids head) before any work, naming
the run and research/recipe_heads.py, instead of failing minutes later in ``wb calibrate`` or ``wb ensemble``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


def make_run(root: Path, word: str, *, ensemble: bool) -> Path:
    """A real_transfer run folder ``root/<word>-s0``: ``model/model.json`` as ``wb fit`` or ``wb ensemble`` (its
    members the run's ``head-0``, ``head-1`` and ``head-centroids``) records it."""
    run = root / f"{word}-s0"
    (run / "model").mkdir(parents=True)
    meta = {"backbone": {"spec": "word-embedding", "window_s": 1.5}, "head": {"kind": "network"}}
    if ensemble:
        heads = [run / name / "model" for name in ("head-0", "head-1", "head-centroids")]
        members = [{"model": str(h), "threshold": 0.8, "temperature": 1.0, "bias": 0.0} for h in heads]
        meta |= {"fit": None, "ensemble": {"combine": "probability", "members": members}}
    (run / "model" / "model.json").write_text(json.dumps(meta))
    return run


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_recalibrate_runs_refuses_an_ensemble_run_before_recalibrating_any(
        recalibrate_runs, tmp_path: Path, monkeypatch) -> None:
    single, ensemble = make_run(tmp_path / "r", "forward", ensemble=False), make_run(tmp_path / "r", "marvin",
                                                                                     ensemble=True)
    runs = [{"word": run.name[:-3], "seed": 0, "onnx": str(run / "export" / f"{run.name[:-3]}.onnx"),
             "calibrated": {"threshold": 0.5}} for run in (single, ensemble)]
    (tmp_path / "real_transfer_t.json").write_text(json.dumps({"runs": runs}))
    monkeypatch.setattr(recalibrate_runs, "RESULTS", tmp_path)
    calibrated = []
    monkeypatch.setattr(recalibrate_runs, "calibrate_model", lambda model, *a, **k: calibrated.append(model))
    with pytest.raises(SystemExit) as exc:
        recalibrate_runs.main(["--tag", "t"])
    message = one_line(exc)
    assert message.startswith(f"{ensemble}: model/ is a wb ensemble of 3 ")
    assert f"research/recipe_heads.py --workdir {tmp_path} --tag r --words marvin --data-seeds 0 " in message
    assert calibrated == []  # not even the single-head run before it
    recalibrate_runs.refuse_ensemble(single)  # one head: recalibrated as before


def test_head_seeds_refuses_an_ensemble_run_before_fitting_or_reading_realdev(
        head_seeds, tmp_path: Path, monkeypatch) -> None:
    run = make_run(tmp_path / "t", "marvin", ensemble=True)

    def unexpected(*args, **kwargs):
        raise AssertionError("work started before the refusal")

    monkeypatch.setattr(head_seeds.rt, "realdev_windows", unexpected)
    monkeypatch.setattr(head_seeds, "head_members", unexpected)
    with pytest.raises(SystemExit) as exc:
        head_seeds.main(["--tag", "t", "--workdir", str(tmp_path), "--bank", str(tmp_path / "bank"),
                         "--words", "marvin", "--heads", "5"])
    message = one_line(exc)
    assert message.startswith(f"{run}: model/ is a wb ensemble of 3 ")
    instead = f"research/recipe_heads.py --workdir {tmp_path} --tag t --words marvin --data-seeds 0 --set heads=5"
    assert instead in message
    head_seeds.refuse_ensemble(make_run(tmp_path / "t", "forward", ensemble=False), 5)  # one head: as before
