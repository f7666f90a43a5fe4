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
from wakebuilder.errors import ConfigError
from wakebuilder.train.fit import FitConfig, fit_head, run_fit
from wakebuilder.train.head import CentroidHead, HeadConfig, build_head

CENTROIDS = SMALL.replace(head="centroids")


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _by_hand(sequence: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """research/centroid_head.py's ``Centroids`` direction, in numpy."""
    x = _unit(np.asarray(sequence, dtype=np.float32).mean(axis=1))
    return _unit(x[labels == 1].mean(axis=0)) - _unit(x[labels == 0].mean(axis=0))


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
    assert len(closed.history) == 1 and set(closed.history[0]) == set(trained.history[0])
    assert closed.history[0]["epoch"] == 1 and np.isfinite(closed.history[0]["train_loss"])


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
