"""``wb negatives --real DIR``: chunk long real audio into 1-3 s negative clips.

Silent stretches (frames below ``silence_dbfs``) are skipped; each non-silent
region is covered by chunks of ``max_s`` seconds stepping ``hop_s`` with the
last chunk aligned to the region's end, so the chunks cover every non-silent
sample. Every chunk of a source file shares its group (the file's relative
path), so overlapping chunks never straddle the train/validation split. The
output is a reusable cache: a finished source file is recorded with its content
hash and the settings' fingerprint, and skipped when run again.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.atomic import atomic_write_json, read_json, writer_lock
from wakebuilder.audio import AUDIO_EXTENSIONS, frame_levels_db, load_audio, quantize_pcm16, write_wav
from wakebuilder.config import StageConfig
from wakebuilder.devices import cpu_threads
from wakebuilder.errors import BadAudioError, ConfigError, StoreMismatchError
from wakebuilder.fingerprint import audio_id, file_sha256, fingerprint
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, write_manifest

log = logging.getLogger(__name__)

FRAME_S = 0.02
# The chunking's version, in its cache's fingerprint and in the identity of the windows the recipe keeps: bump it
# when a release cuts other chunks for the same settings (``stage_version``).
VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class ChunkConfig(StageConfig):
    """Chunk lengths and the silence rule."""

    min_s: float = 1.0
    max_s: float = 3.0
    hop_s: float = 3.0
    silence_dbfs: float = -50.0
    min_gap_s: float = 0.5

    def check(self) -> None:
        """Raises ConfigError unless 0 < min_s <= max_s and hop_s > 0."""
        if not 0 < self.min_s <= self.max_s or self.hop_s <= 0:
            raise ConfigError("--min-s, --max-s and --hop-s: need 0 < min_s <= max_s and hop_s > 0")


def voiced_regions(samples: np.ndarray, config: ChunkConfig) -> list[tuple[int, int]]:
    """Sample ranges of non-silent audio; gaps shorter than ``min_gap_s`` are bridged."""
    frame = int(FRAME_S * SAMPLE_RATE)
    level = frame_levels_db(samples, frame)
    if level.size == 0:
        return []
    loud = np.flatnonzero(level > config.silence_dbfs)
    regions: list[list[int]] = []
    for index in loud:
        start, stop = index * frame, (index + 1) * frame
        if regions and start - regions[-1][1] <= config.min_gap_s * SAMPLE_RATE:
            regions[-1][1] = stop
        else:
            regions.append([start, stop])
    return [(a, b) for a, b in regions]


def chunk_bounds(regions: list[tuple[int, int]], total: int, config: ChunkConfig) -> list[tuple[int, int]]:
    """Chunks covering every region, each between ``min_s`` and ``max_s`` long (within the file)."""
    size, hop, minimum = (int(x * SAMPLE_RATE) for x in (config.max_s, config.hop_s, config.min_s))
    out = []
    for start, stop in regions:
        if stop - start <= size:
            grow = max(minimum - (stop - start), 0)
            a = max(0, start - grow // 2)
            out.append((a, min(total, max(stop, a + minimum))))
            continue
        begin = start
        while begin + size < stop:
            out.append((begin, begin + size))
            begin += hop
        out.append((stop - size, stop))
    return out


def _chunk_file(source: Path, root: Path, out: Path, config: ChunkConfig) -> list[ClipRecord]:
    samples = load_audio(source)
    group = source.relative_to(root).as_posix()
    records = []
    for start, stop in chunk_bounds(voiced_regions(samples, config), samples.size, config):
        piece = samples[start:stop]
        clip_id = audio_id(quantize_pcm16(piece))
        write_wav(out / "clips" / f"{clip_id}.wav", piece)
        records.append(ClipRecord(
            id=clip_id, path=f"clips/{clip_id}.wav", label=0, kind="real_negative", group=group,
            duration_s=round(piece.size / SAMPLE_RATE, 4), source=str(source),
            params={"start_s": start / SAMPLE_RATE, "end_s": stop / SAMPLE_RATE},
        ))
    return records


def chunk_real_audio(
    source_dir: str | os.PathLike[str], *, out_dir: str | os.PathLike[str], config: ChunkConfig, overwrite: bool = False
) -> Path:
    """Chunk every audio file under ``source_dir`` into ``out_dir``; returns the manifest path."""
    config.check()
    root, out = Path(source_dir), Path(out_dir)
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder of audio files")
    inside = out.resolve()  # an --out inside source_dir: its own chunks are no sources (they would grow each run)
    sources = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS
                     and not p.resolve().is_relative_to(inside))
    if not sources:
        raise ConfigError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)})")
    key = fingerprint("real-chunks", VERSION, config.to_dict())
    with writer_lock(out):
        names = {source.relative_to(root).as_posix(): source for source in sources}
        # entries of files no longer under source_dir (removed, or chunked from another folder) are dropped
        done = {name: entry for name, entry in _open_cache(out, config, overwrite).items() if name in names}
        todo = []
        for name, source in names.items():
            digest = file_sha256(str(source))
            if done.get(name, {}).get("sha256") != digest:
                todo.append((name, digest, source))

        def chunk(item: tuple[str, str, Path]) -> dict[str, Any]:
            name, digest, source = item
            try:
                return {"sha256": digest, "rows": [r.to_dict() for r in _chunk_file(source, root, out, config)]}
            except BadAudioError as exc:
                return {"sha256": digest, "rows": [], "error": str(exc)}

        # files decode, resample and write at once on every core (libsndfile and soxr release the GIL)
        with ThreadPoolExecutor(cpu_threads(), thread_name_prefix="wb-chunk") as pool:
            for (name, _, _), entry in zip(todo, pool.map(chunk, todo)):
                done[name] = entry
                atomic_write_json(out / "chunks_done.json", {"fingerprint": key, "files": done})
        rows = list({row["id"]: ClipRecord.from_dict(row) for name in sorted(done) for row in done[name]["rows"]}.values())
        atomic_write_json(out / "chunks_done.json", {"fingerprint": key, "files": done})
        failed = sorted(name for name in done if "error" in done[name])
        if failed and not rows:
            raise BadAudioError(f"{root}: none of its {len(failed)} audio file(s) could be read (first: "
                                f"{done[failed[0]]['error']}); pass a folder of decodable audio")
        if failed:
            log.warning("%s: %d of %d audio file(s) could not be read and were skipped (first: %s); the reasons "
                        "are in %s", root, len(failed), len(done), done[failed[0]]["error"], out / "chunks_done.json")
        return write_manifest(out / MANIFEST_NAME, rows)


def _open_cache(out: Path, config: ChunkConfig, overwrite: bool) -> dict[str, dict]:
    """The files ``out`` chunked with ``config`` by this version; none when it chunked with other settings or by an
    older version (with ``overwrite``: it is chunked again)."""
    marker = out / "chunks_done.json"
    if not marker.exists():
        return {}
    cache = read_json(marker)
    if cache.get("fingerprint") != fingerprint("real-chunks", VERSION, config.to_dict()):
        older = cache.get("fingerprint") in {fingerprint("real-chunks", v, config.to_dict()) for v in range(1, VERSION)}
        if not overwrite:
            why = "by an older version of real-chunks" if older else "with other settings"
            raise StoreMismatchError(f"{out}: chunked {why}; use another --out or --overwrite")
        if older:
            log.info("%s: made by an older version of real-chunks, made again", out)
        marker.unlink()
        return {}
    return dict(cache["files"])


__all__ = ["ChunkConfig", "chunk_bounds", "chunk_real_audio", "voiced_regions"]
