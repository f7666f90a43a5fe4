"""What the recipe's steps hand on: the data ready to embed, what a run made, and the timed log of its steps.

Shared by ``wakebuilder.recipe`` (the run, its data and store) and ``wakebuilder.recipe_model`` (heads,
calibration, export and report), so neither imports the other for them.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path
from typing import Any

from wakebuilder.recipe_config import RecipeConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class RecipeData:
    """The training manifests, held-out sets and streams, ready to embed."""

    train_manifests: list[Path]
    negatives: Path
    heldout_positives: Path | None
    heldout_negatives: Path | None
    calibration_stream: Path
    report_stream: Path | None
    heldout_nonspeech: Path | None = None  # the report's held-out music and noise clips (FA per category)
    heldout_speech: Path | None = None  # the report's held-out generic speech, when the cache holds it (the bank)


@dataclasses.dataclass(frozen=True)
class RecipeResult:
    """What a recipe run made."""

    config: RecipeConfig
    out_dir: Path
    onnx: Path
    model_dir: Path
    store: Path
    data: RecipeData
    threshold: float
    report: dict[str, Any] | None  # ``wb eval``'s result on the held-out sets, if ``config.report``
    seconds: float
    bank: Path | None = None  # the negative bank's store, if ``config.bank``
    members: tuple[Path, ...] = ()  # an ensemble's calibrated member models (``store`` is the first data seed's)
    fused: tuple[Path, ...] = ()  # with ``fuse_with``: the backbones' exports fused into ``onnx`` (the first's
    # ``model_dir``, ``store`` and ``bank`` given)


class StepLog:
    """Logs each step with the seconds since the start, like the bash recipe did."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        log.info("quickstart: [%.0fs] %s", time.perf_counter() - self.start, message)
