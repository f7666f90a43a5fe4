"""Noise-like non-speech generators: coloured noise, tones, chirps, clicks, mains hum, room tone.

Every generator is a pure function of its parameters and a ``numpy.random.Generator``; the same
parameters and seed give the same samples. Output is float32 at 16 kHz with unit RMS (the caller
sets the level), so a generator says only what its sound *is*, not how loud it is.
"""

from __future__ import annotations

import math

import numpy as np

from wakebuilder import SAMPLE_RATE

# power-spectrum slope of each colour, in powers of frequency: P(f) ~ f**slope
# (pink -3 dB/octave, brown -6, blue +3, violet +6)
COLOR_SLOPES = {"white": 0.0, "pink": -1.0, "brown": -2.0, "blue": 1.0, "violet": 2.0}
_LOWEST_HZ = 20.0  # below this, pink and brown noise would be all drift


def unit_rms(x: np.ndarray) -> np.ndarray:
    """``x`` scaled to RMS 1 (a silent input stays silent), as float32."""
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    return (x / rms if rms > 0 else x).astype(np.float32)


def shaped_noise(n: int, rng: np.random.Generator, gain: np.ndarray | None = None, *, slope: float = 0.0) -> np.ndarray:
    """Gaussian noise shaped in the frequency domain: power ~ f**slope (times ``gain**2`` per rfft bin)."""
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    amplitude = np.power(np.maximum(freqs, _LOWEST_HZ), slope / 2)
    amplitude[0] = 0.0
    if gain is not None:
        amplitude = amplitude * gain
    return unit_rms(np.fft.irfft(spectrum * amplitude, n))


def colored_noise(n: int, color: str, rng: np.random.Generator) -> np.ndarray:
    """White, pink, brown, blue or violet noise (see ``COLOR_SLOPES``)."""
    return shaped_noise(n, rng, slope=COLOR_SLOPES[color])


def lowpass_gain(n: int, cutoff_hz: float, *, order: int = 2) -> np.ndarray:
    """Magnitude of a Butterworth-like low-pass at each rfft bin of an ``n``-sample signal."""
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    return 1.0 / np.sqrt(1.0 + (freqs / cutoff_hz) ** (2 * order))


def room_tone(n: int, rng: np.random.Generator, *, cutoff_hz: float, mod_hz: float, mod_depth: float) -> np.ndarray:
    """Low, slowly breathing noise of an empty room: pink noise under ``cutoff_hz``, amplitude-modulated."""
    base = shaped_noise(n, rng, lowpass_gain(n, cutoff_hz), slope=-1.0)
    t = np.arange(n) / SAMPLE_RATE
    envelope = 1.0 + mod_depth * np.sin(2 * np.pi * mod_hz * t + rng.uniform(0, 2 * np.pi))
    return unit_rms(base * envelope)


def mains_hum(n: int, rng: np.random.Generator, *, mains_hz: float, harmonics: int, noise_db: float = -30.0) -> np.ndarray:
    """Hum of ``mains_hz`` (50 or 60) and its first ``harmonics`` multiples, odd ones stronger (as from
    transformers and rectifiers), over pink noise ``noise_db`` below it."""
    t = np.arange(n) / SAMPLE_RATE
    x = np.zeros(n)
    for k in range(1, harmonics + 1):
        level = (1.0 if k % 2 else 0.4) / k**0.7 * rng.uniform(0.6, 1.0)
        x += level * np.sin(2 * np.pi * mains_hz * k * t + rng.uniform(0, 2 * np.pi))
    x = unit_rms(x)
    return unit_rms(x + 10 ** (noise_db / 20) * colored_noise(n, "pink", rng))


def tones(n: int, rng: np.random.Generator, *, freqs_hz: tuple[float, ...], beep_s: float, gap_s: float) -> np.ndarray:
    """Beeps of pure tones (an alarm, a phone, an appliance): ``beep_s`` on, ``gap_s`` off, cycling through
    ``freqs_hz``; ``gap_s`` 0 is one steady tone per ``beep_s``. Edges are 5 ms ramps, so no clicks."""
    t = np.arange(n) / SAMPLE_RATE
    period = beep_s + gap_s
    index = np.floor(t / period).astype(int)
    freq = np.asarray(freqs_hz)[index % len(freqs_hz)]
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE + rng.uniform(0, 2 * np.pi)
    within = t - index * period
    ramp = 0.005
    gate = np.clip(np.minimum(within, beep_s - within) / ramp, 0.0, 1.0)
    return unit_rms(np.sin(phase) * gate)


CHIRP_MAX_HZ = 7600.0  # the top of a drawn sweep: below 8 kHz, where a 16 kHz sweep folds back


def chirps(n: int, rng: np.random.Generator, *, low_hz: float, high_hz: float, sweep_s: float, log: bool) -> np.ndarray:
    """Repeated sweeps from ``low_hz`` to ``high_hz`` over ``sweep_s`` (linear or logarithmic in frequency),
    with a random start within the first sweep."""
    t = (np.arange(n) / SAMPLE_RATE + rng.uniform(0, sweep_s)) % sweep_s / sweep_s
    freq = low_hz * (high_hz / low_hz) ** t if log else low_hz + (high_hz - low_hz) * t
    phase = 2 * np.pi * np.cumsum(freq) / SAMPLE_RATE
    return unit_rms(np.sin(phase))


def clicks(n: int, rng: np.random.Generator, *, rate_hz: float, decay_ms: float, floor_db: float = -50.0) -> np.ndarray:
    """Clicks and impulses at Poisson times (``rate_hz`` a second): each an impulse followed by a noise tail
    decaying with time constant ``decay_ms``, of random amplitude, over a faint noise floor."""
    x = 10 ** (floor_db / 20) * rng.standard_normal(n)
    count = max(int(rng.poisson(rate_hz * n / SAMPLE_RATE)), 1)
    tail_n = max(int(6 * decay_ms / 1000 * SAMPLE_RATE), 1)
    tail = np.exp(-np.arange(tail_n) / (decay_ms / 1000 * SAMPLE_RATE))
    for start in np.sort(rng.integers(0, n, size=count)):
        amplitude = rng.uniform(0.3, 1.0) * rng.choice([-1.0, 1.0])
        piece = amplitude * tail * np.concatenate([[1.0], rng.uniform(-0.5, 0.5, tail_n - 1)])
        stop = min(start + tail_n, n)
        x[start:stop] += piece[: stop - start]
    return unit_rms(x)


def octave_slope_db(x: np.ndarray, *, low_hz: float = 100.0, high_hz: float = 6400.0) -> float:
    """The power spectrum's least-squares slope in dB per octave between ``low_hz`` and ``high_hz``
    (a Welch average), to check a colour: pink about -3, brown -6, blue +3, violet +6."""
    size = 4096
    frames = x[: x.size // size * size].reshape(-1, size) * np.hanning(size)
    power = np.mean(np.abs(np.fft.rfft(frames, axis=1)) ** 2, axis=0)
    freqs = np.fft.rfftfreq(size, 1 / SAMPLE_RATE)
    band = (freqs >= low_hz) & (freqs <= high_hz)
    slope, _ = np.polyfit(np.log2(freqs[band]), 10 * np.log10(power[band]), 1)
    return float(slope)


def crest_factor_db(x: np.ndarray) -> float:
    """Peak over RMS in dB: about 3 for a sine, 11-13 for Gaussian noise, far more for sparse clicks."""
    rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64))))
    return 20 * math.log10(float(np.max(np.abs(x))) / rms) if rms > 0 else 0.0
