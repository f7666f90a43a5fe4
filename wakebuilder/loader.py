"""The plumbing of ``wb embed``: pooled decoding with bounded prefetch and a store writer thread.

Decoding and resampling run in a thread pool (libsndfile and soxr release the
GIL) that keeps at most ``prefetch`` decoded clips in flight, so the model never
waits for audio and memory does not grow with the number of clips. A writer
thread appends finished batches to the store, so the model never waits for the
disk either; each append is durable on return.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.audio import fit_to_window, load_audio
from wakebuilder.errors import BadAudioError, ManifestError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, resolve_clip_path

SILENCE_PEAK = 1e-4
"""Clips whose absolute peak stays below this (about -80 dBFS) count as silent."""

Batch = tuple[list[ClipRecord], np.ndarray, np.ndarray]


@dataclasses.dataclass
class DecodedClip:
    """One clip after decoding: its window of samples, or the reason it was rejected."""

    record: ClipRecord
    samples: np.ndarray | None = None
    reason: str = ""
    cropped: bool = False
    silent: bool = False
    where: str = ""

    def reject(self) -> dict[str, str]:
        """The clip's line in the rejects report."""
        return {"id": self.record.id, "path": self.where or self.record.path, "reason": self.reason}


def decode_clip(manifest: Path, record: ClipRecord, window: int) -> DecodedClip:
    """Decode one clip, check its content hash against its id and fit it to ``window`` samples."""
    clip = DecodedClip(record=record)
    try:
        path = resolve_clip_path(manifest, record)
        clip.where = str(path)
        samples = load_audio(path)
    except (BadAudioError, ManifestError) as exc:
        clip.reason = str(exc)
        return clip
    if audio_id(samples) != record.id:
        clip.reason = (f"{clip.where}: audio changed since the manifest was written "
                       "(content hash differs from id); rebuild the manifest")
        return clip
    clip.cropped = samples.shape[0] > window
    clip.silent = float(np.max(np.abs(samples))) < SILENCE_PEAK
    clip.samples = fit_to_window(samples, window)
    return clip


def decoded_clips(
    clips: Sequence[tuple[Path, ClipRecord]], window: int, *, workers: int, prefetch: int
) -> Iterator[DecodedClip]:
    """Decode ``clips`` in a pool, yielding them in order, with at most ``prefetch`` in flight."""
    with ThreadPoolExecutor(max_workers=max(workers, 1), thread_name_prefix="wb-decode") as pool:
        pending: deque[Future[DecodedClip]] = deque()
        try:
            for manifest, record in clips:
                pending.append(pool.submit(decode_clip, manifest, record, window))
                if len(pending) >= max(prefetch, 1):
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for future in pending:  # the consumer stopped early: drop what was not started
                future.cancel()


class StoreWriter(threading.Thread):
    """Appends batches to the store off the model's thread; hands its error back on ``put``/``finish``."""

    def __init__(self, store: Any, *, depth: int = 2) -> None:
        super().__init__(name="wb-store-writer", daemon=True)
        self.store = store
        self.queue: queue.Queue[Batch | None] = queue.Queue(maxsize=depth)
        self.error: BaseException | None = None
        self.rows = 0

    def run(self) -> None:
        while (item := self.queue.get()) is not None:
            if self.error is not None:
                continue  # drain: the main thread re-raises on its next put or finish
            try:
                self.store.append(*item)
                self.rows += len(item[0])
            except BaseException as exc:  # noqa: BLE001 - re-raised on the main thread
                self.error = exc

    def put(self, item: Batch) -> None:
        """Queue a batch (blocks while ``depth`` batches wait); raises the writer's error if any."""
        if self.error is not None:
            raise self.error
        self.queue.put(item)

    def finish(self) -> None:
        """Write what is queued, stop the thread and raise its error, if any."""
        self.queue.put(None)
        self.join()
        if self.error is not None:
            raise self.error
