"""festival (Debian packages ``festival`` and ``festvox-*``): diphone and HTS voices, through ``text2wave``.

English voices in Debian: ``kal_diphone`` (festvox-kallpc16k), ``ked_diphone`` (festvox-kdlpc16k) and the
HTS voice ``cmu_us_slt_arctic_hts`` (festvox-us-slt-hts). Variety: duration stretch and F0 mean for the
diphone voices; speed alone for HTS voices (festival 2.5's HTS module passes only ``-m`` and ``-r`` to the
engine: pitch and all-pass options are ignored, measured).
"""

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

VOICE_ROOT = Path("/usr/share/festival/voices")
DIPHONE_VOICES = {"kal_diphone": 105, "ked_diphone": 105}  # voice -> its own mean F0 (Hz)
HTS_VOICES = ("cmu_us_slt_arctic_hts",)
# Deterministic voices: about one distinct clip per (setting, word), so the grids are fine (see tts/flite.py).
STRETCHES = tuple(round(0.8 + 0.04 * k, 2) for k in range(13))  # 0.8 ... 1.28
F0_SCALES = STRETCHES
# HTS durations are whole 5 ms frames: speeds 0.005 apart gave identical clips of "happy", 0.01 apart did not.
HTS_STRETCHES = tuple(round(0.65 + 0.01 * k, 2) for k in range(81))  # 0.65 ... 1.45
PACKAGES = "festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts"


def installed_voices() -> list[str]:
    """Names of the known English voices whose folders exist under the festival voice root."""
    known = [*DIPHONE_VOICES, *HTS_VOICES]
    return [name for name in known if any((VOICE_ROOT / lang / name).is_dir() for lang in ("english", "us"))]


def voice_commands(voice: Voice) -> list[str]:
    """Scheme expressions that select ``voice`` and apply its settings (after ``voice_<name>``)."""
    stretch = float(voice.settings.get("duration_stretch", 1.0))
    commands = [f"(voice_{voice.name})"]
    if voice.name in HTS_VOICES:
        commands.append(f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {1.0 / stretch:.4f}))))')
    else:
        f0 = float(voice.settings.get("f0_mean", DIPHONE_VOICES[voice.name]))
        commands += [f"(Parameter.set 'Duration_Stretch {stretch:.4f})",
                     f"(set! int_lr_params (cons (list 'target_f0_mean {f0:.1f}) int_lr_params))"]
    return commands


class FestivalEngine:
    """festival's English diphone voices x speed x pitch, and its HTS voices x speed."""

    name = "festival"

    def available(self) -> bool:
        return shutil.which("text2wave") is not None and bool(installed_voices())

    def why_unavailable(self) -> str:
        if shutil.which("text2wave") is None:
            return f"install the Debian packages {PACKAGES} (bin/setup does this where apt works)"
        return f"festival has no English voice here; install {PACKAGES.split(' ', 1)[1]}"

    def voices(self) -> list[Voice]:
        voices = []
        for name in installed_voices():
            if name in HTS_VOICES:
                voices += [Voice("festival", name, {"duration_stretch": s}) for s in HTS_STRETCHES]
            else:
                f0 = DIPHONE_VOICES[name]
                voices += [Voice("festival", name, {"duration_stretch": s, "f0_mean": int(round(f0 * k))})
                           for s, k in itertools.product(STRETCHES, F0_SCALES)]
        return voices

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        binary = shutil.which("text2wave")
        if binary is None or voice.name not in installed_voices():
            raise EngineUnavailableError(f"festival voice {voice.name}: {self.why_unavailable()}")
        with tempfile.TemporaryDirectory(prefix="wb-festival-") as tmp:
            source, out = Path(tmp) / "text.txt", Path(tmp) / "out.wav"
            source.write_text(text + "\n", encoding="utf-8")  # a file, so no text needs Scheme quoting
            command = [binary, *[arg for expr in voice_commands(voice) for arg in ("-eval", expr)],
                       "-o", str(out), str(source)]
            result = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
            if result.returncode != 0 or not out.is_file():
                raise EngineUnavailableError(f"festival failed for voice {voice.name}: {result.stderr.strip()[:200]}")
            return trim_silence(load_audio(out))
