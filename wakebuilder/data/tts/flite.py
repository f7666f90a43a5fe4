"""flite (Debian package ``flite``): the voices kal, kal16, awb, rms and slt, through its binary."""

from __future__ import annotations

import itertools
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from wakebuilder.audio import load_audio
from wakebuilder.data.tts import Voice, trim_silence
from wakebuilder.errors import EngineUnavailableError

FLITE_VOICES = ("kal", "kal16", "awb", "rms", "slt")
STRETCHES = (0.85, 1.0, 1.2)
PITCH_SHIFTS = (0.85, 1.0, 1.15)  # times the voice's own mean F0
NATIVE_F0 = {"kal": 100, "kal16": 100, "awb": 110, "rms": 110, "slt": 170}


class FliteEngine:
    """flite voices x duration stretch x F0 shift."""

    name = "flite"

    def available(self) -> bool:
        return shutil.which("flite") is not None

    def why_unavailable(self) -> str:
        return "install the Debian package flite (apt-get install flite); bin/setup does this where it can"

    def voices(self) -> list[Voice]:
        return [
            Voice("flite", name, {"duration_stretch": stretch, "f0_mean": int(NATIVE_F0[name] * shift)})
            for name, stretch, shift in itertools.product(FLITE_VOICES, STRETCHES, PITCH_SHIFTS)
        ]

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        binary = shutil.which("flite")
        if binary is None:
            raise EngineUnavailableError(self.why_unavailable())
        with tempfile.TemporaryDirectory(prefix="wb-flite-") as tmp:
            out = Path(tmp) / "out.wav"
            command = [
                binary, "-voice", voice.name, "-t", text, "-o", str(out),
                "--setf", f"duration_stretch={voice.settings.get('duration_stretch', 1.0)}",
                "--setf", f"int_f0_target_mean={voice.settings.get('f0_mean', NATIVE_F0[voice.name])}",
            ]
            result = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
            if result.returncode != 0 or not out.exists():
                detail = result.stderr.strip()[:200]
                raise EngineUnavailableError(f"flite failed for voice {voice.name}: {detail}")
            return trim_silence(load_audio(out))
