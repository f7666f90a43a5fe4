"""``wb embed``: one backbone pass over manifests into an embedding store.

Decoding and resampling run in a background thread pool (libsndfile and soxr
release the GIL) with bounded prefetch, so the model never waits and memory
does not grow with the number of clips; a writer thread appends finished
batches to the store, which makes each batch durable. Clips already in the
store are skipped, so a killed run resumes and adding clips embeds only them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import queue
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import atomic_write_text
from wakebuilder.audio import fit_to_window, load_audio
from wakebuilder.backbones import Backbone, load_backbone
from wakebuilder.config import StageConfig
from wakebuilder.errors import BadAudioError, ManifestError, StoreError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, read_manifest, resolve_clip_path
from wakebuilder.store import StoreSpec, open_store, rejects_path

log = logging.getLogger(__name__)
MAX_WINDOW_S = 3.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmbedConfig(StageConfig):
    """What the store's embeddings depend on: the backbone and its window."""

    backbone: str = "ast"
    window_s: float | None = None
    dtype: str = "auto"


@dataclasses.dataclass
class _Clip:
    record: ClipRecord
    samples: np.ndarray | None = None
    reason: str = ""
    cropped: bool = False
    where: str = ""


def collect_clips(manifests: Sequence[str | os.PathLike[str]]) -> list[tuple[Path, ClipRecord]]:
    """Every clip of the manifests, once per id, in manifest order."""
    seen: set[str] = set()
    clips = []
    for manifest in manifests:
        for record in read_manifest(manifest):
            if record.id not in seen:
                seen.add(record.id)
                clips.append((Path(manifest), record))
    if not clips:
        raise ManifestError(f"{', '.join(map(str, manifests))}: no clips to embed")
    return clips


def choose_window(native_s: float, durations: Sequence[float]) -> float | None:
    """None keeps the backbone's window; longer clips widen it (10 ms steps, at most 3.0 s)."""
    longest = max(durations, default=0.0)
    if longest <= native_s + 1e-6:
        return None
    return min(MAX_WINDOW_S, math.ceil(longest * 100 - 1e-6) / 100)


def window_durations(records: Sequence[ClipRecord]) -> list[float]:
    """The durations the window must fit: the wake-word clips' (label 1) when there are any.

    A positive cut short loses the phrase; a long negative cropped to the window
    is still a fair negative (detection sees such windows of long audio too).
    """
    positives = [r.duration_s for r in records if r.label == 1]
    return positives or [r.duration_s for r in records]


def load_for_store(config: EmbedConfig, durations: Sequence[float], device: str) -> Backbone:
    """Load the backbone with the configured window, or one that fits the wake-word clips."""
    backbone = load_backbone(config.backbone, window_s=config.window_s, device=device, dtype=config.dtype)
    if config.window_s is None:
        wider = choose_window(backbone.window_samples / backbone.sample_rate, durations)
        if wider is not None:
            log.info("wake-word clips last up to %.2f s: widening the %s window to %.2f s",
                     max(durations), backbone.name, wider)
            backbone = load_backbone(config.backbone, window_s=wider, device=device, dtype=config.dtype)
    return backbone


def _decode(manifest: Path, record: ClipRecord, window: int) -> _Clip:
    clip = _Clip(record=record)
    try:
        path = resolve_clip_path(manifest, record)
        clip.where = str(path)
        samples = load_audio(path)
    except (BadAudioError, ManifestError) as exc:
        clip.reason = str(exc)
        return clip
    if audio_id(samples) != record.id:
        clip.reason = f"{clip.where}: audio changed since the manifest was written (content hash differs from id)"
        return clip
    clip.cropped = samples.shape[0] > window
    clip.samples = fit_to_window(samples, window)
    return clip


def _decoded(clips: list[tuple[Path, ClipRecord]], window: int, workers: int, prefetch: int) -> Iterator[_Clip]:
    """Decode in a pool, in order, with at most ``prefetch`` clips in flight."""
    with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="wb-decode") as pool:
        pending: deque[Future[_Clip]] = deque()
        for manifest, record in clips:
            pending.append(pool.submit(_decode, manifest, record, window))
            if len(pending) >= prefetch:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _Writer(threading.Thread):
    """Appends batches to the store off the model's thread; re-raises its error on ``finish``."""

    def __init__(self, store: Any) -> None:
        super().__init__(name="wb-store-writer", daemon=True)
        self.store = store
        self.queue: queue.Queue[tuple[list[ClipRecord], np.ndarray, np.ndarray] | None] = queue.Queue(maxsize=2)
        self.error: BaseException | None = None

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is None:
                try:
                    self.store.append(*item)
                except BaseException as exc:  # handed to the main thread in finish()
                    self.error = exc

    def put(self, item: tuple[list[ClipRecord], np.ndarray, np.ndarray]) -> None:
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def finish(self) -> None:
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error


def embed_manifests(
    manifests: Sequence[str | os.PathLike[str]],
    *,
    store_path: str | os.PathLike[str],
    config: EmbedConfig,
    device: str = "auto",
    batch_size: int = 16,
    workers: int = 2,
    overwrite: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Embed every clip of ``manifests`` not yet in the store; returns a summary."""
    from tqdm import tqdm

    if batch_size < 1:
        raise StoreError(f"--batch-size {batch_size}: must be at least 1")
    clips = collect_clips(manifests)
    backbone = load_for_store(config, window_durations([r for _, r in clips]), device)
    spec = StoreSpec(backbone=backbone.identity, seq_len=backbone.seq_len, dim=backbone.dim)
    started = time.perf_counter()
    rejects: list[dict[str, str]] = []
    embedded = cropped = 0
    with open_store(store_path, "a", spec=spec, overwrite=overwrite) as store:
        stored = store.ids()
        todo = [(m, r) for m, r in clips if r.id not in stored]
        writer = _Writer(store)
        writer.start()
        batch: list[_Clip] = []
        bar = tqdm(total=len(todo), desc="embed", unit="clip", disable=not progress, file=None)
        try:
            for clip in _decoded(todo, backbone.window_samples, workers, prefetch=4 * batch_size):
                if clip.samples is None:
                    rejects.append({"id": clip.record.id, "path": clip.where or clip.record.path, "reason": clip.reason})
                    bar.update(1)
                    continue
                cropped += clip.cropped
                batch.append(clip)
                if len(batch) == batch_size:
                    embedded += _embed_batch(backbone, batch, writer)
                    bar.update(len(batch))
                    batch = []
            if batch:
                embedded += _embed_batch(backbone, batch, writer)
                bar.update(len(batch))
        finally:
            bar.close()
            writer.finish()
        total = len(store)
    _write_rejects(store_path, rejects)
    if cropped:
        log.warning("%d clip(s) longer than the %.2f s window were cropped to its centre",
                    cropped, backbone.window_samples / backbone.sample_rate)
    elapsed = time.perf_counter() - started
    return {
        "store": str(store_path), "clips_in_store": total, "embedded": embedded,
        "skipped_existing": len(clips) - len(todo), "rejected": len(rejects), "cropped": cropped,
        "seconds": round(elapsed, 3), "clips_per_s": round(embedded / elapsed, 2) if elapsed > 0 else None,
        "backbone": backbone.identity, "rejects_file": str(rejects_path(store_path)) if rejects else None,
    }


def _embed_batch(backbone: Backbone, batch: list[_Clip], writer: _Writer) -> int:
    waveforms = np.stack([c.samples for c in batch])  # type: ignore[misc]
    pooled, sequence = backbone.embed(waveforms)
    writer.put(([c.record for c in batch], pooled, sequence))
    return len(batch)


def _write_rejects(store_path: str | os.PathLike[str], rejects: list[dict[str, str]]) -> None:
    target = rejects_path(store_path)
    if rejects:
        atomic_write_text(target, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
        log.warning("%d clip(s) skipped; reasons in %s", len(rejects), target)
    elif target.exists():
        target.unlink()
