"""`wb detect`: streaming wake-word detection with onnxruntime over files or raw PCM on stdin.

A detector is anything with the exported contract: waveform ``(batch,
window_samples)`` float32 in [-1, 1] -> probability ``(batch,)``. It is an
exported ``NAME.onnx`` (``NAME.json`` beside it gives the threshold), another
ONNX detector with the same contract, or a model directory (torch backbone +
head, threshold from ``calibration.json``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.audio_stream import AudioBlocks
from wakebuilder.config import StageConfig
from wakebuilder.errors import BadAudioError, ConfigError, ModelFileError
from wakebuilder.events import Event, EventCounter, count_events
from wakebuilder.modeldir import CALIBRATION_NAME, read_object, short_repr
from wakebuilder.stream_settings import STREAM_DEFAULTS, recorded_settings, setting_problem
from wakebuilder.streaming import (
    MovingAverage, Scorer, WindowBuffer, check_stream_settings, hop_samples, score_waveform, smooth_scores,
)

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DetectConfig(StageConfig):
    """Streaming settings. ``threshold`` None takes the model's calibrated threshold; ``hop_s``, ``smooth`` and
    ``refractory_s`` None take those the threshold was calibrated with (``resolved``), else ``STREAM_DEFAULTS``:
    a threshold chosen on smoothed scores means another rate of false accepts on raw ones."""

    threshold: float | None = None
    hop_s: float | None = None
    smooth: int | None = None
    refractory_s: float | None = None
    batch_size: int = 32

    def __post_init__(self) -> None:
        if self.hop_s is not None:
            hop_samples(self.hop_s)
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigError(f"--threshold {self.threshold}: must be in (0, 1)")
        check_stream_settings(smooth=self.smooth, refractory_s=self.refractory_s)
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size {self.batch_size}: must be >= 1")

    def resolved(self, detector: Detector) -> DetectConfig:
        """These settings with each one not given taken from the detector's calibration, else the default."""
        given = {name: getattr(self, name) for name in STREAM_DEFAULTS}
        if all(value is not None for value in given.values()):
            return self
        calibrated = detector.settings
        chosen = {name: value if value is not None else calibrated.get(name, STREAM_DEFAULTS[name])
                  for name, value in given.items()}
        try:
            for name, value in chosen.items():
                if given[name] is None and (problem := setting_problem(name, value)):
                    raise ConfigError(problem)
            out = self.replace(**chosen)
        except ConfigError as exc:
            raise ModelFileError(f"{detector.path or detector.name}: its calibration settings are not usable "
                                 f"({exc}); calibrate it again, or pass --hop-s, --smooth and --refractory-s") from None
        if any(given[name] is None and name in calibrated for name in given):
            log.info("%s: hop %g s, smoothing %d, refractory %g s (as calibrated)", detector.name, out.hop_s,
                     out.smooth, out.refractory_s)
        return out


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


def threshold_for(detector: Detector, config: DetectConfig) -> float:
    """``--threshold`` when given, else the detector's calibrated one.

    Raises:
        ModelFileError: neither: an uncalibrated model would silently mean 0.5.
    """
    if config.threshold is not None:
        return config.threshold
    if detector.threshold is None:
        raise ModelFileError(_uncalibrated(detector))
    return detector.threshold


def _uncalibrated(detector: Detector) -> str:
    """Why ``detector`` has no threshold, naming its file and the fix."""
    where = detector.path or detector.name
    if detector.path is not None and detector.path.is_dir():
        return (f"{where}: the model is not calibrated (no calibration.json); run wb calibrate on it, "
                "or pass --threshold")
    if str(detector.info.get("calibrated", "")).lower() == "false":
        return (f"{where}: not calibrated (exported from a model folder without calibration.json); run "
                "wb calibrate on the model folder before wb export, then export again, or pass --threshold")
    return f"{where}: records no threshold (no NAME.json beside it, no threshold metadata); pass --threshold"


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


def load_onnx_detector(path: str | os.PathLike[str], *, threads: int = 0) -> Detector:
    """Load an ONNX detector; its threshold comes from ``NAME.json`` or its metadata (None if uncalibrated)."""
    import onnxruntime as ort

    where = Path(path)
    if not where.is_file():
        raise ModelFileError(f"{where}: ONNX model not found")
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    try:
        session = ort.InferenceSession(str(where), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises several unrelated exception types for bad files
        raise ModelFileError(f"{where}: not a loadable ONNX model ({str(exc).splitlines()[0]})") from exc
    meta = dict(session.get_modelmeta().custom_metadata_map)
    sidecar = where.with_suffix(".json")
    info = read_object(sidecar, "re-run wb export") if sidecar.is_file() else {}
    _check_sample_rate(info, meta, sidecar, where)
    raw = info.get("threshold", meta.get("threshold"))
    calibrated = info.get("calibrated", str(meta.get("calibrated", "true")).lower() == "true")
    threshold = None
    if raw is not None and calibrated:
        threshold = _threshold(raw, sidecar if "threshold" in info else where)
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

    settings = recorded_settings(info.get("calibration_config"), where=sidecar, key="calibration_config",
                         fix="re-run wb export")
    return Detector(where.stem, score, _onnx_window(session, where, meta), threshold, info or meta, where, settings)


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
    if where.suffix != ".onnx":
        raise ModelFileError(f"{where}: expected an exported .onnx file or a model directory")
    return load_onnx_detector(where, threads=threads)


class StreamDetector:
    """Incremental detection: push audio blocks, get events as soon as they are final."""

    def __init__(self, detector: Detector, config: DetectConfig) -> None:
        config = config.resolved(detector)
        self.detector, self.config = detector, config
        hop = hop_samples(config.hop_s)
        self._windows = WindowBuffer(detector.window_samples, hop)
        self._smooth = MovingAverage(config.smooth)
        threshold = threshold_for(detector, config)
        offset = detector.window_samples / 2 / SAMPLE_RATE
        self._events = EventCounter(
            threshold, frame_s=hop / SAMPLE_RATE, refractory_s=config.refractory_s, offset_s=offset
        )

    def _score(self, windows: np.ndarray) -> list[Event]:
        if windows.shape[0] == 0:
            return []
        scores = np.concatenate([
            np.asarray(self.detector.scorer(windows[i : i + self.config.batch_size]), dtype=np.float32)
            for i in range(0, windows.shape[0], self.config.batch_size)
        ])
        return self._events.update(self._smooth.update(scores))

    def push(self, samples: np.ndarray) -> list[Event]:
        """Feed float32 samples at 16 kHz; returns events that became final."""
        return self._score(self._windows.push(samples))

    def flush(self) -> list[Event]:
        """End of stream."""
        return self._score(self._windows.flush()) + self._events.flush()


def detect_waveform(detector: Detector, audio: np.ndarray, config: DetectConfig) -> list[Event]:
    """Events in a whole waveform (batch path; equal to pushing it through ``StreamDetector``)."""
    config = config.resolved(detector)
    hop = hop_samples(config.hop_s)
    scores = score_waveform(
        audio, detector.scorer, window_samples=detector.window_samples, hop=hop, batch_size=config.batch_size
    )
    threshold = threshold_for(detector, config)
    return count_events(
        smooth_scores(scores, config.smooth), threshold, frame_s=hop / SAMPLE_RATE,
        refractory_s=config.refractory_s, offset_s=detector.window_samples / 2 / SAMPLE_RATE,
    )


def pcm_blocks(stream: BinaryIO, block_samples: int) -> Iterator[np.ndarray]:
    """Read raw 16 kHz int16 little-endian PCM in blocks -> float32 in [-1, 1].

    Raises:
        BadAudioError: the bytes begin with a WAV (RIFF) header: its header would be read as samples.
    """
    pending, first = b"", True
    while chunk := stream.read(block_samples * 2):
        data = pending + chunk
        if first and data[:4] == b"RIFF" and data[8:12] == b"WAVE":
            raise BadAudioError("stdin: a WAV file, not raw PCM; pass its path instead of -, or send raw 16 kHz "
                                "int16 PCM (e.g. sox IN.wav -t raw -r 16000 -b 16 -e signed -c 1 -)")
        first = False
        usable = len(data) - len(data) % 2
        pending = data[usable:]
        if usable:
            yield np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / np.float32(32768.0)
    if pending:
        log.warning("stdin ended in the middle of a sample: its last byte is ignored (raw PCM must be 16-bit, "
                    "2 bytes a sample)")


def detect_stream(
    detector: Detector, stream: BinaryIO | None = None, config: DetectConfig | None = None,
    *, block_s: float = 0.5,
) -> Iterator[Event]:
    """Events from raw PCM on ``stream`` (stdin by default), yielded as soon as they are final."""
    source = stream if stream is not None else sys.stdin.buffer
    yield from detect_blocks(detector, pcm_blocks(source, max(1, int(block_s * SAMPLE_RATE))), config)


def detect_blocks(
    detector: Detector, blocks: Iterable[np.ndarray], config: DetectConfig | None = None
) -> Iterator[Event]:
    """Events of audio arriving in float32 blocks (any sizes), yielded as soon as they are final."""
    runner = StreamDetector(detector, config or DetectConfig())
    for block in blocks:
        yield from runner.push(block)
    yield from runner.flush()


def detect_file(
    detector: Detector, path: str | os.PathLike[str], config: DetectConfig | None = None
) -> Iterator[Event]:
    """Events in an audio file, decoded a block at a time: memory does not grow with its length.

    Gives exactly ``detect_waveform(detector, load_audio(path), config)``.
    """
    yield from detect_blocks(detector, AudioBlocks(path), config)


def format_event(source: str, event: Event, *, as_json: bool) -> str:
    """One output line: ``file<TAB>time_s<TAB>score`` or a JSON object."""
    if as_json:
        return json.dumps({"file": source, "time_s": round(event.time_s, 3), "score": round(event.score, 4),
                           "onset_s": round(event.onset_s, 3)})
    return f"{source}\t{event.time_s:.3f}\t{event.score:.4f}"
