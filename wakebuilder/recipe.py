"""The recipe: from a phrase (and optional recordings) to a calibrated, exported detector.

One implementation behind ``wb quickstart`` (and ``bin/quickstart``, ``bin/recipe-full``) and
the real-speech research benchmark. ``run_recipe`` calls the stages' library functions in
order, each a small step (the data and store in ``recipe_build`` and ``recipe_data``, from fit on in
``recipe_model``), writing every artifact under one output folder:

validate -> synth -> negatives -> held-out sets -> augment -> training-stream windows ->
streams -> embed -> fit -> calibrate -> export -> report (eval on held-out data).

With ``heads`` > 1 fit and calibrate run that many times on the store (``head-<k>/`` folders), with
``data_seeds`` > 1 every step up to calibrate runs once per data seed (``seed-<N>/`` folders), and the
calibrated models are averaged into one (``wakebuilder.ensemble``) before export and report. With ``fuse_with``
every step from embed to export runs again on the same data for the second backbone (``<name>/``), and the two
exports are fused into one detector (``wakebuilder.fuse``, ``export-fused/``) before the report. With both, each data
seed's data is made once and both backbones embed, fit and calibrate on it (``seed-<N>/``, ``seed-<N>/<name>/``);
each backbone's models of every seed are averaged and exported (``export/``, ``<name>/export/``), then fused.

The sizes are presets of :class:`RecipeConfig` (``tiny`` for tests, ``quick`` for minutes on a
laptop, ``full`` for the seed recipe's counts); any field can be changed on top of a preset.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wakebuilder.recipe_build import build_data, embed_data
from wakebuilder.recipe_config import SIZES, SPEECH_EMBEDDING_WINDOW_S, RecipeConfig
from wakebuilder.recipe_folders import RUN_MARKER, WARM_LOG, backbone_folder, check_out_folder
from wakebuilder.recipe_model import (
    calibration_config, combine_export_report, export_and_report, fit_and_calibrate, fit_heads, fuse_and_report,
    report_on_heldout, train_and_export,
)
from wakebuilder.recipe_types import RecipeData, RecipeResult, StepLog

log = logging.getLogger(__name__)

__all__ = ["SIZES", "SPEECH_EMBEDDING_WINDOW_S", "RecipeConfig", "RecipeData", "RecipeResult", "build_data",
           "calibration_config", "embed_data", "export_and_report", "fit_and_calibrate", "fit_heads",
           "fuse_and_report", "report_on_heldout", "run_recipe", "train_and_export"]

def run_recipe(
    config: RecipeConfig, *, out_dir: str | os.PathLike[str], recordings: Sequence[str | os.PathLike[str]] = (),
    real_dir: str | os.PathLike[str] | None = None, extra_negatives: Sequence[str | os.PathLike[str]] = (),
    device: str = "auto", threads: int = 0,
) -> RecipeResult:
    """Run the whole recipe into ``out_dir``; returns the exported ONNX, the model and the report.

    Args:
        config: the recipe (``RecipeConfig.preset(size, ...)``).
        out_dir: one folder for every artifact; ``recipe_config.json`` records ``config``. New, empty, or an
            earlier run's (resumed).
        recordings: your own recordings of the phrase (validated, then positives).
        real_dir: real audio without the phrase, chunked into negatives.
        extra_negatives: negative manifests added to training with ``neg_copies`` augmented copies.
        device: where torch runs (``auto``, ``cpu``, ``cuda``).
        threads: torch and onnxruntime CPU threads for the run (0: their defaults); torch's count is as it was
            after it.

    Raises:
        ConfigError: ``out_dir`` holds files and is not a recipe run (``recipe_folders.check_out_folder``).
        LockedError: another run is writing ``out_dir``.
    """
    from wakebuilder.atomic import writer_lock
    from wakebuilder.backbones import check_spec
    from wakebuilder.devices import threads_for

    check_spec(config.backbone)  # a mistyped name fails now, not at embedding after minutes of synthesis
    if config.fuse_with is not None:
        check_spec(config.fuse_with, option="--fuse-with")  # not after the first backbone's whole run
    if config.verify:
        from wakebuilder.verify_whisper import whisper_folder

        # the export asks for both recognizers and the report verifies: fail now, not after minutes
        whisper_folder(fix="pass --no-verify")
    out, step = Path(out_dir), StepLog()
    inputs = dict(recordings=recordings, real_dir=real_dir, extra_negatives=extra_negatives)
    # a second run into out at once would rewrite this one's config and data folders; the shared bank and held-out
    # streams are read till the report (their read locks, kept in held: wb bank reclaim refuses meanwhile); the
    # thread count holds for the run only, not for the caller's process after it
    with threads_for(threads), writer_lock(out), contextlib.ExitStack() as held:
        check_out_folder(out)  # a folder of the user's own: its model/ and export/ would be replaced
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / RUN_MARKER)
        if config.bank:
            from wakebuilder.bank.heldout import heldout_dir
            from wakebuilder.bank.reading import reading

            held.enter_context(reading(heldout_dir()))
        result = _run(config, out, step, inputs, device=device, threads=threads, held=held)
    step(f"done in {time.perf_counter() - step.start:.0f}s")  # once, here: not after each member of a fused run
    return result


def _run(config: RecipeConfig, out: Path, step: StepLog, inputs: dict[str, Any], *, device: str, threads: int,
         held: contextlib.ExitStack) -> RecipeResult:
    """The run of ``config`` in its kind: several data seeds (of one backbone or two fused), two backbones fused, or
    one store's heads."""
    if config.data_seeds > 1 and config.fuse_with is not None:
        return _run_fused_data_seeds(config, out, step, inputs, device=device, threads=threads, held=held)
    if config.data_seeds > 1:
        return _run_data_seeds(config, out, step, inputs, device=device, threads=threads, held=held)
    if config.fuse_with is not None:
        return _run_fused(config, out, step, build_data(config, out, step=step, **inputs), device=device,
                          threads=threads, held=held)
    data, store, bank_store = _data_and_store(config, out, step, inputs, device=device, threads=threads, held=held)
    return train_and_export(config, out, store, data, device=device, step=step, bank=bank_store)


def _data_and_store(config: RecipeConfig, out: Path, step: StepLog, inputs: dict[str, Any], *, device: str,
                    threads: int, held: contextlib.ExitStack) -> tuple[RecipeData, Path, Path | None]:
    """The data, its store and the negative bank (``None`` without ``config.bank``; its read lock then held in
    ``held``, so its rows stay those the fit reads till the calibration)."""
    data = build_data(config, out, step=step, **inputs)
    return (data, *_store_and_bank(config, out, data, step, device=device, threads=threads, held=held))


def _store_and_bank(config: RecipeConfig, out: Path, data: RecipeData, step: StepLog, *, device: str, threads: int,
                    held: contextlib.ExitStack) -> tuple[Path, Path | None]:
    """``data``'s store in ``out`` and the negative bank of ``config.backbone`` (``_data_and_store``)."""
    step(f"embed with {config.backbone}")
    store = embed_data(config, out, data, device=device, threads=threads)
    _warm_streams(config, out, data, store, device=device, threads=threads, held=held)
    bank_store = None
    if config.bank:
        from wakebuilder.bank.reading import reading
        from wakebuilder.recipe_data import bank

        bank_store = bank(config, store, step, device=device, threads=threads)
        held.enter_context(reading(bank_store.parent))
    return store, bank_store


def _warm_streams(config: RecipeConfig, out: Path, data: RecipeData, store: Path, *, device: str, threads: int,
                  held: contextlib.ExitStack) -> None:
    """Start making the backbone's passes over the calibration and report streams ahead, with the cores the bank
    and the fit leave idle (``stream_warm``), stopped when the run ends (``held``). Only where the run reads them
    from the cache (with the bank), on the CPU (a GPU makes them in seconds), and with no ``threads`` count to keep
    to (a second process would run beside the count)."""
    from wakebuilder.devices import resolve_device

    if not config.bank or threads or resolve_device(device) != "cpu":
        return
    from wakebuilder.errors import WakebuilderError
    from wakebuilder.recipe_precision import stores_precision
    from wakebuilder.store import open_store
    from wakebuilder.stream_warm import start_warming
    from wakebuilder.streaming import hop_samples

    streams = [s for s in (data.calibration_stream, data.report_stream) if s]  # in the order the run reads them
    try:
        with open_store(store) as opened:
            identity = opened.spec.backbone
        warming = start_warming(streams, identity, hop=hop_samples(calibration_config(config).hop_s),
                                dtype=stores_precision([store]), log_path=out / WARM_LOG)
    except (WakebuilderError, OSError) as exc:  # only time is lost: the run makes the passes itself
        log.warning("the streams' backbone passes are not made ahead (%s); the run makes them when it needs them", exc)
        return
    held.callback(warming.stop)


def _run_data_seeds(config: RecipeConfig, out: Path, step: StepLog, inputs: dict[str, Any], *, device: str,
                    threads: int, held: contextlib.ExitStack) -> RecipeResult:
    """Each data seed's data, store and calibrated heads in ``out/seed-<N>/``, all heads averaged into
    ``out/model``, exported, reported on the first seed's held-out sets."""
    models: list[tuple[Path, dict[str, Any]]] = []
    for i in range(config.data_seeds):
        member, member_out = _data_seed(config, out, i, step)
        data, store, bank_store = _data_and_store(member, member_out, step, inputs, device=device, threads=threads,
                                                  held=held)
        models += fit_heads(member, member_out, store, data, device=device, step=step, bank=bank_store)
        if i == 0:
            first_data, first_store = data, store
    return combine_export_report(config, out, models, first_store, first_data, device=device, step=step,
                                 bank=bank_store)


def _run_fused(config: RecipeConfig, out: Path, step: StepLog, data: RecipeData, *, device: str, threads: int,
               held: contextlib.ExitStack) -> RecipeResult:
    """Each backbone's store, calibrated heads and export of the one ``data``: ``config.backbone``'s in ``out``, the
    second's in ``out/<name>/`` with the settings of a run of its own (window, threshold floor); the two exports
    fused into ``out/export-fused/`` and reported."""
    results = []
    for i, (member, member_out) in enumerate(_backbones(config, out)):
        step(f"backbone {member.backbone} ({i + 1} of 2)")
        _save_member(member, member_out, out)
        store, bank_store = _store_and_bank(member, member_out, data, step, device=device, threads=threads, held=held)
        results.append(train_and_export(member, member_out, store, data, device=device, step=step, bank=bank_store))
    return fuse_and_report(config, out, results, device=device, step=step)


def _run_fused_data_seeds(config: RecipeConfig, out: Path, step: StepLog, inputs: dict[str, Any], *, device: str,
                          threads: int, held: contextlib.ExitStack) -> RecipeResult:
    """Each data seed's data once in ``out/seed-<N>/``, and on it each backbone's store and calibrated heads (the
    second's in ``out/seed-<N>/<name>/``, as ``_run_fused`` places it); each backbone's heads of every seed averaged
    and exported (``combine_export_report``: the first's in ``out``, the second's in ``out/<name>/``), the two exports
    fused into ``out/export-fused/`` and reported on the first seed's held-out sets."""
    backbones = _backbones(config, out)
    models: list[list[tuple[Path, dict[str, Any]]]] = [[], []]
    for i in range(config.data_seeds):
        member, member_out = _data_seed(config, out, i, step)
        data = build_data(member, member_out, step=step, **inputs)
        stores = []
        for k, (backbone, backbone_out) in enumerate(backbones):
            seeded = backbone.replace(seed=member.seed, data_seeds=1)
            seeded_out = member_out / backbone_out.relative_to(out)
            step(f"backbone {seeded.backbone} ({k + 1} of 2) on data seed {member.seed}")
            _save_member(seeded, seeded_out, member_out)
            store, bank_store = _store_and_bank(seeded, seeded_out, data, step, device=device, threads=threads,
                                                held=held)
            stores.append((store, bank_store))
            models[k] += fit_heads(seeded, seeded_out, store, data, device=device, step=step, bank=bank_store)
        if i == 0:
            first_data, first_stores = data, stores
    results = []
    for (backbone, backbone_out), heads, (store, bank_store) in zip(backbones, models, first_stores, strict=True):
        _save_member(backbone, backbone_out, out)
        results.append(combine_export_report(backbone, backbone_out, heads, store, first_data, device=device,
                                             step=step, bank=bank_store))
    return fuse_and_report(config, out, results, device=device, step=step)


def _data_seed(config: RecipeConfig, out: Path, i: int, step: StepLog) -> tuple[RecipeConfig, Path]:
    """Data seed ``i``'s config (its data seed, a held-out report stream for the first only) and its folder
    ``out/seed-<N>/``, made with the config saved in it."""
    member = config.replace(seed=config.seed + i, data_seeds=1, report=config.report and i == 0)
    member_out = out / f"seed-{member.seed}"
    step(f"data seed {member.seed} ({i + 1} of {config.data_seeds})")
    member_out.mkdir(parents=True, exist_ok=True)
    member.save(member_out / RUN_MARKER)
    return member, member_out


def _backbones(config: RecipeConfig, out: Path) -> list[tuple[RecipeConfig, Path]]:
    """A fused run's two backbones, each with the settings of a run of its own and no report (the fused detector's is
    the run's), and its folder: ``config.backbone``'s ``out``, the second's ``out/<name>/``."""
    second = config.replace(backbone=config.fuse_with, fuse_with=None, report=False)
    return [(config.replace(fuse_with=None, report=False), out), (second, out / backbone_folder(second.backbone))]


def _save_member(member: RecipeConfig, member_out: Path, out: Path) -> None:
    """A second backbone's folder ``member_out`` under ``out``, with its config; ``out`` itself is left as it is
    (it holds the run's own config)."""
    if member_out != out:
        member_out.mkdir(parents=True, exist_ok=True)
        member.save(member_out / RUN_MARKER)
