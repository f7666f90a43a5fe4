"""RHVoice (Debian packages ``rhvoice`` and ``rhvoice-english`` in ``non-free``) through ``RHVoice-test``.

English voices: alan (Scottish), bdl, clb and slt (US; CMU ARCTIC speakers) under LGPL-2.1+, and evgeniy-eng
and lyubov under CC-BY-NC-ND-4.0 (non-commercial): those two are left out unless named (``--voices``).
Variety: rate and pitch in percent of normal. Deterministic.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np

from wakebuilder.data.tts import Voice
from wakebuilder.data.tts.binary import NON_COMMERCIAL, require_binary, speak_to_wav

VOICE_ROOT = Path("/usr/share/RHVoice/voices")
LICENCES = {
    "alan": "LGPL-2.1+", "bdl": "LGPL-2.1+", "clb": "LGPL-2.1+", "slt": "LGPL-2.1+",
    "evgeniy-eng": f"CC-BY-NC-ND-4.0 ({NON_COMMERCIAL})", "lyubov": f"CC-BY-NC-ND-4.0 ({NON_COMMERCIAL})",
}
RATES = tuple(range(70, 135, 5))  # percent
PITCHES = tuple(range(80, 125, 5))  # percent


def installed_voices() -> list[str]:
    """The English voices whose folders exist under RHVoice's voice root."""
    return [name for name in LICENCES if (VOICE_ROOT / name).is_dir()]


class RHVoiceEngine:
    """RHVoice's English voices x rate x pitch."""

    name = "rhvoice"

    def available(self) -> bool:
        return shutil.which("RHVoice-test") is not None and bool(installed_voices())

    def why_unavailable(self) -> str:
        return ("install the Debian packages rhvoice and rhvoice-english (in the non-free component: enable it in "
                "/etc/apt/sources.list.d/debian.sources, then apt-get update); bin/setup does this where it can")

    def licence(self, name: str) -> str:
        return LICENCES.get(name, "unknown")

    def voices(self) -> list[Voice]:
        return [Voice("rhvoice", name, {"rate": rate, "pitch": pitch})
                for name, rate, pitch in itertools.product(installed_voices(), RATES, PITCHES)]

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        binary = require_binary("RHVoice-test", self.why_unavailable())
        rate, pitch = int(voice.settings.get("rate", 100)), int(voice.settings.get("pitch", 100))
        return speak_to_wav(lambda out: [binary, "-p", voice.name, "-r", str(rate), "-t", str(pitch), "-o", str(out)],
                            stdin=text, what=f"rhvoice voice {voice.name}")
