"""Augmentation settings and parameter draws: each transform from its own generator.

``draw_params`` draws one augmented copy's chain; every transform draws from a Generator keyed by
(run seed, sha256 of the clip id, copy index, sha256 of the transform's name), so a chain is the same
in every process and adding, removing or reordering a transform leaves the others' draws unchanged.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from wakebuilder.config import StageConfig

NOISE_COLORS = ("white", "pink", "brown")


@dataclasses.dataclass(frozen=True, kw_only=True)
class AugmentConfig(StageConfig):
    """Ranges and probabilities of each transform."""

    copies: int = 2
    seed: int = 0
    speed_range: tuple[float, ...] = (0.9, 1.1)
    speed_p: float = 0.5
    pitch_semitones: tuple[float, ...] = (-2.0, 2.0)
    pitch_p: float = 0.4
    gain_db: tuple[float, ...] = (-10.0, 0.0)
    snr_db: tuple[float, ...] = (5.0, 25.0)
    noise_p: float = 0.8
    rt60_s: tuple[float, ...] = (0.15, 0.7)
    reverb_p: float = 0.5
    eq_p: float = 0.4
    shift_s: tuple[float, ...] = (-0.2, 0.2)
    shift_p: float = 0.5
    window_s: float = 0.0  # > 0: centre each clip in this many seconds of silence before reverb, EQ, shift and noise
    formant_range: tuple[float, ...] = (0.85, 1.2)
    formant_p: float = 0.0  # > 0: that share of copies gets its own vocal-tract length (spectral envelope)


def stable_hash(text: str) -> int:
    """A 64-bit hash of ``text`` that is the same in every process (sha256; Python's ``hash`` is salted)."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def clip_key(seed: int, clip_id: str, copy: int) -> tuple[int, int, int]:
    """What one augmented copy's draws depend on: the run seed, the clip id and the copy index."""
    return seed % 2**64, stable_hash(clip_id), copy


def transform_rng(key: Sequence[int], name: str) -> np.random.Generator:
    """The Generator of one transform of one copy, keyed by the transform's name.

    Each transform draws from its own child generator, so adding, removing or reordering a transform
    leaves every other transform's draws unchanged.
    """
    return np.random.default_rng([*key, stable_hash(name)])


def _gain(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
    return {"gain_db": float(rng.uniform(*config.gain_db))}


def _speed(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
    return {"speed_factor": float(rng.uniform(*config.speed_range))} if rng.random() < config.speed_p else {}


def _pitch(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
    return {"pitch_semitones": float(rng.uniform(*config.pitch_semitones))} if rng.random() < config.pitch_p else {}


def _reverb(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
    if not rng.random() < config.reverb_p:
        return {}
    source = int(rng.integers(rir_files)) if rir_files and rng.random() < 0.5 else None
    return {"reverb": {"rt60_s": float(rng.uniform(*config.rt60_s)), "seed": int(rng.integers(2**31)),
                       "rir_index": source}}


def _eq(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
    if not rng.random() < config.eq_p:
        return {}
    kind = ("lowpass", "highpass", "bandpass")[int(rng.integers(3))]
    cutoff = {"lowpass": (2500.0, 6000.0), "highpass": (80.0, 400.0), "bandpass": (500.0, 2500.0)}[kind]
    return {"eq": {"type": kind, "cutoff_hz": float(rng.uniform(*cutoff)), "q": float(rng.uniform(0.5, 1.2))}}


def _shift(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
    return {"shift_s": float(rng.uniform(*config.shift_s))} if rng.random() < config.shift_p else {}


def _noise(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
    if not rng.random() < config.noise_p:
        return {}
    kinds = [*NOISE_COLORS, "file"] if noise_files else list(NOISE_COLORS)
    kind = kinds[int(rng.integers(len(kinds)))]
    return {"noise": {"type": kind, "snr_db": float(rng.uniform(*config.snr_db)), "seed": int(rng.integers(2**31)),
                      "file_index": int(rng.integers(noise_files)) if kind == "file" else None}}


def _formant(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
    if not (config.formant_p > 0 and rng.random() < config.formant_p):
        return {}
    low, high = config.formant_range
    return {"formant_factor": float(math.exp(rng.uniform(math.log(low), math.log(high))))}


Draw = Callable[[np.random.Generator, AugmentConfig, int, int], dict[str, Any]]
# Each transform's parameter draw, under the name that keys its generator.
DRAWS: dict[str, Draw] = {"gain": _gain, "speed": _speed, "pitch": _pitch, "reverb": _reverb, "eq": _eq,
                          "shift": _shift, "noise": _noise, "formant": _formant}


def draw_params(key: Sequence[int], config: AugmentConfig, *, noise_files: int = 0, rir_files: int = 0,
                draws: dict[str, Draw] | None = None) -> dict[str, Any]:
    """Draw one chain's parameters (units in the names), each transform from its own generator.

    Args:
        key: ``clip_key(seed, clip_id, copy)``.
        config: ranges and probabilities.
        noise_files, rir_files: sizes of the noise and impulse-response banks.
        draws: the transforms' draws by name (default ``DRAWS``).
    """
    params: dict[str, Any] = {}
    if config.window_s > 0:
        params["window_s"] = config.window_s
    for name, draw in (draws or DRAWS).items():
        params.update(draw(transform_rng(key, name), config, noise_files, rir_files))
    return params
