"""The AST compute precision the recipe embeds a phrase's store and scores its calibration stream at: the bank's.

A phrase's store is fit and calibrated on together with the negative bank, and stores recording two precisions are
refused (``store.union.check_precisions``). The bank keeps the precision it was built at (bf16 on a GPU, fp32 on a
CPU), so a phrase embedded at its own device's stopped at fit where the bank was built on the other kind of device.
``bank_precision`` is the precision the phrase's store is embedded at; ``stores_precision`` the one its heads are
calibrated (and averaged) at, on the backbone's pass over the calibration stream (``stream_cache``), so a head is fit
and calibrated on passes of one precision. The ONNX backbones record none.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wakebuilder.recipe_config import RecipeConfig


def bank_precision(config: RecipeConfig, manifests: Sequence[str], *, device: str) -> str:
    """The precision the phrase's store of ``manifests`` is embedded at: the one the bank it is read with records,
    else the one a bank built now on ``device`` gets (``auto``'s: bf16 on CUDA, fp32 elsewhere).

    ``auto`` (``wb embed``'s choice: the store's own, else the device's) without the bank, for an ONNX backbone, or
    with a bank made before the precision was recorded (read with either).
    """
    from wakebuilder.backbones import is_onnx

    if not config.bank or is_onnx(config.backbone):
        return "auto"
    from wakebuilder.bank.location import bank_store_path
    from wakebuilder.store import open_store
    from wakebuilder.store.opening import store_exists

    bank = bank_store_path(config.backbone, store_window(config, manifests))
    if not store_exists(bank):
        from wakebuilder.backbones.ast import resolve_dtype
        from wakebuilder.devices import resolve_device

        return resolve_dtype("auto", resolve_device(device))
    with open_store(bank) as opened:
        return opened.spec.compute_dtype or "auto"


def store_window(config: RecipeConfig, manifests: Sequence[str]) -> float:
    """The window ``wb embed`` embeds ``manifests`` at for ``config`` (the bank's is the phrase store's window:
    ``recipe_data.bank``): an AST's is read from its checkpoint's config, widened as ``wb embed`` widens it
    (``embed.ast_window``), without loading the weights."""
    from wakebuilder.backbones import is_onnx
    from wakebuilder.embed import EmbedConfig, ast_window, collect_clips, load_for_store
    from wakebuilder.embed_settings import window_durations

    durations = window_durations([record for _, record in collect_clips(manifests)])
    embed = EmbedConfig(backbone=config.backbone, window_s=config.embed_window_s)
    if is_onnx(config.backbone):
        return float(load_for_store(embed, durations, "cpu").identity["window_s"])
    from wakebuilder.backbones.ast import identity_window_s

    return identity_window_s(config.backbone, window_s=ast_window(embed, durations))


def stores_precision(stores: Sequence[Path | None]) -> str:
    """The precision the stores a head is fit on were computed at (``store.union.check_precisions``, the fit's own
    rule), at which its calibration stream is scored; ``auto`` (the device's) where none records one. A None (a run
    without the bank: ``[store, bank]``) is no store."""
    import contextlib

    from wakebuilder.store import open_store
    from wakebuilder.store.union import check_precisions

    with contextlib.ExitStack() as stack:
        opened = [stack.enter_context(open_store(path)) for path in stores if path is not None]
        return check_precisions(opened) or "auto"
