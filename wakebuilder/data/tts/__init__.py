"""Pluggable offline text-to-speech engines.

An engine exposes ``name``, ``available()``, ``why_unavailable()``,
``voices()`` and ``synthesize(text, voice) -> float32 16 kHz``; one with noise
of its own also ``reseed(seed)``, which ``wb synth`` calls per clip. A clip must
not depend on the clips its process made before (``wb synth`` shares its jobs
out over workers and keeps a killed run's finished clips). The default
engines for positives are the ones whose voices transfer to real speech
(Piper, flite); espeak-ng serves tests, phonemes and negatives (see README).
"""

from __future__ import annotations

import dataclasses
import importlib
import logging
from typing import Any, Protocol

import numpy as np

from wakebuilder.errors import EngineUnavailableError
from wakebuilder.fingerprint import canonical_json

log = logging.getLogger(__name__)

ENGINES = {
    "piper": "wakebuilder.data.tts.piper:PiperEngine",
    "flite": "wakebuilder.data.tts.flite:FliteEngine",
    "festival": "wakebuilder.data.tts.festival:FestivalEngine",
    "kokoro": "wakebuilder.data.tts.kokoro:KokoroEngine",
    "espeak": "wakebuilder.data.tts.espeak:EspeakEngine",
    "gtts": "wakebuilder.data.tts.gtts:GTTSEngine",
    "pico": "wakebuilder.data.tts.pico:PicoEngine",
    "rhvoice": "wakebuilder.data.tts.rhvoice:RHVoiceEngine",
    "mbrola": "wakebuilder.data.tts.mbrola:MbrolaEngine",
}
DEFAULT_ENGINES = ("piper", "flite", "espeak")
# Engines whose every voice is licensed for non-commercial use only: never in a default set (name them).
NON_COMMERCIAL_ENGINES = ("mbrola",)


@dataclasses.dataclass(frozen=True)
class Voice:
    """One distinct voice setting of an engine (the ``group`` of the clips it speaks)."""

    engine: str
    name: str
    settings: dict[str, Any] = dataclasses.field(default_factory=dict, hash=False, compare=True)

    @property
    def key(self) -> str:
        """Stable group id, e.g. ``espeak:en-us+f3:pitch=50:rate=160``."""
        parts = [f"{k}={v}" for k, v in sorted(self.settings.items())]
        return ":".join([self.engine, self.name, *parts])

    def to_dict(self) -> dict[str, Any]:
        return json_ready({"engine": self.engine, "name": self.name, "settings": self.settings})


def json_ready(value: Any) -> Any:
    """Round-trip through canonical JSON (fails loudly on odd types)."""
    import json

    return json.loads(canonical_json(value))


class Engine(Protocol):
    name: str

    def available(self) -> bool: ...

    def why_unavailable(self) -> str: ...

    def voices(self) -> list[Voice]: ...

    def synthesize(self, text: str, voice: Voice) -> np.ndarray: ...


_CACHE: dict[str, Engine] = {}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (one instance per process)."""
    if name not in ENGINES:
        raise EngineUnavailableError(f"unknown TTS engine {name!r}; choose from {', '.join(ENGINES)}")
    if name not in _CACHE:
        module, attr = ENGINES[name].split(":")
        _CACHE[name] = getattr(importlib.import_module(module), attr)()
    return _CACHE[name]


def usable_engines(names: tuple[str, ...] | list[str]) -> list[Engine]:
    """The named engines that can run here; logs why the others cannot."""
    engines = []
    for name in names:
        engine = get_engine(name)
        if engine.available():
            engines.append(engine)
        else:
            log.warning("TTS engine %s unavailable: %s", name, engine.why_unavailable())
    if not engines:
        raise EngineUnavailableError(f"none of the TTS engines {', '.join(names)} can run here")
    return engines


def list_voices(engines: tuple[str, ...] | list[str] | None = None) -> list[Voice]:
    """Every voice setting of the usable engines."""
    return [voice for engine in usable_engines(list(engines or ENGINES)) for voice in engine.voices()]


def voice_licence(engine: Engine, name: str) -> str:
    """The licence of ``engine``'s voice ``name`` (its ``licence`` method; "unknown" without one)."""
    licence = getattr(engine, "licence", None)
    return licence(name) if licence is not None else "unknown"


def is_non_commercial(licence: str) -> bool:
    """Whether a licence string restricts use to non-commercial purposes."""
    return "non-commercial" in licence.lower() or "-nc-" in licence.lower()


def single_thread_session(path: str) -> object:
    """An onnxruntime CPU session with one intra-op thread: wb synth runs one process per core, and shared
    threads only contend (Piper's and Kokoro's voices)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(path, sess_options=options, providers=["CPUExecutionProvider"])


def trim_silence(
    samples: np.ndarray, *, rate: int = 16_000, threshold_db: float = -45.0, keep_s: float = 0.1
) -> np.ndarray:
    """Trim leading and trailing silence, keeping ``keep_s`` around the voiced part."""
    if samples.size == 0:
        return samples
    frame = rate // 100
    n = samples.size // frame
    if n == 0:
        return samples
    energy = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1) + 1e-12)
    loud = np.nonzero(20 * np.log10(energy / (np.max(energy) + 1e-12)) > threshold_db)[0]
    if loud.size == 0:
        return samples[:0]
    keep = int(keep_s * rate)
    start = max(loud[0] * frame - keep, 0)
    stop = min((loud[-1] + 1) * frame + keep, samples.size)
    return samples[start:stop]
