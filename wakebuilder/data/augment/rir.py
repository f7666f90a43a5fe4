"""Room impulse responses: a synthetic room model run as filters, and convolution with given RIRs.

A synthetic room is a direct path, eight early reflections (sparse taps 2-45 ms, decaying with the
room) and a late tail from an 8-line feedback delay network whose per-line gains make its energy
fall 60 dB in ``rt60_s``. ``drr_db`` (direct-to-reverberant energy ratio) sets how loud the
reflections and tail are. Running these filters is exactly convolution with the room's impulse
response (``synthetic_rir`` renders it; a test checks the equality), at a few dozen operations per
sample instead of thousands of taps or an FFT. RIRs read from files (``--rir DIR``) are convolved
by FFT in NumPy: they are arbitrary, and NumPy's FFT is already compiled code.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.data.augment import kernels, reference

FDN_DELAYS = np.array([743, 797, 863, 929, 1013, 1091, 1171, 1259], dtype=np.int64)  # primes, 46-79 ms
_RING = 2048  # power of two above the longest delay
_IN_SIGNS = np.array([1, -1, 1, 1, -1, 1, -1, -1], dtype=np.float32)
_OUT_SIGNS = np.array([1, 1, -1, 1, -1, -1, 1, -1], dtype=np.float32)
EARLY_REFLECTIONS = 8
EARLY_SHARE = 0.3  # share of the reverberant energy in the early reflections; the tail has the rest


@dataclasses.dataclass(frozen=True)
class Room:
    """The filters of one synthetic room: taps (direct path first) and the delay network's gains."""

    tap_delays: np.ndarray
    tap_gains: np.ndarray
    line_gains: np.ndarray
    in_gains: np.ndarray
    out_gains: np.ndarray


def synthetic_room(rt60_s: float, drr_db: float, seed: int) -> Room:
    """The room for drawn parameters; ``seed`` places the early reflections."""
    rng = np.random.default_rng(seed)
    delays_s = np.sort(rng.uniform(0.002, 0.045, EARLY_REFLECTIONS))
    gains = rng.choice([-1.0, 1.0], EARLY_REFLECTIONS) * rng.uniform(0.5, 1.0, EARLY_REFLECTIONS)
    gains *= np.exp(-6.9078 * delays_s / rt60_s)  # ln(1000): the room's decay at each reflection
    reverberant = 10 ** (-drr_db / 10)
    gains *= math.sqrt(EARLY_SHARE * reverberant / float(np.sum(gains**2)))
    decay = 10 ** (-3 / (rt60_s * SAMPLE_RATE))  # amplitude per sample: -60 dB over rt60_s
    # Each pass through the network keeps, on average, mean(line_gains ** 2) of the energy (the
    # orthonormal mixing spreads it over the lines), so the tail's energy is p / (1 - p) per unit gain.
    line_gains = decay ** FDN_DELAYS.astype(np.float64)
    kept = float(np.mean(line_gains**2))
    late_energy = kept / (1.0 - kept)
    late_gain = math.sqrt((1 - EARLY_SHARE) * reverberant / late_energy)
    return Room(
        tap_delays=np.concatenate([[0], np.round(delays_s * SAMPLE_RATE)]).astype(np.int64),
        tap_gains=np.concatenate([[1.0], gains]).astype(np.float32),
        line_gains=line_gains.astype(np.float32),
        in_gains=_IN_SIGNS,
        out_gains=(_OUT_SIGNS * late_gain / math.sqrt(8.0)).astype(np.float32),
    )


def run_room(x: np.ndarray, room: Room, *, backend: str = "numba") -> np.ndarray:
    """Convolve ``x`` with the room's impulse response (same length as ``x``; no normalisation)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if backend == "numpy":
        early = reference.taps(x, room.tap_delays, room.tap_gains)
        late = reference.fdn(x, FDN_DELAYS, room.line_gains, room.in_gains, room.out_gains)
        return early + late
    early, late = np.empty_like(x), np.empty_like(x)
    kernels._taps(x, room.tap_delays, room.tap_gains, early)
    ring = np.empty((8, _RING), dtype=np.float32)
    kernels._fdn(x, FDN_DELAYS, room.line_gains, room.in_gains, room.out_gains, ring, late)
    return early + late


def synthetic_rir(rt60_s: float, drr_db: float, seed: int, *, length: int | None = None) -> np.ndarray:
    """The impulse response of a synthetic room (default length: 1.5 x rt60)."""
    n = length or int(1.5 * rt60_s * SAMPLE_RATE)
    impulse = np.zeros(n, dtype=np.float32)
    impulse[0] = 1.0
    return run_room(impulse, synthetic_room(rt60_s, drr_db, seed))


def prepare_rir(samples: np.ndarray) -> np.ndarray:
    """A measured RIR ready to convolve: starts at its direct-path peak, unit energy."""
    rir = np.asarray(samples, dtype=np.float64)[int(np.argmax(np.abs(samples))) :]
    energy = float(np.sum(rir**2))
    return (rir / math.sqrt(energy) if energy > 0 else rir).astype(np.float32)


def convolve_rir(x: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """FFT convolution with a given RIR, truncated to ``x``'s length."""
    size = 1 << int(math.ceil(math.log2(x.size + rir.size)))
    wet = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: x.size]
    return wet.astype(np.float32)
