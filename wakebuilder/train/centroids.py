"""``wb fit --head centroids``: the ``CentroidHead``'s direction in closed form, from one pass over the training rows.

direction = unit(mean of the unit training positives) - unit(mean of the unit training negatives), each row being
the window's embeddings averaged over time (research/centroid_head.py's ``Centroids``). With ``--shrinkage A``
(0 < A <= 1) it is instead the linear discriminant on the same unit rows, (A S + (1 - A) tr(S) / D I)^-1 (mu_p - mu_n)
at unit length, S being their within-class covariance (research/linear_scores.py's ``shrunk_direction``): it also
discounts the directions in which the rows of one class spread, and ranked real word-embedding speech better (204 of
234 real clips at one false accept per model against the centroids' 198, alike for A from 0.05 to 0.5). No optimiser,
no epochs and no randomness: the validation split is only scored, so that ``wb fit``'s summary, metrics log and curves
read as a trained head's (one record), and stays for ``wb calibrate``'s Platt mapping and threshold.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from wakebuilder.errors import TrainingError
from wakebuilder.train.head import CentroidHead, HeadConfig, unit_rows
from wakebuilder.train.loop import evaluate_head, evaluate_rows

if TYPE_CHECKING:
    from wakebuilder.train.data import Loop
    from wakebuilder.train.fit_config import FitConfig


def fit_centroids(loop: Loop, head_config: HeadConfig, config: FitConfig, *, device: str
                  ) -> tuple[CentroidHead, list[dict[str, float]]]:
    """The head fitted on ``loop``'s training rows, and its one history record (the keys of ``train_loop``'s:
    the training rows' focal loss, the validation loss and metrics, these at the validation split's best-F1 logit
    threshold, which ``threshold_logit`` records; ``lr`` 0, no optimiser ran). A streamed store
    is read about as often as by one epoch of a network's fit: the training rows twice (sums, then loss), the
    validation rows once."""
    start = time.perf_counter()
    head = CentroidHead(head_config).to(device)
    head.direction.copy_(centroid_direction(loop, shrinkage=config.shrinkage))
    head.eval()
    train_loss, _ = evaluate_rows(head, loop.train_rows(), config)
    record = {"epoch": 1, "train_loss": train_loss, **evaluate_head(head, loop, config, best_f1=True), "lr": 0.0}
    return head, [record | {"seconds": time.perf_counter() - start}]


@torch.no_grad()
def centroid_direction(loop: Loop, *, shrinkage: float = 0.0) -> torch.Tensor:
    """unit(mean unit positive) - unit(mean unit negative) over the training rows, or with ``shrinkage`` > 0 the unit
    shrunk discriminant (``shrunk_discriminant``); summed in float64 in one pass (a streamed store is read once). The
    training split holds both classes (``split_groups`` sees to it).

    Raises:
        TrainingError: a ``shrinkage`` > 0 and rows that do not spread within their class (a singular system).
    """
    sums: dict[int, torch.Tensor] = {}
    counts = {0: 0, 1: 0}
    scatter: torch.Tensor | None = None  # sum of the outer products of all the rows, for the covariance
    for seq, target in loop.train_rows():
        rows = unit_rows(seq.float().mean(dim=1)).double()
        for cls in (0, 1):
            mask = target == cls
            sums[cls] = sums.get(cls, 0.0) + rows[mask].sum(dim=0)
            counts[cls] += int(mask.sum())
        if shrinkage > 0:
            scatter = rows.T @ rows if scatter is None else scatter.addmm_(rows.T, rows)
    if shrinkage == 0:
        means = {cls: unit_rows(sums[cls] / counts[cls]) for cls in (0, 1)}
        return (means[1] - means[0]).float()
    return shrunk_discriminant(sums, counts, scatter, shrinkage).float()


def shrunk_discriminant(sums: dict[int, torch.Tensor], counts: dict[int, int], scatter: torch.Tensor,
                        shrinkage: float) -> torch.Tensor:
    """solve(A S + (1 - A) tr(S) / D I, mu_1 - mu_0) at unit length, from each class's row count and row sum and the
    sum of all rows' outer products; S = (scatter - sum over classes of n mu mu^T) / N is the within-class covariance.

    Raises:
        TrainingError: a singular system (rows that do not spread within their class), which has no direction.
    """
    means = {cls: sums[cls] / counts[cls] for cls in (0, 1)}
    within = scatter - sum(counts[cls] * torch.outer(means[cls], means[cls]) for cls in (0, 1))
    cov = within / (counts[0] + counts[1])
    dim = cov.shape[0]
    system = shrinkage * cov + (1 - shrinkage) * torch.trace(cov) / dim * torch.eye(dim, dtype=cov.dtype,
                                                                                        device=cov.device)
    try:
        w = torch.linalg.solve(system, means[1] - means[0])
    except torch.linalg.LinAlgError:
        w = None
    if w is None or not bool(torch.isfinite(w).all()):
        raise TrainingError(f"--shrinkage {shrinkage}: the training rows' within-class covariance is singular (each "
                            "class's rows do not spread, or fewer rows than dimensions at shrinkage 1), so it has no "
                            "discriminant; pass a smaller --shrinkage, or --shrinkage 0 for the two centroids")
    return unit_rows(w)
