"""espeak-ng in-process through ctypes, from the PyPI package ``espeakng-loader``.

No system install is needed: the package ships ``libespeak-ng.so`` and its
data. espeak-ng is not re-entrant, so every call holds one process-wide lock.
It keeps state from one utterance to the next in C statics that no call resets
(its pitch flutter's phase, its gain control), so each clip is made by the
library loaded afresh: a clip then depends on its text, voice and seed alone, not
on the clips its process made before (nor on how ``wb synth`` shares out its jobs).
That state was also variety (the flutter's phase, libc's noise), which a fresh state
takes away: ``reseed`` (called by ``wb synth`` per clip) sets a warm-up, an utterance
said and thrown away before the clip, and a noise seed, both drawn from the clip's
seed, so the state still varies from clip to clip, deterministically.
"""

from __future__ import annotations

import _ctypes
import ctypes
import hashlib
import itertools
import threading
from typing import Any

import numpy as np

from wakebuilder.audio import resample
from wakebuilder.data.tts import Voice, trim_silence
from wakebuilder.errors import EngineUnavailableError

AUDIO_OUTPUT_SYNCHRONOUS = 2
CHARS_UTF8 = 1
POS_CHARACTER = 1
RATE, VOLUME, PITCH, RANGE, WORDGAP = 1, 2, 3, 4, 7
PHONEMES_IPA = 0x02

# The breathy female variants (f2, f3, f5) add noise that differs from run to run even in a fresh
# process with rand() seeded; they are left out so that the same seed gives identical files.
LANGUAGES = ("en-us", "en", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m7", "f1", "f4", "klatt", "klatt3", "klatt4", "kaukovalta",
            "adam", "andy", "anika", "linda", "steph", "robert")
RATES = (135, 165, 195)
PITCHES = (35, 50, 70)

_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)
_LOCK = threading.Lock()
_LIBC = ctypes.CDLL(None)
WARMUP_SYLLABLES = 24  # a warm-up says 0-23 "ah"s


class _Library:
    """The loaded library, initialised once per process."""

    def __init__(self) -> None:
        import espeakng_loader

        self.lib = ctypes.cdll.LoadLibrary(str(espeakng_loader.get_library_path()))
        self.data = str(espeakng_loader.get_data_path())
        self.lib.espeak_Initialize.restype = ctypes.c_int
        rate = self.lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self.data.encode(), 0)
        if rate <= 0:
            raise EngineUnavailableError(f"espeak-ng failed to initialise with data {self.data}")
        self.sample_rate = rate
        self.chunks: list[np.ndarray] = []
        self.callback = _CALLBACK(self._collect)
        self.lib.espeak_SetSynthCallback(self.callback)
        self.lib.espeak_TextToPhonemes.restype = ctypes.c_char_p
        phonemes = self.lib.espeak_TextToPhonemes
        phonemes.argtypes = [ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int]

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if count > 0:
            self.chunks.append(np.ctypeslib.as_array(wav, shape=(count,)).copy())
        return 0

    def set_voice(self, name: str) -> None:
        if self.lib.espeak_SetVoiceByName(name.encode()) != 0:
            raise EngineUnavailableError(f"espeak-ng has no voice {name!r}")

    def close(self) -> None:
        """Ends espeak-ng and unloads the library, its state with it; this object is unusable afterwards."""
        self.lib.espeak_Terminate()
        _ctypes.dlclose(self.lib._handle)


_LIBRARY: _Library | None = None


def _library() -> _Library:
    global _LIBRARY  # one native library per process; espeak-ng keeps global state itself
    if _LIBRARY is None:
        _LIBRARY = _Library()
    return _LIBRARY


def _fresh_library() -> _Library:
    """The library unloaded and loaded again (about 5 ms, most of it reading the dictionary), so that nothing
    of the utterances before carries over into the next one. It unloads only while nothing else in the process
    holds the same file open (nothing in wakebuilder does)."""
    global _LIBRARY
    if _LIBRARY is not None:
        _LIBRARY.close()
        _LIBRARY = None
    _LIBRARY = _Library()
    return _LIBRARY


def espeak_phonemes(text: str, *, voice: str = "en-us", ipa: bool = False) -> str:
    """espeak-ng's phonemes for ``text`` (ASCII mnemonics, or IPA), clauses joined by spaces."""
    with _LOCK:
        lib = _library()
        lib.set_voice(voice)
        buffer = ctypes.c_char_p(text.encode("utf-8"))
        pointer = ctypes.pointer(buffer)
        clauses = []
        while pointer.contents.value:
            out = lib.lib.espeak_TextToPhonemes(pointer, CHARS_UTF8, PHONEMES_IPA if ipa else 0)
            if out:
                clauses.append(out.decode("utf-8").strip())
        return " ".join(c for c in clauses if c)


def _say(lib: _Library, text: str) -> None:
    data = text.encode("utf-8") + b"\0"
    lib.lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, CHARS_UTF8, None, None)
    lib.lib.espeak_Synchronize()


class EspeakEngine:
    """Hundreds of distinct English voice settings: accents x variants x rate x pitch."""

    name = "espeak"

    def __init__(self) -> None:
        self._warmup = (0, 0)  # syllables said and thrown away before a clip, libc rand() seed (see ``reseed``)

    def reseed(self, seed: int | tuple[int, ...]) -> None:
        """Draw the next clips' warm-up from ``seed`` (``wb synth`` passes the job's run seed and index)."""
        digest = hashlib.sha256(repr(seed).encode("utf-8")).digest()
        self._warmup = (digest[0] % WARMUP_SYLLABLES, int.from_bytes(digest[1:5], "big"))

    def available(self) -> bool:
        try:
            with _LOCK:  # two threads initialising the library at once crashed the process (SIGSEGV)
                _library()
        except (OSError, ImportError, EngineUnavailableError):
            return False
        return True

    def why_unavailable(self) -> str:
        return "pip install espeakng-loader (ships libespeak-ng and its data)"

    def licence(self, name: str) -> str:
        return "GPL-3.0 (espeak-ng)"

    def voices(self) -> list[Voice]:
        return [
            Voice("espeak", f"{lang}+{variant}" if variant else lang, {"rate": rate, "pitch": pitch})
            for lang, variant, rate, pitch in itertools.product(LANGUAGES, VARIANTS, RATES, PITCHES)
        ]

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        settings = voice.settings
        with _LOCK:
            lib = _fresh_library()
            lib.set_voice(voice.name)
            lib.lib.espeak_SetParameter(RATE, int(settings.get("rate", 165)), 0)
            lib.lib.espeak_SetParameter(PITCH, int(settings.get("pitch", 50)), 0)
            lib.lib.espeak_SetParameter(RANGE, int(settings.get("range", 50)), 0)
            lib.lib.espeak_SetParameter(WORDGAP, int(settings.get("gap", 0)), 0)
            syllables, noise_seed = self._warmup
            _LIBC.srand(noise_seed)  # espeak-ng draws noise from libc rand(); fixed per clip
            if syllables:
                _say(lib, " ".join(["ah"] * syllables))
            lib.chunks = []
            _say(lib, text)
            pcm = np.concatenate(lib.chunks) if lib.chunks else np.zeros(0, np.int16)
            rate = lib.sample_rate
        audio = resample(pcm.astype(np.float32) / 32768.0, rate)
        return trim_silence(audio)
