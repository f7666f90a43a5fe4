"""The recipe's data and store: every manifest and stream it trains, calibrates and reports on, and their one
backbone pass. ``wakebuilder.recipe.run_recipe`` calls these (and re-exports them) for each data seed and backbone."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from wakebuilder.recipe_config import RecipeConfig
from wakebuilder.recipe_types import RecipeData, StepLog

log = logging.getLogger(__name__)


def build_data(
    config: RecipeConfig, out: Path, *, recordings: Sequence[str | os.PathLike[str]] = (),
    real_dir: str | os.PathLike[str] | None = None, extra_negatives: Sequence[str | os.PathLike[str]] = (),
    step: StepLog | None = None,
) -> RecipeData:
    """Every manifest and stream the recipe trains, calibrates and reports on."""
    from wakebuilder.recipe_data import (
        augmented, heldout_sets, negative_stream, negatives, nonspeech, positives, real_chunks, training_windows,
    )

    step = step or StepLog()
    real = None
    if real_dir is not None:  # first: a folder without audio fails before minutes of synthesis (same manifest order)
        step(f"chunk real audio from {real_dir}")
        real = real_chunks(real_dir, out)
    pos = positives(config, out, recordings, step)
    neg = negatives(config, out, step)
    held = heldout_sets(config, out, step)
    manifests: list[Path] = []
    for manifest in pos:
        step(f"augment {manifest.parent.name} x{config.pos_copies}"
             + (f", {config.background_p:.0%} over {','.join(config.background)}" if config.background else ""))
        manifests += [manifest, augmented(config, manifest, Path(f"{manifest.parent}-aug"), config.pos_copies,
                                          background=True)]
    step(f"augment negatives x{config.neg_copies}")
    manifests += [neg, augmented(config, neg, out / "negatives-aug", config.neg_copies)]
    if not config.bank and config.n_nonspeech:  # the bank holds them otherwise
        step(f"non-speech negatives: {config.n_nonspeech} music and noise clips x{config.neg_copies}")
        extra = nonspeech(config, out / "nonspeech", neg, n=config.n_nonspeech, seed=config.seed)
        manifests += [extra, augmented(config, extra, out / "nonspeech-aug", config.neg_copies)]
    for i, extra in enumerate(map(Path, extra_negatives)):
        manifests += [extra, augmented(config, extra, out / f"extra-negatives-{i}-aug", config.neg_copies)]
    manifests.append(training_windows(config, out, neg, step))
    if real is not None:
        manifests.append(real)
    step(f"streams of held-out speech, music and noise: {config.stream_s:g}s for calibration"
         + (f", {config.report_stream_s:g}s for the report" if config.report else ""))
    cal_stream = held.get("calibrate_stream") or negative_stream(config, _stream_sources(held, "calibrate"),
                                                                 out / "stream-calibrate.wav")
    report_stream = None
    if config.report:
        report_stream = held.get("report_stream") or negative_stream(config, _stream_sources(held, "report"),
                                                                     out / "stream-report.wav", config.report_stream_s)
    return RecipeData(train_manifests=manifests, negatives=neg, heldout_positives=held.get("positives"),
                      heldout_negatives=held.get("report_hard"), calibration_stream=cal_stream,
                      report_stream=report_stream, heldout_nonspeech=held.get("report_nonspeech"),
                      heldout_speech=held.get("report_speech"))


def _stream_sources(held: dict[str, Path], name: str) -> list[Path]:
    """The manifests of stream ``name``: held-out generic speech and non-speech (no sound-alikes)."""
    return [held[k] for k in (f"{name}_speech", f"{name}_nonspeech") if k in held]


def embed_data(config: RecipeConfig, out: Path, data: RecipeData, *, device: str = "auto", threads: int = 0) -> Path:
    """One backbone pass over the training manifests into ``out/store.zarr``, at the precision of the bank it is
    read with (``recipe_precision.bank_precision``).

    A store left by a killed run of the same settings is resumed; one that holds clips these manifests do
    not (an earlier run in this folder with other settings, seed or recordings) is rebuilt, so the heads fit
    on this run's clips only; so is one of another backbone, window or precision.
    """
    from wakebuilder.embed import EmbedConfig, collect_clips, embed_manifests
    from wakebuilder.errors import StoreMismatchError
    from wakebuilder.recipe_precision import bank_precision
    from wakebuilder.store import open_store
    from wakebuilder.store.opening import store_exists

    store = out / "store.zarr"
    manifests = [str(m) for m in data.train_manifests]
    stale = False
    if store_exists(store):
        wanted = {record.id for _, record in collect_clips(manifests)}
        with open_store(store) as existing:
            extra = len(existing.ids() - wanted)
        if extra:
            log.warning("%s holds %d clip(s) that this run's data does not (an earlier run with other settings); "
                        "rebuilding it", store, extra)
            stale = True
    embed_config = EmbedConfig(backbone=config.backbone, window_s=config.embed_window_s,
                               dtype=bank_precision(config, manifests, device=device))
    try:
        summary = embed_manifests(manifests, store_path=store, config=embed_config, device=device, threads=threads,
                                  overwrite=stale)
    except StoreMismatchError:  # raised on opening the store, before anything is embedded
        log.warning("%s was embedded with another backbone, window or precision than this run's; rebuilding it",
                    store)
        summary = embed_manifests(manifests, store_path=store, config=embed_config, device=device, threads=threads,
                                  overwrite=True)
    log.info("embed: %s embedded, %s already stored, %s rejected; %s in store", summary.embedded,
             summary.skipped_existing, summary.rejected, summary.clips_in_store)
    return store
