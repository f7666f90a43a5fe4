"""`FitConfig`: the semantic settings of ``wb fit``, importable without torch.

The training loop and ``run_fit`` both read it; it lives apart from both so
neither imports the other for it (and the recipe can build one cheaply).
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from wakebuilder.config import StageConfig
from wakebuilder.errors import ConfigError
from wakebuilder.train.head_kinds import HEAD_KINDS

if TYPE_CHECKING:
    from wakebuilder.train.head import HeadConfig

# Refused by wb fit before the stores are read (fit_init.start_from) and by fit_head itself (an init_head).
NO_INIT_FOR_CENTROIDS = ("--head centroids is computed in closed form from the training rows: it has nothing to "
                         "fine-tune; drop --init, or fine-tune with --head network")
# Settings added after the recipe kept heads (recipe_keep), at the value that fits what a config without them did.
AS_BEFORE = {"head": "network", "shrinkage": 0.0}
# The settings a FitConfig passes to the head it trains (HeadConfig fields of the same name).
HEAD_FIELDS = ("width", "tcn", "tcn_layers", "tcn_kernel", "se", "attention", "hidden", "dropout",
               "input_dropout", "frame_dropout")


@dataclasses.dataclass(frozen=True, kw_only=True)
class FitConfig(StageConfig):
    """Semantic settings of ``wb fit`` (head shape, optimiser, loss, split).

    Defaults were tuned with ``benchmarks/fit_speed.py`` so a 35,000-clip fit
    finishes in about a minute on two CPU cores: width 64 and batch 256 (the
    seed recipe's width 128 and batch 32 cost about 3x more per epoch).
    """

    width: int = 64
    tcn: bool = True
    tcn_layers: int = 2
    tcn_kernel: int = 3
    se: bool = True
    attention: bool = True
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.5
    input_dropout: float = 0.0
    frame_dropout: float = 0.0
    lr: float = 8e-4  # 1e-4 at batch 32, scaled linearly to batch 256
    weight_decay: float = 0.01
    warmup_fraction: float = 0.1
    batch_size: int = 256  # batch 32 cannot fit 35k clips in 60 s on 2 CPU cores (benchmarks/fit_speed.py)
    max_epochs: int = 60
    patience: int = 8
    min_delta: float = 0.001
    focal_alpha: float = 0.5
    focal_gamma: float = 2.0
    mixup_alpha: float = 0.5
    val_fraction: float = 0.25
    keep_recordings_in_train: bool = False
    members: int = 1  # heads trained with seeds seed, seed+1, ... on one split; their logits are averaged
    seed: int = 0
    # "centroids": no network and no epochs, two class means of the training split (wakebuilder.train.centroids);
    # the shape, optimiser and loss settings above are then unused
    head: str = "network"
    # centroids only: 0 keeps the two centroids; 0 < A <= 1 is a linear discriminant whose within-class covariance is
    # shrunk toward the identity by 1 - A (research/linear_scores.py's shrink:A; the recipe's
    # ``recipe_config.DEFAULT_CENTROIDS_SHRINKAGE`` on word-embedding)
    shrinkage: float = 0.0

    def __post_init__(self) -> None:
        checks = {
            "width": self.width >= 1, "batch_size": self.batch_size >= 2, "max_epochs": self.max_epochs >= 1,
            "patience": self.patience >= 1, "lr": self.lr > 0, "dropout": 0.0 <= self.dropout < 1.0,
            "input_dropout": 0.0 <= self.input_dropout < 1.0, "frame_dropout": 0.0 <= self.frame_dropout < 1.0,
            "warmup_fraction": 0.0 < self.warmup_fraction < 1.0,
            "focal_alpha": 0.0 <= self.focal_alpha <= 1.0,
            "focal_gamma": self.focal_gamma >= 0.0, "hidden": all(h >= 1 for h in self.hidden),
            "tcn_layers": self.tcn_layers >= 1, "tcn_kernel": self.tcn_kernel >= 1 and self.tcn_kernel % 2 == 1,
            "members": self.members >= 1, "val_fraction": 0.0 < self.val_fraction < 1.0,
            "weight_decay": self.weight_decay >= 0.0, "min_delta": self.min_delta >= 0.0,
            "mixup_alpha": self.mixup_alpha >= 0.0,
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ConfigError(f"FitConfig: invalid {', '.join(f'{n}={getattr(self, n)!r}' for n in bad)}")
        if self.head not in HEAD_KINDS:
            raise ConfigError(f"FitConfig: head {self.head!r}: expected one of {', '.join(HEAD_KINDS)}")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ConfigError(f"FitConfig: shrinkage={self.shrinkage!r}: expected 0 <= shrinkage <= 1 (0: the two "
                              "centroids, 1: an unshrunk linear discriminant)")
        if self.head != "centroids" and self.shrinkage > 0:
            raise ConfigError(f"--shrinkage {self.shrinkage} shapes the closed-form head's discriminant: pass "
                              "--head centroids, or drop --shrinkage for a network head")
        if self.head == "centroids" and self.members > 1:
            raise ConfigError(f"--head centroids is fitted in closed form from one split, so --members {self.members} "
                              "would be identical copies of one head; pass --members 1")

    def identity(self) -> dict[str, Any]:
        """``to_dict`` less the settings at their ``AS_BEFORE`` value: a head the recipe kept before a setting existed
        is still the same fit (``recipe_keep.keep_or_fit``), not fitted again for nothing."""
        return {k: v for k, v in self.to_dict().items() if k not in AS_BEFORE or v != AS_BEFORE[k]}

    def with_head_of(self, head: HeadConfig) -> FitConfig:
        """This config with an existing head's settings: fine-tuning (``--init``) keeps that head's shape."""
        return self.replace(**{name: getattr(head, name) for name in HEAD_FIELDS})

    def head_config(self, seq_len: int, dim: int) -> HeadConfig:
        """The head this config trains for a store's sequence shape."""
        from wakebuilder.train.head import HeadConfig

        return HeadConfig(
            input_dim=dim, seq_len=seq_len, width=self.width, tcn=self.tcn, tcn_layers=self.tcn_layers,
            tcn_kernel=self.tcn_kernel, se=self.se, attention=self.attention, hidden=self.hidden,
            dropout=self.dropout, input_dropout=self.input_dropout, frame_dropout=self.frame_dropout,
            members=self.members, kind=self.head,
        )
