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
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from wakebuilder import __version__
from wakebuilder.atomic import atomic_write_json, read_json
from wakebuilder.errors import ConfigError, ModelFileError, WakebuilderError
from wakebuilder.values import finite_number

WEIGHTS_NAME = "head.safetensors"
META_NAME = "model.json"
SPLIT_NAME = "split.json"
CALIBRATION_NAME = "calibration.json"
CALIBRATION_KEYS = ("threshold", "temperature", "bias")
_REWRITE = "set it as wb fit writes it, or run wb fit again"  # the fix for a key of wb fit's files edited by hand


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
    def window_samples(self) -> int:
        """Samples one window of the backbone takes, read from ``model.json``'s identity (no weights loaded).

        Raises:
            ModelFileError: an AST identity whose ``fbank`` is no front end's settings (edited by hand).
        """
        from wakebuilder.backbones import identity_window_samples

        try:
            return identity_window_samples(self.backbone)
        except (TypeError, ValueError, WakebuilderError) as exc:
            raise ModelFileError(f"{self.path / META_NAME}: backbone.fbank {short_repr(self.backbone.get('fbank'))} "
                                 f"is not an AST front end's settings ({exc}); {_REWRITE}") from None

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


def refuse_out_holding(out_dir: str | os.PathLike[str], inputs: Iterable[tuple[str, str | os.PathLike[str]]], *,
                       instead: Path | None = None) -> None:
    """Refuse an ``out_dir`` that is one of ``inputs`` (what it is, path) or a folder holding one: a build replaces
    ``out_dir`` (``--overwrite``), which would delete that input.

    Raises:
        ConfigError: naming ``--out``, the input and a free place for the output (``instead``, else beside ``out_dir``).
    """
    out = Path(os.path.realpath(out_dir))
    for option, path in inputs:
        real = Path(os.path.realpath(path))
        if real == out or real.is_relative_to(out):
            raise ConfigError(f"--out {str(out_dir)!r}: holds {option} {path} (replacing it would delete it); "
                              f"choose another --out, such as {instead or out.parent / (out.name + '-model')}")


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
    if problem := meta_problem(meta):  # edited by hand: a key of the wrong type
        raise ModelFileError(f"{path}: {problem}; {_REWRITE}")
    return meta


def read_split(root: Path) -> dict[str, Any]:
    """``split.json`` with its ``val_groups`` (what ``wb calibrate`` reads) a list of group names."""
    path = root / SPLIT_NAME
    split = read_object(path, _refit(root))
    groups = split.get("val_groups", [])
    if not isinstance(groups, list) or not all(isinstance(group, str) for group in groups):
        raise ModelFileError(f"{path}: val_groups must be a list of group names, not {short_repr(groups)}; "
                             f"{_REWRITE}")
    return split


META_KINDS: dict[str, tuple[type, str]] = {
    "wake_word": (str, "a string"), "store_fingerprint": (str, "a string"), "fit": (dict, "an object"),
    "stores": (list, "a list"), "bank_exclusion": (dict, "an object"), "ensemble": (dict, "an object"),
}
"""What each key of ``model.json`` that its readers take as optional must be when it is there and not null."""


def meta_problem(meta: dict[str, Any]) -> str | None:
    """Why ``meta`` (``model.json`` with its ``head``, ``backbone.spec`` and ``backbone.window_s``) cannot be read,
    or None.

    JSON may hold anything (a file edited by hand); a key of the wrong type would end in an AttributeError or
    TypeError deep in calibrate, ensemble, export or detect, some only after minutes of work.
    """
    for key, (kind, name) in META_KINDS.items():
        value = meta.get(key)
        if value is not None and not isinstance(value, kind):
            return f"{key} must be {name} or null, not {short_repr(value)}"
    spec, window_s = meta["backbone"]["spec"], meta["backbone"]["window_s"]
    if not isinstance(spec, str):
        return f"backbone.spec must be a string, not {short_repr(spec)}"
    if not (finite_number(window_s) and window_s > 0):
        return f"backbone.window_s must be a finite number above 0, not {short_repr(window_s)}"
    return _stores_problem(meta.get("stores") or []) or _exclusion_problem(meta.get("bank_exclusion") or {})


def _stores_problem(stores: list[Any]) -> str | None:
    """What is wrong with ``model.json``'s ``stores`` (each one's fingerprint, rows, their ids' sha256 and precision, as
    ``wb fit`` records them)."""
    for i, store in enumerate(stores):
        if not isinstance(store, dict):
            return f"stores[{i}] must be an object, not {short_repr(store)}"
        for key in ("fingerprint", "rows"):
            if key not in store:
                return f"missing key stores[{i}].{key}"
        if not isinstance(store["fingerprint"], str):
            return f"stores[{i}].fingerprint must be a string, not {short_repr(store['fingerprint'])}"
        rows = store["rows"]
        if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
            return f"stores[{i}].rows must be a count of rows, not {short_repr(rows)}"
        digest = store.get("ids_sha256")  # absent in a model.json written before it was recorded
        if digest is not None and not (isinstance(digest, str) and re.fullmatch(r"[0-9a-f]{64}", digest)):
            return f"stores[{i}].ids_sha256 must be a sha256 (64 hex digits) or null, not {short_repr(digest)}"
        precision = store.get("compute_dtype")  # absent before it was recorded, and for a store that records none
        if precision is not None and not isinstance(precision, str):
            return f"stores[{i}].compute_dtype must be a string or null, not {short_repr(precision)}"
    return None


def _exclusion_problem(exclusion: dict[str, Any]) -> str | None:
    """What is wrong with ``model.json``'s ``bank_exclusion`` (the phrase and distance the fit left out)."""
    phrase, distance = exclusion.get("phrase"), exclusion.get("max_distance")
    if phrase is not None and not isinstance(phrase, str):
        return f"bank_exclusion.phrase must be a string or null, not {short_repr(phrase)}"
    if distance is not None and not (finite_number(distance) and distance >= 0):
        return f"bank_exclusion.max_distance must be a finite number >= 0 or null, not {short_repr(distance)}"
    return None


def short_repr(value: Any) -> str:
    """``repr`` of a value from a file, cut to fit one line."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


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
        if not finite_number(cal.get(key)):
            raise ModelFileError(f"{path}: {_missing(cal, key, 'a finite number')}; {fix}")
    if not 0.0 <= cal["threshold"] <= 1.0:
        raise ModelFileError(f"{path}: threshold {cal['threshold']} must be within 0..1; {fix}")
    if cal["temperature"] <= 0:
        raise ModelFileError(f"{path}: temperature {cal['temperature']} must be above 0; {fix}")
    return cal


def _refit(root: Path) -> str:
    return f"is {root} a wb fit output? (wb fit writes a complete one)"


def _missing(data: dict[str, Any], key: str, kind: str = "an object") -> str:
    return f"missing key {key}" if key not in data else f"{key} must be {kind}, not {short_repr(data[key])}"


def load_model(model_dir: str | os.PathLike[str], *, device: str = "cpu") -> LoadedModel:
    """Load a model directory; clear errors for missing or corrupt files.

    The head is built without initialising its weights (on the meta device, then allocated empty) before the saved
    ones are copied in: a random init would draw from torch's process-wide generator, and so change the draws of a
    fit running meanwhile in another thread (run_recipe in a ThreadPoolExecutor).
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from wakebuilder.train.head import HeadConfig, build_head

    root = Path(model_dir)
    if root.exists() and not root.is_dir():
        raise ModelFileError(f"{root}: a file, not a model directory; give the folder wb fit wrote (an export's "
                             "NAME.onnx is for wb detect, eval and fuse)")
    if not root.is_dir():
        raise ModelFileError(f"{root}: model directory not found (make one with wb fit)")
    meta = read_meta(root)
    split = read_split(root)
    try:
        with torch.device("meta"):  # the strict load below fills every tensor of the empty head
            head = build_head(HeadConfig.from_dict(meta["head"]))
        head = head.to_empty(device="cpu")
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
