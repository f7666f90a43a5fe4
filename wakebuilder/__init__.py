"""wakebuilder: custom wake-word detectors from a phrase and a few recordings.

One frozen backbone pass over all audio into a chunked embedding store; head
training, calibration and export then read only that store.
"""

from __future__ import annotations

__version__ = "0.1.0"

SAMPLE_RATE = 16_000
"""Every clip, store and model works at 16 kHz mono."""

MAX_SMOOTH = 1000
"""The most hops a detector's moving average of scores spans: ``--smooth``'s bound, and a calibration's."""

MAX_REFRACTORY_S = 3600.0
"""The longest refractory period after a detection, in seconds: ``--refractory-s``'s bound, and a calibration's."""

MIN_DEFAULT_REFRACTORY_S = 1.0
"""The shortest refractory period taken by default: the detector's window, never below this
(``stream_settings.default_refractory_s``)."""
