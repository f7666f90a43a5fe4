"""The background transform: a clip mixed with music or noise at a drawn SNR, as the world would play it.

Self-contained beside the main chain: its parameters come from their own child Generator (the copy's
key and the name ``background``, as every transform's), so turning it on leaves every other draw unchanged.
A background is either a clip of background manifests (real music and noise chunks, ``wb negatives
--nonspeech`` or ``--debian`` output) or a generator of ``wakebuilder.data.nonspeech`` run on the fly.
The SNR is measured against the foreground as the chain left it, over its own span (the speech after
its effects and gain, not the silence of a window around it), and the drawn parameters, including the
generator's own, go into the row.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import numpy as np

from wakebuilder.audio import load_audio
from wakebuilder.config import StageConfig
from wakebuilder.data.augment.transforms import clip_key, noise_gain_for_snr, transform_rng
from wakebuilder.data.nonspeech import generators
from wakebuilder.errors import ConfigError
from wakebuilder.manifest import read_manifest, resolve_clip_path

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class BackgroundConfig(StageConfig):
    """Which backgrounds, how often, how loud (SNR of the clip over the background)."""

    generators: tuple[str, ...] = ()
    manifests: tuple[str, ...] = ()
    snr_db: tuple[float, ...] = (0.0, 20.0)
    p: float = 0.5

    def check(self) -> None:
        """Refuse unknown generators (babble needs speech: give it as a manifest) and bad ranges."""
        bad = [g for g in self.generators if g not in generators.SYNTHETIC]
        if bad:
            raise ConfigError(f"--background {','.join(bad)}: choose from {','.join(generators.SYNTHETIC)}; for "
                              "babble make clips with wb negatives --nonspeech N --kinds babble and pass their "
                              "manifest with --background-manifest")
        if not self.generators and not self.manifests:
            raise ConfigError("background: give --background GENERATORS or --background-manifest MANIFEST")
        if self.snr_db[0] > self.snr_db[1]:
            raise ConfigError(f"--background-snr-db {self.snr_db}: expected MIN <= MAX")
        if not 0 <= self.p <= 1:
            raise ConfigError(f"--background-p {self.p}: expected a share between 0 and 1")


@dataclasses.dataclass(frozen=True)
class BackgroundBank:
    """Loaded background clips (label 0 only): one name (``id``) and samples each."""

    names: tuple[str, ...]
    samples: tuple[np.ndarray, ...]

    @classmethod
    def load(cls, manifests: tuple[str, ...] | list[str | os.PathLike[str]]) -> BackgroundBank:
        names, samples, skipped = [], [], 0
        for manifest in manifests:
            for record in read_manifest(manifest):
                if record.label != 0:
                    skipped += 1
                    continue
                names.append(record.id)
                samples.append(load_audio(resolve_clip_path(manifest, record)))
        if skipped:
            log.warning("background: %d wake-word (label 1) clip(s) left out of the backgrounds", skipped)
        if manifests and not names:
            raise ConfigError(f"--background-manifest {', '.join(map(str, manifests))}: no label-0 clips")
        return cls(tuple(names), tuple(samples))


def background_rng(seed: int, clip_id: str, copy: int) -> np.random.Generator:
    """The background's Generator for one copy: independent of the chain's, a function of the same three."""
    return transform_rng(clip_key(seed, clip_id, copy), "background")


def draw_background(rng: np.random.Generator, config: BackgroundConfig, *, files: int) -> dict[str, Any] | None:
    """One copy's background parameters, or None (a share ``1 - p`` of copies get none)."""
    if rng.random() >= config.p:
        return None
    kinds = [*config.generators, *(["file"] if files else [])]
    kind = kinds[int(rng.integers(len(kinds)))]
    params: dict[str, Any] = {"type": kind, "snr_db": float(rng.uniform(*config.snr_db)),
                              "seed": int(rng.integers(2**31))}
    if kind == "file":
        params["file_index"] = int(rng.integers(files))
    else:
        params["generator"] = generators.draw(kind, rng)
    return params


def render_background(params: dict[str, Any], length: int, bank: BackgroundBank) -> np.ndarray:
    """The background of ``length`` samples: a file piece from a random start (looped if short), or a render."""
    if params["type"] != "file":
        return generators.render(params["generator"], length)
    source = bank.samples[params["file_index"]]
    start = int(np.random.default_rng(params["seed"]).integers(max(source.size - length, 0) + 1))
    return np.resize(source[start:], length).astype(np.float32) if source.size else np.zeros(length, np.float32)


def apply_background(x: np.ndarray, params: dict[str, Any], bank: BackgroundBank, *, signal_power: float) -> np.ndarray:
    """``x`` plus the background scaled to ``params['snr_db']`` below ``signal_power``."""
    background = render_background(params, x.size, bank)
    gain = noise_gain_for_snr(x, background, params["snr_db"], signal_power=signal_power)
    return (x + gain * background).astype(np.float32)
