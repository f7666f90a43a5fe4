from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wakebuilder.errors import ConfigError, TrainingError
from wakebuilder.train.split import resolve_groups, split_groups


def _dataset(
    n_groups: int = 12, per_group: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    groups = np.repeat([f"g{i}" for i in range(n_groups)], per_group)
    # half the groups are voices saying the wake word (plus some other speech), half negative-only sources
    labels = np.array([int(int(g[1:]) % 2 == 0 and rng.random() < 0.7) for g in groups])
    kinds = np.where(labels == 1, "tts", "real_negative")
    return groups, labels, kinds


def test_no_group_on_both_sides_and_every_row_placed() -> None:
    groups, labels, kinds = _dataset()
    split = split_groups(groups, labels, kinds, val_fraction=0.25, seed=1)
    assert not set(split.train_groups) & set(split.val_groups)
    train, val = split.masks(groups)
    assert np.all(train ^ val)
    for name in split.val_groups:
        assert not np.any(train[groups == name])


def test_stratified_both_sides_have_both_classes() -> None:
    groups, labels, kinds = _dataset()
    for seed in range(5):
        train, val = split_groups(groups, labels, kinds, seed=seed).masks(groups)
        assert set(labels[train]) == {0, 1} and set(labels[val]) == {0, 1}
        assert 0.1 < val.mean() < 0.45


def test_augmented_copies_follow_their_parent() -> None:
    ids = ["a", "b", "a-aug1", "a-aug1-aug", "b-aug", "orphan"]
    groups = ["voice1", "voice2", "augment", "augment", "augment", "augment"]
    parents = [None, None, "a", "a-aug1", "b", "missing"]
    resolved = resolve_groups(ids, groups, parents)
    assert resolved.tolist() == ["voice1", "voice2", "voice1", "voice1", "voice2", "augment"]


def test_split_with_augmented_copies_has_no_leak() -> None:
    ids = [f"c{i}" for i in range(40)] + [f"c{i}-aug" for i in range(40)]
    base_groups = [f"v{i % 8}" for i in range(40)]
    labels = np.array([int(i % 8 < 4) for i in range(40)] * 2)
    resolved = resolve_groups(ids, base_groups + ["aug"] * 40, [None] * 40 + [f"c{i}" for i in range(40)])
    split = split_groups(resolved, labels, np.array(["tts"] * 80), seed=0)
    train, _ = split.masks(resolved)
    assert np.array_equal(train[:40], train[40:])  # each copy on its parent's side


def test_keep_recordings_in_train() -> None:
    groups, labels, kinds = _dataset(n_groups=16)
    kinds = kinds.copy()
    kinds[groups == "g0"] = "recording"
    kinds[groups == "g2"] = "recording"
    for seed in range(6):
        split = split_groups(groups, labels, kinds, seed=seed, keep_recordings_in_train=True)
        assert {"g0", "g2"} <= set(split.train_groups)


def test_same_seed_same_split_and_seeds_differ() -> None:
    groups, labels, kinds = _dataset(n_groups=20)
    a = split_groups(groups, labels, kinds, seed=7)
    assert a == split_groups(groups, labels, kinds, seed=7)
    assert len({split_groups(groups, labels, kinds, seed=s).val_groups for s in range(6)}) > 1
    assert a.to_json()["val_fraction"] == 0.25 and sorted(a.to_json()) == [
        "seed", "train_groups", "val_fraction", "val_groups"]


def test_too_few_groups() -> None:
    with pytest.raises(TrainingError, match="too few groups"):
        split_groups(np.array(["only"] * 6), np.array([0, 1] * 3), np.array(["tts"] * 6))


def test_lone_positive_group_stays_in_train_and_missing_class_is_refused() -> None:
    groups = np.array(["p"] * 5 + ["n1"] * 5 + ["n2"] * 5)
    labels = np.array([1] * 5 + [0] * 10)
    split = split_groups(groups, labels, np.array(["tts"] * 15), seed=0)  # lone positive group stays in train
    assert "p" in split.train_groups
    # the only negatives live in the small group the split holds out: training would lack them
    groups = np.array(["mixed"] * 2 + ["pos"] * 4)
    with pytest.raises(TrainingError, match="training split has no negatives"):
        split_groups(groups, np.array([1, 0, 1, 1, 1, 1]), np.array(["tts"] * 6), seed=0)


def test_bad_fraction() -> None:
    groups, labels, kinds = _dataset()
    with pytest.raises(ConfigError):
        split_groups(groups, labels, kinds, val_fraction=1.0)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 9), st.integers(0, 1)), min_size=12, max_size=80),
    st.integers(0, 99),
)
def test_property_split_is_a_partition_of_groups(rows: list[tuple[int, int]], seed: int) -> None:
    groups = np.array([f"g{g}" for g, _ in rows])
    labels = np.array([y for _, y in rows])
    try:
        split = split_groups(groups, labels, np.array(["tts"] * len(rows)), seed=seed)
    except TrainingError:
        return  # too few groups or a class missing from training: refused, not leaked
    assert set(split.train_groups) | set(split.val_groups) == set(groups.tolist())
    assert not set(split.train_groups) & set(split.val_groups)
    assert split.val_groups and set(labels[split.masks(groups)[0]]) == {0, 1}
