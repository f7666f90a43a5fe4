"""Sliding-window scoring of long audio and score smoothing.

A detector sees the stream as windows of ``window_samples`` every ``hop``
samples. Frame ``i`` covers samples ``[i * hop, i * hop + window)``; its time
is the window's centre, ``(i * hop + window / 2) / sample_rate`` seconds.
Audio shorter than one window gives one frame with the audio centred in it, as
training centres its clips (``audio.fit_to_window``); that frame's time is the
audio's centre (``first_frame_s``).
The events of a score trace are counted by ``wakebuilder.events`` (its names
are also importable from here).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from wakebuilder import MAX_REFRACTORY_S, MAX_SMOOTH, SAMPLE_RATE
from wakebuilder.errors import ConfigError
from wakebuilder.events import Event, EventCounter, count_events, count_events_many
from wakebuilder.values import finite_number

__all__ = [
    "MAX_HOP_S", "MIN_HOP_S", "Event", "EventCounter", "MovingAverage", "Scorer", "WindowBuffer",
    "check_stream_settings", "count_events", "count_events_many", "first_frame_s", "frame_starts", "frame_times",
    "frame_windows", "hop_ok", "hop_samples", "refractory_ok", "score_blocks", "score_waveform", "smooth_ok",
    "smooth_scores",
]

Scorer = Callable[[np.ndarray], np.ndarray]
"""Maps float32 waveforms ``(B, window_samples)`` to probabilities ``(B,)``."""

MIN_HOP_S = 0.01
MAX_HOP_S = 0.1


def hop_samples(hop_s: float, *, sample_rate: int = SAMPLE_RATE) -> int:
    """Hop in samples; a hop over 100 ms would miss short wake words, one under 10 ms only multiplies
    the windows to score (a one-sample hop frames a minute of audio into gigabytes)."""
    if not MIN_HOP_S <= hop_s <= MAX_HOP_S:
        raise ConfigError(f"--hop-s {hop_s}: must be in [{MIN_HOP_S}, {MAX_HOP_S}] seconds (10 to 100 ms)")
    return max(1, round(hop_s * sample_rate))


def hop_ok(hop_s: Any) -> bool:
    """Whether ``hop_s`` is a number of seconds within ``--hop-s``'s bounds (``MIN_HOP_S``..``MAX_HOP_S``)."""
    return finite_number(hop_s, low=MIN_HOP_S, high=MAX_HOP_S)


def smooth_ok(smooth: Any) -> bool:
    """Whether ``smooth`` is a whole number of hops within ``--smooth``'s bounds (1..``MAX_SMOOTH``)."""
    return isinstance(smooth, numbers.Integral) and not isinstance(smooth, bool) and 1 <= smooth <= MAX_SMOOTH


def refractory_ok(refractory_s: Any) -> bool:
    """Whether ``refractory_s`` is a number of seconds within ``--refractory-s``'s bounds (0..``MAX_REFRACTORY_S``)."""
    return finite_number(refractory_s, low=0.0, high=MAX_REFRACTORY_S)


def check_stream_settings(*, smooth: Any = None, refractory_s: Any = None) -> None:
    """Refuse a smoothing or refractory period (None: not given) that ``--smooth`` or ``--refractory-s`` would.

    Raises:
        ConfigError: one line naming the option and its bounds (10**30 hops would end in an OverflowError,
            1e9 seconds merge every detection of a stream into one).
    """
    if smooth is not None and not smooth_ok(smooth):
        raise ConfigError(f"--smooth {smooth!r}: must be a whole number in [1, {MAX_SMOOTH}]")
    if refractory_s is not None and not refractory_ok(refractory_s):
        raise ConfigError(f"--refractory-s {refractory_s!r}: must be in [0, {MAX_REFRACTORY_S:g}] seconds")


def _short_start(n_samples: int, window_samples: int) -> int:
    """Start of the one window of audio shorter than it, centred as ``audio.fit_to_window`` centres a training
    clip: ``(window - n) // 2`` samples of zeros before the audio (0 for audio of a window or more)."""
    return -((window_samples - n_samples) // 2) if n_samples < window_samples else 0


def frame_starts(n_samples: int, window_samples: int, hop: int) -> np.ndarray:
    """Start sample of every window; audio shorter than one window gives one frame, which starts before it
    (``_short_start``): padded at the end only, a word would sit where the detector never heard one."""
    if n_samples <= window_samples:
        return np.array([_short_start(n_samples, window_samples)], dtype=np.int64)
    return np.arange(0, n_samples - window_samples + 1, hop, dtype=np.int64)


def first_frame_s(n_samples: int, window_samples: int, *, sample_rate: int = SAMPLE_RATE) -> float:
    """Time of frame 0, its window's centre, in audio of ``n_samples``: half a window in, or in audio shorter
    than one window the audio's centre (half a sample later where the padding is odd), not a time past its end."""
    return (_short_start(n_samples, window_samples) + window_samples / 2) / sample_rate


def frame_windows(waveform: np.ndarray, window_samples: int, hop: int) -> np.ndarray:
    """All windows of ``waveform`` as a read-only ``(frames, window_samples)`` view (short audio: one window with
    the audio centred in zeros, see ``frame_starts``)."""
    audio = np.asarray(waveform, dtype=np.float32)
    if audio.shape[0] < window_samples:
        left = -_short_start(audio.shape[0], window_samples)
        audio = np.pad(audio, (left, window_samples - audio.shape[0] - left))
    view = np.lib.stride_tricks.sliding_window_view(audio, window_samples)
    return view[frame_starts(audio.shape[0], window_samples, hop)]


def score_waveform(
    waveform: np.ndarray, scorer: Scorer, *, window_samples: int, hop: int, batch_size: int = 32
) -> np.ndarray:
    """Score every window of a long waveform in batches -> float32 ``(frames,)``."""
    windows = frame_windows(waveform, window_samples, hop)
    out = np.empty(windows.shape[0], dtype=np.float32)
    for start in range(0, windows.shape[0], batch_size):
        batch = np.ascontiguousarray(windows[start : start + batch_size])
        out[start : start + batch.shape[0]] = np.asarray(scorer(batch), dtype=np.float32).reshape(-1)
    return out


def score_blocks(
    blocks: Iterable[np.ndarray], scorer: Scorer, *, window_samples: int, hop: int, batch_size: int = 32
) -> np.ndarray:
    """``score_waveform`` of audio arriving in blocks: memory holds one block and the scores, not the audio."""
    buffer = WindowBuffer(window_samples, hop)
    parts: list[np.ndarray] = []

    def score(windows: np.ndarray) -> None:
        for start in range(0, windows.shape[0], batch_size):
            batch = np.ascontiguousarray(windows[start : start + batch_size])
            parts.append(np.asarray(scorer(batch), dtype=np.float32).reshape(-1))

    for block in blocks:
        score(buffer.push(block))
    score(buffer.flush())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def frame_times(
    n_frames: int, *, window_samples: int, hop: int, sample_rate: int = SAMPLE_RATE
) -> np.ndarray:
    """Window-centre time in seconds of each frame."""
    return (np.arange(n_frames) * hop + window_samples / 2) / sample_rate


def smooth_scores(scores: np.ndarray, k: int) -> np.ndarray:
    """Causal moving average over the last ``k`` frames (fewer at the start); ``k <= 1`` is a no-op."""
    values = np.asarray(scores, dtype=np.float64)
    if k <= 1 or values.size == 0:
        return values.astype(np.float32)
    cumulative = np.concatenate([[0.0], np.cumsum(values)])
    idx = np.arange(1, values.size + 1)
    lo = np.maximum(idx - k, 0)
    return ((cumulative[idx] - cumulative[lo]) / (idx - lo)).astype(np.float32)


class WindowBuffer:
    """Cuts incoming audio blocks into the same windows as ``frame_windows`` on the whole stream."""

    def __init__(self, window_samples: int, hop: int) -> None:
        self.window_samples, self.hop = window_samples, hop
        self._buffer = np.zeros(0, dtype=np.float32)
        self._frames = 0
        self._seen = 0

    @property
    def samples_seen(self) -> int:
        """Samples pushed so far: the stream's length once it has ended."""
        return self._seen

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Add samples; returns the windows now complete, ``(k, window_samples)``."""
        self._buffer = np.concatenate([self._buffer, np.asarray(samples, dtype=np.float32).reshape(-1)])
        self._seen += int(np.asarray(samples).size)
        if self._buffer.shape[0] < self.window_samples:
            return np.zeros((0, self.window_samples), dtype=np.float32)
        windows = frame_windows(self._buffer, self.window_samples, self.hop)
        self._frames += windows.shape[0]
        out = np.ascontiguousarray(windows)
        self._buffer = self._buffer[windows.shape[0] * self.hop :]
        return out

    def flush(self) -> np.ndarray:
        """End of stream: audio shorter than one window still gives one window, the audio centred in it."""
        if self._frames == 0 and self._seen > 0:
            self._frames = 1
            return np.ascontiguousarray(frame_windows(self._buffer, self.window_samples, self.hop))
        return np.zeros((0, self.window_samples), dtype=np.float32)


class MovingAverage:
    """``smooth_scores`` for scores arriving in blocks."""

    def __init__(self, k: int) -> None:
        self.k = max(1, k)
        self._history = np.zeros(0, dtype=np.float64)

    def update(self, scores: np.ndarray) -> np.ndarray:
        """Smooth the next block, remembering the last ``k - 1`` raw scores."""
        values = np.asarray(scores, dtype=np.float64)
        joined = np.concatenate([self._history, values])
        smoothed = smooth_scores(joined, self.k)[self._history.size :]
        self._history = joined[-(self.k - 1) :] if self.k > 1 else self._history
        return smoothed
