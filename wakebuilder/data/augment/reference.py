"""NumPy twins of the Numba kernels: the readable definition each kernel is tested against.

They are also the ``backend="numpy"`` chain the throughput benchmark compares with. Recursive
filters go through ``scipy.signal.lfilter`` (installed with librosa); the feedback delay network
runs in blocks no longer than its shortest delay, so each block only reads finished samples.
"""

from __future__ import annotations

import numpy as np


def mix(x: np.ndarray, gain: float, other: np.ndarray, other_gain: float) -> np.ndarray:
    return (gain * x + other_gain * other).astype(np.float32)


def resample_linear(x: np.ndarray, factor: float, length: int) -> np.ndarray:
    positions = np.arange(length) * factor
    out = np.interp(positions, np.arange(x.size), x)
    return np.where(np.floor(positions) >= x.size - 1, 0.0, out).astype(np.float32)


def wsola(
    x: np.ndarray, rate: float, window: np.ndarray, hop: int, tolerance: int, stride: int, length: int
) -> np.ndarray:
    size, n = window.size, x.size
    padded = np.concatenate([x, np.zeros(size + int(length * rate) + hop + tolerance)]).astype(np.float64)
    frames = np.lib.stride_tricks.sliding_window_view(padded, size)
    out, norm = np.zeros(length), np.zeros(length)
    previous = 0
    for f in range(max((length - size) // hop + 1, 0)):
        best = int(f * hop * rate)
        low, high = max(best - tolerance, 0), min(best + tolerance, n - size)
        if f > 0 and low <= high:
            scores = frames[low : high + 1, ::stride] @ frames[previous + hop, ::stride]
            best = low + int(np.argmax(scores))
        out[f * hop : f * hop + size] += window * padded[best : best + size]
        norm[f * hop : f * hop + size] += window * window
        previous = best
    return np.where(norm > 1e-3, out / np.maximum(norm, 1e-3), out).astype(np.float32)


def biquad(x: np.ndarray, b: tuple[float, float, float], a: tuple[float, float]) -> np.ndarray:
    from scipy.signal import lfilter

    return lfilter(np.array(b), np.array([1.0, *a]), x).astype(np.float32)


def color_noise(white: np.ndarray, color: int) -> np.ndarray:
    from scipy.signal import lfilter

    if color == 0:
        return white.astype(np.float32)
    if color == 2:
        return lfilter([0.05], [1.0, -0.998], white).astype(np.float32)
    poles = [0.99886, 0.99332, 0.96900, 0.86650, 0.55000, -0.7616]
    gains = [0.0555179, 0.0750759, 0.1538520, 0.3104856, 0.5329522, -0.0168980]
    out = sum(lfilter([g], [1.0, -p], white) for p, g in zip(poles, gains, strict=True))
    previous = np.concatenate([[0.0], white[:-1]])
    return (out + 0.5362 * white + 0.115926 * previous).astype(np.float32)


def shift(x: np.ndarray, offset: int, circular: bool) -> np.ndarray:
    if circular:
        return np.roll(x, offset).astype(np.float32)
    out = np.zeros_like(x)
    if abs(offset) >= x.size:
        return out
    if offset >= 0:
        out[offset:] = x[: x.size - offset]
    else:
        out[: x.size + offset] = x[-offset:]
    return out


def taps(x: np.ndarray, delays: np.ndarray, gains: np.ndarray) -> np.ndarray:
    out = np.zeros(x.size)
    for d, g in zip(delays, gains, strict=True):
        if d < x.size:
            out[d:] += g * x[: x.size - d]
    return out.astype(np.float32)


def hadamard8() -> np.ndarray:
    """Sylvester's 8x8 Hadamard matrix (the order the kernel's butterflies produce)."""
    h = np.array([[1.0]])
    for _ in range(3):
        h = np.block([[h, h], [h, -h]])
    return h


def fdn(
    x: np.ndarray, delays: np.ndarray, gains: np.ndarray, in_gains: np.ndarray, out_gains: np.ndarray
) -> np.ndarray:
    n, longest = x.size, int(delays.max())
    feedback = hadamard8() / np.sqrt(8.0)
    history = np.zeros((8, longest + n))  # s_i[t] lives at history[i, longest + t]
    out = np.zeros(n)
    block = int(delays.min())
    for start in range(0, n, block):
        t = np.arange(start, min(start + block, n))
        u = np.stack([gains[i] * history[i, longest + t - delays[i]] for i in range(8)])
        out[t] = out_gains @ u
        history[:, longest + t] = np.outer(in_gains, x[t]) + feedback @ u
    return out.astype(np.float32)
