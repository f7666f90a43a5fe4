"""festival (Debian packages ``festival`` and ``festvox-*``): diphone and HTS voices, through one ``festival --pipe`` process per synthesis worker.

English voices in Debian: ``kal_diphone`` (festvox-kallpc16k), ``ked_diphone`` (festvox-kdlpc16k) and the
HTS voice ``cmu_us_slt_arctic_hts`` (festvox-us-slt-hts). Variety: duration stretch and F0 mean for the
diphone voices; speed alone for HTS voices (festival 2.5's HTS module passes only ``-m`` and ``-r`` to the
engine: pitch and all-pass options are ignored, measured).
"""

from __future__ import annotations

import itertools
import os
import select
import shutil
import subprocess
import tempfile
import time
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
        # Duration_Stretch is global, not reset by a voice: clear what a diphone clip before may have set
        commands += ["(Parameter.set 'Duration_Stretch 1.0)",
                     f'(set! hts_engine_params (append hts_engine_params (list (list "-r" {1.0 / stretch:.4f}))))']
    else:
        commands.append(f"(Parameter.set 'Duration_Stretch {stretch:.4f})")
        if "f0_mean" in voice.settings:
            f0 = float(voice.settings["f0_mean"])
            commands.append(f"(set! int_lr_params (cons (list 'target_f0_mean {f0:.1f}) int_lr_params))")
    return commands


def scheme_string(text: str) -> str:
    """``text`` as a Scheme string literal (one line; backslashes and quotes escaped)."""
    flat = " ".join(text.split())
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


class FestivalSession:
    """One ``festival --pipe`` process that speaks clip after clip.

    Starting festival costs more than speaking a word (about 0.3 s against 0.05-0.1 s), so one process
    serves a whole synthesis partition. Each clip first calls its voice's ``voice_<name>``, which resets
    the voice's parameters, so a clip does not depend on the clips before it.
    """

    MARKER = "WB-CLIP-DONE"

    def __init__(self, *, timeout_s: float = 60.0) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="wb-festival-")
        self._stderr = open(Path(self._tmp.name) / "stderr.txt", "w+b")  # noqa: SIM115 (lives with the process)
        self._proc = subprocess.Popen(["festival", "--pipe"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr)
        self._timeout_s = timeout_s
        self._count = 0
        self._stderr_seen = 0

    def speak(self, text: str, voice: Voice) -> np.ndarray:
        self._count += 1
        out = Path(self._tmp.name) / f"clip{self._count}.wav"
        commands = [*voice_commands(voice),
                    f"(utt.save.wave (utt.synth (Utterance Text {scheme_string(text)})) {scheme_string(str(out))} 'riff)",
                    f'(format t "{self.MARKER}\\n")', "(fflush nil)"]  # stdout is a buffered pipe
        try:
            self._proc.stdin.write(("\n".join(commands) + "\n").encode())
            self._proc.stdin.flush()
            self._wait_for_marker()
        except (OSError, TimeoutError) as exc:
            self.close()
            raise EngineUnavailableError(f"festival failed for voice {voice.name}: {exc}; {self._new_errors()[-200:]}") from exc
        errors = self._new_errors()
        if "ERROR" in errors or not out.is_file():  # festival goes on after a failed expression: check
            raise EngineUnavailableError(f"festival failed for voice {voice.name}: {errors[-200:] or 'no output'}")
        try:
            return load_audio(out)
        finally:
            out.unlink()

    def _wait_for_marker(self) -> None:
        fd, seen, deadline = self._proc.stdout.fileno(), b"", time.monotonic() + self._timeout_s
        while self.MARKER.encode() not in seen:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError(f"no answer in {self._timeout_s:g} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise OSError(f"festival exited (code {self._proc.poll()})")
            seen = (seen + chunk)[-256:]

    def _new_errors(self) -> str:
        """What festival wrote to stderr since the last call."""
        self._stderr.seek(self._stderr_seen)
        text = self._stderr.read()
        self._stderr_seen += len(text)
        return text.decode(errors="replace").strip()

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()

    def __del__(self) -> None:
        self.close()


class FestivalEngine:
    """festival's English diphone voices x speed x pitch, and its HTS voices x speed."""

    name = "festival"

    def __init__(self) -> None:
        self._session: FestivalSession | None = None  # started on the first clip, one per process

    def available(self) -> bool:
        return shutil.which("festival") is not None and bool(installed_voices())

    def why_unavailable(self) -> str:
        if shutil.which("festival") is None:
            return f"install the Debian packages {PACKAGES} (bin/setup does this where apt works)"
        return f"festival has no English voice here; install {PACKAGES.split(' ', 1)[1]}"

    def licence(self, name: str) -> str:
        if name in HTS_VOICES:
            return "BSD-style (CMU ARCTIC/HTS)"
        return "festvox diphone licence (free, commercial use allowed)"

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
        if shutil.which("festival") is None or voice.name not in installed_voices():
            raise EngineUnavailableError(f"festival voice {voice.name}: {self.why_unavailable()}")
        if self._session is None:
            self._session = FestivalSession()
        return trim_silence(self._session.speak(text, voice))
