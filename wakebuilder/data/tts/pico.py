"""SVOX Pico (Debian package ``libttspico-utils`` in ``contrib``): US and UK English through ``pico2wave``.

Pico reads its own markup in the text: ``<speed level="N">`` and ``<pitch level="N">`` (percent of normal),
which give each of its two voices a grid of settings. Deterministic: a (setting, text) pair gives one clip.
"""

from __future__ import annotations

import itertools
import shutil
from xml.sax.saxutils import escape

import numpy as np

from wakebuilder.data.tts import Voice
from wakebuilder.data.tts.binary import require_binary, speak_to_wav

PICO_VOICES = ("en-US", "en-GB")
SPEEDS = tuple(range(70, 135, 5))  # percent: 70 ... 130
PITCHES = tuple(range(75, 140, 5))  # percent: 75 ... 135
LICENCE = "Apache-2.0 (SVOX Pico; Debian contrib: its language files ship without source)"


class PicoEngine:
    """Pico's en-US and en-GB voices x speed x pitch."""

    name = "pico"

    def available(self) -> bool:
        return shutil.which("pico2wave") is not None

    def why_unavailable(self) -> str:
        return ("install the Debian package libttspico-utils (in the contrib component: enable it in "
                "/etc/apt/sources.list.d/debian.sources, then apt-get update); bin/setup does this where it can")

    def licence(self, name: str) -> str:
        return LICENCE

    def voices(self) -> list[Voice]:
        return [Voice("pico", name, {"speed": speed, "pitch": pitch})
                for name, speed, pitch in itertools.product(PICO_VOICES, SPEEDS, PITCHES)]

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        binary = require_binary("pico2wave", self.why_unavailable())
        speed, pitch = int(voice.settings.get("speed", 100)), int(voice.settings.get("pitch", 100))
        marked = f'<speed level="{speed}"><pitch level="{pitch}">{escape(text)}</pitch></speed>'
        return speak_to_wav(lambda out: [binary, "-l", voice.name, "-w", str(out), marked],
                            what=f"pico voice {voice.name}")
