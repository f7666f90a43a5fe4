"""Engines that are command-line programs (pico2wave, RHVoice-test, espeak-ng with MBROLA): one helper that
runs the program into a temporary WAV file and returns its trimmed 16 kHz samples."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from wakebuilder.audio import load_audio
from wakebuilder.data.tts import trim_silence
from wakebuilder.errors import EngineUnavailableError

NON_COMMERCIAL = "non-commercial"


def require_binary(name: str, why_unavailable: str) -> str:
    """The path of program ``name``; raises EngineUnavailableError (with ``why_unavailable``) when absent."""
    path = shutil.which(name)
    if path is None:
        raise EngineUnavailableError(why_unavailable)
    return path


def speak_to_wav(
    command: Callable[[Path], list[str]], *, what: str, stdin: str | None = None, timeout_s: float = 30
) -> np.ndarray:
    """Run ``command(out_wav)`` (text on ``stdin`` if given) and return the WAV it wrote, trimmed, at 16 kHz.

    Raises:
        EngineUnavailableError: the program failed or wrote no audio (``what`` names engine and voice).
    """
    with tempfile.TemporaryDirectory(prefix="wb-tts-") as tmp:
        out = Path(tmp) / "out.wav"
        try:
            result = subprocess.run(command(out), input=stdin, capture_output=True, text=True,
                                    timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired as err:
            raise EngineUnavailableError(f"{what}: no audio within {timeout_s:g} s") from err
        if result.returncode != 0 or not out.is_file() or out.stat().st_size <= 44:
            detail = (result.stderr or result.stdout).strip()[:200]
            raise EngineUnavailableError(f"{what} failed (exit {result.returncode}): {detail or 'no audio written'}")
        return trim_silence(load_audio(out))
