"""``wb fit --head centroids``: the ``CentroidHead``'s direction in closed form, from one pass over the training rows.

direction = unit(mean of the unit training positives) - unit(mean of the unit training negatives), each row being
the window's embeddings averaged over time (research/centroid_head.py's ``Centroids``). No optimiser, no epochs and
no randomness: the validation split is only scored, so that ``wb fit``'s summary, metrics log and curves read as a
trained head's (one record), and stays for ``wb calibrate``'s Platt mapping and threshold.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from wakebuilder.train.head import CentroidHead, HeadConfig, unit_rows
from wakebuilder.train.loop import evaluate_head, evaluate_rows

if TYPE_CHECKING:
    from wakebuilder.train.data import Loop
    from wakebuilder.train.fit_config import FitConfig


def fit_centroids(loop: Loop, head_config: HeadConfig, config: FitConfig, *, device: str
                  ) -> tuple[CentroidHead, list[dict[str, float]]]:
    """The head fitted on ``loop``'s training rows, and its one history record (the keys of ``train_loop``'s:
    the training rows' focal loss, the validation loss and metrics; ``lr`` 0, no optimiser ran). A streamed store
    is read about as often as by one epoch of a network's fit: the training rows twice (sums, then loss), the
    validation rows once."""
    start = time.perf_counter()
    head = CentroidHead(head_config).to(device)
    head.direction.copy_(centroid_direction(loop))
    head.eval()
    train_loss, _ = evaluate_rows(head, loop.train_rows(), config)
    record = {"epoch": 1, "train_loss": train_loss, **evaluate_head(head, loop, config), "lr": 0.0}
    return head, [record | {"seconds": time.perf_counter() - start}]


@torch.no_grad()
def centroid_direction(loop: Loop) -> torch.Tensor:
    """unit(mean unit positive) - unit(mean unit negative) over the training rows, summed in float64 in one pass
    (a streamed store is read once); the training split holds both classes (``split_groups`` sees to it)."""
    sums: dict[int, torch.Tensor] = {}
    counts = {0: 0, 1: 0}
    for seq, target in loop.train_rows():
        rows = unit_rows(seq.float().mean(dim=1)).double()
        for cls in (0, 1):
            mask = target == cls
            sums[cls] = sums.get(cls, 0.0) + rows[mask].sum(dim=0)
            counts[cls] += int(mask.sum())
    means = {cls: unit_rows(sums[cls] / counts[cls]) for cls in (0, 1)}
    return (means[1] - means[0]).float()
