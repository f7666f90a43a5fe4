"""Augmentation transforms: drawing parameters is separate from applying them.

``draw_params`` draws a whole chain's parameters, each transform from its own
Generator keyed by (run seed, clip id, copy index, transform name); ``apply_params``
is pure arithmetic on those parameters, with noise regenerated from the seed
stored in them. The parameters go into the manifest row, so every augmented
clip can be rebuilt exactly from its row. ``backend="numpy"`` runs the same
chain through the NumPy references (for tests and the benchmark).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import fit_to_window
from wakebuilder.data.augment import kernels, reference
from wakebuilder.data.augment.params import (
    DRAWS, NOISE_COLORS, AugmentConfig, clip_key, draw_params, stable_hash, transform_rng,
)

# The drawing side is re-exported: callers import the whole transform API from here.
__all__ = ["DRAWS", "NOISE_COLORS", "AugmentConfig", "apply_chain", "apply_params", "biquad_coefficients", "clip_key",
           "draw_params", "formant_warp", "noise_gain_for_snr", "stable_hash", "synthetic_rir", "transform_rng"]
from wakebuilder.streaming import frame_starts, frame_windows

OLA_SIZE, OLA_HOP = 512, 128
_WINDOW = np.hanning(OLA_SIZE).astype(np.float32)
_WINDOW_SQUARED = _WINDOW**2
# The spectral envelope is a "true envelope" (Roebel and Rodet 2005): the log spectrum's first
# FORMANT_LIFTER cepstral coefficients, raised FORMANT_ITERATIONS times towards the harmonic peaks. 40
# coefficients lie below the quefrency of a 400 Hz voice (40 samples at 16 kHz), so the harmonics stay in the
# fine structure. On vowels of 110 and 220 Hz the moved harmonics follow the warped envelope with r = 0.97
# (mean of 8 cases; 0.95 without the iterations, 0.92 with 30 coefficients and none). A bin's gain is
# clipped to +-30 dB, so a warp never lifts a near-silent bin into audible noise.
FORMANT_LIFTER, FORMANT_ITERATIONS = 40, 5
FORMANT_LIMIT = math.log(10 ** (30 / 20))


def biquad_coefficients(kind: str, cutoff_hz: float, q: float) -> tuple[tuple[float, float, float], tuple[float, float]]:
    """RBJ audio-EQ-cookbook biquad, normalised so a0 = 1."""
    w0 = 2 * math.pi * cutoff_hz / SAMPLE_RATE
    alpha, cos = math.sin(w0) / (2 * q), math.cos(w0)
    if kind == "lowpass":
        b = ((1 - cos) / 2, 1 - cos, (1 - cos) / 2)
    elif kind == "highpass":
        b = ((1 + cos) / 2, -(1 + cos), (1 + cos) / 2)
    else:
        b = (alpha, 0.0, -alpha)
    a0 = 1 + alpha
    return (b[0] / a0, b[1] / a0, b[2] / a0), (-2 * cos / a0, (1 - alpha) / a0)


def synthetic_rir(rt60_s: float, seed: int) -> np.ndarray:
    """A room impulse response: direct path, then noise decaying 60 dB over ``rt60_s``."""
    rng = np.random.default_rng(seed)
    n = int(rt60_s * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    tail = rng.standard_normal(n) * np.exp(-6.9078 * t / rt60_s) * 0.3
    tail[: int(0.003 * SAMPLE_RATE)] = 0.0  # first reflections after 3 ms
    tail[0] = 1.0
    return (tail / np.sqrt(np.sum(tail**2))).astype(np.float32)


def _from_direct_path(rir: np.ndarray) -> np.ndarray:
    """A RIR file from its direct path (its largest sample) on. The silence before it (the source's distance,
    the recorder's latency) would only delay the word, and ``_convolve`` keeps the clip's length, so it cut the
    word's end off. Not for synthetic RIRs: they start at their direct path, and in about 2 in 100 a tail sample
    outdoes it."""
    return rir[int(np.argmax(np.abs(rir))) :] if rir.size else rir


def _convolve(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """FFT convolution truncated to the input's length, RMS kept (NumPy: already O(n log n))."""
    size = 1 << int(math.ceil(math.log2(x.size + rir.size)))
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: x.size]
    dry_rms, wet_rms = np.sqrt(np.mean(x**2)), np.sqrt(np.mean(wet**2))
    return (wet * (dry_rms / wet_rms) if wet_rms > 0 else wet).astype(np.float32)


def _noise(params: dict[str, Any], length: int, banks: dict[str, list[np.ndarray]], backend: str) -> np.ndarray:
    rng = np.random.default_rng(params["seed"])
    if params["type"] == "file":
        source = banks["noise"][params["file_index"]]
        start = int(rng.integers(max(source.size - length, 0) + 1))
        piece = np.resize(source[start:], length) if source.size else np.zeros(length, np.float32)
        return piece.astype(np.float32)
    white = rng.standard_normal(length).astype(np.float32)
    color = NOISE_COLORS.index(params["type"])
    if backend == "numpy":
        return reference.color_noise(white, color)
    out = np.empty_like(white)
    kernels._color_noise(white, color, out)
    return out


def noise_gain_for_snr(
    signal: np.ndarray, noise: np.ndarray, snr_db: float, *, signal_power: float | None = None
) -> float:
    """The gain that puts ``noise`` ``snr_db`` below ``signal`` (mean power over the clip, or ``signal_power``)."""
    p_signal = float(np.mean(signal**2)) if signal_power is None else signal_power
    p_noise = float(np.mean(noise**2))
    return math.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10))) if p_noise > 0 and p_signal > 0 else 0.0


def apply_params(
    samples: np.ndarray, params: dict[str, Any], *, banks: dict[str, list[np.ndarray]] | None = None,
    backend: str = "numba",
) -> np.ndarray:
    """Apply a drawn chain: speed, pitch, formants, padding, reverb, EQ, shift, noise at SNR, gain.

    A pitch shift moves the harmonics and the formants together (resampling). ``formant_factor`` then puts
    the spectral envelope at that factor of the original clip's, whatever the pitch shift, so the two set
    pitch and vocal-tract length independently, as they differ between speakers.

    With ``window_s`` the clip is centred in silence first, so reverb, shift and noise act on the whole
    window as they would on a recording (noise fills the pauses; a shift moves the word instead of cutting
    it off). The SNR is measured against the clip as the effects left it, over its own span (where the
    padding and the shift put it), not the padded window's silence nor the unfiltered clip.
    """
    return apply_chain(samples, params, banks=banks, backend=backend)[0]


def apply_chain(
    samples: np.ndarray, params: dict[str, Any], *, banks: dict[str, list[np.ndarray]] | None = None,
    backend: str = "numba",
) -> tuple[np.ndarray, float]:
    """``apply_params``'s output and the signal power its noise SNR was measured against, at the chain's gain:
    what a background mixed in afterwards is measured against too, so every recorded SNR is the real one."""
    banks = banks or {"noise": [], "rir": []}
    fast = backend == "numba"
    x = np.ascontiguousarray(samples, dtype=np.float32)
    if "speed_factor" in params:
        x = _resample(x, params["speed_factor"], max(int(x.size / params["speed_factor"]), 1), fast)
    pitch_factor = 2 ** (params.get("pitch_semitones", 0.0) / 12)
    if "pitch_semitones" in params:
        raised = _resample(x, pitch_factor, max(int(x.size / pitch_factor), 1), fast)
        x = _stretch(raised, raised.size / x.size, x.size, fast)
    if "formant_factor" in params:  # relative to the original clip: undo the pitch shift's formant move
        x = formant_warp(x, params["formant_factor"] / pitch_factor, fast=fast)
    start, length = 0, x.size  # the clip's own samples in x, followed through padding and shift
    window = round(params.get("window_s", 0) * SAMPLE_RATE)
    if window > x.size:
        start = (window - x.size) // 2  # where fit_to_window centres it
        x = fit_to_window(x, window)
    if "reverb" in params:
        reverb = params["reverb"]
        rir = _from_direct_path(banks["rir"][reverb["rir_index"]]) if reverb.get("rir_index") is not None else (
            synthetic_rir(reverb["rt60_s"], reverb["seed"]))
        x = _convolve(x, rir)
    if "eq" in params:
        b, a = biquad_coefficients(params["eq"]["type"], params["eq"]["cutoff_hz"], params["eq"]["q"])
        x = reference.biquad(x, b, a) if not fast else _run(kernels._biquad, x, *b, *a)
    if "shift_s" in params:
        offset = int(params["shift_s"] * SAMPLE_RATE)
        x = reference.shift(x, offset) if not fast else _run(kernels._shift, x, offset)
        start += offset
    span = x[max(start, 0) : max(min(start + length, x.size), 0)]
    signal_power = float(np.mean(np.square(span, dtype=np.float64))) if span.size else 0.0
    gain = 10 ** (params["gain_db"] / 20)
    noise = np.zeros_like(x)
    noise_gain = 0.0
    if "noise" in params:
        noise = _noise(params["noise"], x.size, banks, backend)
        noise_gain = noise_gain_for_snr(x, noise, params["noise"]["snr_db"], signal_power=signal_power)
    if not fast:
        return reference.scale_add(x, gain, noise, noise_gain * gain), signal_power * gain**2
    return _run(kernels._scale_add, x, gain, noise, noise_gain * gain), signal_power * gain**2


def formant_warp(x: np.ndarray, factor: float, *, fast: bool = True) -> np.ndarray:
    """Move the spectral envelope (the formants) ``factor`` times up in frequency and keep the harmonics (the
    pitch): per STFT frame, the log spectrum's envelope (see FORMANT_LIFTER) is replaced by the same envelope
    read at ``f / factor``; the phases are kept. The output has the input's length and RMS. A factor of 1.2 is
    roughly a vocal tract 1/1.2 as long (a man's towards a woman's or a child's)."""
    if x.size == 0 or factor == 1.0:
        return x
    size, hop = OLA_SIZE, OLA_HOP
    padded = np.concatenate([np.zeros(size, np.float32), x, np.zeros(size, np.float32)])
    starts = frame_starts(padded.size, size, hop)
    spectrum = np.fft.rfft(frame_windows(padded, size, hop) * _WINDOW, axis=1)
    log_magnitude = np.log(np.abs(spectrum) + 1e-6)
    envelope = _cepstral_smooth(log_magnitude)
    for _ in range(FORMANT_ITERATIONS):
        envelope = _cepstral_smooth(np.maximum(log_magnitude, envelope))
    envelope = np.ascontiguousarray(envelope, dtype=np.float32)
    if fast:
        gain = np.empty_like(envelope)
        kernels._warp_log_gain(envelope, factor, FORMANT_LIMIT, gain)
    else:
        gain = reference.warp_log_gain(envelope, factor, FORMANT_LIMIT)
    frames = np.fft.irfft(spectrum * np.exp(gain), n=size, axis=1) * _WINDOW
    out, norm = np.zeros(padded.size), np.zeros(padded.size)
    for start, frame in zip(starts, frames, strict=True):
        out[start : start + size] += frame
        norm[start : start + size] += _WINDOW_SQUARED
    out = out[size : size + x.size] / np.maximum(norm[size : size + x.size], 1e-3)
    before, after = float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), float(np.sqrt(np.mean(out**2)))
    return (out * (before / after) if after > 0 else out).astype(np.float32)


def _cepstral_smooth(log_magnitude: np.ndarray) -> np.ndarray:
    cepstrum = np.fft.irfft(log_magnitude, n=OLA_SIZE, axis=1)
    cepstrum[:, FORMANT_LIFTER : OLA_SIZE - FORMANT_LIFTER + 1] = 0.0
    return np.fft.rfft(cepstrum, axis=1).real


def _run(kernel: Any, x: np.ndarray, *args: Any) -> np.ndarray:
    out = np.empty_like(x)
    kernel(x, *args, out)
    return out


def _resample(x: np.ndarray, factor: float, length: int, fast: bool) -> np.ndarray:
    if not fast:
        return reference.resample_linear(x, factor, length)
    out = np.empty(length, dtype=np.float32)
    kernels._resample_linear(x, factor, out)
    return out


def _stretch(x: np.ndarray, rate: float, length: int, fast: bool) -> np.ndarray:
    """The pitch shift's overlap-add stretch, distortions kept on purpose: about 4/3 gain within a clip, clicks up to
    ~30x at its first and last 8 ms (the limiter then lowers the whole copy), phase cancellation between frames. A
    clean WSOLA with padded edges (1b31655) cost recall on realdev and on the end-to-end test's held-out voices and
    was reverted (research/REAL_TRANSFER.md, seventeenth round); measure before changing it (and bump ``VERSION``)."""
    if not fast:
        return reference.ola_stretch(x, rate, _WINDOW, OLA_HOP, length)
    out, norm = np.empty(length, dtype=np.float32), np.empty(length, dtype=np.float32)
    kernels._ola_stretch(x, rate, _WINDOW, OLA_HOP, out, norm)
    return out
