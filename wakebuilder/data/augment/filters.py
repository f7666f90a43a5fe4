"""Biquad EQ designs (RBJ audio-EQ cookbook) and the ranges their parameters are drawn from."""

from __future__ import annotations

import math

from wakebuilder import SAMPLE_RATE
from wakebuilder.errors import ConfigError

# type -> (cutoff_hz range, q range, gain_db range); gain_db only matters for the shelves.
EQ_RANGES: dict[str, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    "lowpass": ((2500.0, 7000.0), (0.5, 1.0), (0.0, 0.0)),
    "highpass": ((60.0, 400.0), (0.5, 1.0), (0.0, 0.0)),
    "bandpass": ((300.0, 3000.0), (0.3, 0.8), (0.0, 0.0)),
    "low_shelf": ((100.0, 500.0), (0.5, 1.0), (-12.0, 12.0)),
    "high_shelf": ((2000.0, 6000.0), (0.5, 1.0), (-12.0, 12.0)),
}


def biquad_coefficients(
    kind: str, cutoff_hz: float, q: float, gain_db: float = 0.0
) -> tuple[tuple[float, float, float], tuple[float, float]]:
    """``(b0, b1, b2), (a1, a2)`` of an RBJ biquad, normalised so a0 = 1.

    ``bandpass`` has 0 dB gain at its centre; the shelves move the band below (``low_shelf``) or
    above (``high_shelf``) ``cutoff_hz`` by ``gain_db``.
    """
    w0 = 2 * math.pi * cutoff_hz / SAMPLE_RATE
    cos, alpha = math.cos(w0), math.sin(w0) / (2 * q)
    if kind in ("lowpass", "highpass", "bandpass"):
        b = {"lowpass": ((1 - cos) / 2, 1 - cos, (1 - cos) / 2),
             "highpass": ((1 + cos) / 2, -(1 + cos), (1 + cos) / 2),
             "bandpass": (alpha, 0.0, -alpha)}[kind]
        a = (1 + alpha, -2 * cos, 1 - alpha)
    elif kind in ("low_shelf", "high_shelf"):
        amp = 10 ** (gain_db / 40)
        root, sign = 2 * math.sqrt(amp) * alpha, 1 if kind == "low_shelf" else -1
        b = (amp * ((amp + 1) - sign * (amp - 1) * cos + root),
             sign * 2 * amp * ((amp - 1) - sign * (amp + 1) * cos),
             amp * ((amp + 1) - sign * (amp - 1) * cos - root))
        a = ((amp + 1) + sign * (amp - 1) * cos + root,
             -sign * 2 * ((amp - 1) + sign * (amp + 1) * cos),
             (amp + 1) + sign * (amp - 1) * cos - root)
    else:
        raise ConfigError(f"augment eq: unknown type {kind!r}; known: {', '.join(EQ_RANGES)}")
    return (b[0] / a[0], b[1] / a[0], b[2] / a[0]), (a[1] / a[0], a[2] / a[0])
