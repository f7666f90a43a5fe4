"""The model directory that ``wb fit`` writes and calibrate/export/detect read.

Layout::

    MODEL_DIR/
      head.safetensors     the head's weights
      model.json           head config, fit config, backbone identity, store
                           fingerprint, wake word, wakebuilder version
      split.json           train and validation groups
      metrics.jsonl        one line per epoch
      calibration.json     written by ``wb calibrate`` (threshold, metrics)
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from wakebuilder import __version__
from wakebuilder.atomic import atomic_write_json, read_json
from wakebuilder.errors import ModelFileError, WakebuilderError

WEIGHTS_NAME = "head.safetensors"
META_NAME = "model.json"
SPLIT_NAME = "split.json"
CALIBRATION_NAME = "calibration.json"


@dataclasses.dataclass
class LoadedModel:
    """A head in eval mode with everything recorded beside it."""

    head: Any  # WakeHead or HeadEnsemble
    meta: dict[str, Any]
    split: dict[str, Any]
    calibration: dict[str, Any] | None
    path: Path

    @property
    def backbone(self) -> dict[str, Any]:
        return self.meta["backbone"]

    @property
    def threshold(self) -> float:
        """Calibrated threshold on the probability scale, 0.5 before calibration."""
        return float(self.calibration["threshold"]) if self.calibration else 0.5


def save_model(
    model_dir: str | os.PathLike[str],
    head: Any,
    *,
    meta: dict[str, Any],
    split: dict[str, Any],
) -> Path:
    """Write weights, ``model.json`` and ``split.json`` (each atomically)."""
    from safetensors.torch import save_file

    target = Path(model_dir)
    target.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in head.state_dict().items()}
    tmp = target / (WEIGHTS_NAME + ".tmp")
    save_file(state, str(tmp))
    os.replace(tmp, target / WEIGHTS_NAME)
    full_meta = {"wakebuilder_version": __version__, "head": head.config.to_dict(), **meta}
    atomic_write_json(target / META_NAME, full_meta)
    atomic_write_json(target / SPLIT_NAME, split)
    return target


def load_model(model_dir: str | os.PathLike[str], *, device: str = "cpu") -> LoadedModel:
    """Load a model directory; clear errors for missing or corrupt files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from wakebuilder.train.head import HeadConfig, build_head

    root = Path(model_dir)
    if not root.is_dir():
        raise ModelFileError(f"{root}: model directory not found (make one with wb fit)")
    try:
        meta = read_json(root / META_NAME)
        split = read_json(root / SPLIT_NAME)
    except WakebuilderError as exc:
        raise ModelFileError(f"{exc}; is {root} a wb fit output?") from exc
    calibration_path = root / CALIBRATION_NAME
    calibration = read_json(calibration_path) if calibration_path.exists() else None
    try:
        head = build_head(HeadConfig.from_dict(meta["head"]))
    except (KeyError, WakebuilderError) as exc:
        raise ModelFileError(f"{root / META_NAME}: no valid head config ({exc})") from exc
    weights = root / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelFileError(f"{weights}: weights missing")
    try:
        state = load_file(str(weights), device="cpu")
        head.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError, OSError) as exc:
        raise ModelFileError(f"{weights}: corrupt or mismatched weights ({exc})") from exc
    head.to(device).eval()
    return LoadedModel(head=head, meta=meta, split=split, calibration=calibration, path=root)
