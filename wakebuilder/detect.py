"""`wb detect`: streaming wake-word detection with onnxruntime over files or raw PCM on stdin.

Runs a detector (:mod:`wakebuilder.detector` loads one; its names are also
importable from here) over audio: the streaming settings, the threshold, and
the events of a waveform, a file, audio blocks or raw PCM.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, BinaryIO

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.audio_stream import AudioBlocks
from wakebuilder.config import StageConfig
from wakebuilder.errors import BadAudioError, ConfigError, ModelFileError
from wakebuilder.detector import Detector, load_detector, load_dir_detector, load_onnx_detector
from wakebuilder.events import Event, EventCounter, count_events
from wakebuilder.stream_settings import STREAM_DEFAULTS, setting_problem, stream_defaults
from wakebuilder.streaming import (
    MovingAverage, WindowBuffer, check_stream_settings, first_frame_s, hop_samples, score_waveform, smooth_scores,
)

if TYPE_CHECKING:
    from wakebuilder.verify import Verifier

__all__ = [
    "STREAM_DEFAULTS", "DetectConfig", "Detector", "StreamDetector", "detect_blocks", "detect_file", "detect_stream",
    "detect_waveform", "format_event", "load_detector", "load_dir_detector", "load_onnx_detector", "pcm_blocks",
    "threshold_for",
]

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class DetectConfig(StageConfig):
    """Streaming settings. ``threshold`` None takes the model's calibrated threshold; ``hop_s``, ``smooth`` and
    ``refractory_s`` None take those the threshold was calibrated with (``resolved``), else ``STREAM_DEFAULTS``
    (the refractory period: the detector's window, at least 1 s: ``stream_defaults``): a threshold chosen on
    smoothed scores means another rate of false accepts on raw ones."""

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
        defaults = stream_defaults(detector.window_samples)
        chosen = {name: value if value is not None else calibrated.get(name, defaults[name])
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


def threshold_for(detector: Detector, config: DetectConfig, *, verifying: bool = False) -> float:
    """``--threshold`` when given; else, where a verifier checks each event, the candidate threshold (the one the
    detector's files record, else ``verify.CANDIDATE_THRESHOLD``); else the detector's calibrated one.

    Raises:
        ModelFileError: none: an uncalibrated model would silently mean 0.5.
    """
    if config.threshold is not None:
        return config.threshold
    if verifying:
        from wakebuilder.verify import candidate_threshold

        return candidate_threshold(detector)
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


class StreamDetector:
    """Incremental detection: push audio blocks, get events as soon as they are final (and, with a ``verifier``,
    heard as the wake word by it: the last minute of audio is kept for it)."""

    def __init__(self, detector: Detector, config: DetectConfig, verifier: Verifier | None = None) -> None:
        config = config.resolved(detector)
        self.detector, self.config, self.verifier = detector, config, verifier
        hop = hop_samples(config.hop_s)
        self._windows = WindowBuffer(detector.window_samples, hop)
        self._smooth = MovingAverage(config.smooth)
        self._history = None
        if verifier is not None:
            from wakebuilder.verify import AudioHistory

            self._history = AudioHistory()
        threshold = threshold_for(detector, config, verifying=verifier is not None)
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
        return self._verified(self._events.update(self._smooth.update(scores)))

    def _verified(self, events: list[Event]) -> list[Event]:
        if self.verifier is None or not events:
            return events
        return self.verifier.keep(events, self.detector.window_samples, self._history.between)

    def push(self, samples: np.ndarray) -> list[Event]:
        """Feed float32 samples at 16 kHz; returns events that became final."""
        if self._history is not None:
            self._history.push(samples)
        return self._score(self._windows.push(samples))

    def flush(self) -> list[Event]:
        """End of stream. A stream shorter than one window is scored only now, centred in its one window, whose
        time is then the stream's centre (``first_frame_s``), not half a window (past its end)."""
        windows = self._windows.flush()
        if windows.shape[0]:  # that one window: no frame has been counted yet
            self._events.offset_s = first_frame_s(self._windows.samples_seen, self.detector.window_samples)
        return self._score(windows) + self._verified(self._events.flush())


def detect_waveform(detector: Detector, audio: np.ndarray, config: DetectConfig,
                    verifier: Verifier | None = None) -> list[Event]:
    """Events in a whole waveform (batch path; equal to pushing it through ``StreamDetector``)."""
    config = config.resolved(detector)
    hop = hop_samples(config.hop_s)
    scores = score_waveform(
        audio, detector.scorer, window_samples=detector.window_samples, hop=hop, batch_size=config.batch_size
    )
    threshold = threshold_for(detector, config, verifying=verifier is not None)
    events = count_events(
        smooth_scores(scores, config.smooth), threshold, frame_s=hop / SAMPLE_RATE,
        refractory_s=config.refractory_s, offset_s=first_frame_s(len(audio), detector.window_samples),
    )
    if verifier is None:
        return events
    samples = np.asarray(audio, dtype=np.float32).reshape(-1)
    return verifier.keep(events, detector.window_samples, lambda start, stop: samples[start:stop])


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
    *, block_s: float = 0.5, verifier: Verifier | None = None,
) -> Iterator[Event]:
    """Events from raw PCM on ``stream`` (stdin by default), yielded as soon as they are final."""
    source = stream if stream is not None else sys.stdin.buffer
    yield from detect_blocks(detector, pcm_blocks(source, max(1, int(block_s * SAMPLE_RATE))), config,
                             verifier=verifier)


def detect_blocks(
    detector: Detector, blocks: Iterable[np.ndarray], config: DetectConfig | None = None,
    *, verifier: Verifier | None = None,
) -> Iterator[Event]:
    """Events of audio arriving in float32 blocks (any sizes), yielded as soon as they are final."""
    runner = StreamDetector(detector, config or DetectConfig(), verifier)
    for block in blocks:
        yield from runner.push(block)
    yield from runner.flush()


def detect_file(
    detector: Detector, path: str | os.PathLike[str], config: DetectConfig | None = None,
    *, verifier: Verifier | None = None,
) -> Iterator[Event]:
    """Events in an audio file, decoded a block at a time: memory does not grow with its length.

    Gives exactly ``detect_waveform(detector, load_audio(path), config, verifier)``.
    """
    yield from detect_blocks(detector, AudioBlocks(path), config, verifier=verifier)


def format_event(source: str, event: Event, *, as_json: bool) -> str:
    """One output line: ``file<TAB>time_s<TAB>score`` or a JSON object."""
    if as_json:
        return json.dumps({"file": source, "time_s": round(event.time_s, 3), "score": round(event.score, 4),
                           "onset_s": round(event.onset_s, 3)})
    return f"{source}\t{event.time_s:.3f}\t{event.score:.4f}"
