"""Focal loss and mixup on embedding sequences.

Both run where the batch lives (GPU or CPU) and take soft targets, so a mixed
batch (labels between 0 and 1) goes straight into the loss.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from wakebuilder.errors import ConfigError


def focal_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    alpha: float = 0.5,
    gamma: float = 2.0,
    weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Binary focal loss on logits (Lin et al. 2017), mean over the batch.

    ``alpha`` weighs the positive class (target 1) and ``1 - alpha`` the
    negative class; alpha 0.5 weighs both alike (class balance then comes
    from the sampler). ``gamma`` down-weights easy examples; with gamma 0 the
    loss equals alpha-weighted binary cross-entropy. Soft targets ``t`` are
    the mixture ``t * loss(y=1) + (1 - t) * loss(y=0)``.

    Args:
        logits: (B,) raw scores.
        targets: (B,) targets in [0, 1].
        alpha: weight of the positive class, in [0, 1].
        gamma: focusing exponent, >= 0.
        weights: optional (B,) per-example weights (normalised by their sum).
    """
    if not 0.0 <= alpha <= 1.0 or gamma < 0.0:
        raise ConfigError(f"focal loss: alpha {alpha} must be in [0, 1] and gamma {gamma} >= 0")
    logits = logits.float()
    targets = targets.float()
    log_p = F.logsigmoid(logits)  # log p(y=1)
    log_q = F.logsigmoid(-logits)  # log p(y=0)
    # (1 - p)^gamma as exp(gamma * log q): the same value, but ``(1 - p).pow(gamma)`` reaches 0 once
    # the sigmoid saturates in float32 and, for gamma < 1, its gradient there is infinite.
    pos = -alpha * (gamma * log_q).exp() * log_p
    neg = -(1.0 - alpha) * (gamma * log_p).exp() * log_q
    loss = targets * pos + (1.0 - targets) * neg
    if weights is None:
        return loss.mean()
    weights = weights.float()
    return (loss * weights).sum() / weights.sum().clamp_min(1e-12)


def mixup(
    sequence: torch.Tensor, targets: torch.Tensor, lam: torch.Tensor, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Convex combination of each example with ``perm``'s partner.

    ``x' = lam * x + (1 - lam) * x[perm]`` and the same for the targets, with
    one ``lam`` per example (shape (B,)). ``lam = 1`` returns the batch as is.
    """
    lam_x = lam.to(sequence.dtype).view(-1, *([1] * (sequence.dim() - 1)))
    mixed = torch.lerp(sequence[perm], sequence, lam_x)  # one fused pass over the batch
    lam_y = lam.to(targets.dtype)
    return mixed, lam_y * targets + (1.0 - lam_y) * targets[perm]


def draw_mixup(
    batch: int, alpha: float, rng: np.random.Generator, device: torch.device | str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw per-example ``lam ~ Beta(alpha, alpha)`` and a partner permutation.

    Drawn on the host from the explicit generator (so CPU and GPU runs draw
    the same numbers), then moved to ``device``. ``alpha <= 0`` disables
    mixup (``lam = 1``).
    """
    perm = rng.permutation(batch)
    if alpha <= 0.0:
        lam = np.ones(batch, dtype=np.float32)
    else:
        lam = rng.beta(alpha, alpha, batch).astype(np.float32)
    return torch.from_numpy(lam).to(device), torch.from_numpy(perm).to(device)


def class_balance_weights(targets: torch.Tensor) -> torch.Tensor:
    """Per-example weights giving each class half the total weight (hard or soft targets)."""
    targets = targets.float()
    n_pos = targets.sum().clamp_min(1.0)
    n_neg = (1.0 - targets).sum().clamp_min(1.0)
    return targets * (0.5 / n_pos) + (1.0 - targets) * (0.5 / n_neg)


def binary_metrics(logits: np.ndarray, labels: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """Accuracy, precision, recall and F1 at a probability threshold (0 where undefined)."""
    predicted = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64))) >= threshold
    actual = np.asarray(labels) == 1
    tp = int(np.sum(predicted & actual))
    fp = int(np.sum(predicted & ~actual))
    fn = int(np.sum(~predicted & actual))
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    accuracy = float(np.mean(predicted == actual)) if len(actual) else 0.0
    return {"accuracy": accuracy, "precision": precision, "recall": recall, "f1": f1}
