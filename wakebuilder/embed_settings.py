"""The settings a ``wb embed`` run embeds with (``EmbedConfig``): chosen from its clips, or adopted from its store.

A store's rows must all be one embedding: clips added to a store whose AST window was widened to fit its first
wake-word clips go in at that window, and a run that names no precision computes in the store's
(``with_store_dtype``), so a store begun in bf16 on a GPU is not resumed in fp32 on a CPU; ``with_store_settings``
settles both from one opening of the store.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from collections.abc import Sequence

from wakebuilder.backbones import backbone_kind, is_onnx
from wakebuilder.config import StageConfig
from wakebuilder.errors import StoreError
from wakebuilder.manifest import ClipRecord
from wakebuilder.store import StoreSpec, open_store

log = logging.getLogger(__name__)
MAX_WINDOW_S = 3.0


@dataclasses.dataclass(frozen=True, kw_only=True)
class EmbedConfig(StageConfig):
    """What the store's embeddings depend on: the backbone, its window and compute precision."""

    backbone: str = "ast"
    window_s: float | None = None
    dtype: str = "auto"


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



def with_store_settings(
    config: EmbedConfig, store_path: str | os.PathLike[str], durations: Sequence[float], device: str, *,
    overwrite: bool,
) -> EmbedConfig:
    """``config`` at the window and precision (``with_store_dtype``) of the store at ``store_path``, which is opened
    once for both (not at all when ``config`` names both, or with ``overwrite``).

    Clips added to a store go in at its window when ``config`` names none and ``durations`` fit it: a store whose
    AST window was widened to fit its first wake-word clips is another embedding from this run's own choice for
    shorter clips. A store of another backbone, clips longer than its window, ``overwrite`` or no store leave the
    window as it is.
    """
    wanted = config.window_s is None or (not is_onnx(config.backbone) and config.dtype == "auto")
    spec = _stored_spec(store_path) if wanted and not overwrite else None
    return _at_store_dtype(_at_store_window(config, spec, store_path, durations), spec, store_path, device)


def _at_store_window(config: EmbedConfig, spec: StoreSpec | None, store_path: str | os.PathLike[str],
                     durations: Sequence[float]) -> EmbedConfig:
    """``config`` at the window of the store of ``spec`` (None: no store, or not to be followed), as
    ``with_store_settings`` says."""
    if config.window_s is not None or spec is None:
        return config
    stored = spec.backbone
    window = stored.get("window_s")
    if (not isinstance(window, int | float) or isinstance(window, bool)
            or backbone_kind(str(stored.get("spec", ""))) != backbone_kind(config.backbone)
            or max(durations, default=0.0) > window + 1e-6):
        return config
    log.info("%s: embedding at the store's %.2f s window", store_path, window)
    return dataclasses.replace(config, window_s=float(window))


def with_store_dtype(
    config: EmbedConfig, store_path: str | os.PathLike[str], device: str, *, overwrite: bool
) -> EmbedConfig:
    """``config`` with its AST precision settled: the store's (``compute_dtype``) when ``config.dtype`` is ``auto``.

    A store begun in bf16 on a GPU and resumed on a CPU would otherwise mix rows of both precisions; an explicit
    other ``dtype`` is kept here and refused by ``open_store``. Without a recorded precision (no store, a store made
    before it was recorded, ``overwrite``), ``auto`` resolves on ``device`` (bf16 on CUDA, fp32 elsewhere).
    Other backbones are left as they are.
    """
    wanted = not is_onnx(config.backbone) and config.dtype == "auto" and not overwrite
    return _at_store_dtype(config, _stored_spec(store_path) if wanted else None, store_path, device)


def _at_store_dtype(config: EmbedConfig, spec: StoreSpec | None, store_path: str | os.PathLike[str],
                    device: str) -> EmbedConfig:
    """``with_store_dtype`` for the store's ``spec`` (None: no store, or not to be followed)."""
    if is_onnx(config.backbone):
        return config
    if config.dtype == "auto" and spec is not None and spec.compute_dtype:
        log.info("%s: embedding in the store's %s", store_path, spec.compute_dtype)
        return dataclasses.replace(config, dtype=spec.compute_dtype)
    from wakebuilder.backbones.ast import resolve_dtype
    from wakebuilder.devices import resolve_device

    return dataclasses.replace(config, dtype=resolve_dtype(config.dtype, resolve_device(device)))


def _stored_spec(store_path: str | os.PathLike[str]) -> StoreSpec | None:
    """The spec of the store at ``store_path``; None where there is none (a damaged one is reported later)."""
    try:
        with open_store(store_path) as store:
            return store.spec
    except StoreError:  # no store yet; a damaged one is reported by the run's own opening
        return None
