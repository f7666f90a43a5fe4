"""Background-noise and room-impulse-response files given with ``--noise DIR`` and ``--rir DIR``.

Noise files can be long (hours of recordings), so they are indexed, not loaded: a copy reads only
the chunk it mixes in (16 kHz files straight from disk; other rates decoded once and kept in a small
cache). RIRs are short and are loaded, trimmed to their direct-path peak and normalised once.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import AUDIO_EXTENSIONS, load_audio
from wakebuilder.data.augment.rir import prepare_rir
from wakebuilder.errors import BadAudioError, ConfigError


def audio_files(folder: str | os.PathLike[str], option: str) -> tuple[Path, list[Path]]:
    """Sorted audio files under ``folder``; a clear error when it is missing, unreadable or empty."""
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"{option} {root}: not a folder; give a folder of audio files")
    try:
        paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    except OSError as exc:
        raise ConfigError(f"{option} {root}: cannot list the folder ({exc.strerror}); check its permissions") from exc
    if not paths:
        raise ConfigError(f"{option} {root}: no audio files in it ({', '.join(AUDIO_EXTENSIONS)})")
    return root, paths


@dataclasses.dataclass(frozen=True)
class NoiseBank:
    """Indexed noise files: names relative to the folder, paths, native rates and durations."""

    names: tuple[str, ...] = ()
    paths: tuple[Path, ...] = ()
    rates: tuple[int, ...] = ()
    durations_s: tuple[float, ...] = ()

    @classmethod
    def open(cls, folder: str | os.PathLike[str] | None) -> NoiseBank:
        """Index every audio file under ``folder`` (an empty bank without one)."""
        if folder is None:
            return cls()
        root, paths = audio_files(folder, "--noise")
        rates, durations = [], []
        for path in paths:
            try:
                info = sf.info(str(path))
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise BadAudioError(f"{path}: cannot read noise file ({exc}); remove or convert it") from exc
            if info.frames == 0:
                raise BadAudioError(f"{path}: noise file holds no samples; remove it")
            rates.append(int(info.samplerate))
            durations.append(info.frames / info.samplerate)
        names = tuple(p.relative_to(root).as_posix() for p in paths)
        return cls(names, tuple(paths), tuple(rates), tuple(durations))

    def chunk(self, index: int, start_s: float, length: int) -> np.ndarray:
        """``length`` samples of file ``index`` from ``start_s``, wrapping round to its start."""
        total = int(self.durations_s[index] * SAMPLE_RATE)
        start = min(int(start_s * SAMPLE_RATE), max(total - 1, 0))
        if self.rates[index] == SAMPLE_RATE and start + length <= total:  # the usual case: read the chunk only
            try:
                data, _ = sf.read(str(self.paths[index]), start=start, frames=length, dtype="float32",
                                  always_2d=True)
            except (sf.LibsndfileError, RuntimeError) as exc:
                raise BadAudioError(f"{self.paths[index]}: cannot read noise file ({exc})") from exc
            piece = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
        else:
            whole = _decoded(self.paths[index])
            piece = np.resize(np.concatenate([whole[start:], whole[:start]]), length)
        return np.ascontiguousarray(piece, dtype=np.float32)


@functools.lru_cache(maxsize=8)
def _decoded(path: Path) -> np.ndarray:
    return load_audio(path)


@dataclasses.dataclass(frozen=True)
class RirBank:
    """Room impulse responses from files, each starting at its peak with unit energy."""

    names: tuple[str, ...] = ()
    responses: tuple[np.ndarray, ...] = ()

    @classmethod
    def open(cls, folder: str | os.PathLike[str] | None) -> RirBank:
        """Load every audio file under ``folder`` as an RIR (an empty bank without one)."""
        if folder is None:
            return cls()
        root, paths = audio_files(folder, "--rir")
        return cls(tuple(p.relative_to(root).as_posix() for p in paths),
                   tuple(prepare_rir(load_audio(p)) for p in paths))


@dataclasses.dataclass(frozen=True)
class Banks:
    """The files a chain may draw from."""

    noise: NoiseBank = NoiseBank()
    rir: RirBank = RirBank()

    def identity(self) -> dict[str, list]:
        """What the outputs depend on: file names and durations (part of the run's fingerprint)."""
        return {"noise": [[n, round(d, 4)] for n, d in zip(self.noise.names, self.noise.durations_s, strict=True)],
                "rir": [[n, int(r.size)] for n, r in zip(self.rir.names, self.rir.responses, strict=True)]}
