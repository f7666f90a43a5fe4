"""A detector and its loaders: an exported or foreign ONNX file, or a model directory.

A detector is anything with the exported contract: waveform ``(batch,
window_samples)`` float32 in [-1, 1] -> probability ``(batch,)``. It is an
exported ``NAME.onnx`` (``NAME.json`` beside it gives the threshold), another
ONNX detector with the same contract, or a model directory (torch backbone +
head, threshold from ``calibration.json``). Running one over audio is
:mod:`wakebuilder.detect`'s.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.errors import ModelFileError
from wakebuilder.modeldir import CALIBRATION_NAME, read_object, short_repr
from wakebuilder.stream_settings import recorded_settings
from wakebuilder.streaming import Scorer

__all__ = ["Detector", "is_onnx_path", "load_detector", "load_dir_detector", "load_onnx_detector", "sidecar_path"]


@dataclasses.dataclass
class Detector:
    """A scorer with its window and calibrated threshold (None: not calibrated)."""

    name: str
    scorer: Scorer
    window_samples: int
    threshold: float | None
    info: dict[str, Any]
    path: Path | None = None  # the .onnx file or model directory it was loaded from
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)  # hop_s, smooth, refractory_s calibrated with



def _onnx_window(session: Any, path: Path, meta: dict[str, str]) -> int:
    dims = session.get_inputs()[0].shape
    if len(dims) != 2:
        raise ModelFileError(
            f"{path}: input {dims} is not a waveform (batch, samples); this is a head-only export, which "
            "takes backbone embeddings. Pass the end-to-end NAME.onnx beside it, or the model directory"
        )
    if len(dims) == 2 and isinstance(dims[1], int):
        return int(dims[1])
    if "window_samples" in meta:
        return _metadata_window(meta["window_samples"], path)
    raise ModelFileError(f"{path}: input {dims} has no fixed window length and no window_samples metadata")


def _metadata_window(raw: str, path: Path) -> int:
    """The ``window_samples`` metadata of a model without a fixed input length as a whole number of samples > 0
    (``16000``, ``16000.0``), else a ``ModelFileError`` naming ``path``: a word is a traceback, 0 no window."""
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not (value.is_integer() and value > 0):  # nan and inf are not integers
        raise ModelFileError(f"{path}: window_samples {short_repr(raw)} in its metadata is not a whole number of "
                             "samples above 0; set it to the window the model takes (16000 for 1 s at 16 kHz), or "
                             "export the model with a fixed input length")
    return int(value)


def _threshold(raw: Any, source: Path) -> float:
    """A recorded threshold as a float within 0..1 (else a ``ModelFileError`` naming ``source``)."""
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = float("nan")
    if isinstance(raw, bool) or not 0.0 <= value <= 1.0:
        raise ModelFileError(f"{source}: threshold {raw!r} must be a number within 0..1; re-run wb export, "
                             "or pass --threshold")
    return value


def _check_sample_rate(info: dict[str, Any], meta: dict[str, str], sidecar: Path, where: Path) -> None:
    """Refuse a detector whose ``NAME.json`` (else its ONNX metadata) gives a sample rate other than 16 kHz: fed
    16 kHz windows, it would score audio it was never made for, and its detections mean nothing."""
    source, rate = (sidecar, info["sample_rate"]) if "sample_rate" in info else (where, meta.get("sample_rate"))
    if rate is None and source is where:  # a foreign detector that says nothing: the contract's 16 kHz
        return
    try:
        ok = not isinstance(rate, bool) and float(rate) == SAMPLE_RATE
    except (TypeError, ValueError, OverflowError):  # null, a list, a word
        ok = False
    if not ok:
        raise ModelFileError(f"{source}: sample rate {short_repr(rate)}; wakebuilder feeds detectors {SAMPLE_RATE} Hz "
                             f"audio only, so this model cannot run here; pass a {SAMPLE_RATE} Hz detector (wb export "
                             "writes one)")


def is_onnx_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an ONNX file: its suffix is ``.onnx`` in any case (a copy through Windows or a FAT
    drive may be ``NAME.ONNX``)."""
    return Path(path).suffix.lower() == ".onnx"


def sidecar_path(onnx_path: Path) -> Path:
    """``NAME.json`` beside ``NAME.onnx``, its name in any case (a copy through Windows or a FAT drive may be
    ``NAME.JSON``), the exact name first; that name where there is none.

    Raises:
        ModelFileError: two names differing only in case and neither exact: which one wb export wrote is unknown.
    """
    exact = onnx_path.with_suffix(".json")
    if exact.is_file():
        return exact
    try:
        found = sorted(p for p in onnx_path.parent.iterdir() if p.name.lower() == exact.name.lower() and p.is_file())
    except OSError:  # a folder that cannot be listed: only the exact name can be looked up, as before
        return exact
    if len(found) > 1:
        raise ModelFileError(f"{onnx_path}: {' and '.join(p.name for p in found)} beside it differ only in case; "
                             "keep the one wb export wrote")
    return found[0] if found else exact


def _open_session(where: Path, threads: int, model: bytes | None = None) -> Any:
    """An onnxruntime CPU session of ``where``, or of ``model``, its bytes read already (else a ``ModelFileError``
    naming it)."""
    import onnxruntime as ort

    if model is None and not where.is_file():
        raise ModelFileError(f"{where}: ONNX model not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        return ort.InferenceSession(str(where) if model is None else model, options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated exception types for bad files
        raise ModelFileError(f"{where}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from exc


def _recorded_threshold(info: dict[str, Any], meta: dict[str, str], sidecar: Path, where: Path) -> float | None:
    """The threshold ``NAME.json`` (else the ONNX metadata) records; None where it says it is not calibrated."""
    raw = info.get("threshold", meta.get("threshold"))
    calibrated = info.get("calibrated", str(meta.get("calibrated", "true")).lower() == "true")
    if raw is None or not calibrated:
        return None
    return _threshold(raw, sidecar if "threshold" in info else where)


def _onnx_scorer(session: Any, where: Path) -> Scorer:
    """Score windows with ``session``, in parts of its batch size where it was exported for a fixed one."""
    input_name = session.get_inputs()[0].name
    fixed = session.get_inputs()[0].shape[0]  # an int where the model was exported for one batch size (often 1)
    fixed = fixed if isinstance(fixed, int) and fixed > 0 else None

    def run(batch: np.ndarray) -> np.ndarray:
        try:
            out = np.asarray(session.run(None, {input_name: batch})[0]).reshape(-1)
        except Exception as exc:  # onnxruntime raises several unrelated exception types
            raise ModelFileError(f"{where}: onnxruntime cannot score {batch.shape[0]} windows of "
                                 f"{batch.shape[1]} samples ({str(exc).splitlines()[0]})") from exc
        if out.size != batch.shape[0]:
            raise ModelFileError(f"{where}: gives {out.size} values for {batch.shape[0]} windows, not one "
                                 "probability per window (the contract: waveform (batch, samples) -> (batch,))")
        return out

    def score(waveforms: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(waveforms, dtype=np.float32)
        if fixed is None or batch.shape[0] == fixed:
            return run(batch)
        parts = []
        for start in range(0, batch.shape[0], fixed):  # the last part zero-padded to the model's batch size
            part = batch[start : start + fixed]
            padded = np.pad(part, ((0, fixed - part.shape[0]), (0, 0)))
            parts.append(run(padded)[: part.shape[0]])
        return np.concatenate(parts)

    return score


def load_onnx_detector(path: str | os.PathLike[str], *, threads: int = 0, model: bytes | None = None) -> Detector:
    """Load an ONNX detector; its threshold comes from ``NAME.json`` or its metadata (None if uncalibrated).

    ``model``: the file's bytes where the caller has read them for more (wb fuse: its graph and sha256 too), so the
    file is not read again; a graph with external data needs its path instead, where onnxruntime finds them.
    """
    where = Path(path)
    session = _open_session(where, threads, model)
    meta = dict(session.get_modelmeta().custom_metadata_map)
    sidecar = sidecar_path(where)
    info = read_object(sidecar, "re-run wb export") if sidecar.is_file() else {}
    _check_sample_rate(info, meta, sidecar, where)
    threshold = _recorded_threshold(info, meta, sidecar, where)
    settings = recorded_settings(info.get("calibration_config"), where=sidecar, key="calibration_config",
                                 fix="re-run wb export")
    window = _onnx_window(session, where, meta)
    return Detector(where.stem, _onnx_scorer(session, where), window, threshold, info or meta, where, settings)


def load_dir_detector(path: str | os.PathLike[str], *, device: str = "auto") -> Detector:
    """A model directory as a detector (torch backbone + head + calibration)."""
    from wakebuilder.backbones import backbone_from_identity
    from wakebuilder.scoring import model_scorer
    from wakebuilder.modeldir import load_model

    model = load_model(path)
    cal = model.calibration or {}
    settings = recorded_settings(cal.get("config"), where=model.path / CALIBRATION_NAME, key="config",
                         fix=f"run wb calibrate on {model.path} again")  # before the backbone loads
    backbone = backbone_from_identity(model.backbone, device=device)
    scorer = model_scorer(model, backbone, float(cal.get("temperature", 1.0)), float(cal.get("bias", 0.0)))
    threshold = model.threshold if model.calibration is not None else None
    return Detector(model.path.name, scorer, backbone.window_samples, threshold, model.meta, model.path, settings)


def load_detector(path: str | os.PathLike[str], *, device: str = "auto", threads: int = 0) -> Detector:
    """An exported or foreign ``.onnx`` file, or a model directory."""
    where = Path(path)
    if where.is_dir():
        return load_dir_detector(where, device=device)
    if not is_onnx_path(where):
        raise ModelFileError(f"{where}: expected an exported .onnx file or a model directory")
    return load_onnx_detector(where, threads=threads)
