"""Training records: the per-epoch JSON-lines log and ``training_curves.png``."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_bytes, atomic_write_text

METRICS_NAME = "metrics.jsonl"
CURVES_NAME = "training_curves.png"


def write_metrics_log(path: str | os.PathLike[str], history: Sequence[dict[str, Any]]) -> Path:
    """One JSON object per epoch (epoch, losses, accuracy, precision, recall, F1, lr, seconds)."""
    lines = "".join(json.dumps(record, sort_keys=True) + "\n" for record in history)
    return atomic_write_text(path, lines)


def read_metrics_log(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The records written by ``write_metrics_log``."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def plot_training_curves(
    history: Sequence[dict[str, Any]], path: str | os.PathLike[str], *, best_epoch: int | None = None
) -> Path:
    """Loss curves (train, validation) beside validation metrics, as a PNG (matplotlib Agg)."""
    import io

    from matplotlib.figure import Figure  # no pyplot: no global backend or figure state

    epochs = [r["epoch"] for r in history]
    figure = Figure(figsize=(10, 4), dpi=100)
    loss_ax, metric_ax = figure.subplots(1, 2)
    loss_ax.plot(epochs, [r["train_loss"] for r in history], label="train loss (mixup)")
    loss_ax.plot(epochs, [r["val_loss"] for r in history], label="validation loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("focal loss")
    for name in ("accuracy", "precision", "recall", "f1"):
        metric_ax.plot(epochs, [r[name] for r in history], label=name)
    metric_ax.set_xlabel("epoch")
    at = history[-1].get("threshold_logit")  # a closed-form head's metrics: at its best-F1 logit (evaluate_rows)
    metric_ax.set_ylabel("validation, threshold 0.5" if at is None else f"validation, at logit {at:.3g} (best F1)")
    metric_ax.set_ylim(0.0, 1.02)
    for ax in (loss_ax, metric_ax):
        if best_epoch is not None:
            ax.axvline(best_epoch, color="grey", linestyle=":", label=f"best epoch {best_epoch}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return atomic_write_bytes(path, buffer.getvalue())
