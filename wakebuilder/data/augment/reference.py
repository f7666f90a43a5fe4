"""NumPy twins of the Numba kernels: the readable definition each kernel is tested against."""

from __future__ import annotations

import numpy as np


def scale_add(x: np.ndarray, gain: float, noise: np.ndarray, noise_gain: float) -> np.ndarray:
    return (gain * x + noise_gain * noise).astype(np.float32)


def resample_linear(x: np.ndarray, factor: float, length: int) -> np.ndarray:
    positions = np.arange(length) * factor
    out = np.interp(positions, np.arange(x.size), x)
    return np.where(np.floor(positions) >= x.size - 1, 0.0, out).astype(np.float32)


def wsola(x: np.ndarray, rate: float, window: np.ndarray, hop: int, tolerance: int, length: int) -> np.ndarray:
    size = window.size
    span = size - hop
    padded = np.concatenate([x.astype(np.float64), np.zeros(int(length * rate) + hop + tolerance + size)])
    out, norm = np.zeros(length), np.zeros(length)
    previous = -1
    for f in range(max((length - size) // hop + 1, 0)):
        dst = f * hop
        src = int(dst * rate)
        if previous >= 0:
            low = max(src - tolerance, 0)
            match = np.correlate(padded[low : src + tolerance + span], padded[previous + hop : previous + hop + span],
                                 "valid")
            steps = np.arange(2 * tolerance + 1)
            nearest_first = src + (steps + 1) // 2 * np.where(steps % 2 == 0, 1, -1)
            nearest_first = nearest_first[nearest_first >= 0]
            src = int(nearest_first[np.argmax(match[nearest_first - low])])
        previous = src
        out[dst : dst + size] += window * padded[src : src + size]
        norm[dst : dst + size] += window
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


def shift(x: np.ndarray, offset: int) -> np.ndarray:
    out = np.zeros_like(x)
    if abs(offset) >= x.size:
        return out
    if offset >= 0:
        out[offset:] = x[: x.size - offset]
    else:
        out[: x.size + offset] = x[-offset:]
    return out


def warp_log_gain(envelope: np.ndarray, factor: float, limit: float) -> np.ndarray:
    bins = np.arange(envelope.shape[1])
    warped = np.stack([np.interp(bins / factor, bins, row) for row in envelope])
    return np.clip(warped - envelope, -limit, limit).astype(np.float32)
