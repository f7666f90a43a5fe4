"""Continuous negative audio for false-accepts-per-hour, built from negative clips.

False accepts per hour are measured on long continuous audio. Where the user
has none (an offline quickstart), this joins held-out negative clips (speech,
sound-alike phrases, real-audio chunks) with random pauses over a low noise
floor into one long WAV, so the streaming detector sees word boundaries,
silence and onsets as it would in a room. Beside the WAV, ``NAME.segments.json``
lists where each clip starts, its category (speech, music, noise), id, text and where its
audio ends, so ``wb eval`` can count the stream's false accepts per category, and a
stream shared by many wake words leaves out, for each, the clips that say it (and
the windows that hear them, not the pause after them).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.atomic import atomic_write_bytes, atomic_write_json, refuse_existing
from wakebuilder.audio import load_audio, wav_bytes
from wakebuilder.categories import record_category, segments_path
from wakebuilder.config import StageConfig
from wakebuilder.errors import ConfigError, ManifestError
from wakebuilder.manifest import ClipRecord, read_manifest, resolve_clip_path

# The stream's version, in the identity of the training windows the recipe keeps: bump it when a release joins
# the same clips into another stream for the same settings (``stage_version``).
VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class StreamConfig(StageConfig):
    """How negative clips are joined into a stream."""

    duration_s: float = 600.0
    gap_min_s: float = 0.2
    gap_max_s: float = 1.5
    noise_dbfs: float = -60.0
    seed: int = 0


def _negative_clips(manifests: list[str]) -> list[tuple[str, ClipRecord]]:
    clips = [(m, r) for m in manifests for r in read_manifest(m) if r.label == 0]
    if not clips:
        raise ManifestError(f"{', '.join(manifests)}: no negative (label 0) clips to build a stream from")
    return clips


def build_negative_stream(
    manifests: list[str], *, out_path: str | os.PathLike[str], config: StreamConfig, overwrite: bool = False
) -> Path:
    """Write a WAV of about ``config.duration_s`` seconds made of the manifests' negative clips.

    Clips are drawn without replacement (cycling when the stream outlasts them)
    in an order fixed by ``config.seed``; each is followed by a pause drawn from
    ``[gap_min_s, gap_max_s]``. A faint white-noise floor at ``noise_dbfs`` RMS
    keeps the stream from being digital silence between clips.
    """
    if config.duration_s <= 0 or config.gap_min_s < 0 or config.gap_max_s < config.gap_min_s:
        raise ConfigError("stream: need duration_s > 0 and 0 <= gap_min_s <= gap_max_s")
    if Path(out_path).suffix.lower() != ".wav":
        raise ConfigError(f"--out {out_path}: the stream is written as WAV; name it NAME.wav")
    refuse_existing(out_path, overwrite=overwrite)
    clips = _negative_clips(manifests)
    rng = np.random.default_rng(config.seed)
    total = int(config.duration_s * SAMPLE_RATE)
    out = np.zeros(total, dtype=np.float32)
    position, order = 0, rng.permutation(len(clips))
    step, segments = 0, []
    while position < total:
        manifest, record = clips[order[step % len(order)]]
        samples = load_audio(resolve_clip_path(manifest, record))  # never empty: the stream always advances
        end = min(total, position + samples.shape[0])
        out[position:end] = samples[: end - position]
        # to the sample: n / 16000 s has at most 7 decimals (4 put a start up to a sample off)
        segments.append([round(position / SAMPLE_RATE, 7), record_category(record), record.id, record.text or "",
                         round(end / SAMPLE_RATE, 7)])
        position = end + int(rng.uniform(config.gap_min_s, config.gap_max_s) * SAMPLE_RATE)
        step += 1
    noise_rms = 10 ** (config.noise_dbfs / 20)
    out += (noise_rms * rng.standard_normal(total)).astype(np.float32)
    # each clip's segment runs from its start to the next clip's (the pause after it included); its audio to its end
    # the sidecar names the WAV's bytes: a rebuild cut off between the two files leaves a pair that refuses to
    # be read (StreamSegments.read), never one stream's segments counting another's false accepts
    data = wav_bytes(out)
    atomic_write_json(segments_path(out_path), {"duration_s": total / SAMPLE_RATE, "segments": segments,
                                                "wav_sha256": hashlib.sha256(data).hexdigest()})
    return atomic_write_bytes(out_path, data)
