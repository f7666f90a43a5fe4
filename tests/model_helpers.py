"""Helpers for the calibrate/export/detect/eval tests: tiny model directories and stores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from wakebuilder.modeldir import save_model
from wakebuilder.train.head import HeadConfig, WakeHead

TINY_HEAD = {"width": 16, "tcn_layers": 1, "hidden": (16,), "dropout": 0.0}


def tiny_head(seq_len: int, dim: int, *, seed: int = 0, **overrides: Any) -> WakeHead:
    """A small random head in eval mode."""
    torch.manual_seed(seed)
    return WakeHead(HeadConfig(input_dim=dim, seq_len=seq_len, **(TINY_HEAD | overrides))).eval()


def make_model_dir(
    path: Path, head: WakeHead, backbone: dict[str, Any], *, store_fingerprint: str = "none",
    val_groups: list[str] | None = None, wake_word: str = "hey tone",
) -> Path:
    """A model directory as wb fit writes it."""
    split = {"seed": 0, "val_fraction": 0.2, "train_groups": ["train"], "val_groups": val_groups or ["val"]}
    meta = {"backbone": backbone, "store_fingerprint": store_fingerprint, "wake_word": wake_word, "fit": {}}
    return save_model(path, head, meta=meta, split=split)


def fit_linear_head(head: WakeHead, sequences: np.ndarray, labels: np.ndarray, *, steps: int = 150) -> WakeHead:
    """Train a head quickly (full batch Adam) so it separates ``labels``."""
    x = torch.from_numpy(sequences.astype(np.float32))
    y = torch.from_numpy(labels.astype(np.float32))
    head.train()
    optim = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(steps):
        optim.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x), y)
        loss.backward()
        optim.step()
    return head.eval()
