"""flite (Debian package ``flite``): the voices kal, kal16, awb, rms and slt, through its binary."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np

from wakebuilder.data.tts import Voice
from wakebuilder.data.tts.binary import speak_to_wav
from wakebuilder.errors import EngineUnavailableError

FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
# flite is deterministic: a (voice, text) pair gives the same clip every time, and casing or punctuation
# rarely changes it, so a one-word phrase has about one distinct clip per setting. 5 voices x 3 x 3 settings
# gave 39 distinct "happy" clips of 300 asked for (the rest were dropped as exact repeats); 13 x 13 per voice
# gives every clip of a quick recipe its own setting.
GRID = tuple(round(0.8 + 0.04 * k, 2) for k in range(13))  # 0.8 ... 1.28
STRETCHES = GRID
PITCH_SHIFTS = GRID  # times the voice's own mean F0
# rms ignores int_f0_target_mean (measured: identical audio at every value), so it gets finer stretches instead.
NO_F0 = ("rms",)
FINE_STRETCHES = tuple(round(0.7 + 0.01 * k, 2) for k in range(71))  # 0.7 ... 1.4
NATIVE_F0 = {"kal": 100, "kal16": 100, "awb": 110, "rms": 110, "slt": 170}
TIMEOUT_S = 30.0


class FliteEngine:
    """flite voices x duration stretch x F0 shift."""

    name = "flite"

    def available(self) -> bool:
        return shutil.which("flite") is not None

    def why_unavailable(self) -> str:
        return "install the Debian package flite (apt-get install flite); bin/setup does this where it can"

    def licence(self, name: str) -> str:
        return "flite licence (BSD-style, commercial use allowed)"

    def voices(self) -> list[Voice]:
        voices = []
        for name in FLITE_VOICES:
            if name in NO_F0:
                voices += [Voice("flite", name, {"duration_stretch": stretch}) for stretch in FINE_STRETCHES]
            else:
                voices += [Voice("flite", name, {"duration_stretch": stretch, "f0_mean": int(NATIVE_F0[name] * shift)})
                           for stretch, shift in itertools.product(STRETCHES, PITCH_SHIFTS)]
        return voices

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        binary = shutil.which("flite")
        if binary is None:
            raise EngineUnavailableError(self.why_unavailable())

        def command(out: Path) -> list[str]:
            args = [binary, "-voice", voice.name, "-t", text, "-o", str(out),
                    "--setf", f"duration_stretch={voice.settings.get('duration_stretch', 1.0)}"]
            if "f0_mean" in voice.settings:
                args += ["--setf", f"int_f0_target_mean={voice.settings['f0_mean']}"]
            return args

        return speak_to_wav(command, what=f"flite voice {voice.name}", timeout_s=TIMEOUT_S)
