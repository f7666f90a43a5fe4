"""``wb embed``: one backbone pass over manifests into an embedding store.

Clips already in the store are skipped, so a killed run resumes and adding clips
to a large store embeds only them. Decoding runs in a background pool with
bounded prefetch and store writes in a writer thread (see ``wakebuilder.loader``);
each batch is durable once appended. Clips that cannot be used are listed with
their reason in ``<store>.rejects.jsonl`` and counted, never a crash.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import atomic_write_text
from wakebuilder.backbones import Backbone, is_onnx, load_backbone
from wakebuilder.errors import BadAudioError, ConfigError, ManifestError
from wakebuilder.loader import DecodedClip, StoreWriter, decoded_clips
from wakebuilder.manifest import ClipRecord, read_manifest
from wakebuilder.embed_settings import EmbedConfig, choose_window, window_durations, with_store_dtype
from wakebuilder.store import StoreSpec, open_store, rejects_path

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmbedSummary:
    """What one ``embed_manifests`` run did, and the store it left."""

    store: str
    clips_in_store: int
    embedded: int
    skipped_existing: int
    rejected: int
    cropped: int
    silent: int
    seconds: float
    clips_per_s: float | None
    backbone: dict[str, Any]
    rejects_file: str | None
    compute_dtype: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``wb embed --json``)."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class _Tally:
    embedded: int = 0
    cropped: int = 0
    silent: int = 0
    rejects: list[dict[str, str]] = dataclasses.field(default_factory=list)


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


def refuse_all_rejected(
    manifests: Sequence[str | os.PathLike[str]], clips: int, rejected: int, rejects_file: str | os.PathLike[str]
) -> None:
    """Raise when every one of the manifests' ``clips`` was rejected: the store gained nothing from them.

    Raises:
        BadAudioError: naming the manifests and the rejects file with each clip's reason.
    """
    if clips and rejected == clips:
        raise BadAudioError(
            f"{', '.join(map(str, manifests))}: none of the {clips} clip(s) could be embedded (reasons in "
            f"{rejects_file}); fix the audio or the manifest and run wb embed again"
        )


def store_spec(backbone: Backbone) -> StoreSpec:
    """The store spec of what ``backbone`` writes, with its compute precision (AST's ``dtype``)."""
    return StoreSpec(backbone=backbone.identity, seq_len=backbone.seq_len, dim=backbone.dim,
                     compute_dtype=getattr(backbone, "dtype", None))


def ast_window(config: EmbedConfig, durations: Sequence[float]) -> float | None:
    """The window ``wb embed`` loads an AST at: ``config.window_s``, else the checkpoint's own (None), widened for
    clips of ``durations`` longer than it (``choose_window``); read from the checkpoint's config, not its weights."""
    from wakebuilder.backbones import check_spec
    from wakebuilder.backbones.ast import native_window_s

    if config.window_s is not None:
        return config.window_s
    check_spec(config.backbone)
    return choose_window(native_window_s(config.backbone), durations)


def load_for_store(
    config: EmbedConfig, durations: Sequence[float], device: str, *, threads: int = 0
) -> Backbone:
    """Load the backbone with the configured window, or (AST) one that fits the wake-word clips (``ast_window``).

    The speech-embedding model keeps its 1.5 s window unless ``window_s`` is set;
    ``threads`` sets its onnxruntime calls at once (0: one per core).
    """
    if is_onnx(config.backbone):
        return load_backbone(config.backbone, window_s=config.window_s, threads=threads)
    window_s = ast_window(config, durations)
    if window_s != config.window_s:
        log.info("wake-word clips last up to %.2f s: widening the ast window to %.2f s", max(durations), window_s)
    return load_backbone(config.backbone, window_s=window_s, device=device, dtype=config.dtype)


def embed_manifests(
    manifests: Sequence[str | os.PathLike[str]],
    *,
    store_path: str | os.PathLike[str],
    config: EmbedConfig,
    device: str = "auto",
    batch_size: int = 16,
    workers: int = 2,
    threads: int = 0,
    overwrite: bool = False,
    progress: bool = True,
) -> EmbedSummary:
    """Embed every clip of ``manifests`` not yet in the store; returns a summary.

    Raises:
        BadAudioError: every clip of the manifests was rejected (reasons in ``<store>.rejects.jsonl``).
        StoreMismatchError: the store holds another backbone or window, or was computed at another precision
            than an explicit ``config.dtype`` (pass ``overwrite``).
        LockedError: another process is writing the store.
    """
    if batch_size < 1 or workers < 1:
        raise ConfigError(f"--batch-size {batch_size} / --workers {workers}: both must be at least 1")
    clips = collect_clips(manifests)
    config = with_store_dtype(config, store_path, device, overwrite=overwrite)
    backbone = load_for_store(config, window_durations([r for _, r in clips]), device, threads=threads)
    spec = store_spec(backbone)
    started = time.perf_counter()
    tally = _Tally()
    with open_store(store_path, "a", spec=spec, overwrite=overwrite) as store:
        stored = store.ids()
        todo = [(m, r) for m, r in clips if r.id not in stored]
        try:
            _embed_all(backbone, todo, store, tally, batch_size=batch_size, workers=workers,
                       progress=progress)
        finally:
            _write_rejects(store_path, tally.rejects)
        total = len(store)
    refuse_all_rejected(manifests, len(clips), len(tally.rejects), rejects_path(store_path))
    warn_cropped_silent(tally.cropped, tally.silent, backbone)
    elapsed = time.perf_counter() - started
    return EmbedSummary(
        store=str(store_path), clips_in_store=total, embedded=tally.embedded,
        skipped_existing=len(clips) - len(todo), rejected=len(tally.rejects), cropped=tally.cropped,
        silent=tally.silent, seconds=round(elapsed, 3),
        clips_per_s=round(tally.embedded / elapsed, 2) if elapsed > 0 else None,
        backbone=backbone.identity,
        rejects_file=str(rejects_path(store_path)) if tally.rejects else None, compute_dtype=spec.compute_dtype,
    )


def warn_cropped_silent(cropped: int, silent: int, backbone: Backbone) -> None:
    """Log how many clips were cropped to the window and how many are silent."""
    if cropped:
        log.warning("%d clip(s) longer than the %.2f s window were cropped to its centre",
                    cropped, backbone.window_samples / backbone.sample_rate)
    if silent:
        log.warning("%d clip(s) are silent (peak below -80 dBFS); embedded anyway", silent)


def _embed_all(
    backbone: Backbone, todo: list[tuple[Path, ClipRecord]], store: Any, tally: _Tally, *,
    batch_size: int, workers: int, progress: bool,
) -> None:
    """Decode, batch, embed and hand batches to the writer thread, counting into ``tally``.

    A backbone that makes several calls at once (speech-embedding's ``parallel_calls``) gets that many
    ``batch_size`` batches in one.
    """
    from tqdm import tqdm

    batch_size *= getattr(backbone, "parallel_calls", 1)
    writer = StoreWriter(store)
    writer.start()
    batch: list[DecodedClip] = []
    with tqdm(total=len(todo), desc="embed", unit="clip", disable=not progress) as bar:
        try:
            clips = decoded_clips(todo, backbone.window_samples, workers=workers, prefetch=4 * batch_size)
            for clip in clips:
                if clip.samples is None:
                    tally.rejects.append(clip.reject())
                    bar.update(1)
                    continue
                tally.cropped += clip.cropped
                tally.silent += clip.silent
                batch.append(clip)
                if len(batch) == batch_size:
                    tally.embedded += _embed_batch(backbone, batch, writer)
                    bar.update(len(batch))
                    batch = []
            if batch:
                tally.embedded += _embed_batch(backbone, batch, writer)
                bar.update(len(batch))
        finally:
            writer.finish()


def _embed_batch(backbone: Backbone, batch: list[DecodedClip], writer: StoreWriter) -> int:
    waveforms = np.stack([clip.samples for clip in batch])  # type: ignore[misc]
    pooled, sequence = backbone.embed(waveforms)
    writer.put(([clip.record for clip in batch], pooled, sequence))
    return len(batch)


def _write_rejects(store_path: str | os.PathLike[str], rejects: list[dict[str, str]]) -> None:
    """Rewrite ``<store>.rejects.jsonl`` with this run's rejects (removed when there are none)."""
    target = rejects_path(store_path)
    if rejects:
        atomic_write_text(target, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects))
        log.warning("%d clip(s) skipped; reasons in %s", len(rejects), target)
    elif target.exists():
        target.unlink()
