"""gTTS (Google Translate TTS): online only, an optional extra; accents through the tld.

Offline it fails within ``CONNECT_TIMEOUT_S`` with a clear message: a bounded
name lookup and TCP connect to the service are tried before gTTS is called. The request itself
gets ``REQUEST_TIMEOUT_S`` (gTTS takes a ``timeout`` only from 2.5; 2.2.4 is what
pip resolves beside this stack), so a stalled answer is an error, never a hang.
"""

from __future__ import annotations

import inspect
import io
from typing import Any

import numpy as np

from wakebuilder.audio import resample
from wakebuilder.data.tts import Voice, trim_silence
from wakebuilder.data.tts.fetch import call_within, reachable
from wakebuilder.errors import EngineUnavailableError

CONNECT_TIMEOUT_S = 2.0  # offline, gTTS is skipped in under 3 s: this check is most of it
REQUEST_TIMEOUT_S = 20.0
HOST = "translate.google.com"
TLDS = ("com", "co.uk", "com.au", "ca", "co.in", "ie", "co.za")


def _online(host: str = HOST, timeout_s: float = CONNECT_TIMEOUT_S) -> bool:
    return reachable(host, 443, timeout_s)  # the name lookup too: a resolver that never answers is offline


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

        timeout = {"timeout": REQUEST_TIMEOUT_S} if "timeout" in inspect.signature(gTTS).parameters else {}
        speech = gTTS(text, lang="en", tld=voice.settings["tld"], slow=voice.settings["slow"], **timeout)
        try:
            mp3 = call_within(lambda: _audio(speech), REQUEST_TIMEOUT_S)
        except gTTSError as exc:
            raise EngineUnavailableError(f"gTTS failed: {exc}") from exc
        except TimeoutError:  # a stalled request is left behind
            raise EngineUnavailableError(f"gTTS: no answer from {HOST} within {REQUEST_TIMEOUT_S:g} s; "
                                         "try again later") from None
        data, rate = sf.read(io.BytesIO(mp3), dtype="float32", always_2d=True)
        return trim_silence(resample(data.mean(axis=1), rate))


def _audio(speech: Any) -> bytes:
    buffer = io.BytesIO()
    speech.write_to_fp(buffer)
    return buffer.getvalue()
