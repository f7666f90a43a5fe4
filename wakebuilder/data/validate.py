"""``wb validate``: check the user's recordings and convert them to 16 kHz mono WAV.

A recording passes when it decodes, lasts 0.5 to 3.0 s, holds enough voiced
frames (frame energy well above the recording's own noise floor) and is not
heavily clipped. Each rejected file gets its reason and the fix. One stored
below 16 kHz passes with a warning: upsampled, it still has nothing above half
its rate, unlike the synthesized positives.

Clipping is counted in the file as stored, channel by channel: resampling
rounds off the flat tops (1.5% clipped at 48 kHz reads as 0.9% at 16 kHz) and
mixing to mono halves a channel's (``data.clipping`` says which samples count
as clipped). A multi-channel file whose mono mix is far quieter than its louder
channel has a channel inverted; it is rejected with that reason rather than
rescued from one channel, because the same wiring would feed ``wb detect`` the
same near-silence.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from wakebuilder import SAMPLE_RATE
from wakebuilder.atomic import atomic_write_json, writer_lock
from wakebuilder.audio import frame_levels_db, quantize_pcm16, read_audio, resample, rms_dbfs, write_wav
from wakebuilder.config import StageConfig
from wakebuilder.data.clipping import clipped_fraction, stored_scale
from wakebuilder.errors import ArtifactExistsError, BadAudioError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, read_manifest, write_manifest

log = logging.getLogger(__name__)
# Channels that cancel: their mono mix this far below the louder one. Two unrelated channels mix 3 dB down,
# one silent channel 6 dB; only an inverted copy (L = -R, give or take a little) comes near 20.
CANCEL_DB = 20.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class ValidateConfig(StageConfig):
    """Acceptance rules for recordings."""

    min_s: float = 0.5
    max_s: float = 3.0
    min_level_dbfs: float = -50.0
    min_voiced_s: float = 0.15
    max_clipped_fraction: float = 0.01
    speaker: str | None = None
    text: str = ""


def voiced_seconds(samples: np.ndarray, *, frame_s: float = 0.02) -> float:
    """Seconds of frames at least 15 dB above the quietest tenth of frames and above -50 dBFS."""
    energy = frame_levels_db(samples, int(frame_s * SAMPLE_RATE))
    if energy.size == 0:
        return 0.0
    floor = np.percentile(energy, 10)
    return float(np.sum((energy > floor + 15) & (energy > -50)) * frame_s)


def check_recording(path: Path, config: ValidateConfig) -> tuple[np.ndarray | None, str]:
    """The converted samples, or None and the reason with its fix."""
    try:
        data, rate = read_audio(path)
    except BadAudioError as exc:
        return None, f"{exc}"
    samples = resample(data.mean(axis=1), rate)
    duration = samples.size / SAMPLE_RATE
    if duration < config.min_s:
        return None, f"{path}: {duration:.2f} s is shorter than {config.min_s} s; record the whole phrase"
    if duration > config.max_s:
        return None, f"{path}: {duration:.2f} s is longer than {config.max_s} s; trim it to the phrase"
    level = rms_dbfs(samples)
    loudest = max(rms_dbfs(channel) for channel in data.T)
    if loudest >= config.min_level_dbfs and level < loudest - CANCEL_DB:
        return None, (f"{path}: its channels cancel out when mixed to mono (one is inverted: the mix is "
                      f"{level:.1f} dBFS, the louder channel {loudest:.1f} dBFS); "
                      "record in mono or fix the wiring")
    if level < config.min_level_dbfs:
        return None, (f"{path}: silent or too quiet ({level:.1f} dBFS, below {config.min_level_dbfs:g}); "
                      "speak closer to the microphone")
    voiced = voiced_seconds(samples)
    if voiced < config.min_voiced_s:
        return None, (f"{path}: no speech found ({voiced:.2f} s rises 15 dB above the background, under "
                      f"{config.min_voiced_s:g} s); record the phrase in a quiet room, with a pause before it")
    step, full_scale, levels = stored_scale(path)
    clipped_per_channel = clipped_fraction(data, step, full_scale=full_scale, levels=levels)
    worst = int(np.argmax(clipped_per_channel))
    clipped = float(clipped_per_channel[worst])
    if clipped > config.max_clipped_fraction:
        where = f" in channel {worst + 1} of {data.shape[1]}" if data.shape[1] > 1 else ""
        return None, (f"{path}: {clipped:.1%} of samples{where} are clipped (over "
                      f"{config.max_clipped_fraction:.0%}); lower the input gain and record again")
    return samples, ""


def _stored_rate(path: Path) -> int:
    """The sample rate ``path`` is stored at; warns when it is below 16 kHz (kept, but upsampling adds no highs)."""
    rate = int(sf.info(str(path)).samplerate)
    if rate < SAMPLE_RATE:
        log.warning("%s: recorded at %d Hz, below %d Hz: it has nothing above %g kHz, unlike the synthesized "
                    "positives; kept, but record at %d Hz or more if you can", path, rate, SAMPLE_RATE,
                    rate / 2000, SAMPLE_RATE)
    return rate


def narrowband(manifest: Path, recordings: list[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """Of ``recordings``, those in ``manifest`` stored below 16 kHz: their path as given and sample rate."""
    given = {str(Path(raw).resolve()): str(raw) for raw in recordings}
    return [{"path": given[r.source], "sample_rate": r.params["source_sample_rate"]} for r in read_manifest(manifest)
            if r.source in given and r.params.get("source_sample_rate", SAMPLE_RATE) < SAMPLE_RATE]


def _refuse_foreign_rows(manifest: Path, kept: list[ClipRecord]) -> None:
    """Raise when ``manifest`` holds rows ``wb validate`` does not write (label-1 recordings)."""
    foreign = [r for r in kept if r.kind != "recording" or r.label != 1]
    if foreign:
        raise ArtifactExistsError(
            f"{manifest.parent}: holds {len(foreign)} clip(s) another command wrote "
            f"(first: kind {foreign[0].kind!r}, label {foreign[0].label}), not recordings; "
            "choose another --out for the recordings"
        )


@dataclasses.dataclass(frozen=True)
class Reject:
    """A recording that did not pass, and why (the reason names the fix)."""

    path: str
    reason: str


def validate_recordings(
    recordings: list[str | os.PathLike[str]], *, out_dir: str | os.PathLike[str], config: ValidateConfig,
    overwrite: bool = False,
) -> tuple[Path, list[Reject]]:
    """Convert passing recordings into ``out_dir``; returns the manifest and the rejects.

    An existing ``out_dir/manifest.jsonl`` is appended to (rows deduplicated by
    id, so adding recordings never loses earlier ones); ``overwrite`` starts it afresh.
    A manifest another command wrote (rows other than label-1 recordings) is refused
    before anything is written, so a wake-word clip never lands among negatives.

    Raises:
        LockedError: another run is writing ``out_dir`` (its rows would be lost when this one writes back).
    """
    with writer_lock(Path(out_dir) / MANIFEST_NAME):
        return _validate_into(recordings, out=Path(out_dir), config=config, overwrite=overwrite)


def _validate_into(recordings: list[str | os.PathLike[str]], *, out: Path, config: ValidateConfig,
                   overwrite: bool) -> tuple[Path, list[Reject]]:
    manifest = out / MANIFEST_NAME
    kept = read_manifest(manifest) if manifest.exists() and not overwrite else []
    _refuse_foreign_rows(manifest, kept)
    records: list[ClipRecord] = []
    rejects: list[Reject] = []
    for raw in recordings:
        path = Path(raw)
        samples, reason = check_recording(path, config)
        if samples is None:
            rejects.append(Reject(path=str(path), reason=reason))
            log.warning("rejected %s", reason)
            continue
        rate = _stored_rate(path)
        clip_id = audio_id(quantize_pcm16(samples))
        write_wav(out / "clips" / f"{clip_id}.wav", samples)
        records.append(ClipRecord(
            id=clip_id, path=f"clips/{clip_id}.wav", label=1, kind="recording",
            group=config.speaker or f"recording:{path.stem}", text=config.text,
            duration_s=round(samples.size / SAMPLE_RATE, 4), source=str(path.resolve()),
            params={"source_sample_rate": rate},
        ))
    atomic_write_json(out / "rejects.json", [dataclasses.asdict(r) for r in rejects])
    if not records:
        raise BadAudioError(
            f"none of the {len(recordings)} recording(s) passed (reasons in {out / 'rejects.json'}); "
            f"first: {rejects[0].reason if rejects else 'no input'}"
        )
    if kept:
        log.info("adding %d recording(s) to the %d in %s", len(records), len(kept), manifest)
    merged = list({r.id: r for r in [*kept, *records]}.values())
    return write_manifest(manifest, merged), rejects
