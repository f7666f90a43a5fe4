"""MBROLA diphone voices (Debian ``mbrola`` and ``mbrola-us1``/``-us2``/``-us3``/``-en1``, ``contrib`` and
``non-free``) driven by the ``espeak-ng`` program's ``mb-*`` voices.

The MBROLA databases are licensed for non-commercial use only, so this engine is never in a default set:
name it (``--engine mbrola``). espeak-ng in-process (``espeakng-loader``) cannot drive them: its bundled data
has no ``voices/mb`` folder and the library is one per process, initialised with that data, so the system
``espeak-ng`` binary (Debian package ``espeak-ng``) runs each clip. Variety: speed (words/min) and pitch.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np

from wakebuilder.data.tts import Voice
from wakebuilder.data.tts.binary import NON_COMMERCIAL, require_binary, speak_to_wav

DATABASE_ROOT = Path("/usr/share/mbrola")
MBROLA_VOICES = ("us1", "us2", "us3", "en1")  # us1 female, us2 and us3 male (US); en1 male (UK)
LICENCE = f"MBROLA database licence ({NON_COMMERCIAL}, non-military)"
SPEEDS = tuple(range(120, 205, 10))  # words per minute
PITCHES = tuple(range(30, 75, 5))  # espeak-ng's 0-99 pitch scale


def installed_voices() -> list[str]:
    """The English MBROLA databases installed under ``DATABASE_ROOT``."""
    return [name for name in MBROLA_VOICES if (DATABASE_ROOT / name).exists()]


class MbrolaEngine:
    """MBROLA's English diphone databases x speed x pitch."""

    name = "mbrola"

    def available(self) -> bool:
        return all(shutil.which(b) for b in ("espeak-ng", "mbrola")) and bool(installed_voices())

    def why_unavailable(self) -> str:
        return ("install the Debian packages espeak-ng mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1 "
                "(contrib and non-free components; non-commercial licence); bin/setup does this where it can")

    def licence(self, name: str) -> str:
        return LICENCE

    def voices(self) -> list[Voice]:
        return [Voice("mbrola", name, {"speed": speed, "pitch": pitch})
                for name, speed, pitch in itertools.product(installed_voices(), SPEEDS, PITCHES)]

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        binary = require_binary("espeak-ng", self.why_unavailable())
        require_binary("mbrola", self.why_unavailable())
        speed, pitch = int(voice.settings.get("speed", 160)), int(voice.settings.get("pitch", 50))
        return speak_to_wav(lambda out: [binary, "-v", f"mb-{voice.name}", "-s", str(speed), "-p", str(pitch),
                                         "-w", str(out), "--stdin"], stdin=text, what=f"mbrola voice {voice.name}")
