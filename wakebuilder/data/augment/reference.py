"""NumPy twins of the Numba kernels: the readable definition each kernel is tested against."""

from __future__ import annotations

import numpy as np


def scale_add(x: np.ndarray, gain: float, noise: np.ndarray, noise_gain: float) -> np.ndarray:
    return (gain * x + noise_gain * noise).astype(np.float32)


def resample_linear(x: np.ndarray, factor: float, length: int) -> np.ndarray:
    positions = np.arange(length) * factor
    out = np.interp(positions, np.arange(x.size), x)
    return np.where(np.floor(positions) >= x.size - 1, 0.0, out).astype(np.float32)


def ola_stretch(x: np.ndarray, rate: float, window: np.ndarray, hop: int, length: int) -> np.ndarray:
    size = window.size
    out = np.zeros(length)
    norm = np.zeros(length)
    padded = np.concatenate([x, np.zeros(size + int(length * rate) + hop)])
    for f in range(max((length - size) // hop + 1, 0)):
        src, dst = int(f * hop * rate), f * hop
        out[dst : dst + size] += window * padded[src : src + size]
        norm[dst : dst + size] += window * window
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
