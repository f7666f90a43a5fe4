"""The realdev benchmark's oracle threshold (benchmarks/real_transfer.py)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "real_transfer.py"


@pytest.fixture(scope="module")
def real_transfer():
    spec = importlib.util.spec_from_file_location("real_transfer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_oracle_is_just_above_the_last_false_accept_excluded(real_transfer) -> None:
    # Two negative files: one peaks at 0.977 (allowed: the one false accept), one at 0.612 (must not fire).
    fa = [np.array([0.1, 0.9, 0.977, 0.2], np.float32), np.array([0.3, 0.612, 0.1], np.float32)]
    threshold = real_transfer.oracle_threshold(fa, max_false_accepts=1)
    assert real_transfer.n_events(fa, threshold) == 1
    assert threshold == float(np.nextafter(np.float32(0.612), np.float32(np.inf)))
    # A positive scoring 0.7 is found at the oracle threshold (the old search returned 0.9 and missed it).
    assert real_transfer.n_detected([np.array([0.7], np.float32)], threshold) == 1


@pytest.mark.parametrize("allowed", [0, 2, 5])
def test_oracle_is_the_lowest_threshold_with_that_many_false_accepts(real_transfer, allowed: int) -> None:
    rng = np.random.default_rng(allowed)
    fa = [rng.random(rng.integers(1, 40)).astype(np.float32) for _ in range(30)]
    threshold = real_transfer.oracle_threshold(fa, max_false_accepts=allowed)
    assert real_transfer.n_events(fa, threshold) <= allowed
    below = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    assert real_transfer.n_events(fa, below) > allowed


def test_word_traces_split_windows_by_file(real_transfer) -> None:
    # Three files: happy (2 windows), negative (3), sheila (1); scores are per window, in file order.
    windows = {"file_index": np.array([0, 0, 1, 1, 1, 2]), "label": np.array(["happy", "negative", "sheila"]),
               "seconds": np.array([1.0, 3.0, 0.5])}
    scores = np.array([0.1, 0.9, 0.2, 0.3, 0.4, 0.8], np.float32)
    pos, fa, fa_seconds = real_transfer.word_traces(scores, windows, "happy")
    assert [t.tolist() for t in pos] == [pytest.approx([0.1, 0.9])]
    assert [t.tolist() for t in fa] == [pytest.approx([0.2, 0.3, 0.4]), pytest.approx([0.8])]
    assert fa_seconds == 3.5


def wb_calls(real_transfer, monkeypatch) -> list[list[str]]:
    """Replace the script's wb runs with a recorder: each call's arguments land in the returned list, and each
    returns the manifest (or store) path it would have printed."""
    calls: list[list[str]] = []

    def fake_wb(*args):
        calls.append([str(a) for a in args])
        out = args[list(args).index("--out") + 1] if "--out" in args else args[list(args).index("--store") + 1]
        return f"{out}/manifest.jsonl"

    monkeypatch.setattr(real_transfer, "wb", fake_wb)
    monkeypatch.setattr(real_transfer, "cached", lambda out, *args: f"{out}/manifest.jsonl")
    monkeypatch.setattr(real_transfer, "voices_digest", lambda engines: "v")
    return calls


def test_extra_augment_adds_a_second_pass_to_the_store(real_transfer, monkeypatch, tmp_path: Path) -> None:
    calls = wb_calls(real_transfer, monkeypatch)
    recipe = real_transfer.Recipe(
        engines=("flite",), neg_engines=("flite",), n_pos=10, n_hard=10, n_speech=10, pos_copies=2, neg_copies=1,
        train_stream_s=10.0, cal_stream_s=10.0, objective="f1", target_fa_per_hour=0.5, window_s=2.5, n_words=0,
        augment_args=(), fit_args=(), extra_augment_args=("--formant-p", "1"))
    for work in ("work", "work2"):
        (tmp_path / work).mkdir()
    real_transfer.prepare_store("happy", 3, recipe, tmp_path / "work", tmp_path / "data", lambda msg: None)
    augments = [c for c in calls if c[0] == "augment"]
    assert len(augments) == 4
    extra = [c for c in augments if c[-2:] == ["--formant-p", "1"]]
    assert [c[c.index("--seed") + 1] for c in extra] == ["103", "103"]
    assert [c[c.index("--copies") + 1] for c in extra] == ["2", "1"]
    embed = next(c for c in calls if c[0] == "embed")
    assert all(f"{c[c.index('--out') + 1]}/manifest.jsonl" in embed for c in augments)
    calls.clear()
    real_transfer.prepare_store("happy", 3, real_transfer.Recipe(**{**recipe.__dict__, "extra_augment_args": ()}),
                                tmp_path / "work2", tmp_path / "data", lambda msg: None)
    assert len([c for c in calls if c[0] == "augment"]) == 2


def test_real_negatives_and_their_copies_go_into_the_store(real_transfer, monkeypatch, tmp_path: Path) -> None:
    calls = wb_calls(real_transfer, monkeypatch)
    real = str(tmp_path / "real" / "manifest.jsonl")
    recipe = real_transfer.Recipe(
        engines=("flite",), neg_engines=("flite",), n_pos=10, n_hard=10, n_speech=10, pos_copies=2, neg_copies=3,
        train_stream_s=10.0, cal_stream_s=10.0, objective="f1", target_fa_per_hour=0.5, window_s=2.5, n_words=0,
        augment_args=("--pitch-p", "0"), fit_args=(), real_negatives=real)
    (tmp_path / "work").mkdir()
    real_transfer.prepare_store("happy", 3, recipe, tmp_path / "work", tmp_path / "data", lambda msg: None)
    copies = [c for c in calls if c[0] == "augment" and c[1] == real]
    assert len(copies) == 1
    assert copies[0][copies[0].index("--copies") + 1] == "3" and copies[0][-2:] == ["--pitch-p", "0"]
    embed = next(c for c in calls if c[0] == "embed")
    assert real in embed and f"{copies[0][copies[0].index('--out') + 1]}/manifest.jsonl" in embed


def test_real_negatives_must_exist(real_transfer, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        real_transfer.parse_args(["--real-negatives", str(tmp_path / "missing.jsonl")])
