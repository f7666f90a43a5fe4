"""The recipe: from a phrase (and optional recordings) to a calibrated, exported detector.

One implementation behind ``wb quickstart`` (and ``bin/quickstart``, ``bin/recipe-full``) and
the real-speech research benchmark. ``run_recipe`` calls the stages' library functions in
order, each a small step below, writing every artifact under one output folder:

validate -> synth -> negatives -> held-out sets -> augment -> training-stream windows ->
streams -> embed -> fit -> calibrate -> export -> report (eval on held-out data).

With ``heads`` > 1 fit and calibrate run that many times on the store (``head-<k>/`` folders), with
``data_seeds`` > 1 every step up to calibrate runs once per data seed (``seed-<N>/`` folders), and the
calibrated models are averaged into one (``wakebuilder.ensemble``) before export and report.

The sizes are presets of :class:`RecipeConfig` (``tiny`` for tests, ``quick`` for minutes on a
laptop, ``full`` for the seed recipe's counts); any field can be changed on top of a preset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wakebuilder.recipe_config import HEAD_SEED_STEP, SIZES, SPEECH_EMBEDDING_WINDOW_S, RecipeConfig
from wakebuilder.recipe_folders import RUN_MARKER, check_out_folder

if TYPE_CHECKING:
    import numpy as np

    from wakebuilder.calibrate import CalibrateConfig

__all__ = ["SIZES", "SPEECH_EMBEDDING_WINDOW_S", "RecipeConfig", "RecipeData", "RecipeResult", "build_data",
           "calibration_config", "embed_data", "export_and_report", "fit_and_calibrate", "fit_heads",
           "report_on_heldout", "run_recipe", "train_and_export"]

log = logging.getLogger(__name__)

@dataclasses.dataclass(frozen=True)
class RecipeData:
    """The training manifests, held-out sets and streams, ready to embed."""

    train_manifests: list[Path]
    negatives: Path
    heldout_positives: Path | None
    heldout_negatives: Path | None
    calibration_stream: Path
    report_stream: Path | None
    heldout_nonspeech: Path | None = None  # the report's held-out music and noise clips (FA per category)
    heldout_speech: Path | None = None  # the report's held-out generic speech, when the cache holds it (the bank)


@dataclasses.dataclass(frozen=True)
class RecipeResult:
    """What a recipe run made."""

    config: RecipeConfig
    out_dir: Path
    onnx: Path
    model_dir: Path
    store: Path
    data: RecipeData
    threshold: float
    report: dict[str, Any] | None  # ``wb eval``'s result on the held-out sets, if ``config.report``
    seconds: float
    bank: Path | None = None  # the negative bank's store, if ``config.bank``
    members: tuple[Path, ...] = ()  # an ensemble's calibrated member models (``store`` is the first data seed's)


class StepLog:
    """Logs each step with the seconds since the start, like the bash recipe did."""

    def __init__(self) -> None:
        self.start = time.perf_counter()

    def __call__(self, message: str) -> None:
        log.info("quickstart: [%.0fs] %s", time.perf_counter() - self.start, message)


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
        threads: torch and onnxruntime CPU threads (0: their defaults).

    Raises:
        ConfigError: ``out_dir`` holds files and is not a recipe run (``recipe_folders.check_out_folder``).
        LockedError: another run is writing ``out_dir``.
    """
    from wakebuilder.atomic import writer_lock
    from wakebuilder.backbones import check_spec
    from wakebuilder.devices import set_threads

    check_spec(config.backbone)  # a mistyped name fails now, not at embedding after minutes of synthesis
    set_threads(threads)
    out, step = Path(out_dir), StepLog()
    inputs = dict(recordings=recordings, real_dir=real_dir, extra_negatives=extra_negatives)
    # a second run into out at once would rewrite this one's config and data folders; the shared bank and held-out
    # streams are read till the report (their read locks, kept in held: wb bank reclaim refuses meanwhile)
    with writer_lock(out), contextlib.ExitStack() as held:
        check_out_folder(out)  # a folder of the user's own: its model/ and export/ would be replaced
        out.mkdir(parents=True, exist_ok=True)
        config.save(out / RUN_MARKER)
        if config.bank:
            from wakebuilder.bank.heldout import heldout_dir
            from wakebuilder.bank.reading import reading

            held.enter_context(reading(heldout_dir()))
        if config.data_seeds > 1:
            return _run_data_seeds(config, out, step, inputs, device=device, threads=threads, held=held)
        data, store, bank_store = _data_and_store(config, out, step, inputs, device=device, threads=threads,
                                                  held=held)
        return train_and_export(config, out, store, data, device=device, step=step, bank=bank_store)


def _data_and_store(config: RecipeConfig, out: Path, step: StepLog, inputs: dict[str, Any], *, device: str,
                    threads: int, held: contextlib.ExitStack) -> tuple[RecipeData, Path, Path | None]:
    """The data, its store and the negative bank (``None`` without ``config.bank``; its read lock then held in
    ``held``, so its rows stay those the fit reads till the calibration)."""
    data = build_data(config, out, step=step, **inputs)
    step(f"embed with {config.backbone}")
    store = embed_data(config, out, data, device=device, threads=threads)
    bank_store = None
    if config.bank:
        from wakebuilder.bank.reading import reading
        from wakebuilder.recipe_data import bank

        bank_store = bank(config, store, step, device=device, threads=threads)
        held.enter_context(reading(bank_store.parent))
    return data, store, bank_store


def _run_data_seeds(config: RecipeConfig, out: Path, step: StepLog, inputs: dict[str, Any], *, device: str,
                    threads: int, held: contextlib.ExitStack) -> RecipeResult:
    """Each data seed's data, store and calibrated heads in ``out/seed-<N>/``, all heads averaged into
    ``out/model``, exported, reported on the first seed's held-out sets."""
    models: list[tuple[Path, dict[str, Any]]] = []
    for i in range(config.data_seeds):
        member = config.replace(seed=config.seed + i, data_seeds=1, report=config.report and i == 0)
        member_out = out / f"seed-{member.seed}"
        step(f"data seed {member.seed} ({i + 1} of {config.data_seeds})")
        member_out.mkdir(parents=True, exist_ok=True)
        member.save(member_out / RUN_MARKER)
        data, store, bank_store = _data_and_store(member, member_out, step, inputs, device=device, threads=threads,
                                                  held=held)
        models += fit_heads(member, member_out, store, data, device=device, step=step, bank=bank_store)
        if i == 0:
            first_data, first_store = data, store
    return _combine_export_report(config, out, models, first_store, first_data, device=device, step=step,
                                  bank=bank_store)


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
    """One backbone pass over the training manifests into ``out/store.zarr``.

    A store left by a killed run of the same settings is resumed; one that holds clips these manifests do
    not (an earlier run in this folder with other settings, seed or recordings) is rebuilt, so the heads fit
    on this run's clips only; so is one of another backbone or window.
    """
    from wakebuilder.embed import EmbedConfig, collect_clips, embed_manifests
    from wakebuilder.errors import StoreMismatchError
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
    embed_config = EmbedConfig(backbone=config.backbone, window_s=config.embed_window_s)
    try:
        summary = embed_manifests(manifests, store_path=store, config=embed_config, device=device, threads=threads,
                                  overwrite=stale)
    except StoreMismatchError:  # raised on opening the store, before anything is embedded
        log.warning("%s was embedded with another backbone or window than this run's; rebuilding it", store)
        summary = embed_manifests(manifests, store_path=store, config=embed_config, device=device, threads=threads,
                                  overwrite=True)
    log.info("embed: %s embedded, %s already stored, %s rejected; %s in store", summary.embedded,
             summary.skipped_existing, summary.rejected, summary.clips_in_store)
    return store


def train_and_export(
    config: RecipeConfig, out: Path, store: Path, data: RecipeData, *, device: str = "auto",
    step: StepLog | None = None, bank: Path | None = None,
) -> RecipeResult:
    """Fit ``config.heads`` heads (on ``store`` and the negative ``bank``, if any), calibrate each on the held-out
    stream, average them when there are several, export ``out/export/<slug>.onnx`` and report."""
    step = step or StepLog()
    models = fit_heads(config, out, store, data, device=device, step=step, bank=bank)
    return _combine_export_report(config, out, models, store, data, device=device, step=step, bank=bank)


def fit_heads(
    config: RecipeConfig, out: Path, store: Path, data: RecipeData, *, device: str = "auto",
    step: StepLog | None = None, bank: Path | None = None,
) -> list[tuple[Path, dict[str, Any]]]:
    """``config.heads`` calibrated heads on one store: ``out/model``, or with several ``out/head-<k>/model`` with
    the seeds seed, seed + 100, ... (each its own validation split and start); their paths and calibrations."""
    if config.heads == 1:
        return [fit_and_calibrate(config, out, store, data, device=device, step=step, bank=bank)]
    return [fit_and_calibrate(config.replace(seed=config.seed + HEAD_SEED_STEP * k), out / f"head-{k}", store, data,
                              device=device, step=step, bank=bank) for k in range(config.heads)]


def _combine_export_report(
    config: RecipeConfig, out: Path, models: list[tuple[Path, dict[str, Any]]], store: Path, data: RecipeData, *,
    device: str, step: StepLog, bank: Path | None,
) -> RecipeResult:
    """The one model, or several averaged into ``out/model`` (``wb ensemble``), exported and reported."""
    if len(models) == 1:
        (model_dir, calibration), members = models[0], ()
    else:
        from wakebuilder.ensemble import combine_models

        step(f"ensemble of the {len(models)} calibrated models")
        members = tuple(m for m, _ in models)
        model_dir, calibration = combine_models(members, out / "model", streams=[data.calibration_stream],
                                                overwrite=True, device=device)
    result = export_and_report(config, out, model_dir, store, data, calibration, device=device, step=step, bank=bank)
    return dataclasses.replace(result, members=members)


def fit_and_calibrate(
    config: RecipeConfig, out: Path, store: Path, data: RecipeData, *, device: str = "auto",
    step: StepLog | None = None, bank: Path | None = None,
) -> tuple[Path, dict[str, Any]]:
    """``out/model``: the head fitted on ``store`` (and ``bank``), calibrated on the calibration stream.

    A head a run before finished fitting with the same stores, settings and seed is kept (``recipe_keep``), so a
    rerun after a kill fits only the heads it had not finished; calibration runs again.
    """
    from wakebuilder.calibrate import calibrate_model, format_report
    from wakebuilder.recipe_keep import keep_or_fit

    step = step or StepLog()
    step("fit")
    stores = [store, bank] if bank is not None else [store]
    model_dir = keep_or_fit(stores, out / "model", config.fit.replace(seed=config.seed), wake_word=config.phrase,
                            device=device)
    step("calibrate")
    _, calibration = calibrate_model(model_dir, stores, streams=[data.calibration_stream],
                                     config=calibration_config(config, device=device))
    log.info("calibration:\n%s", format_report(calibration))
    return Path(model_dir), calibration


def export_and_report(
    config: RecipeConfig, out: Path, model_dir: Path, store: Path, data: RecipeData, calibration: dict[str, Any], *,
    device: str = "auto", step: StepLog | None = None, bank: Path | None = None,
) -> RecipeResult:
    """``out/export/<slug>.onnx`` of the calibrated ``model_dir``, and the report on held-out data."""
    from wakebuilder.export import export_model

    step = step or StepLog()
    step("export")
    exported = export_model(model_dir, out / "export", name=config.slug, overwrite=True)
    onnx = Path(exported.files["onnx"])
    report = None
    if config.report:
        step(f"report: clips and {config.report_stream_s:g}s of stream that neither training nor the threshold saw")
        report = report_on_heldout(onnx, data, device=device, model_dir=model_dir if config.bank else None)
    step(f"done in {time.perf_counter() - step.start:.0f}s")
    return RecipeResult(config=config, out_dir=out, onnx=onnx, model_dir=model_dir, store=store, data=data,
                        threshold=float(calibration["threshold"]), report=report,
                        seconds=time.perf_counter() - step.start, bank=bank)


def calibration_config(config: RecipeConfig, *, device: str = "auto") -> CalibrateConfig:
    """How the recipe chooses its threshold on the calibration stream.

    The recipe always has a stream: "auto" is its FA/h rule, and where no threshold reaches the target it
    takes the fewest false accepts with a warning instead of failing a run of many minutes. The stream is
    synthetic, easier than real audio: it may raise the threshold above per-clip F1's, never lower it.
    """
    from wakebuilder.calibrate import CalibrateConfig

    objective = "auto" if config.objective == "fa-per-hour" else config.objective
    return CalibrateConfig(objective=objective, target_fa_per_hour=config.target_fa_per_hour, not_below_f1=True,
                           device=device, cache_streams=config.bank)


def report_on_heldout(onnx: Path, data: RecipeData, *, device: str = "auto",
                      model_dir: Path | None = None) -> dict[str, Any]:
    """``wb eval``'s metrics of the exported model on the held-out clips and report stream.

    With ``model_dir`` (the exported model's directory), the report stream is scored by its head on the
    backbone's pass kept in the cache (``stream_cache``; the same probabilities as the ONNX, which export
    checks), and the clips by the ONNX.
    """
    from wakebuilder.categories import OTHER
    from wakebuilder.detect import load_detector
    from wakebuilder.evaluate import EvalConfig, evaluate_detector

    manifests = [str(p) for p in (data.heldout_positives, data.heldout_negatives, data.heldout_speech,
                                  data.heldout_nonspeech) if p]
    streams = [str(data.report_stream)] if data.report_stream else []
    detector = load_detector(onnx, device=device)
    config = EvalConfig().resolved(detector)
    traces = None
    if model_dir is not None and streams:
        traces = {streams[0]: cached_stream_scores(model_dir, data.report_stream, hop_s=config.hop_s, device=device)}
    return evaluate_detector(detector, manifests=manifests, streams=streams, config=config,
                             categories=[OTHER] * len(streams), traces=traces)  # mixed: per clip, by its segments


def cached_stream_scores(model_dir: Path, stream: Path, *, hop_s: float, device: str = "auto") -> np.ndarray:
    """The calibrated model's probability for every window of ``stream``, its head on the cached backbone pass."""
    from wakebuilder.backbones import backbone_from_identity
    from wakebuilder.calibrate import CalibrateConfig, model_stream_scores
    from wakebuilder.modeldir import load_model

    model = load_model(model_dir)
    calibration = model.calibration or {}
    backbone = backbone_from_identity(model.backbone, device=device)
    scores, _ = model_stream_scores(stream, model, backbone, float(calibration.get("temperature", 1.0)),
                                    float(calibration.get("bias", 0.0)),
                                    config=CalibrateConfig(hop_s=hop_s, cache_streams=True, device=device))
    return scores
