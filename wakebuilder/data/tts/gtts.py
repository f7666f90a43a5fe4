"""gTTS (Google Translate TTS): online only, an optional extra; accents through the tld.

Offline it fails within ``CONNECT_TIMEOUT_S`` with a clear message: a bounded
TCP connect to the service is tried before gTTS is called, so nothing hangs.
"""

from __future__ import annotations

import io
import socket

import numpy as np

from wakebuilder.audio import resample
from wakebuilder.data.tts import Voice, trim_silence
from wakebuilder.errors import EngineUnavailableError

CONNECT_TIMEOUT_S = 3.0
HOST = "translate.google.com"
TLDS = ("com", "co.uk", "com.au", "ca", "co.in", "ie", "co.za")


def _online(host: str = HOST, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    try:
        with socket.create_connection((host, 443), timeout=timeout_s):
            return True
    except OSError:
        return False


class GTTSEngine:
    """English accents by Google domain, normal and slow speech."""

    name = "gtts"

    def available(self) -> bool:
        try:
            import gtts  # noqa: F401
        except ImportError:
            return False
        return _online()

    def why_unavailable(self) -> str:
        try:
            import gtts  # noqa: F401
        except ImportError:
            return "pip install 'wakebuilder[gtts]' (and it needs the internet)"
        return f"gTTS needs the internet and {HOST} cannot be reached (tried for {CONNECT_TIMEOUT_S:.0f} s)"

    def licence(self, name: str) -> str:
        return "Google Translate service terms (online; gTTS MIT)"

    def voices(self) -> list[Voice]:
        return [Voice("gtts", f"en-{tld}", {"tld": tld, "slow": slow})
                for tld in TLDS for slow in (False, True)]

    def synthesize(self, text: str, voice: Voice) -> np.ndarray:
        if not _online():
            raise EngineUnavailableError(self.why_unavailable())
        import soundfile as sf
        from gtts import gTTS, gTTSError

        buffer = io.BytesIO()
        try:
            speech = gTTS(text, lang="en", tld=voice.settings["tld"], slow=voice.settings["slow"], timeout=10)
            speech.write_to_fp(buffer)
        except gTTSError as exc:
            raise EngineUnavailableError(f"gTTS failed: {exc}") from exc
        buffer.seek(0)
        data, rate = sf.read(buffer, dtype="float32", always_2d=True)
        return trim_silence(resample(data.mean(axis=1), rate))
