"""research/linear_scores.py and centroid_head.py: the two-centroid scorer on one-vector windows."""

from __future__ import annotations

import numpy as np
import pytest


def clusters(seed: int = 0, n: int = 200, dim: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 1, dim)`` sequences of two classes around two directions, and their labels."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(2, dim))
    y = np.repeat([0, 1], n)
    x = centres[y] + 0.8 * rng.normal(size=(2 * n, dim))
    return x[:, None, :].astype(np.float32), y


def test_the_two_centroids_are_the_unit_means_of_the_unit_rows(linear_scores, centroid_head) -> None:
    seq, y = clusters()
    x = linear_scores.unit(linear_scores.vectors(seq))
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-6)
    scorer = centroid_head.Centroids(x, y)
    mu_p, mu_n = x[y == 1].mean(axis=0), x[y == 0].mean(axis=0)
    by_hand = mu_p / np.linalg.norm(mu_p) - mu_n / np.linalg.norm(mu_n)
    assert np.allclose(scorer.direction, by_hand, atol=1e-6)
    # linear_scores' diff is the same ranking: cos to the positives' mean minus cos to the negatives'
    diff = linear_scores.fit_scorer("diff", x, y)(x)
    assert np.allclose(scorer.raw(seq), diff, atol=1e-5)
    # a row's length does not change its score (the cosine geometry the backbone was trained for)
    assert np.allclose(scorer.raw(3.0 * seq), scorer.raw(seq), atol=1e-5)


def test_platt_scaling_keeps_the_ranking_and_gives_probabilities(centroid_head, linear_scores) -> None:
    seq, y = clusters(1)
    scorer = centroid_head.Centroids(linear_scores.unit(linear_scores.vectors(seq)), y)
    raw = scorer.raw(seq)
    scorer.fit_platt(seq, y)
    p = scorer(seq)
    assert ((p > 0) & (p < 1)).all()
    assert np.array_equal(np.argsort(p, kind="stable"), np.argsort(raw, kind="stable"))
    assert p[y == 1].mean() > 0.8 > 0.2 > p[y == 0].mean()


def test_an_unknown_scorer_is_refused(linear_scores) -> None:
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(SystemExit, match="not a scorer"):
        linear_scores.fit_scorer("nearest", x, np.array([0, 0, 1, 1]))


def test_the_shrunk_discriminant_runs_from_the_mean_difference_to_lda(linear_scores, centroid_head) -> None:
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    seq, y = clusters(2)
    x = linear_scores.unit(linear_scores.vectors(seq))
    cosine = lambda a, b: float(a @ b / np.linalg.norm(a) / np.linalg.norm(b))  # noqa: E731
    difference = x[y == 1].mean(axis=0) - x[y == 0].mean(axis=0)
    assert cosine(linear_scores.shrunk_direction(x, y, 0.0), difference) > 1 - 1e-6
    lda = LinearDiscriminantAnalysis(solver="lsqr").fit(x, y).coef_[0]
    assert cosine(linear_scores.shrunk_direction(x, y, 1.0), lda) > 1 - 1e-4
    halfway = linear_scores.shrunk_direction(x, y, 0.5)
    assert cosine(halfway, difference) < 1 - 1e-4 and cosine(halfway, lda) < 1 - 1e-4
    # centroid_head's --shrink scores by that direction
    scorer = centroid_head.Centroids(x, y, shrink=0.5)
    assert np.allclose(scorer.raw(seq), x @ halfway, atol=1e-4)
