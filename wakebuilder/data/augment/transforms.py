"""Augmentation transforms: each draws its parameters, then applies them as pure arithmetic.

``draw_chain`` draws a whole chain from one explicit Generator (``clip_rng``: a function of the run
seed, the clip id and the copy index only). ``apply_chain`` is deterministic in the drawn
parameters; noise is regenerated from a seed stored in them. The chain goes into the manifest row,
so every augmented clip can be rebuilt from its row. ``backend="numpy"`` runs the same chain
through the NumPy references (tests and the benchmark).

Order: speed (linear-interpolation resampling: duration and pitch change together; no anti-alias
filter, fine for factors near 1), pitch (resample by 2^(semitones/12), then a WSOLA time
stretch back to the original length: Hann frames of 32 ms, hop 8 ms, each frame's read position
searched +-5 ms for the best waveform match, so frames add in phase; no formant correction), reverb, EQ (RBJ biquads), time shift (circular or zero-padded),
background noise at an SNR (white, pink, brown or a chunk of a ``--noise`` file), gain, and a peak
limit that only scales down clips that would clip.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.config import StageConfig
from wakebuilder.data.augment import kernels, reference
from wakebuilder.data.augment.banks import Banks
from wakebuilder.data.augment.filters import EQ_RANGES, biquad_coefficients
from wakebuilder.data.augment.rir import convolve_rir, run_room, synthetic_room
from wakebuilder.errors import ConfigError

NOISE_COLORS = ("white", "pink", "brown")
WSOLA_SIZE, WSOLA_HOP, WSOLA_TOLERANCE, WSOLA_STRIDE = 512, 128, 80, 8  # 32 ms frames, 8 ms hop, +-5 ms search
WSOLA_WINDOW = np.hanning(WSOLA_SIZE).astype(np.float32)
_RANGES = ("speed_factor", "pitch_semitones", "rt60_s", "drr_db", "shift_s", "snr_db", "gain_db")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AugmentConfig(StageConfig):
    """How many copies, the seed, and each transform's probability (``*_p``) and range (MIN, MAX)."""

    copies: int = 2
    seed: int = 0
    speed_p: float = 0.5
    speed_factor: tuple[float, ...] = (0.9, 1.1)
    pitch_p: float = 0.4
    pitch_semitones: tuple[float, ...] = (-2.0, 2.0)
    reverb_p: float = 0.5
    rt60_s: tuple[float, ...] = (0.15, 0.8)
    drr_db: tuple[float, ...] = (0.0, 12.0)
    rir_file_p: float = 0.5
    eq_p: float = 0.4
    shift_p: float = 0.5
    shift_s: tuple[float, ...] = (-0.2, 0.2)
    shift_circular_p: float = 0.5
    noise_p: float = 0.8
    snr_db: tuple[float, ...] = (5.0, 25.0)
    noise_file_p: float = 0.5
    gain_db: tuple[float, ...] = (-10.0, 0.0)
    peak: float = 0.99

    def __post_init__(self) -> None:
        if self.copies < 1:
            raise ConfigError(f"--copies {self.copies}: must be at least 1")
        for name in _RANGES:
            bounds = getattr(self, name)
            if len(bounds) != 2 or not bounds[0] <= bounds[1]:
                raise ConfigError(f"augment {name}={list(bounds)}: expected MIN,MAX with MIN <= MAX")
        for name in (f.name for f in dataclasses.fields(self) if f.name.endswith("_p")):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"augment {name}={getattr(self, name)}: a probability must be in [0, 1]")
        if self.speed_factor[0] <= 0 or self.rt60_s[0] <= 0 or not 0 < self.peak <= 1:
            raise ConfigError("augment: speed_factor and rt60_s must be positive and peak in (0, 1]")


def clip_rng(seed: int, clip_id: str, copy: int) -> np.random.Generator:
    """The Generator of one augmented copy: a function of (seed, clip id, copy index) only."""
    key = clip_id[:15] if len(clip_id) >= 15 and all(c in "0123456789abcdef" for c in clip_id[:15]) else (
        hashlib.sha256(clip_id.encode("utf-8")).hexdigest()[:15])
    return np.random.default_rng([seed, int(key, 16), copy])


class Transform(NamedTuple):
    """A named pair: ``draw`` (Generator, config, banks, clip length) -> params; ``apply`` (samples,
    params, banks, numba?) -> samples. ``probability`` names the config field gating it (None: always)."""

    name: str
    probability: str | None
    draw: Callable[[np.random.Generator, AugmentConfig, Banks, int], dict[str, Any]]
    apply: Callable[[np.ndarray, dict[str, Any], Banks, bool], np.ndarray]


def _uniform(rng: np.random.Generator, bounds: tuple[float, ...]) -> float:
    return float(rng.uniform(bounds[0], bounds[1]))


def _resample(x: np.ndarray, factor: float, fast: bool) -> np.ndarray:
    length = max(int(x.size / factor), 1)
    if not fast:
        return reference.resample_linear(x, factor, length)
    out = np.empty(length, dtype=np.float32)
    kernels._resample_linear(x, factor, out)
    return out


def _pitch(x: np.ndarray, p: dict[str, Any], banks: Banks, fast: bool) -> np.ndarray:
    raised = _resample(x, 2 ** (p["pitch_semitones"] / 12), fast)
    settings = (raised.size / x.size, WSOLA_WINDOW, WSOLA_HOP, WSOLA_TOLERANCE, WSOLA_STRIDE)
    if not fast:
        return reference.wsola(raised, *settings, x.size)
    out, norm = np.empty_like(x), np.empty_like(x)
    kernels._wsola(raised, *settings, out, norm)
    return out


def _draw_reverb(rng: np.random.Generator, c: AugmentConfig, banks: Banks, n: int) -> dict[str, Any]:
    if banks.rir.names and rng.random() < c.rir_file_p:
        return {"rir_file": banks.rir.names[int(rng.integers(len(banks.rir.names)))]}
    return {"rt60_s": _uniform(rng, c.rt60_s), "drr_db": _uniform(rng, c.drr_db), "seed": int(rng.integers(2**31))}


def _reverb(x: np.ndarray, p: dict[str, Any], banks: Banks, fast: bool) -> np.ndarray:
    if "rir_file" in p:
        wet = convolve_rir(x, banks.rir.responses[_index(banks.rir.names, p["rir_file"], "--rir")])
    else:
        wet = run_room(x, synthetic_room(p["rt60_s"], p["drr_db"], p["seed"]), backend="numba" if fast else "numpy")
    dry_rms, wet_rms = math.sqrt(float(np.mean(np.square(x, dtype=np.float64)))), math.sqrt(
        float(np.mean(np.square(wet, dtype=np.float64))))
    return (wet * np.float32(dry_rms / wet_rms)).astype(np.float32) if wet_rms > 0 else wet


def _draw_eq(rng: np.random.Generator, c: AugmentConfig, banks: Banks, n: int) -> dict[str, Any]:
    kind = sorted(EQ_RANGES)[int(rng.integers(len(EQ_RANGES)))]
    cutoff, q, gain = EQ_RANGES[kind]
    return {"type": kind, "cutoff_hz": _uniform(rng, cutoff), "q": _uniform(rng, q), "gain_db": _uniform(rng, gain)}


def _eq(x: np.ndarray, p: dict[str, Any], banks: Banks, fast: bool) -> np.ndarray:
    b, a = biquad_coefficients(p["type"], p["cutoff_hz"], p["q"], p["gain_db"])
    if not fast:
        return reference.biquad(x, b, a)
    out = np.empty_like(x)
    kernels._biquad(x, *b, *a, out)
    return out


def _shift(x: np.ndarray, p: dict[str, Any], banks: Banks, fast: bool) -> np.ndarray:
    offset, circular = int(round(p["shift_s"] * SAMPLE_RATE)), p["mode"] == "circular"
    if not fast:
        return reference.shift(x, offset, circular)
    out = np.empty_like(x)
    kernels._shift(x, offset, circular, out)
    return out


def _draw_noise(rng: np.random.Generator, c: AugmentConfig, banks: Banks, n: int) -> dict[str, Any]:
    snr_db = _uniform(rng, c.snr_db)
    if banks.noise.names and rng.random() < c.noise_file_p:
        index = int(rng.integers(len(banks.noise.names)))
        start_s = _uniform(rng, (0.0, max(banks.noise.durations_s[index] - n / SAMPLE_RATE, 0.0)))
        return {"type": "file", "file": banks.noise.names[index], "start_s": round(start_s, 4), "snr_db": snr_db}
    return {"type": NOISE_COLORS[int(rng.integers(3))], "seed": int(rng.integers(2**31)), "snr_db": snr_db}


def noise_gain_for_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float) -> float:
    """The gain that puts ``noise`` ``snr_db`` below ``signal`` (mean power over the clip)."""
    p_signal = float(np.mean(np.square(signal, dtype=np.float64)))
    p_noise = float(np.mean(np.square(noise, dtype=np.float64)))
    return math.sqrt(p_signal / (p_noise * 10 ** (snr_db / 10))) if p_noise > 0 and p_signal > 0 else 0.0


def _noise(x: np.ndarray, p: dict[str, Any], banks: Banks, fast: bool) -> np.ndarray:
    if p["type"] == "file":
        noise = banks.noise.chunk(_index(banks.noise.names, p["file"], "--noise"), p["start_s"], x.size)
    else:
        white = np.random.default_rng(p["seed"]).standard_normal(x.size, dtype=np.float32)
        if not fast:
            noise = reference.color_noise(white, NOISE_COLORS.index(p["type"]))
        else:
            noise = np.empty_like(white)
            kernels._color_noise(white, NOISE_COLORS.index(p["type"]), noise)
    return _mix(x, 1.0, noise, noise_gain_for_snr(x, noise, p["snr_db"]), fast)


def _mix(x: np.ndarray, gain: float, other: np.ndarray, other_gain: float, fast: bool) -> np.ndarray:
    if not fast:
        return reference.mix(x, gain, other, other_gain)
    out = np.empty_like(x)
    kernels._mix(x, gain, other, other_gain, out)
    return out


def _limit(x: np.ndarray, p: dict[str, Any], banks: Banks, fast: bool) -> np.ndarray:
    top = float(np.max(np.abs(x))) if x.size else 0.0
    return _mix(x, p["peak"] / top, x, 0.0, fast) if top > p["peak"] else x


def _index(names: tuple[str, ...], name: str, option: str) -> int:
    if name not in names:
        raise ConfigError(f"{option}: file {name!r} named in the chain is not in the folder given")
    return names.index(name)


TRANSFORMS = (
    Transform("speed", "speed_p", lambda r, c, b, n: {"speed_factor": _uniform(r, c.speed_factor)},
              lambda x, p, b, f: _resample(x, p["speed_factor"], f)),
    Transform("pitch", "pitch_p", lambda r, c, b, n: {"pitch_semitones": _uniform(r, c.pitch_semitones)}, _pitch),
    Transform("reverb", "reverb_p", _draw_reverb, _reverb),
    Transform("eq", "eq_p", _draw_eq, _eq),
    Transform("shift", "shift_p", lambda r, c, b, n: {
        "shift_s": _uniform(r, c.shift_s), "mode": "circular" if r.random() < c.shift_circular_p else "pad"}, _shift),
    Transform("noise", "noise_p", _draw_noise, _noise),
    Transform("gain", None, lambda r, c, b, n: {"gain_db": _uniform(r, c.gain_db)},
              lambda x, p, b, f: _mix(x, 10 ** (p["gain_db"] / 20), x, 0.0, f)),
    Transform("limit", None, lambda r, c, b, n: {"peak": c.peak}, _limit),
)
_BY_NAME = {t.name: t for t in TRANSFORMS}


def draw_chain(rng: np.random.Generator, config: AugmentConfig, banks: Banks | None = None, *,
               length: int) -> list[dict[str, Any]]:
    """Draw one copy's chain: a list of ``{"transform": name, **params}`` in application order."""
    banks = banks or Banks()
    chain = []
    for t in TRANSFORMS:
        if t.probability is None or rng.random() < getattr(config, t.probability):
            chain.append({"transform": t.name, **t.draw(rng, config, banks, length)})
    return chain


def apply_chain(samples: np.ndarray, chain: list[dict[str, Any]], *, banks: Banks | None = None,
                backend: str = "numba") -> np.ndarray:
    """Apply a drawn chain (pure arithmetic; the same chain always gives the same samples)."""
    banks, fast = banks or Banks(), backend == "numba"
    x = np.ascontiguousarray(samples, dtype=np.float32)
    for params in chain:
        if params.get("transform") not in _BY_NAME:
            raise ConfigError(f"augment chain: unknown transform {params.get('transform')!r}; "
                              f"known: {', '.join(_BY_NAME)}")
        x = _BY_NAME[params["transform"]].apply(x, params, banks, fast)
    return x
