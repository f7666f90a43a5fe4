"""Private Numba kernels: pure arithmetic over preallocated float32 arrays, no randomness.

Each kernel has a NumPy twin in ``reference.py`` and a test holding them equal.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, fastmath=True, nogil=True)
def _scale_add(x: np.ndarray, gain: float, noise: np.ndarray, noise_gain: float, out: np.ndarray) -> None:
    """out = gain * x + noise_gain * noise."""
    for i in range(x.shape[0]):
        out[i] = gain * x[i] + noise_gain * noise[i]


@njit(cache=True, nogil=True)
def _resample_linear(x: np.ndarray, factor: float, out: np.ndarray) -> None:
    """Read ``x`` ``factor`` times faster with linear interpolation (speed change); zero past the end."""
    n = x.shape[0]
    for i in range(out.shape[0]):
        position = i * factor
        left = int(position)
        if left >= n - 1:
            out[i] = 0.0
        else:
            frac = position - left
            out[i] = (1.0 - frac) * x[left] + frac * x[left + 1]


@njit(cache=True, fastmath=True, nogil=True)
def _ola_stretch(x: np.ndarray, rate: float, window: np.ndarray, hop: int, out: np.ndarray, norm: np.ndarray) -> None:
    """Overlap-add time stretch: frames read every ``hop * rate`` samples, written every ``hop``."""
    size = window.shape[0]
    out[:] = 0.0
    norm[:] = 0.0
    frames = (out.shape[0] - size) // hop + 1
    for f in range(max(frames, 0)):
        src = int(f * hop * rate)
        dst = f * hop
        for k in range(size):
            value = x[src + k] if src + k < x.shape[0] else 0.0
            out[dst + k] += window[k] * value
            norm[dst + k] += window[k] * window[k]
    for i in range(out.shape[0]):
        if norm[i] > 1e-3:
            out[i] /= norm[i]


@njit(cache=True, fastmath=True, nogil=True)
def _biquad(x: np.ndarray, b0: float, b1: float, b2: float, a1: float, a2: float, out: np.ndarray) -> None:
    """Direct form I biquad filter."""
    x1 = x2 = y1 = y2 = 0.0
    for i in range(x.shape[0]):
        y = b0 * x[i] + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        x2, x1, y2, y1 = x1, x[i], y1, y
        out[i] = y


@njit(cache=True, fastmath=True, nogil=True)
def _color_noise(white: np.ndarray, color: int, out: np.ndarray) -> None:
    """White (0), pink (1, Paul Kellet's filter) or brown (2, leaky integrator) noise."""
    b0 = b1 = b2 = b3 = b4 = b5 = b6 = 0.0
    level = 0.0
    for i in range(white.shape[0]):
        w = white[i]
        if color == 0:
            out[i] = w
        elif color == 1:
            b0 = 0.99886 * b0 + w * 0.0555179
            b1 = 0.99332 * b1 + w * 0.0750759
            b2 = 0.96900 * b2 + w * 0.1538520
            b3 = 0.86650 * b3 + w * 0.3104856
            b4 = 0.55000 * b4 + w * 0.5329522
            b5 = -0.7616 * b5 - w * 0.0168980
            out[i] = b0 + b1 + b2 + b3 + b4 + b5 + b6 + w * 0.5362
            b6 = w * 0.115926
        else:
            level = 0.998 * level + 0.05 * w
            out[i] = level


@njit(cache=True, fastmath=True, nogil=True)
def _shift(x: np.ndarray, offset: int, out: np.ndarray) -> None:
    """Move ``x`` by ``offset`` samples (positive: later), zero-filling."""
    n = x.shape[0]
    for i in range(n):
        j = i - offset
        out[i] = x[j] if 0 <= j < n else 0.0


@njit(cache=True, fastmath=True, nogil=True)
def _warp_log_gain(envelope: np.ndarray, factor: float, limit: float, out: np.ndarray) -> None:
    """Per frame and bin, the log gain that moves a log spectral envelope ``factor`` times up in frequency:
    ``envelope(k / factor) - envelope(k)`` (linear interpolation, the top bin held past it), clipped to
    +-``limit``."""
    frames, bins = envelope.shape
    for f in range(frames):
        for k in range(bins):
            position = k / factor
            left = int(position)
            if left >= bins - 1:
                value = envelope[f, bins - 1]
            else:
                frac = position - left
                value = (1.0 - frac) * envelope[f, left] + frac * envelope[f, left + 1]
            gain = value - envelope[f, k]
            out[f, k] = min(max(gain, -limit), limit)
