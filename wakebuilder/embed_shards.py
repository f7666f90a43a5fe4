"""The worker's side of a sharded ``wb embed``: embed one shard of clips into its own part.

A task names its part; the part is opened for appending (created if new) and the
task embeds only the clips the part does not hold yet, so a task retried after its
worker died resumes the part instead of storing anything twice. The backbone is
loaded once per worker process and kept (``cached_backbone``), so a worker pays
the load once however many tasks it runs; ``device`` is resolved on the worker,
so ``auto`` means that worker's GPU if it has one.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
from pathlib import Path
from typing import Any

from wakebuilder.backbones import Backbone, is_onnx
from wakebuilder.embed import EmbedConfig, _embed_all, _Tally, load_for_store, store_spec
from wakebuilder.errors import StoreMismatchError
from wakebuilder.manifest import ClipRecord
from wakebuilder.store import StoreSpec, open_store, spec_fingerprint
from wakebuilder.store.opening import store_location
from wakebuilder.store.parts import part_location

_BACKBONES: dict[tuple[Any, ...], Backbone] = {}
_LOAD_LOCK = threading.Lock()


@dataclasses.dataclass(frozen=True, kw_only=True)
class ShardTask:
    """One task: which clips, into which part of which store, with which backbone."""

    store: str
    part: str
    clips: tuple[tuple[str, ClipRecord], ...]
    config: EmbedConfig
    longest_s: float
    fingerprint: str
    device: str = "auto"
    threads: int = 0
    batch_size: int = 16
    decode_workers: int = 2


@dataclasses.dataclass(frozen=True)
class ShardResult:
    """What a task did: rows now in its part, clips embedded, resumed and rejected, and where."""

    part: str
    rows: int
    embedded: int
    resumed: int
    cropped: int
    silent: int
    rejects: list[dict[str, str]]
    worker: str


def cached_backbone(config: EmbedConfig, longest_s: float, device: str, threads: int) -> Backbone:
    """The backbone for ``config``, loaded once per process (its window fitted to ``longest_s``)."""
    from wakebuilder.devices import resolve_device, set_threads

    onnx = is_onnx(config.backbone)  # onnxruntime on the CPU, no torch
    device = "cpu" if onnx else resolve_device(device)
    key = (repr(config), longest_s, device, threads)
    with _LOAD_LOCK:
        if key not in _BACKBONES:
            if not onnx:
                set_threads(threads)
            _BACKBONES[key] = load_for_store(config, [longest_s], device, threads=threads)
        return _BACKBONES[key]


def backbone_spec(backbone: Backbone) -> StoreSpec:
    """The store spec of what ``backbone`` writes (``embed.store_spec``)."""
    return store_spec(backbone)


def run_shard(task: ShardTask) -> ShardResult:
    """Embed the clips of ``task`` that its part does not hold yet; the part is committed on return.

    Raises:
        StoreMismatchError: this worker's backbone is not the one the store was built with.
        LockedError: another process writes the same part.
    """
    backbone = cached_backbone(task.config, task.longest_s, task.device, task.threads)
    spec = backbone_spec(backbone)
    if spec_fingerprint(spec) != task.fingerprint:
        raise StoreMismatchError(
            f"{task.store}: worker {socket.gethostname()} loaded backbone {backbone.identity} whose "
            "fingerprint differs from the store's; install the same wakebuilder and model on every worker"
        )
    where = part_location(store_location(task.store), task.part)
    tally = _Tally()
    with open_store(where, "a", spec=spec) as part:
        held = part.ids()
        todo = [(Path(manifest), record) for manifest, record in task.clips if record.id not in held]
        _embed_all(backbone, todo, part, tally, batch_size=task.batch_size, workers=task.decode_workers,
                   progress=False)
        rows = len(part)
    return ShardResult(
        part=task.part, rows=rows, embedded=tally.embedded, resumed=len(task.clips) - len(todo),
        cropped=tally.cropped, silent=tally.silent, rejects=tally.rejects,
        worker=f"{socket.gethostname()}:{os.getpid()}",
    )
