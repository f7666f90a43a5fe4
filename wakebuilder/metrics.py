"""Detector metrics: per-clip threshold sweeps, false accepts per hour, FRR at a FA/h, DET points.

Per-clip metrics treat every clip as one decision (score >= threshold means
"wake word"). FAR is false accepts over negatives, FRR false rejects over
positives. FA/h counts streaming events (see ``wakebuilder.events``) per
hour of continuous negative audio, which is what a user actually hears.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wakebuilder.errors import ConfigError

FA_TARGETS = (0.5, 0.1)
"""False accepts per hour at which FRR is reported."""

SEED_TARGETS: dict[str, tuple[str, float]] = {
    "accuracy": (">", 0.95),
    "precision": (">", 0.90),
    "recall": (">", 0.90),
    "f1": (">", 0.90),
    "far": ("<", 0.05),
    "frr": ("<", 0.05),
}
"""The seed project's per-clip targets."""


def threshold_grid(scores: np.ndarray | None = None, *, stream_peak: float | None = None) -> np.ndarray:
    """0.01..0.99 in steps of 0.01, plus finer steps near 0 and 1 where scores saturate.

    ``stream_peak``: the highest score on the calibration streams. Above 0.99 the fine steps near 1 are
    added, so a false accept that scores 0.995 does not leave every threshold of the grid with one event
    (6 FA/h on a 10-minute stream) and an FA/h target out of reach.
    """
    grid = np.round(np.arange(1, 100) / 100, 2)
    near_one = [0.991 + 0.001 * i for i in range(9)] + [0.9991 + 0.0001 * i for i in range(9)]
    if stream_peak is not None and stream_peak > 0.99:
        grid = np.unique(np.concatenate([grid, np.round(near_one, 4)]))
    if scores is not None and np.asarray(scores).size:
        values = np.asarray(scores, dtype=np.float64)
        extra = []
        if np.mean(values > 0.99) > 0.05:
            extra += near_one
        if np.mean(values < 0.01) > 0.05:
            extra += [0.001 * i for i in range(1, 10)]
        grid = np.unique(np.concatenate([grid, np.round(extra, 4)]))
    return grid


def _check(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels).astype(np.int64).reshape(-1)
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y.shape != s.shape:
        raise ConfigError(f"metrics: {y.size} labels but {s.size} scores")
    if not np.all(np.isfinite(s)):
        raise ConfigError("metrics: scores hold NaN or infinity")
    return y, s


def sweep(labels: np.ndarray, scores: np.ndarray, thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Per-clip metrics at each threshold (vectorised).

    Returns:
        arrays over thresholds: ``threshold, tp, fp, tn, fn, accuracy, precision,
        recall, f1, far, frr`` (precision is 1 when nothing is accepted).
    """
    y, s = _check(labels, scores)
    t = np.asarray(thresholds, dtype=np.float64)
    accept = s[None, :] >= t[:, None]
    pos, neg = y == 1, y == 0
    tp = (accept & pos).sum(1)
    fp = (accept & neg).sum(1)
    fn = pos.sum() - tp
    tn = neg.sum() - fp
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 1.0)
        recall = np.where(pos.sum() > 0, tp / max(pos.sum(), 1), 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {
        "threshold": t, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
        "accuracy": (tp + tn) / max(y.size, 1),
        "precision": precision, "recall": recall, "f1": f1,
        "far": fp / max(neg.sum(), 1), "frr": fn / max(pos.sum(), 1),
    }


def metrics_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float | None]:
    """Per-clip metrics at one threshold, as plain numbers.

    Recall, F1 and FRR are None without positives, FAR without negatives: there is no clip to measure them on,
    and ``sweep``'s 0 there (recall 0 beside FRR 0) would read as a verdict on the model.
    """
    row = sweep(labels, scores, np.array([threshold]))
    out: dict[str, float | None] = {k: (int(v[0]) if k in ("tp", "fp", "tn", "fn") else float(v[0]))
                                    for k, v in row.items()}
    y = np.asarray(labels).reshape(-1)
    undefined = (("recall", "f1", "frr") if not (y == 1).any() else ()) + (("far",) if not (y == 0).any() else ())
    return out | dict.fromkeys(undefined)


def fa_per_hour(n_events: int | np.ndarray, hours: float) -> float | np.ndarray:
    """False accepts per hour of negative audio."""
    if hours <= 0:
        raise ConfigError(f"FA/h needs negative audio: got {hours} hours")
    return n_events / hours


def fa_per_hour_upper(n_events: int, hours: float, confidence: float = 0.95) -> float | None:
    """The one-sided upper confidence bound of the false accepts per hour, after ``n_events`` in ``hours``.

    A count of false accepts is Poisson: 0 in 25 minutes reads as 0.00 FA/h, yet bounds the rate only below
    about 7.2 an hour (95 %), so a short stream cannot show a 0.5 FA/h target met. The exact (Garwood) bound
    is ``chi2.ppf(confidence, 2 * (n + 1)) / 2`` events per ``hours``; None without audio (``hours <= 0``),
    as the FA/h itself is then n/a.

    Raises:
        ConfigError: ``confidence`` not between 0 and 1.
    """
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"FA/h upper bound: confidence {confidence} must be between 0 and 1 (e.g. 0.95)")
    if hours <= 0:
        return None
    from scipy.stats import chi2  # only where a stream was scored: importing scipy.stats takes ~0.7 s

    return float(chi2.ppf(confidence, 2 * (int(n_events) + 1)) / 2 / hours)


def fa_per_hour_upper_of_rate(rate: float, hours: float, confidence: float = 0.95) -> float | None:
    """``fa_per_hour_upper`` of a rate measured on ``hours`` of stream (a calibration sweep keeps rates, not counts):
    the rate is a count over those hours, so the count is the rate times the hours, rounded back to the integer."""
    return fa_per_hour_upper(round(rate * hours), hours, confidence)


def det_points(frr: np.ndarray, fa_h: np.ndarray, thresholds: np.ndarray) -> list[dict[str, float]]:
    """DET curve points (FRR against FA/h), one per threshold."""
    return [
        {"threshold": float(t), "frr": float(r), "fa_per_hour": float(f)}
        for t, r, f in zip(thresholds, frr, fa_h, strict=True)
    ]


def frr_at_fa(frr: np.ndarray, fa_h: np.ndarray, target: float) -> float | None:
    """The lowest FRR among thresholds whose FA/h is at most ``target`` (None if none reaches it)."""
    ok = np.asarray(fa_h) <= target + 1e-12
    return float(np.min(np.asarray(frr)[ok])) if ok.any() else None


def best_f1_threshold(table: dict[str, np.ndarray]) -> float:
    """The centre of the run of thresholds with the best F1 (ties keep the widest margin)."""
    f1 = table["f1"]
    best = np.flatnonzero(f1 >= f1.max() - 1e-12)
    return float(table["threshold"][best[len(best) // 2]])


def lowest_threshold_meeting(fa_h: np.ndarray, thresholds: np.ndarray, target: float) -> float | None:
    """The lowest threshold from which every higher one's streaming FA/h is at most ``target``, if any.

    Not merely the lowest that meets it: FA/h need not fall as the threshold rises, since a run of frames
    above the threshold is one event. A trace that stays above a low threshold for the whole stream counts
    once there, and "meets" any target where a higher threshold would fire many times.
    """
    above = np.flatnonzero(np.asarray(fa_h) > target + 1e-12)
    first = int(above[-1]) + 1 if above.size else 0
    return float(thresholds[first]) if first < len(thresholds) else None


def target_table(metrics: dict[str, float | None]) -> list[dict[str, Any]]:
    """The seed's per-clip targets with the measured value and pass/fail (both None where not measured)."""
    rows = []
    for name, (op, goal) in SEED_TARGETS.items():
        value = None if metrics[name] is None else float(metrics[name])
        ok = None if value is None else bool(value > goal if op == ">" else value < goal)
        rows.append({"metric": name, "value": value, "target": f"{op} {goal:g}", "pass": ok})
    return rows


def format_table(rows: list[dict[str, Any]], fa: dict[str, Any] | None = None) -> str:
    """The target table (and FA/h figures) as aligned text for stderr."""
    lines = [f"{'metric':<10} {'value':>8}  {'target':<8} result"]
    for row in rows:
        verdict = "n/a" if row["pass"] is None else "pass" if row["pass"] else "FAIL"
        value = "n/a" if row["value"] is None else f"{row['value']:.4f}"
        lines.append(f"{row['metric']:<10} {value:>8}  {row['target']:<8} {verdict}")
    for key, value in (fa or {}).items():
        shown = "n/a" if value is None else (f"{value:.4f}" if isinstance(value, float) else str(value))
        lines.append(f"{key:<24} {shown}")
    return "\n".join(lines)
