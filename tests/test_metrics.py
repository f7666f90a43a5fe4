"""Per-clip sweeps, FA/h arithmetic, FRR at a FA/h, the target table."""

from __future__ import annotations

import numpy as np
import pytest

from wakebuilder import metrics
from wakebuilder.errors import ConfigError


def test_sweep_golden() -> None:
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])
    scores = np.array([0.9, 0.8, 0.6, 0.2, 0.7, 0.1, 0.1, 0.0, 0.3, 0.05])
    row = metrics.metrics_at(labels, scores, 0.5)
    assert (row["tp"], row["fp"], row["tn"], row["fn"]) == (3, 1, 5, 1)
    assert row["accuracy"] == pytest.approx(0.8)
    assert row["precision"] == pytest.approx(0.75) and row["recall"] == pytest.approx(0.75)
    assert row["f1"] == pytest.approx(0.75)
    assert row["far"] == pytest.approx(1 / 6) and row["frr"] == pytest.approx(0.25)
    table = metrics.sweep(labels, scores, np.array([0.01, 0.99]))
    assert table["frr"].tolist() == [0.0, 1.0] and table["precision"][1] == 1.0  # nothing accepted


def test_grid_refines_near_saturation() -> None:
    assert len(metrics.threshold_grid()) == 99
    grid = metrics.threshold_grid(np.r_[np.full(50, 0.9999), np.full(50, 1e-5)])
    assert grid.max() >= 0.999 and grid.min() <= 0.001 and np.all(np.diff(grid) > 0)


def test_fa_per_hour_arithmetic() -> None:
    assert metrics.fa_per_hour(3, 0.5) == pytest.approx(6.0)
    np.testing.assert_allclose(metrics.fa_per_hour(np.array([0, 2, 10]), 2.0), [0, 1, 5])
    with pytest.raises(ConfigError, match="negative audio"):
        metrics.fa_per_hour(1, 0.0)


def test_fa_per_hour_upper_is_the_exact_poisson_bound() -> None:
    """0 false accepts in 25 minutes read as 0.00 FA/h, but only bound the rate below about 7.2 an hour (95 %):
    the one-sided Garwood bound chi2(0.95, 2(n + 1)) / 2 per hour of audio."""
    for n, per_hour in ((0, 2.9957), (1, 4.7439), (5, 10.513)):
        assert metrics.fa_per_hour_upper(n, 1.0) == pytest.approx(per_hour, abs=1e-3)
        assert metrics.fa_per_hour_upper(n, 2.0) == pytest.approx(per_hour / 2, abs=1e-3)
    assert metrics.fa_per_hour_upper(0, 25 / 60) == pytest.approx(7.19, abs=1e-2)
    assert metrics.fa_per_hour_upper(0, 1.0, confidence=0.99) == pytest.approx(4.6052, abs=1e-3)  # -ln(0.01)
    assert metrics.fa_per_hour_upper(0, 0.0) is None and metrics.fa_per_hour_upper(3, -1.0) is None
    bounds = [metrics.fa_per_hour_upper(n, 0.5) for n in range(20)]
    assert all(b > a for a, b in zip(bounds, bounds[1:])) and all(b > n / 0.5 for n, b in enumerate(bounds))
    assert isinstance(bounds[0], float)
    with pytest.raises(ConfigError, match="confidence 1.0"):
        metrics.fa_per_hour_upper(0, 1.0, confidence=1.0)


def test_the_bound_of_a_rate_is_that_of_its_count() -> None:
    """Calibration keeps rates over its stream's hours; the bound is of the count they came from (3 events in 0.17 h
    is a rate whose product with the hours is not exactly 3 in floating point)."""
    hours = 0.17
    assert metrics.fa_per_hour_upper_of_rate(3 / hours, hours) == metrics.fa_per_hour_upper(3, hours)
    assert metrics.fa_per_hour_upper_of_rate(0.0, 25 / 60) == pytest.approx(7.19, abs=1e-2)
    assert metrics.fa_per_hour_upper_of_rate(0.0, 0.0) is None


def test_frr_at_fa_and_threshold_rules() -> None:
    thresholds = np.array([0.1, 0.3, 0.5, 0.7, 0.9])
    fa_h = np.array([10.0, 2.0, 0.5, 0.1, 0.0])
    frr = np.array([0.0, 0.01, 0.05, 0.2, 0.6])
    assert metrics.frr_at_fa(frr, fa_h, 0.5) == pytest.approx(0.05)
    assert metrics.frr_at_fa(frr, fa_h, 0.1) == pytest.approx(0.2)
    assert metrics.frr_at_fa(frr, fa_h + 1, 0.1) is None
    assert metrics.lowest_threshold_meeting(fa_h, thresholds, 0.5) == 0.5
    points = metrics.det_points(frr, fa_h, thresholds)
    assert points[0] == {"threshold": 0.1, "frr": 0.0, "fa_per_hour": 10.0}


def test_threshold_rule_needs_every_higher_threshold_to_meet_the_target() -> None:
    """A trace above a low threshold for the whole stream is one event there (0.5 FA/h on 2 h) while higher
    thresholds split it into many: the lowest threshold meeting the target is not the one to take."""
    thresholds = np.array([0.01, 0.1, 0.3, 0.5, 0.7, 0.9])
    fa_h = np.array([0.5, 12.0, 6.0, 0.4, 0.6, 0.0])
    assert metrics.lowest_threshold_meeting(fa_h, thresholds, 0.5) == 0.9
    assert metrics.lowest_threshold_meeting(fa_h, thresholds, 1.0) == 0.5
    assert metrics.lowest_threshold_meeting(fa_h + 1, thresholds, 0.5) is None


def test_best_f1_threshold_takes_the_middle_of_the_plateau() -> None:
    labels = np.array([1] * 5 + [0] * 5)
    scores = np.array([0.8] * 5 + [0.2] * 5)
    table = metrics.sweep(labels, scores, metrics.threshold_grid())
    assert metrics.best_f1_threshold(table) == pytest.approx(0.5, abs=0.011)


def test_target_table_and_text() -> None:
    rows = metrics.target_table(
        {"accuracy": 0.99, "precision": 0.8, "recall": 0.95, "f1": 0.87, "far": 0.01, "frr": 0.06})
    verdict = {r["metric"]: r["pass"] for r in rows}
    assert verdict == {"accuracy": True, "precision": False, "recall": True, "f1": False, "far": True,
                       "frr": False}
    text = metrics.format_table(rows, {"FA/h": 0.25, "FRR at 0.1 FA/h": None})
    assert "FAIL" in text and "n/a" in text and "0.2500" in text


def test_mismatched_or_nan_inputs_are_refused() -> None:
    with pytest.raises(ConfigError):
        metrics.sweep(np.array([1, 0]), np.array([0.5]), np.array([0.5]))
    with pytest.raises(ConfigError, match="NaN"):
        metrics.sweep(np.array([1, 0]), np.array([0.5, np.nan]), np.array([0.5]))


def test_grid_reaches_above_a_stream_false_accept_near_one() -> None:
    from wakebuilder.metrics import threshold_grid

    assert threshold_grid(np.array([0.2, 0.6])).max() == 0.99
    grid = threshold_grid(np.array([0.2, 0.6]), stream_peak=0.9962)
    assert grid.max() > 0.9962 and 0.997 in grid.tolist()  # a threshold above the stream's peak exists
    assert threshold_grid(np.array([0.2]), stream_peak=0.95).max() == 0.99
