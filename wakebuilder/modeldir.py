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
import functools
import math
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
CALIBRATION_KEYS = ("threshold", "temperature", "bias")


@dataclasses.dataclass
class LoadedModel:
    """A head in eval mode with everything recorded beside it."""

    head: Any  # WakeHead or HeadEnsemble
    meta: dict[str, Any]
    split: dict[str, Any]
    path: Path

    @functools.cached_property
    def calibration(self) -> dict[str, Any] | None:
        """``calibration.json`` (checked by ``read_calibration``), None before ``wb calibrate``.

        Read when first used, so ``wb calibrate`` (which does not use it) can replace a corrupt one.
        """
        return read_calibration(self.path)

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


def read_object(path: Path, fix: str) -> dict[str, Any]:
    """A JSON file that must hold an object; ``fix`` ends each error (what to do about it).

    Raises:
        ModelFileError: missing, not UTF-8 text, not JSON, or not an object.
    """
    try:
        data = read_json(path)  # a missing file, bad JSON or bytes that are not UTF-8: WakebuilderError
    except WakebuilderError as exc:
        raise ModelFileError(f"{exc}; {fix}") from exc
    if not isinstance(data, dict):
        raise ModelFileError(f"{path}: not a JSON object (a {type(data).__name__}); {fix}")
    return data


def read_meta(root: Path) -> dict[str, Any]:
    """``model.json`` with its ``head`` and ``backbone`` (``spec``, ``window_s``) checked."""
    path = root / META_NAME
    fix = _refit(root)
    meta = read_object(path, fix)
    for key in ("head", "backbone"):
        if not isinstance(meta.get(key), dict):
            raise ModelFileError(f"{path}: {_missing(meta, key)}; {fix}")
    for key in ("spec", "window_s"):
        if key not in meta["backbone"]:
            raise ModelFileError(f"{path}: missing key backbone.{key}; {fix}")
    return meta


def read_calibration(root: Path) -> dict[str, Any] | None:
    """``calibration.json`` with finite ``threshold`` (0..1), ``temperature`` (> 0) and ``bias``.

    None when the model has none (before ``wb calibrate``).
    """
    path = root / CALIBRATION_NAME
    if not path.exists():
        return None
    fix = f"run wb calibrate on {root} again"
    cal = read_object(path, fix)
    for key in CALIBRATION_KEYS:
        value = cal.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ModelFileError(f"{path}: {_missing(cal, key, 'a finite number')}; {fix}")
    if not 0.0 <= cal["threshold"] <= 1.0:
        raise ModelFileError(f"{path}: threshold {cal['threshold']} must be within 0..1; {fix}")
    if cal["temperature"] <= 0:
        raise ModelFileError(f"{path}: temperature {cal['temperature']} must be above 0; {fix}")
    return cal


def _refit(root: Path) -> str:
    return f"is {root} a wb fit output? (wb fit writes a complete one)"


def _missing(data: dict[str, Any], key: str, kind: str = "an object") -> str:
    return f"missing key {key}" if key not in data else f"{key} must be {kind}, not {data[key]!r}"


def load_model(model_dir: str | os.PathLike[str], *, device: str = "cpu") -> LoadedModel:
    """Load a model directory; clear errors for missing or corrupt files."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from wakebuilder.train.head import HeadConfig, build_head

    root = Path(model_dir)
    if not root.is_dir():
        raise ModelFileError(f"{root}: model directory not found (make one with wb fit)")
    meta = read_meta(root)
    split = read_object(root / SPLIT_NAME, _refit(root))
    try:
        head = build_head(HeadConfig.from_dict(meta["head"]))
    except (KeyError, ValueError, RuntimeError, WakebuilderError) as exc:  # torch: a negative width, a dropout > 1
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
    return LoadedModel(head=head, meta=meta, split=split, path=root)
