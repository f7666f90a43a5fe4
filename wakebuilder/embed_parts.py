"""The coordinator's side of a sharded ``wb embed``: shard the clips, run the shards, list the parts.

The clips not yet in the store are sharded by a hash of their id, so the same clips
always make the same shards (and name the same parts): a re-run resumes rather than
repeats. Each shard is one task of the executor (see ``wakebuilder.executors``) that
writes one part (see ``wakebuilder.embed_shards``); the coordinator holds the
store's lock, lists each part in the index as its task returns, and shows one
progress bar over all workers. A coordinator that died leaves parts unlisted; the
next run adopts them before it decides what is left to embed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Sequence
from concurrent.futures import Future, as_completed
from pathlib import Path

from wakebuilder.embed import (
    EmbedConfig, EmbedSummary, _write_rejects, collect_clips, embed_manifests, refuse_all_rejected, warn_cropped_silent,
)
from wakebuilder.embed_settings import window_durations, with_store_dtype, with_store_settings
from wakebuilder.embed_shards import ShardResult, ShardTask, backbone_spec, cached_backbone, run_shard
from wakebuilder.errors import ConfigError, WakebuilderError
from wakebuilder.executors import open_executor, parse_executor, worker_threads
from wakebuilder.manifest import ClipRecord
from wakebuilder.store import spec_fingerprint
from wakebuilder.store.opening import backend_class, store_location
from wakebuilder.store.parts import PartedStore, is_parted, part_location
from wakebuilder.store.parts_index import PartsIndex
from wakebuilder.store.remote import write_bytes

log = logging.getLogger(__name__)
SHARD_CLIPS = 256
"""Clips per task by default: small enough to balance workers, large enough that parts stay few."""


def shard_of(clip_id: str, shards: int) -> int:
    """The shard of a clip: a hash of its id, so it does not depend on manifest order."""
    return int(hashlib.sha256(clip_id.encode()).hexdigest()[:12], 16) % shards


def make_shards(clips: Sequence[tuple[Path, ClipRecord]], shard_clips: int) -> dict[str, list[tuple[str, ClipRecord]]]:
    """Part name -> its clips (manifest order kept inside a shard); names depend on the clip ids only."""
    shards = max(1, math.ceil(len(clips) / shard_clips))
    groups: dict[str, list[tuple[str, ClipRecord]]] = {}
    for manifest, record in clips:
        name = f"s{shards:06d}-{shard_of(record.id, shards):06d}"
        groups.setdefault(name, []).append((os.path.abspath(manifest), record))
    return dict(sorted(groups.items()))


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShardedRun:
    """How a sharded run goes (none of it changes the embeddings)."""

    executor: str = "local"
    shard_clips: int = SHARD_CLIPS
    device: str = "auto"
    batch_size: int = 16
    workers: int = 2
    threads: int = 0
    overwrite: bool = False
    progress: bool = True


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShardedSummary(EmbedSummary):
    """``EmbedSummary`` plus how the shards ran: executor, tasks, parts, resumed clips, workers."""

    executor: str
    tasks: int
    parts: int
    resumed: int
    workers_used: list[str]


def written_in_parts(store_path: str | os.PathLike[str]) -> bool:
    """A store at a URL, or a local store made of parts: both are written shard by shard."""
    where = store_location(store_path)
    return isinstance(where, str) or is_parted(where)


def embed_with_executor(
    manifests: Sequence[str | os.PathLike[str]], *, store_path: str | os.PathLike[str], config: EmbedConfig,
    run: ShardedRun, shard: bool = False,
) -> EmbedSummary:
    """``wb embed``: ``local`` into a single-part store is ``embed_manifests``; the rest runs in shards.

    ``shard`` asks for shards even with the local executor (``--shard-clips`` given). Without a window in
    ``config``, clips added to a store go in at the store's window, and without a precision at its precision
    (``with_store_settings``: the store opened once for both).
    """
    follows_window = config.window_s is None and not run.overwrite
    durations = window_durations([record for _, record in collect_clips(manifests)]) if follows_window else []
    config = with_store_settings(config, store_path, durations, run.device, overwrite=run.overwrite)
    if run.executor == "local" and not shard and not written_in_parts(store_path):
        return embed_manifests(
            manifests, store_path=store_path, config=config, device=run.device, batch_size=run.batch_size,
            workers=run.workers, threads=run.threads, overwrite=run.overwrite, progress=run.progress,
        )
    return embed_in_parts(manifests, store_path=store_path, config=config, run=run)


def embed_in_parts(
    manifests: Sequence[str | os.PathLike[str]], *, store_path: str | os.PathLike[str], config: EmbedConfig,
    run: ShardedRun,
) -> ShardedSummary:
    """Embed the clips of ``manifests`` not yet in the parted store at ``store_path``; returns a summary.

    The AST precision is settled here, once for every worker (``embed_settings.with_store_dtype``): the store's, else
    ``auto`` as ``run.device`` resolves on this machine, so parts embedded on different machines never mix.

    Raises:
        StoreMismatchError: the store holds another backbone or window, or was computed at another precision
            than an explicit ``config.dtype`` (pass ``overwrite``).
        LockedError: another process coordinates this store, or still writes one of its parts.
        WakebuilderError: a shard failed on the executor (finished parts are kept; run again).
        BadAudioError: every clip of the manifests was rejected (reasons in ``<store>.rejects.jsonl``).
    """
    _check_reachable(store_path, run.executor)
    clips = collect_clips(manifests)
    longest = max(window_durations([r for _, r in clips]))
    config = with_store_dtype(config, store_path, run.device, overwrite=run.overwrite)  # one for every worker
    threads = worker_threads(run.executor, run.threads)
    backbone = cached_backbone(config, longest, "cpu", threads)  # the coordinator's copy, for the spec
    spec = backbone_spec(backbone)
    store = store_location(store_path)
    started = time.perf_counter()
    index = PartsIndex(store, spec=spec, overwrite=run.overwrite)
    try:
        adopted = index.adopt_orphans()
        if adopted:
            log.warning("adopted %d part(s) a previous run left unlisted: %s", len(adopted), ", ".join(adopted))
        stored = index.ids()
        todo = [(m, r) for m, r in clips if r.id not in stored]
        tasks = [
            ShardTask(store=str(store), part=name, clips=tuple(shard), config=config, longest_s=longest,
                      fingerprint=spec_fingerprint(spec), device=run.device, threads=threads,
                      batch_size=run.batch_size, decode_workers=run.workers)
            for name, shard in make_shards(todo, run.shard_clips).items()
        ]
        results = _run(tasks, run.executor, index, progress=run.progress, total=len(todo))
        with PartedStore(store) as reader:
            total, parts = len(reader), len(reader.parts)
    finally:
        index.close()
    rejects = [reject for result in results for reject in result.rejects]
    _save_rejects(store, rejects)
    refuse_all_rejected(manifests, len(clips), len(rejects), f"{store}.rejects.jsonl")
    warn_cropped_silent(sum(r.cropped for r in results), sum(r.silent for r in results), backbone)
    elapsed = time.perf_counter() - started
    embedded = sum(r.embedded for r in results)
    return ShardedSummary(
        store=str(store_path), clips_in_store=total, embedded=embedded, skipped_existing=len(clips) - len(todo),
        rejected=len(rejects), cropped=sum(r.cropped for r in results), silent=sum(r.silent for r in results),
        seconds=round(elapsed, 3), clips_per_s=round(embedded / elapsed, 2) if elapsed > 0 else None,
        backbone=spec.backbone, rejects_file=f"{store}.rejects.jsonl" if rejects else None,
        compute_dtype=spec.compute_dtype, executor=run.executor, tasks=len(tasks), parts=parts,
        resumed=sum(r.resumed for r in results), workers_used=sorted({r.worker for r in results}),
    )


def _check_reachable(store_path: str | os.PathLike[str], executor: str) -> None:
    """Refuse a bad executor, and a ``memory://`` store that workers in other processes cannot see."""
    kind, arg = parse_executor(executor)
    if os.fspath(store_path).startswith("memory://") and not (
        kind == "local" or str(arg).startswith("inproc://")
    ):
        raise ConfigError(
            f"--store {store_path}: a memory:// store lives in one process, and --executor {executor} "
            "runs workers in others; use --executor local, an in-process Dask cluster, or a shared store"
        )


def _run(
    tasks: list[ShardTask], executor: str, index: PartsIndex, *, progress: bool, total: int
) -> list[ShardResult]:
    """Run every task on the executor; list each finished part; one bar over all of them."""
    from tqdm import tqdm

    results: list[ShardResult] = []
    if not tasks:
        return results
    with open_executor(executor) as pool, tqdm(total=total, desc="embed", unit="clip", disable=not progress) as bar:
        futures: dict[Future[ShardResult], ShardTask] = {pool.submit(run_shard, task): task for task in tasks}
        try:
            for future in as_completed(futures):
                result = _result(future, futures[future])
                if result.rows:
                    index.register(result.part)
                else:  # every clip of the shard was rejected: nothing to list
                    where = part_location(index.path, result.part)
                    backend_class(where).remove(where)  # type: ignore[arg-type]
                results.append(result)
                bar.update(len(futures[future].clips))
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def _result(future: Future[ShardResult], task: ShardTask) -> ShardResult:
    try:
        return future.result()
    except WakebuilderError:
        raise
    except Exception as exc:  # the executor's own failures: a worker lost too often, a broken pool
        raise WakebuilderError(
            f"{task.store}: shard {task.part} failed on the executor ({type(exc).__name__}: {exc}); "
            "finished parts are kept, run wb embed again to resume"
        ) from exc


def _save_rejects(store: Path | str, rejects: list[dict[str, str]]) -> None:
    if isinstance(store, Path):
        _write_rejects(store, rejects)
    elif rejects:
        write_bytes(f"{store}.rejects.jsonl", "".join(json.dumps(r, sort_keys=True) + "\n" for r in rejects).encode())
