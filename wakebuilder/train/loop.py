"""The epoch loop: mixup, focal loss, AdamW + OneCycleLR, early stopping.

Everything per batch (gather, cast, mixup, loss) happens on the training
device; the loss is summed there and read back once per epoch.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from wakebuilder.errors import TrainingError
from wakebuilder.train.data import Loop
from wakebuilder.train.head import WakeHead
from wakebuilder.train.losses import binary_metrics, class_balance_weights, draw_mixup, focal_loss, mixup

if TYPE_CHECKING:
    from wakebuilder.train.fit_config import FitConfig

log = logging.getLogger(__name__)


def train_loop(head: WakeHead, loop: Loop, config: FitConfig, *, device: str,
               progress: bool = False) -> tuple[list[dict[str, float]], int, bool]:
    """The epoch loop with early stopping; restores the best epoch's weights.

    Raises:
        TrainingError: the loss is not a finite number before any epoch was kept (the head diverged).
    """
    optimizer = torch.optim.AdamW(head.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    # OneCycleLR divides by the warm-up length: keep it at least two steps on tiny runs.
    total_steps = max(config.max_epochs * loop.steps_per_epoch, 8)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.lr, total_steps=total_steps,
        pct_start=min(max(config.warmup_fraction, 3.0 / total_steps), 0.5), anneal_strategy="cos",
    )
    history: list[dict[str, float]] = []
    best_loss, best_epoch, best_state, waited = float("inf"), 0, None, 0
    bar = tqdm(range(1, config.max_epochs + 1), desc="fit", unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        start = time.perf_counter()
        train_loss = _train_epoch(head, loop, optimizer, schedule, total_steps, config, device)
        record = {"epoch": epoch, "train_loss": train_loss, **evaluate_head(head, loop, config),
                  "lr": float(schedule.get_last_lr()[0]), "seconds": time.perf_counter() - start}
        history.append(record)
        bar.set_postfix(train=f"{train_loss:.4f}", val=f"{record['val_loss']:.4f}", f1=f"{record['f1']:.3f}")
        if not (math.isfinite(train_loss) and math.isfinite(record["val_loss"])):
            if best_state is None:
                raise TrainingError(f"the fit diverged in epoch {epoch} (its loss is not a finite number); "
                                    f"lower --lr (now {config.lr:g})")
            log.warning("the fit diverged in epoch %d; keeping epoch %d", epoch, best_epoch)
            break
        if record["val_loss"] < best_loss - config.min_delta:
            best_loss, best_epoch, waited = record["val_loss"], epoch, 0
            best_state = {k: v.detach().clone() for k, v in head.state_dict().items()}
        else:
            waited += 1
            if waited >= config.patience:
                break
    bar.close()
    stopped = len(history) < config.max_epochs
    if best_state is not None:
        head.load_state_dict(best_state)
    return history, max(best_epoch, 1), stopped


def _train_epoch(head: WakeHead, loop: Loop, optimizer: torch.optim.Optimizer,
                 schedule: torch.optim.lr_scheduler.LRScheduler,
                 total_steps: int, config: FitConfig, device: str) -> float:
    head.train()
    total = torch.zeros((), device=device)
    count = 0
    for seq, target, weights in loop.train_batches():
        lam, perm = draw_mixup(len(target), config.mixup_alpha, loop.rng, device)
        seq, soft = mixup(seq, target, lam, perm)
        if weights is not None:
            weights = weights[perm] * (1.0 - lam) + weights * lam
        logits = head(seq)
        loss = focal_loss(logits, soft, alpha=config.focal_alpha, gamma=config.focal_gamma, weights=weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if schedule.last_epoch < total_steps - 1:
            schedule.step()
        total += loss.detach() * len(target)
        count += len(target)
    return float(total) / max(count, 1)


def evaluate_head(head: torch.nn.Module, loop: Loop, config: FitConfig, *, best_f1: bool = False
                  ) -> dict[str, float]:
    """Validation loss (class-balanced focal loss) and metrics at threshold 0.5, or with ``best_f1`` at the logit
    threshold of the best F1 (``evaluate_rows``)."""
    loss, metrics = evaluate_rows(head, loop.val_batches(), config, best_f1=best_f1)
    if loss is None:
        raise TrainingError("the validation split is empty; lower --val-fraction or add groups")
    return {"val_loss": loss, **metrics}


@torch.no_grad()
def evaluate_rows(head: torch.nn.Module, batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
                  config: FitConfig, *, best_f1: bool = False) -> tuple[float | None, dict[str, float]]:
    """The class-balanced focal loss of ``batches`` (None when there are none) and metrics at threshold 0.5.

    With ``best_f1``, the metrics at the logit threshold with the best F1 instead, which they record as
    ``threshold_logit``: for a closed-form head (``--head centroids``), whose logit is a cosine or a discriminant's
    projection that no loss has centred on 0, so that at 0.5 (logit 0) the figures said nothing of the head (on a
    real word-embedding store: recall 1.0, precision 0.24, where calibration finds a working threshold).
    """
    head.eval()
    logits, labels = [], []
    for seq, target in batches:
        logits.append(head(seq).float())
        labels.append(target)
    if not logits:
        return None, {}
    all_logits, all_labels = torch.cat(logits), torch.cat(labels)
    loss = focal_loss(all_logits, all_labels, alpha=config.focal_alpha, gamma=config.focal_gamma,
                      weights=class_balance_weights(all_labels))
    scores, truth = all_logits.cpu().numpy(), all_labels.cpu().numpy()
    if not best_f1:
        return float(loss), binary_metrics(scores, truth)
    threshold = best_f1_logit(scores, truth)
    return float(loss), binary_metrics(scores - threshold, truth) | {"threshold_logit": threshold}


def best_f1_logit(logits: np.ndarray, labels: np.ndarray, *, candidates: int = 512) -> float:
    """The logit threshold with the best per-clip F1 (``metrics.best_f1_threshold``), among ``candidates`` quantiles of
    the logits (a sweep over every distinct logit of a large validation split would not fit in memory)."""
    from wakebuilder import metrics

    grid = np.unique(np.quantile(np.asarray(logits, dtype=np.float64), np.linspace(0.0, 1.0, candidates + 1)))
    return metrics.best_f1_threshold(metrics.sweep(labels, logits, grid))
