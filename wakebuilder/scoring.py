"""Scores of a fitted model: head logits, Platt-calibrated probabilities, and a waveform scorer.

Shared by the stages that score (calibrate, detect, export, evaluate), so none of them imports
another stage for these helpers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from wakebuilder.modeldir import LoadedModel
    from wakebuilder.streaming import Scorer


def apply_platt(logits: np.ndarray, temperature: float, bias: float) -> np.ndarray:
    """Calibrated probabilities ``sigmoid((logit - bias) / temperature)`` as float32."""
    u = (np.asarray(logits, dtype=np.float64) - bias) / temperature
    return (0.5 * (1 + np.tanh(0.5 * u))).astype(np.float32)


def head_logits(head: Any, sequences: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """The head's logits for ``(N, T, D)`` sequences, in batches, float64."""
    import torch

    device = next(iter([*head.parameters(), *head.buffers()])).device  # a CentroidHead has only a buffer
    out = []
    with torch.inference_mode():
        for start in range(0, len(sequences), batch_size):
            batch = torch.from_numpy(np.asarray(sequences[start : start + batch_size], dtype=np.float32))
            out.append(head(batch.to(device)).double().cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0)


def model_scorer(model: LoadedModel, backbone: Any, temperature: float, bias: float) -> Scorer:
    """Waveforms ``(B, window_samples)`` -> calibrated probabilities through backbone and head."""

    def score(waveforms: np.ndarray) -> np.ndarray:
        _, sequence = backbone.embed(np.ascontiguousarray(waveforms, dtype=np.float32))
        return apply_platt(head_logits(model.head, sequence), temperature, bias)

    return score
