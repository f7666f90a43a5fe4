"""The backbone's pass over a long negative stream, done once and kept in the cache.

Calibrating a threshold and measuring false accepts per hour score every window
of a stream (2.5 s every 0.1 s: 6,000 windows for 10 minutes). The backbone is
frozen, so the windows' embedding sequences depend only on the audio, the
backbone and the hop: ``stream_sequences`` runs the backbone once and keeps them
(float16, the stores' dtype) in ``<cache>/stream-embeddings/``, keyed by the
file's SHA-256, the backbone's identity and the hop. Every later head (another
phrase, another seed, a refit) is scored on them in a second. The frames are
those of ``streaming.frame_windows`` on the whole file. Beside each pass, ``<key>.streams.json`` records the streams
it was made or read for (their real paths) and their bytes' SHA-256 (``recorded_passes``), so ``wb bank reclaim``
can tell the passes of held-out streams it removed from those of any other stream.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import atomic_write_bytes, atomic_write_json, read_json, waiting_lock
from wakebuilder.audio_stream import AudioBlocks
from wakebuilder.bank.location import cache_dir
from wakebuilder.errors import WakebuilderError
from wakebuilder.fingerprint import file_sha256, fingerprint
from wakebuilder.streaming import WindowBuffer

log = logging.getLogger(__name__)
VERSION = 1
FOLDER = "stream-embeddings"
RECORD_SUFFIX = ".streams.json"  # <key>.streams.json: the streams a pass was made or read for, and their bytes' hash


@dataclasses.dataclass(frozen=True)
class CachedPass:
    """A pass in the cache: its files (the sequences, its record, what a killed write left), the SHA-256 of its
    stream's bytes and the real paths of the streams it served (both None: made before they were recorded)."""

    key: str
    files: tuple[Path, ...]
    sha256: str | None
    streams: tuple[str, ...] | None


def stream_key(path: str | os.PathLike[str], identity: dict[str, Any], hop: int, dtype: str | None = None) -> str:
    """The cache key of a stream's sequences: its bytes, the backbone, the hop in samples and, other than fp32,
    the compute dtype (an AST pass in bf16 on a GPU differs from fp32's by more than float16 rounding)."""
    return _key(file_sha256(str(path)), identity, hop, dtype)


def _key(sha256: str, identity: dict[str, Any], hop: int, dtype: str | None) -> str:
    settings: dict[str, Any] = {"backbone": identity, "hop": hop}
    if dtype not in (None, "fp32"):
        settings["dtype"] = dtype
    return fingerprint("stream-sequences", VERSION, settings, inputs=sha256)


def stream_sequences(
    path: str | os.PathLike[str], backbone: Any, *, hop: int, batch_size: int = 64,
    cache: str | os.PathLike[str] | None = None,
) -> np.ndarray:
    """Every window's embedding sequence of the stream at ``path``, ``(frames, T, D)`` float16.

    Read from the cache when there; otherwise one backbone pass, written there atomically (two processes
    wanting the same stream: the second waits for the first and reads its file). A cached file that cannot
    be read (truncated, damaged) is computed again and replaced. ``path`` is recorded beside it (``RECORD_SUFFIX``).
    """
    folder, sha256 = cache_dir(cache) / FOLDER, file_sha256(str(path))
    target = folder / f"{_key(sha256, backbone.identity, hop, getattr(backbone, 'dtype', None))}.npy"
    with waiting_lock(pass_lock(target), f"stream embeddings of {path}"):
        _record(target.with_suffix(RECORD_SUFFIX), path, sha256)  # before the pass: none is made unrecorded
        cached = _read_cached(target) if target.is_file() else None
        if cached is not None:
            log.info("stream embeddings of %s: from the cache (%s)", path, target)
            return cached
        sequences = _embed_stream(path, backbone, hop=hop, batch_size=batch_size)
        buffer = io.BytesIO()
        np.save(buffer, sequences, allow_pickle=False)
        atomic_write_bytes(target, buffer.getvalue())
        log.info("stream embeddings of %s: %d windows into %s", path, len(sequences), target)
    return sequences


def pass_lock(target: Path) -> Path:
    """The lock a pass's file ``target`` (or its record) is read, made and recorded under."""
    return target.with_name(target.name.split(".", 1)[0] + ".lock")


def read_record(record: Path) -> tuple[str, tuple[str, ...]] | None:
    """The SHA-256 and the streams ``record`` names; None when it is missing or not such a record (a kill cannot
    leave one half written: it is written whole)."""
    try:
        recorded = read_json(record)
    except WakebuilderError:
        return None
    streams = recorded.get("streams") if isinstance(recorded, dict) else None
    if not (isinstance(streams, list) and streams and all(isinstance(s, str) for s in streams)
            and isinstance(recorded.get("sha256"), str)):
        return None
    return recorded["sha256"], tuple(streams)


def recorded_passes(cache: str | os.PathLike[str] | None = None) -> list[CachedPass]:
    """Every pass in the cache (or the record of one whose write was cut off), with what its record says."""
    folder = cache_dir(cache) / FOLDER
    keys = sorted({p.name.split(".", 1)[0] for p in folder.glob("*") if p.name.endswith((".npy", RECORD_SUFFIX))})
    passes = []
    for key in keys:
        sha256, streams = read_record(folder / f"{key}{RECORD_SUFFIX}") or (None, None)
        passes.append(CachedPass(key, pass_files(folder, key), sha256, streams))
    return passes


def pass_files(folder: Path, key: str) -> tuple[Path, ...]:
    """The files of the pass ``key`` in the cache's ``folder``: its sequences, its record, what a killed write left."""
    files = [p for p in (folder / f"{key}.npy", folder / f"{key}{RECORD_SUFFIX}") if p.is_file()]
    return (*files, *sorted(folder.glob(f".{key}.*.tmp")))


def _record(record: Path, path: str | os.PathLike[str], sha256: str) -> None:
    """Add ``path``'s real path to ``record`` (made with ``sha256`` when missing or unreadable)."""
    stream = os.path.realpath(path)
    recorded = read_record(record) if record.is_file() else None
    streams = recorded[1] if recorded and recorded[0] == sha256 else ()
    if stream not in streams:
        atomic_write_json(record, {"sha256": sha256, "streams": sorted({*streams, stream})})


def _read_cached(target: Path) -> np.ndarray | None:
    """The sequences cached at ``target``, or None (with a warning naming it) when the file cannot be read."""
    try:
        sequences = np.load(target, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # numpy's errors for a truncated or damaged .npy
        log.warning("stream embeddings cache %s cannot be read (%s); computing it again", target, exc)
        return None
    if sequences.ndim != 3 or sequences.dtype != np.float16:
        log.warning("stream embeddings cache %s holds a %s array of shape %s, not (frames, T, D) float16; "
                    "computing it again", target, sequences.dtype, sequences.shape)
        return None
    return sequences


def _embed_stream(path: str | os.PathLike[str], backbone: Any, *, hop: int, batch_size: int) -> np.ndarray:
    windows = WindowBuffer(backbone.window_samples, hop)
    parts: list[np.ndarray] = []

    hopped = getattr(backbone, "embed_hopped", None)  # consecutive windows in one pass (speech-embedding)
    chunk = max(batch_size, 512) if hopped is not None else batch_size

    # the windows of blocks not embedded yet: the backbone gets whole chunks, not a block's 50 windows of 5 s at a
    # time (whose short last part of each call left a core waiting)
    rest = np.zeros((0, backbone.window_samples), dtype=np.float32)

    def embed(batch: np.ndarray, *, last: bool = False) -> None:
        nonlocal rest
        held = np.concatenate([rest, batch]) if rest.shape[0] else batch
        whole = held.shape[0] if last else held.shape[0] - held.shape[0] % chunk
        for start in range(0, whole, chunk):
            part = np.ascontiguousarray(held[start : start + chunk])
            sequence = hopped(part, hop) if hopped is not None else backbone.embed(part)[1]
            parts.append(np.asarray(sequence).astype(np.float16))
        rest = held[whole:]

    for block in AudioBlocks(path):  # a block at a time: memory holds the sequences, not the audio
        embed(windows.push(block))
    embed(windows.flush(), last=True)
    if not parts:
        return np.zeros((0, backbone.seq_len, backbone.dim), dtype=np.float16)
    return np.concatenate(parts)

