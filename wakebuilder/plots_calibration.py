"""PNG plots of a calibration: threshold sweep and DET curve.

Built on a ``matplotlib.figure.Figure`` without pyplot, so the importer's backend (a notebook's, say) and
its global figure state are left alone.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import atomic_write_bytes

SWEEP_NAME = "calibration_sweep.png"
DET_NAME = "calibration_det.png"


def _figure() -> Any:
    from matplotlib.figure import Figure

    return Figure(figsize=(6, 4))


def _save(fig: Any, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue())


def plot_sweep(out_dir: str | os.PathLike[str], table: dict[str, np.ndarray], threshold: float) -> Path:
    """FAR, FRR and F1 against the threshold, with the chosen threshold marked."""
    fig = _figure()
    ax = fig.subplots()
    for key, label in (("far", "FAR"), ("frr", "FRR"), ("f1", "F1")):
        ax.plot(table["threshold"], table[key], label=label)
    ax.axvline(threshold, color="k", linestyle="--", linewidth=1, label=f"threshold {threshold:.3f}")
    ax.set_xlabel("threshold (calibrated probability)")
    ax.set_ylim(-0.02, 1.02)
    ax.legend()
    ax.grid(alpha=0.3)
    return _save(fig, Path(out_dir) / SWEEP_NAME)


def plot_det(
    out_dir: str | os.PathLike[str], frr: np.ndarray, fa_per_hour: np.ndarray, threshold: float
) -> Path:
    """DET curve: FRR against false accepts per hour over thresholds."""
    fig = _figure()
    ax = fig.subplots()
    ax.plot(np.maximum(fa_per_hour, 1e-3), frr, marker=".")
    ax.set_xscale("log")
    ax.set_xlabel("false accepts per hour (0 shown as 0.001)")
    ax.set_ylabel("false reject rate")
    ax.set_title(f"DET (chosen threshold {threshold:.3f})")
    ax.grid(alpha=0.3, which="both")
    return _save(fig, Path(out_dir) / DET_NAME)
