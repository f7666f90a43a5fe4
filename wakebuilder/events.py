"""Event counting on a detector's score trace: the rule by which detections and false accepts are counted.

Event rule (the same in the batch and the incremental code): an event fires at
a rising edge (a frame at or above the threshold after one below it, or the
first frame). A rising edge less than ``refractory_s`` after the last event
fired belongs to that event, so two crossings inside one refractory period are
one event and a plateau of any length is one event. An event reports the
time and score of its highest frame, and the time it fired.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from wakebuilder.errors import ModelFileError


@dataclass(frozen=True)
class Event:
    """One detection: peak time and score, and when it fired (all seconds from stream start)."""

    time_s: float
    score: float
    onset_s: float


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
