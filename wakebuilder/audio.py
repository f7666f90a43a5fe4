"""Audio loading and writing: any common format to 16 kHz mono float32.

Decoding goes through libsndfile (WAV, FLAC, OGG, MP3); resampling through
soxr's high-quality resampler.
"""

from __future__ import annotations

import io
import logging
import os
import struct
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from wakebuilder import SAMPLE_RATE
from wakebuilder.atomic import atomic_write_bytes
from wakebuilder.errors import BadAudioError

AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".oga", ".opus")


def resample(samples: np.ndarray, from_rate: int, to_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Resample float32 mono audio with soxr (VHQ)."""
    if from_rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    out = soxr.resample(np.asarray(samples, dtype=np.float32), from_rate, to_rate, quality="VHQ")
    return np.asarray(out, dtype=np.float32)


def load_audio(path: str | os.PathLike[str], *, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode ``path`` to mono float32 at ``sample_rate``.

    Raises:
        BadAudioError: the file is missing, unreadable, empty (also once resampled: a 1-sample 48 kHz file has no
            16 kHz sample), or holds NaN/inf.
    """
    data, rate = read_audio(path)
    mono = data.mean(axis=1) if data.shape[1] > 1 else data[:, 0]
    out = resample(mono, rate, sample_rate)
    if out.shape[0] == 0:
        raise BadAudioError(f"{path}: no samples at {sample_rate} Hz (too short)")
    return out


def read_audio(path: str | os.PathLike[str]) -> tuple[np.ndarray, int]:
    """Decode ``path`` as it is stored: float32 (frames, channels) and its sample rate.

    For checks that resampling or mixing to mono would hide (clipped tops rounded off, a channel inverted).

    Raises:
        BadAudioError: the file is missing, unreadable, empty, or holds NaN/inf.
    """
    where = Path(path)
    if not where.is_file():
        raise BadAudioError(f"{where}: {'a folder, not an audio file' if where.is_dir() else 'file not found'}")
    if where.stat().st_size == 0:
        raise BadAudioError(f"{where}: empty file")
    try:
        data, rate = sf.read(str(where), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        raise BadAudioError(f"{where}: cannot decode audio ({exc}); use WAV, FLAC, OGG or MP3") from exc
    if data.shape[0] == 0:
        raise BadAudioError(f"{where}: no samples")
    warn_if_cut_off(where, data.shape[0] / rate)
    if not np.all(np.isfinite(data)):
        raise BadAudioError(f"{where}: holds NaN or infinite samples")
    return data, int(rate)


def wav_missing_bytes(path: Path) -> int:
    """How many bytes of its ``data`` chunk a WAV file's header promises beyond the file's end (0: whole, or not
    a WAV; libsndfile decodes a cut-off file as a shorter one without a word). A size of 0 or 0xFFFFFFFF is
    what recorders that stream to a pipe write, and is not a promise."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return 0
        while len(chunk := f.read(8)) == 8:
            name, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if name == b"data":
                left = path.stat().st_size - f.tell()
                return size - left if 0 < size < 0xFFFFFFFF and size > left else 0
            f.seek(size + size % 2, os.SEEK_CUR)
    return 0


def warn_if_cut_off(path: Path, seconds: float) -> None:
    """Log a warning when ``path`` is a WAV file cut off before the end its header gives (``seconds`` read)."""
    if (missing := wav_missing_bytes(path)) > 0:
        logging.getLogger(__name__).warning("%s: cut off: its WAV header promises %d more bytes than it holds "
                                            "(%.2f s read); record or copy it again", path, missing, seconds)


def audio_seconds(path: str | os.PathLike[str]) -> float:
    """An audio file's duration from its header (the same at any sample rate), without decoding it."""
    return float(sf.info(str(path)).duration)


def wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """Encode float32 audio as 16-bit PCM WAV bytes (clipped to [-1, 1])."""
    buffer = io.BytesIO()
    sf.write(buffer, to_pcm16(samples), sample_rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def write_wav(path: str | os.PathLike[str], samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write a 16-bit PCM WAV atomically."""
    return atomic_write_bytes(path, wav_bytes(samples, sample_rate))


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Quantise float audio to int16 (clipped to [-1, 1], scale 32767, rounded)."""
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    return np.round(clipped * 32767.0).astype(np.int16)


def quantize_pcm16(samples: np.ndarray) -> np.ndarray:
    """The float32 audio that a 16-bit WAV of ``samples`` decodes to.

    Writers use it to compute a clip's content id before writing the file, so
    the id equals what ``load_audio`` will later hash.
    """
    return to_pcm16(samples).astype(np.float32) / np.float32(32768.0)


def fit_to_window(samples: np.ndarray, window_samples: int) -> np.ndarray:
    """Centre ``samples`` in a window: pad both sides with zeros, or crop the middle."""
    n = samples.shape[0]
    if n == window_samples:
        return np.asarray(samples, dtype=np.float32)
    if n > window_samples:
        start = (n - window_samples) // 2
        return np.asarray(samples[start : start + window_samples], dtype=np.float32)
    out = np.zeros(window_samples, dtype=np.float32)
    left = (window_samples - n) // 2
    out[left : left + n] = samples
    return out


def frame_levels_db(samples: np.ndarray, frame_samples: int) -> np.ndarray:
    """Mean power of each whole frame in dB (a trailing partial frame is dropped; -120 dB for silence)."""
    n = samples.size // frame_samples
    frames = np.asarray(samples[: n * frame_samples], dtype=np.float32).reshape(n, frame_samples)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)


def rms_dbfs(samples: np.ndarray) -> float:
    """Root-mean-square level in dB relative to full scale (-inf for silence)."""
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64)))) if samples.size else 0.0
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")
