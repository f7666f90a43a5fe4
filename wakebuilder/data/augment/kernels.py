"""Private Numba kernels: pure arithmetic over preallocated float32 arrays, no randomness inside.

Each kernel writes into ``out`` (and scratch arrays the caller owns), releases the GIL (``nogil``) so
several clips can run on threads at once, and is cached on disk (``cache=True``): the first import
compiles (seconds), later processes load the machine code (a fraction of a second). Every kernel has
a NumPy twin in ``reference.py`` and a test holding the two equal on random inputs.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OPTS = {"cache": True, "nogil": True, "fastmath": True}


@njit(**_OPTS)
def _mix(x: np.ndarray, gain: float, other: np.ndarray, other_gain: float, out: np.ndarray) -> None:
    """out = gain * x + other_gain * other (gain, and noise added at a chosen level)."""
    for i in range(x.shape[0]):
        out[i] = gain * x[i] + other_gain * other[i]


@njit(cache=True, nogil=True)
def _resample_linear(x: np.ndarray, factor: float, out: np.ndarray) -> None:
    """Read ``x`` ``factor`` times faster with linear interpolation; zero past the last sample."""
    n = x.shape[0]
    for i in range(out.shape[0]):
        position = i * factor
        left = int(position)
        if left >= n - 1:
            out[i] = 0.0
        else:
            frac = position - left
            out[i] = (1.0 - frac) * x[left] + frac * x[left + 1]


@njit(cache=True, nogil=True)
def _wsola(
    x: np.ndarray, rate: float, window: np.ndarray, hop: int, tolerance: int, stride: int, out: np.ndarray,
    norm: np.ndarray,
) -> None:
    """WSOLA time stretch: frames written every ``hop``, read near every ``hop * rate`` samples.

    Each frame's read position moves by up to ``tolerance`` samples to the one whose frame best
    matches (dot product over every ``stride``-th sample) the natural continuation of the frame
    before, so overlapping frames add in phase. No fastmath: the search must pick the same frame
    as the NumPy reference.
    """
    size, n = window.shape[0], x.shape[0]
    out[:] = 0.0
    norm[:] = 0.0
    previous = 0
    for f in range(max((out.shape[0] - size) // hop + 1, 0)):
        best = int(f * hop * rate)
        low, high = max(best - tolerance, 0), min(best + tolerance, n - size)
        if f > 0 and low <= high:
            target, best_score = previous + hop, -np.inf
            for candidate in range(low, high + 1):
                score = 0.0
                for k in range(0, size, stride):
                    if target + k < n:
                        score += np.float64(x[candidate + k]) * np.float64(x[target + k])
                if score > best_score:
                    best, best_score = candidate, score
        for k in range(size):
            value = x[best + k] if 0 <= best + k < n else 0.0
            out[f * hop + k] += window[k] * value
            norm[f * hop + k] += window[k] * window[k]
        previous = best
    for i in range(out.shape[0]):
        if norm[i] > 1e-3:
            out[i] /= norm[i]


@njit(**_OPTS)
def _biquad(x: np.ndarray, b0: float, b1: float, b2: float, a1: float, a2: float, out: np.ndarray) -> None:
    """Direct form I biquad (a0 = 1), zero initial state."""
    x1 = x2 = y1 = y2 = 0.0
    for i in range(x.shape[0]):
        y = b0 * x[i] + b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        x2, x1, y2, y1 = x1, x[i], y1, y
        out[i] = y


@njit(**_OPTS)
def _color_noise(white: np.ndarray, color: int, out: np.ndarray) -> None:
    """White (0), pink (1: Paul Kellet's six-pole filter) or brown (2: leaky integrator) noise."""
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


@njit(cache=True, nogil=True)
def _shift(x: np.ndarray, offset: int, circular: bool, out: np.ndarray) -> None:
    """Move ``x`` by ``offset`` samples (positive: later), wrapping around or zero-filling."""
    n = x.shape[0]
    for i in range(n):
        j = i - offset
        if circular:
            out[i] = x[j % n]
        else:
            out[i] = x[j] if 0 <= j < n else 0.0


@njit(**_OPTS)
def _taps(x: np.ndarray, delays: np.ndarray, gains: np.ndarray, out: np.ndarray) -> None:
    """Sparse FIR: out[n] = sum_k gains[k] * x[n - delays[k]] (direct path and early reflections)."""
    out[:] = 0.0
    n = x.shape[0]
    for k in range(delays.shape[0]):
        d, g = delays[k], gains[k]
        for i in range(d, n):
            out[i] += g * x[i - d]


@njit(**_OPTS)
def _fdn(
    x: np.ndarray, delays: np.ndarray, gains: np.ndarray, in_gains: np.ndarray, out_gains: np.ndarray,
    ring: np.ndarray, out: np.ndarray,
) -> None:
    """8-line feedback delay network with an orthonormal Hadamard feedback matrix (late reverberation).

    Line i holds s_i; its output u_i[n] = gains[i] * s_i[n - delays[i]]; the lines are refilled with
    s[n] = in_gains * x[n] + H8 u[n] / sqrt(8) and out[n] = out_gains . u[n]. ``ring`` is scratch of
    shape (8, L), L a power of two above the longest delay. The 8-point Walsh-Hadamard butterflies
    are written out so the loop body stays in registers.
    """
    mask = ring.shape[1] - 1
    ring[:, :] = 0.0
    scale = np.float32(1.0 / np.sqrt(8.0))
    for n in range(x.shape[0]):
        u0 = gains[0] * ring[0, (n - delays[0]) & mask]
        u1 = gains[1] * ring[1, (n - delays[1]) & mask]
        u2 = gains[2] * ring[2, (n - delays[2]) & mask]
        u3 = gains[3] * ring[3, (n - delays[3]) & mask]
        u4 = gains[4] * ring[4, (n - delays[4]) & mask]
        u5 = gains[5] * ring[5, (n - delays[5]) & mask]
        u6 = gains[6] * ring[6, (n - delays[6]) & mask]
        u7 = gains[7] * ring[7, (n - delays[7]) & mask]
        out[n] = (out_gains[0] * u0 + out_gains[1] * u1 + out_gains[2] * u2 + out_gains[3] * u3
                  + out_gains[4] * u4 + out_gains[5] * u5 + out_gains[6] * u6 + out_gains[7] * u7)
        a0, a1, a2, a3, a4, a5, a6, a7 = u0 + u1, u0 - u1, u2 + u3, u2 - u3, u4 + u5, u4 - u5, u6 + u7, u6 - u7
        b0, b1, b2, b3, b4, b5, b6, b7 = a0 + a2, a1 + a3, a0 - a2, a1 - a3, a4 + a6, a5 + a7, a4 - a6, a5 - a7
        v, k = x[n], n & mask
        ring[0, k] = in_gains[0] * v + scale * (b0 + b4)
        ring[1, k] = in_gains[1] * v + scale * (b1 + b5)
        ring[2, k] = in_gains[2] * v + scale * (b2 + b6)
        ring[3, k] = in_gains[3] * v + scale * (b3 + b7)
        ring[4, k] = in_gains[4] * v + scale * (b0 - b4)
        ring[5, k] = in_gains[5] * v + scale * (b1 - b5)
        ring[6, k] = in_gains[6] * v + scale * (b2 - b6)
        ring[7, k] = in_gains[7] * v + scale * (b3 - b7)
