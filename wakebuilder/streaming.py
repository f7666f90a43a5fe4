"""Sliding-window scoring of long audio, score smoothing and event counting.

A detector sees the stream as windows of ``window_samples`` every ``hop``
samples. Frame ``i`` covers samples ``[i * hop, i * hop + window)``; its time
is the window's centre, ``(i * hop + window / 2) / sample_rate`` seconds.

Event rule (the same in the batch and the incremental code): an event fires at
a rising edge (a frame at or above the threshold after one below it, or the
first frame). A rising edge less than ``refractory_s`` after the last event
fired belongs to that event, so two crossings inside one refractory period are
one event and a plateau of any length is one event. An event reports the
time and score of its highest frame, and the time it fired.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from wakebuilder import MAX_REFRACTORY_S, MAX_SMOOTH, SAMPLE_RATE
from wakebuilder.errors import ConfigError, ModelFileError
from wakebuilder.values import finite_number

Scorer = Callable[[np.ndarray], np.ndarray]
"""Maps float32 waveforms ``(B, window_samples)`` to probabilities ``(B,)``."""

MIN_HOP_S = 0.01
MAX_HOP_S = 0.1


@dataclass(frozen=True)
class Event:
    """One detection: peak time and score, and when it fired (all seconds from stream start)."""

    time_s: float
    score: float
    onset_s: float


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


def frame_starts(n_samples: int, window_samples: int, hop: int) -> np.ndarray:
    """Start sample of every window; audio shorter than one window gives one (padded) frame."""
    if n_samples <= window_samples:
        return np.zeros(1, dtype=np.int64)
    return np.arange(0, n_samples - window_samples + 1, hop, dtype=np.int64)


def frame_windows(waveform: np.ndarray, window_samples: int, hop: int) -> np.ndarray:
    """All windows of ``waveform`` as a read-only ``(frames, window_samples)`` view (zero-padded if short)."""
    audio = np.asarray(waveform, dtype=np.float32)
    if audio.shape[0] < window_samples:
        audio = np.pad(audio, (0, window_samples - audio.shape[0]))
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


def _refuse_nan(values: np.ndarray, *, first_frame: int, frame_s: float, offset_s: float) -> None:
    """A NaN score compares below every threshold: counted, it would read as no detection (and, smoothed, as
    none for the rest of the stream)."""
    bad = np.flatnonzero(np.isnan(values))
    if bad.size:
        time_s = offset_s + (first_frame + int(bad[0])) * frame_s
        raise ModelFileError(f"the detector scored the window centred at {time_s:.2f} s NaN, not a probability, so "
                             "neither detections nor false accepts can be counted; check or re-export the model")


def count_events(
    scores: np.ndarray, threshold: float, *, frame_s: float, refractory_s: float = 1.0, offset_s: float = 0.0
) -> list[Event]:
    """Events of a score trace (see the module docstring for the rule).

    Args:
        scores: one score per frame.
        threshold: a frame fires when its score is >= threshold.
        frame_s: seconds between frames (the hop).
        refractory_s: rising edges closer than this to the last firing merge into it.
        offset_s: time of frame 0 (the window centre of the first frame).
    """
    values = np.asarray(scores, dtype=np.float64)
    _refuse_nan(values, first_frame=0, frame_s=frame_s, offset_s=offset_s)
    above = values >= threshold
    if not above.any():
        return []
    rising = np.flatnonzero(above & ~np.concatenate([[False], above[:-1]]))
    falling = np.flatnonzero(~above & np.concatenate([[False], above[:-1]]))
    fired: list[int] = []
    for edge in rising:
        if not fired or (edge - fired[-1]) * frame_s >= refractory_s - 1e-9:
            fired.append(int(edge))
    events = []
    for i, start in enumerate(fired):
        stop = fired[i + 1] if i + 1 < len(fired) else values.size
        # the last run belonging to this event ends at the first falling edge after the last merged rise
        last_rise = rising[(rising >= start) & (rising < stop)].max()
        ends = falling[falling > last_rise]
        end = int(ends[0]) if ends.size else values.size
        peak = start + int(np.argmax(values[start:end]))
        events.append(Event(offset_s + peak * frame_s, float(values[peak]), offset_s + start * frame_s))
    return events


def count_events_many(
    traces: list[np.ndarray], thresholds: np.ndarray, *, frame_s: float, refractory_s: float = 1.0
) -> np.ndarray:
    """Total event count over several traces for each threshold -> int ``(len(thresholds),)``."""
    totals = np.zeros(len(thresholds), dtype=np.int64)
    for trace in traces:
        for j, threshold in enumerate(thresholds):
            events = count_events(trace, float(threshold), frame_s=frame_s, refractory_s=refractory_s)
            totals[j] += len(events)
    return totals


class EventCounter:
    """The event rule, fed score blocks one at a time; events come out once final.

    An event is final once the scores are below the threshold and no later
    rising edge can fall inside its refractory period (or at ``flush``). Feeding
    a trace in any blocks gives exactly ``count_events`` of the whole trace.
    """

    def __init__(
        self, threshold: float, *, frame_s: float, refractory_s: float = 1.0, offset_s: float = 0.0
    ) -> None:
        self.threshold, self.frame_s = threshold, frame_s
        self.refractory_s, self.offset_s = refractory_s, offset_s
        self._frame = 0
        self._prev_above = False
        self._open: tuple[int, int, float] | None = None  # (fired frame, peak frame, peak score)

    def _merges(self, frame: int) -> bool:
        return self._open is not None and (frame - self._open[0]) * self.frame_s < self.refractory_s - 1e-9

    def _emit(self) -> Event:
        fired, peak, score = self._open  # type: ignore[misc]
        self._open = None
        return Event(self.offset_s + peak * self.frame_s, score, self.offset_s + fired * self.frame_s)

    def update(self, scores: np.ndarray) -> list[Event]:
        """Feed the next frames' scores; returns the events that became final."""
        done: list[Event] = []
        values = np.asarray(scores, dtype=np.float64).reshape(-1)
        _refuse_nan(values, first_frame=self._frame, frame_s=self.frame_s, offset_s=self.offset_s)
        for value in values.tolist():
            t, above = self._frame, value >= self.threshold
            if above and not self._prev_above and not self._merges(t):
                if self._open is not None:
                    done.append(self._emit())
                self._open = (t, t, value)
            elif above and self._open is not None and value > self._open[2]:
                self._open = (self._open[0], t, value)
            elif not above and self._open is not None and not self._merges(t + 1):
                done.append(self._emit())
            self._prev_above = above
            self._frame += 1
        return done

    def flush(self) -> list[Event]:
        """End of stream: the open event, if any, is final."""
        return [self._emit()] if self._open is not None else []


class WindowBuffer:
    """Cuts incoming audio blocks into the same windows as ``frame_windows`` on the whole stream."""

    def __init__(self, window_samples: int, hop: int) -> None:
        self.window_samples, self.hop = window_samples, hop
        self._buffer = np.zeros(0, dtype=np.float32)
        self._frames = 0
        self._seen = 0

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
        """End of stream: audio shorter than one window still gives one zero-padded window."""
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
