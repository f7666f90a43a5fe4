"""Build and grow the negative bank: manifests embedded once per backbone and window.

The bank is an ordinary embedding store (``<bank_dir>/store.zarr``) written by
the same code as ``wb embed`` (``embed.embed_manifests``), so a second build
with one more manifest embeds only the new clips. ``bank.json`` beside it marks
the store as a bank (its negatives are phrase-independent, so rows that say a
phrase are left out of that phrase's fit) and lists the manifests embedded.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_json, read_json, waiting_lock
from wakebuilder.bank.location import BANK_MARKER, BUILD_LOCK, bank_dir, bank_store_path, no_bank_error
from wakebuilder.bank.retired import retire, retired_ids
from wakebuilder.errors import ConfigError, ManifestError, StoreMismatchError
from wakebuilder.manifest import read_manifest

log = logging.getLogger(__name__)


def native_window(backbone: str, window_s: float | None) -> float | None:
    """The window a bank is embedded at: ``window_s``, else the one a phrase's store of the backbone gets by
    default, never widened.

    ``wb embed`` widens an AST window to fit the longest wake-word clip; a bank holds no wake word, so its window is
    fixed here: the ``window_s`` the AST's identity records at its own frames (``ast.identity_window_s``, read from
    its config, not its weights), which loads those frames again. Its seconds of audio (``native_window_s``, 1.295
    s for 128 frames) would load 130.
    """
    from wakebuilder.backbones import is_onnx

    if window_s is not None or is_onnx(backbone):
        return window_s
    from wakebuilder.backbones.ast import identity_window_s

    return identity_window_s(backbone)


def bank_lock(backbone: str, window_s: float | None, *, cache: str | os.PathLike[str] | None = None
              ) -> contextlib.AbstractContextManager[None]:
    """The bank's build lock, held while the bank changes (its audio, store, marker and retired clips); a second
    holder waits for it: two phrases' recipes (``ensure_bank``), or ``wb bank build`` beside a recipe."""
    return waiting_lock(bank_dir(backbone, window_s, cache=cache) / BUILD_LOCK, "negative bank")


def build_bank(
    manifests: Sequence[str | os.PathLike[str]], *, backbone: str = "ast", window_s: float | None = None,
    cache: str | os.PathLike[str] | None = None, device: str = "auto", batch_size: int = 16, workers: int = 2,
    threads: int = 0, progress: bool = True, replaced: Collection[str] = (),
) -> dict[str, Any]:
    """Embed ``manifests`` into the bank of ``backbone`` and ``window_s`` (skipping clips stored), then retire the
    clips ``replaced`` (those of voices replaced) that none of them holds, holding the bank's build lock
    (``bank_lock``: waiting while a recipe builds the bank).

    Returns ``wb embed``'s summary with the bank's ``path``, ``marker`` and how many of its clips are ``retired``
    (``bank.retired``: in the store, no longer served).

    Raises:
        BackboneError: ``backbone`` names no backbone (checked before anything is written).
        ConfigError: a manifest holds a wake-word clip (label 1); a bank holds negatives only.
        ManifestError: a manifest holds no clips (checked before anything is written).
        StoreMismatchError: the bank folder holds a store of other embeddings.
    """
    from wakebuilder.backbones import check_spec

    check_spec(backbone)  # as wb embed does, but before the bank's folder and marker are made
    _negative_ids(manifests, refuse_empty=True)
    with bank_lock(backbone, window_s, cache=cache):
        return grow_bank(manifests, backbone=backbone, window_s=window_s, cache=cache, device=device,
                         batch_size=batch_size, workers=workers, threads=threads, progress=progress, replaced=replaced)


def _negative_ids(manifests: Sequence[str | os.PathLike[str]], *, refuse_empty: bool = False) -> set[str]:
    """The clip ids of ``manifests``.

    Raises:
        ConfigError: a manifest holds a wake-word clip (label 1).
        ManifestError: ``refuse_empty`` and a manifest holds no clips: given to ``wb bank build`` it is a mistake,
            and alone it left a bank.json without a store (``embed_manifests`` refuses it after the marker).
    """
    ids: set[str] = set()
    for manifest in manifests:
        records = read_manifest(manifest)
        if refuse_empty and not records:
            raise ManifestError(f"{manifest}: no clips (an empty manifest), nothing to embed into the negative bank; "
                                "pass a manifest that lists clips (wb bank negatives writes them)")
        positives = [r.id for r in records if r.label == 1]
        if positives:
            raise ConfigError(f"{manifest}: {len(positives)} clip(s) with label 1; a negative bank holds "
                              "phrase-independent negatives only (fit the positives from the phrase's own store)")
        ids.update(r.id for r in records)
    return ids


def grow_bank(
    manifests: Sequence[str | os.PathLike[str]], *, backbone: str, window_s: float | None,
    cache: str | os.PathLike[str] | None = None, device: str = "auto", batch_size: int = 16, workers: int = 2,
    threads: int = 0, progress: bool = True, replaced: Collection[str] = (),
) -> dict[str, Any]:
    """``build_bank`` for a caller that holds the bank's build lock (``bank_lock``), as ``ensure_bank`` does."""
    from wakebuilder.backbones import check_spec
    from wakebuilder.embed import EmbedConfig, embed_manifests
    from wakebuilder.store.merge import finish_swap

    check_spec(backbone)
    ids = _negative_ids(manifests)
    store = bank_store_path(backbone, window_s, cache=cache)
    finish_swap(store)  # a compaction killed in its swap (wb bank reclaim) left no store: finished, not made anew
    embed_window = native_window(backbone, window_s)
    _refuse_another_window(store, backbone, embed_window)
    store.parent.mkdir(parents=True, exist_ok=True)
    marker = store.parent / BANK_MARKER
    previous = read_json(marker) if marker.exists() else {"manifests": []}
    _write_marker(marker, backbone, window_s, previous["manifests"])
    config = EmbedConfig(backbone=backbone, window_s=embed_window)
    summary = embed_manifests(manifests, store_path=store, config=config, device=device, batch_size=batch_size,
                              workers=workers, threads=threads, progress=progress).to_dict()
    _swap_served(store, retired=set(replaced) - ids, served=ids)
    added = [str(Path(m).resolve()) for m in manifests]
    _write_marker(marker, backbone, window_s, list(dict.fromkeys([*previous["manifests"], *added])),
                  identity=summary["backbone"], clips=summary["clips_in_store"])
    return {**summary, "path": str(store), "marker": str(marker), "retired": len(retired_ids(store))}


def _refuse_another_window(store: Path, backbone: str, window_s: float | None) -> None:
    """Refuse to grow an AST bank whose store records another window than ``window_s`` loads, before anything is
    written: one an older wakebuilder built without --window-s, at 130 frames (1.3 s) for a 128-frame checkpoint,
    which no phrase's store matched. ``open_store``'s own refusal would say to pass options wb bank build lacks.

    Raises:
        StoreMismatchError: naming the bank's folder, both windows and how to build it again.
    """
    from wakebuilder.backbones import is_onnx
    from wakebuilder.store import open_store
    from wakebuilder.store.opening import store_exists

    if is_onnx(backbone) or not store_exists(store):
        return
    from wakebuilder.backbones.ast import identity_window_s

    with open_store(store) as opened:
        stored = opened.spec.backbone.get("window_s")
    wanted = identity_window_s(backbone, window_s=window_s)
    if stored != wanted:
        raise StoreMismatchError(
            f"{store.parent}: this negative bank holds {backbone} embeddings of a {stored} s window, not the "
            f"{wanted:g} s it is built at (an older wakebuilder built it so without --window-s); delete the folder "
            "and run wb bank build again"
        )


def _swap_served(store: Path, *, retired: set[str], served: set[str]) -> None:
    """Retire the stored clips of ``retired`` and serve those of ``served`` (clips retired once, their voices
    replaced, and wanted again: stored, so not embedded) in one write, once the clips embedded now are stored:
    the phrases reading the bank without a lock see its old clips or its new ones, never a bank of neither."""
    from wakebuilder.store import open_store

    if retired:
        with open_store(store) as opened:
            retired &= opened.ids()
    retire(store, add=retired, serve=served)
    if retired:
        log.info("negative bank %s: %d clip(s) of the voices replaced retired (kept in the store for the phrases "
                 "reading it, no longer served)", store, len(retired))


def _write_marker(marker: Path, backbone: str, window_s: float | None, manifests: list[str], *,
                  identity: dict[str, Any] | None = None, clips: int | None = None) -> None:
    doc = {"kind": "wakebuilder negative bank", "backbone": backbone, "window_s": window_s,
           "manifests": manifests}
    if identity is not None:
        doc |= {"identity": identity, "clips": clips}
    elif marker.exists():
        doc = {**read_json(marker), **doc}
    atomic_write_json(marker, doc)


def bank_info(backbone: str, window_s: float | None, *, cache: str | os.PathLike[str] | None = None
              ) -> dict[str, Any]:
    """What the bank holds (``wb store info``'s figures) and the manifests embedded into it.

    Raises:
        StoreError: no bank yet for this backbone and window (no marker, or a marker without a store: a build that
            embedded no clip), saying to build one, not to ``wb embed`` into the cache.
    """
    from wakebuilder.store import store_info
    from wakebuilder.store.opening import store_exists

    store = bank_store_path(backbone, window_s, cache=cache)
    marker = store.parent / BANK_MARKER
    if not marker.is_file() or not store_exists(store):
        raise no_bank_error(store)
    info = store_info(store)
    info["manifests"] = read_json(marker)["manifests"]
    info["retired"] = len(retired_ids(store))
    return info
