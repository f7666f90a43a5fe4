"""The centroids head (``wb fit --head centroids``): fitted in closed form on the training split, refused where it
cannot be fitted so."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.train.conftest import SMALL, planted
from tests.train.test_data import FakeStore
from wakebuilder.errors import ConfigError, TrainingError
from wakebuilder.train.centroids import centroid_direction
from wakebuilder.train.fit import FitConfig, fit_head, run_fit
from wakebuilder.train.head import CentroidHead, HeadConfig, build_head

CENTROIDS = SMALL.replace(head="centroids")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _by_hand(sequence: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """research/centroid_head.py's ``Centroids`` direction, in numpy."""
    x = _unit(np.asarray(sequence, dtype=np.float32).mean(axis=1))
    return _unit(x[labels == 1].mean(axis=0)) - _unit(x[labels == 0].mean(axis=0))


def _shrunk_by_hand(sequence: np.ndarray, labels: np.ndarray, shrinkage: float) -> np.ndarray:
    """research/linear_scores.py's ``shrunk_direction`` on the unit rows, at unit length."""
    x = _unit(np.asarray(sequence, dtype=np.float32).mean(axis=1)).astype(np.float64)
    pos, neg = x[labels == 1], x[labels == 0]
    centred = np.concatenate([pos - pos.mean(axis=0), neg - neg.mean(axis=0)])
    cov = centred.T @ centred / len(centred)
    target = np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
    w = np.linalg.solve(shrinkage * cov + (1 - shrinkage) * target, pos.mean(axis=0) - neg.mean(axis=0))
    return _unit(w)


def test_the_direction_is_the_formula_on_the_training_split_and_separates_the_classes() -> None:
    arrays = planted(400, signal=2.0)
    result = fit_head(arrays, CENTROIDS)
    train, val = result.split.masks(arrays.group)
    assert isinstance(result.head, CentroidHead) and result.head.config.kind == "centroids"
    expected = _by_hand(arrays.sequence[train], arrays.label[train])
    np.testing.assert_allclose(result.head.direction.numpy(), expected, atol=1e-6)
    assert not np.allclose(expected, _by_hand(arrays.sequence, arrays.label), atol=1e-6)  # validation rows left out
    with torch.no_grad():
        logits = result.head(torch.from_numpy(arrays.sequence[val]).float()).numpy()
    labels = arrays.label[val]
    assert logits[labels == 1].min() > logits[labels == 0].max()
    assert result.best_epoch == 1 and not result.stopped_early and result.best["val_loss"] > 0


def test_its_one_history_record_has_the_keys_of_a_trained_heads() -> None:
    arrays = planted(200, signal=2.0)
    trained = fit_head(arrays, SMALL.replace(max_epochs=1))
    closed = fit_head(arrays, CENTROIDS)
    assert len(closed.history) == 1 and set(closed.history[0]) == set(trained.history[0]) | {"threshold_logit"}
    assert closed.history[0]["epoch"] == 1 and np.isfinite(closed.history[0]["train_loss"])


@pytest.mark.parametrize("shrinkage", [0.0, 0.5])
def test_its_metrics_are_at_the_best_f1_logit_threshold_not_at_logit_0(shrinkage: float) -> None:
    from wakebuilder import metrics

    # few positives among many negatives (as a real store): at logit 0 the head accepts a crowd of negatives
    arrays = planted(600, signal=0.7, pos_share=0.1)
    result = fit_head(arrays, CENTROIDS.replace(shrinkage=shrinkage))
    _, val = result.split.masks(arrays.group)
    with torch.no_grad():
        logits = result.head(torch.from_numpy(arrays.sequence[val]).float()).numpy().astype(np.float64)
    labels = arrays.label[val]
    record = result.history[0]
    table = metrics.sweep(labels, logits, np.unique(logits))
    assert record["f1"] == pytest.approx(float(table["f1"].max()), abs=0.02)
    at_zero = metrics.sweep(labels, logits, np.array([0.0]))["f1"][0]
    assert record["f1"] > at_zero + 0.1  # what the record said before: the figures at logit 0
    accepted = logits >= record["threshold_logit"]
    assert record["recall"] == pytest.approx(float(accepted[labels == 1].mean()))


def test_streaming_gives_the_same_direction() -> None:
    arrays = planted(600, signal=2.0)
    store = FakeStore(arrays)
    store.spec = type("Spec", (), {"seq_len": 8, "dim": 32})()
    streamed = fit_head(dataclasses.replace(arrays, sequence=None), CENTROIDS, stream_source=store)
    in_memory = fit_head(arrays, CENTROIDS)
    assert streamed.mode == "stream"
    torch.testing.assert_close(streamed.head.direction, in_memory.head.direction, atol=1e-6, rtol=0)
    assert streamed.best["val_loss"] == pytest.approx(in_memory.best["val_loss"], rel=1e-5)


def test_the_head_averages_over_time_and_scales_to_unit_length() -> None:
    head = build_head(HeadConfig(input_dim=3, seq_len=2, kind="centroids"))
    assert isinstance(head, CentroidHead)
    head.direction.copy_(torch.tensor([1.0, -1.0, 0.0]))
    sequence = torch.tensor([[[2.0, 0.0, 0.0], [4.0, 0.0, 0.0]], [[0.0, 0.0, 5.0], [0.0, 3.0, 5.0]]])
    torch.testing.assert_close(head(sequence), torch.tensor([1.0, -1.5 / np.sqrt(1.5**2 + 25)], dtype=torch.float32))
    ensemble = build_head(HeadConfig(input_dim=3, seq_len=2, kind="centroids", members=2, combine="probability"))
    assert all(isinstance(member, CentroidHead) for member in ensemble.members)  # wb ensemble's, as loaded


def test_bad_kinds_and_members_are_refused() -> None:
    with pytest.raises(ConfigError, match="head 'tree'"):
        FitConfig(head="tree")
    with pytest.raises(ConfigError, match="kind 'tree'"):
        HeadConfig(input_dim=4, seq_len=1, kind="tree")
    with pytest.raises(ConfigError, match="--members 1"):
        FitConfig(head="centroids", members=2)


def test_fine_tuning_is_refused_for_centroids(tmp_path: Path) -> None:
    from tests.train.test_run_fit import make_store

    store = make_store(tmp_path / "store.zarr", n=200)
    network, _ = run_fit(store, tmp_path / "network", SMALL.replace(max_epochs=1), device="cpu", progress=False)
    with pytest.raises(ConfigError, match="nothing to fine-tune"):
        run_fit(store, tmp_path / "m", CENTROIDS, device="cpu", init=network, progress=False)
    centroids, _ = run_fit(store, tmp_path / "centroids", CENTROIDS, device="cpu", progress=False)
    with pytest.raises(ConfigError, match="centroids head"):
        run_fit(store, tmp_path / "m", SMALL, device="cpu", init=centroids, progress=False)
    arrays = planted(200)
    with pytest.raises(ConfigError, match="nothing to fine-tune"):
        fit_head(arrays, CENTROIDS, init_head=fit_head(arrays, SMALL.replace(max_epochs=1)).head)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("shrinkage", [0.05, 0.2, 1.0])
def test_a_shrinkage_gives_the_shrunk_discriminant_of_the_training_split_streamed_or_not(shrinkage: float) -> None:
    arrays = planted(600, signal=1.0)
    store = FakeStore(arrays)
    store.spec = type("Spec", (), {"seq_len": 8, "dim": 32})()
    config = CENTROIDS.replace(shrinkage=shrinkage)
    in_memory = fit_head(arrays, config)
    streamed = fit_head(dataclasses.replace(arrays, sequence=None), config, stream_source=store)
    train, _ = in_memory.split.masks(arrays.group)
    expected = _shrunk_by_hand(arrays.sequence[train], arrays.label[train], shrinkage)
    for result in (in_memory, streamed):
        np.testing.assert_allclose(result.head.direction.numpy(), expected, atol=1e-5)
    assert streamed.mode == "stream" and isinstance(in_memory.head, CentroidHead)
    assert not np.allclose(expected, _unit(_by_hand(arrays.sequence[train], arrays.label[train])), atol=1e-3)


def test_shrinkage_zero_is_the_two_centroids_bit_for_bit() -> None:
    arrays = planted(400, signal=2.0)
    default = fit_head(arrays, CENTROIDS)
    zero = fit_head(arrays, CENTROIDS.replace(shrinkage=0.0))
    assert torch.equal(default.head.direction, zero.head.direction)
    train, _ = default.split.masks(arrays.group)
    np.testing.assert_allclose(zero.head.direction.numpy(), _by_hand(arrays.sequence[train], arrays.label[train]),
                               atol=1e-6)


class _Rows:
    """A loop whose training rows are given (``centroid_direction`` reads nothing else)."""

    def __init__(self, rows: np.ndarray, labels: np.ndarray) -> None:
        self.rows, self.labels = rows, labels

    def train_rows(self):
        for start in range(0, len(self.rows), 3):  # several batches: the sums run across them
            yield (torch.from_numpy(self.rows[start:start + 3, None, :]),
                   torch.from_numpy(self.labels[start:start + 3]).float())


def test_a_singular_within_class_covariance_is_refused_with_what_to_do() -> None:
    """Each class one repeated row: no within-class spread, so no discriminant at any shrinkage."""
    rows = np.array([[1.0, 0.0, 0.0]] * 4 + [[0.0, 1.0, 0.0]] * 4, dtype=np.float32)
    labels = np.array([1] * 4 + [0] * 4, dtype=np.float32)
    torch.testing.assert_close(centroid_direction(_Rows(rows, labels)), torch.tensor([1.0, -1.0, 0.0]))
    for shrinkage in (0.2, 1.0):
        with pytest.raises(TrainingError, match=f"--shrinkage {shrinkage}: .*singular.*--shrinkage 0"):
            centroid_direction(_Rows(rows, labels), shrinkage=shrinkage)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_a_shrinkage_out_of_range_is_refused_naming_the_range(bad: float) -> None:
    with pytest.raises(ConfigError, match=r"shrinkage=.*: expected 0 <= shrinkage <= 1"):
        FitConfig(head="centroids", shrinkage=bad)


def test_a_shrinkage_with_a_network_head_is_refused() -> None:
    with pytest.raises(ConfigError, match="--shrinkage 0.2 .* --head centroids"):
        FitConfig(shrinkage=0.2)
    assert FitConfig(shrinkage=0.0).shrinkage == 0.0
