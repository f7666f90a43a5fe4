"""Long audio files read a block at a time: memory bounded by one block, whatever the length.

``load_audio`` decodes a whole file, which is right for clips but not for the
hours of continuous audio that false accepts per hour are measured on. An
``AudioBlocks`` decodes through libsndfile in blocks, mixes to mono and
resamples with soxr's streaming resampler (the same VHQ filter as
``audio.resample``), and counts the samples it delivered.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import warn_if_cut_off
from wakebuilder.errors import BadAudioError

BLOCK_S = 5.0
_DECODE_ERRORS = (sf.LibsndfileError, RuntimeError, TypeError, ValueError)


class AudioBlocks:
    """Iterate over ``path`` as float32 mono blocks at ``sample_rate``; ``samples`` counts what came out.

    Raises (while iterating):
        BadAudioError: the file is missing, unreadable, empty, or holds NaN/inf samples.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, block_s: float = BLOCK_S, sample_rate: int = SAMPLE_RATE
    ) -> None:
        self.path = Path(path)
        self.block_s, self.sample_rate = block_s, sample_rate
        self.samples = 0
        if not self.path.is_file():
            what = "a folder, not an audio file" if self.path.is_dir() else "file not found"
            raise BadAudioError(f"{self.path}: {what}")
        if self.path.stat().st_size == 0:
            raise BadAudioError(f"{self.path}: empty file")

    @property
    def seconds(self) -> float:
        """Seconds delivered so far (the whole file once iterated)."""
        return self.samples / self.sample_rate

    def _decoded(self) -> Iterator[tuple[np.ndarray, int]]:
        try:
            with sf.SoundFile(str(self.path)) as handle:
                rate = int(handle.samplerate)
                frames = max(1, int(self.block_s * rate))
                for block in handle.blocks(blocksize=frames, dtype="float32", always_2d=True):
                    yield block, rate
        except _DECODE_ERRORS as exc:
            raise BadAudioError(f"{self.path}: cannot decode audio ({exc}); use WAV, FLAC, OGG or MP3") from exc

    def __iter__(self) -> Iterator[np.ndarray]:
        self.samples = 0
        resampler: soxr.ResampleStream | None = None
        rate = self.sample_rate
        for block, rate in self._decoded():
            mono = block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0]
            if not np.all(np.isfinite(mono)):
                raise BadAudioError(f"{self.path}: holds NaN or infinite samples")
            if rate != self.sample_rate:
                resampler = resampler or soxr.ResampleStream(rate, self.sample_rate, 1, "float32", quality="VHQ")
                mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=False)
            yield from self._emit(mono)
        if resampler is not None:
            yield from self._emit(resampler.resample_chunk(np.zeros(0, dtype=np.float32), last=True))
        if self.samples == 0:
            raise BadAudioError(f"{self.path}: no samples")
        warn_if_cut_off(self.path, self.seconds)

    def _emit(self, samples: np.ndarray) -> Iterator[np.ndarray]:
        if samples.size:
            self.samples += int(samples.size)
            yield np.asarray(samples, dtype=np.float32)
