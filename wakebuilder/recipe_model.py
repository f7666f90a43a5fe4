"""The recipe's model steps: from an embedded store to one calibrated model, exported and reported.

``fit_heads`` fits and calibrates ``heads`` heads on a store (``fit_and_calibrate``, each kept across runs by
``recipe_keep``), ``combine_export_report`` averages several into one (``wakebuilder.ensemble``), then
``export_and_report`` exports it and reports on the held-out sets; ``fuse_and_report`` fuses two backbones' exports
into one detector (``wakebuilder.fuse``) and reports on that. Called by ``wakebuilder.recipe.run_recipe`` after its
data and store; ``train_and_export`` runs them on a store made before.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wakebuilder.recipe_config import HEAD_SEED_STEP, RecipeConfig
from wakebuilder.recipe_types import RecipeData, RecipeResult, StepLog

if TYPE_CHECKING:
    from wakebuilder.calibrate import CalibrateConfig

log = logging.getLogger(__name__)


def train_and_export(
    config: RecipeConfig, out: Path, store: Path, data: RecipeData, *, device: str = "auto",
    step: StepLog | None = None, bank: Path | None = None,
) -> RecipeResult:
    """Fit ``config.heads`` heads (on ``store`` and the negative ``bank``, if any), calibrate each on the held-out
    stream, average them when there are several, export ``out/export/<slug>.onnx`` and report."""
    step = step or StepLog()
    models = fit_heads(config, out, store, data, device=device, step=step, bank=bank)
    return combine_export_report(config, out, models, store, data, device=device, step=step, bank=bank)


def fit_heads(
    config: RecipeConfig, out: Path, store: Path, data: RecipeData, *, device: str = "auto",
    step: StepLog | None = None, bank: Path | None = None,
) -> list[tuple[Path, dict[str, Any]]]:
    """``config.heads`` calibrated heads on one store: ``out/model``, or with several ``out/head-<k>/model`` with
    the seeds seed, seed + 100, ... (each its own validation split and start), and with ``config.centroids_head``
    the centroids head ``out/head-centroids/model`` (the first head's split); their paths and calibrations."""
    shrinkage = config.centroids_head
    if config.heads == 1 and shrinkage is None:
        return [fit_and_calibrate(config, out, store, data, device=device, step=step, bank=bank)]
    models = [fit_and_calibrate(config.replace(seed=config.seed + HEAD_SEED_STEP * k), out / f"head-{k}", store, data,
                                device=device, step=step, bank=bank) for k in range(config.heads)]
    if shrinkage is not None:
        centroids = config.replace(fit=config.fit.replace(head="centroids", shrinkage=shrinkage, members=1))
        models.append(fit_and_calibrate(centroids, out / "head-centroids", store, data, device=device, step=step,
                                        bank=bank))
    return models


def combine_export_report(
    config: RecipeConfig, out: Path, models: list[tuple[Path, dict[str, Any]]], store: Path, data: RecipeData, *,
    device: str, step: StepLog, bank: Path | None,
) -> RecipeResult:
    """The one model, or several averaged into ``out/model`` (``wb ensemble``), exported and reported."""
    if len(models) == 1:
        (model_dir, calibration), members = models[0], ()
    else:
        from wakebuilder.ensemble import combine_models
        from wakebuilder.recipe_precision import stores_precision

        step(f"ensemble of the {len(models)} calibrated models")
        members = tuple(m for m, _ in models)
        dtype = stores_precision([store, bank])  # the members were calibrated at
        model_dir, calibration = combine_models(members, out / "model", streams=[data.calibration_stream],
                                                overwrite=True, device=device, dtype=dtype)
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
    from wakebuilder.recipe_precision import stores_precision

    step = step or StepLog()
    step("fit" if config.fit.head == "network" else f"fit the {config.fit.head} head")
    stores = [store, bank] if bank is not None else [store]
    model_dir = keep_or_fit(stores, out / "model", config.fit.replace(seed=config.seed), wake_word=config.phrase,
                            device=device)
    step("calibrate")
    _, calibration = calibrate_model(model_dir, stores, streams=[data.calibration_stream],
                                     config=calibration_config(config, device=device, dtype=stores_precision(stores)))
    log.info("calibration:\n%s", format_report(calibration))
    return Path(model_dir), calibration


def export_and_report(
    config: RecipeConfig, out: Path, model_dir: Path, store: Path, data: RecipeData, calibration: dict[str, Any], *,
    device: str = "auto", step: StepLog | None = None, bank: Path | None = None,
) -> RecipeResult:
    """``out/export/<slug>.onnx`` of the calibrated ``model_dir``, and the report on held-out data. It logs no
    "done": a fused run's members are followed by the fusion and its report (``run_recipe`` says it at the end)."""
    from wakebuilder.export import export_model

    step = step or StepLog()
    step("export")
    exported = export_model(model_dir, out / "export", name=config.slug, overwrite=True, verify=config.verify)
    onnx = Path(exported.files["onnx"])
    report = None
    if config.report:
        from wakebuilder.recipe_precision import stores_precision

        step(f"report: clips and {config.report_stream_s:g}s of stream that neither training nor the threshold saw")
        report = report_on_heldout(onnx, data, device=device, model_dir=model_dir if config.bank else None,
                                   dtype=stores_precision([store, bank]))
        save_report(out, report, onnx)
    return RecipeResult(config=config, out_dir=out, onnx=onnx, model_dir=model_dir, store=store, data=data,
                        threshold=float(calibration["threshold"]), report=report,
                        seconds=time.perf_counter() - step.start, bank=bank)


def fuse_and_report(config: RecipeConfig, out: Path, members: list[RecipeResult], *, device: str = "auto",
                    step: StepLog | None = None) -> RecipeResult:
    """``out/export-fused/<slug>.onnx``: the mean of ``members``' calibrated exports (``wb fuse``: its threshold the
    mean of theirs), and the report on held-out data of the first member's ``data``."""
    from wakebuilder.fuse import fuse_detectors
    from wakebuilder.recipe_folders import FUSED_EXPORT

    step = step or StepLog()
    step(f"fuse the {' and '.join(m.config.backbone for m in members)} detectors")
    fused = fuse_detectors([m.onnx for m in members], out / FUSED_EXPORT, name=config.slug, overwrite=True)
    onnx, data, report = Path(fused.files["onnx"]), members[0].data, None
    if config.report:
        step(f"report of the fused detector: clips and {config.report_stream_s:g}s of stream that neither training "
             "nor the thresholds saw")
        cached = _fused_members(members) if config.bank else ()  # as export_and_report: the passes cached with it
        report = report_on_heldout(onnx, data, device=device, fused_members=cached)
        save_report(out, report, onnx)
    return dataclasses.replace(members[0], config=config, out_dir=out, onnx=onnx, threshold=fused.threshold,
                               report=report, seconds=time.perf_counter() - step.start,
                               fused=tuple(m.onnx for m in members))


def _fused_members(members: list[RecipeResult]) -> list[tuple[Path, Path, str]]:
    """Each member's export, calibrated model and stores' precision, for the fused report's stream
    (``fused_stream.fused_stream_scores``)."""
    from wakebuilder.recipe_precision import stores_precision

    return [(m.onnx, m.model_dir, stores_precision([m.store, m.bank])) for m in members]


def calibration_config(config: RecipeConfig, *, device: str = "auto", dtype: str = "auto") -> CalibrateConfig:
    """How the recipe chooses its threshold on the calibration stream, scored at ``dtype`` (its stores' precision:
    ``recipe_precision.stores_precision``).

    The recipe always has a stream: "auto" is its FA/h rule, and where no threshold reaches the target it
    takes the fewest false accepts with a warning instead of failing a run of many minutes. The stream is
    synthetic, easier than real audio: it may raise the threshold above per-clip F1's, never lower it; and for a
    backbone whose stream does not bind it (word-embedding), the threshold is not below ``config.min_threshold``.
    """
    from wakebuilder.calibrate import CalibrateConfig

    objective = "auto" if config.objective == "fa-per-hour" else config.objective
    return CalibrateConfig(objective=objective, target_fa_per_hour=config.target_fa_per_hour, not_below_f1=True,
                           min_threshold=config.min_threshold, device=device, dtype=dtype, cache_streams=config.bank)


def save_report(out: Path, report: dict[str, Any], onnx: Path | None = None) -> Path:
    """``out/report.json``: the report, written atomically (the terminal's table is gone with the terminal); with the
    export's ``onnx``, its operating point also under ``heldout_report`` in the export's ``NAME.json``
    (``heldout_summary``)."""
    from wakebuilder.atomic import atomic_write_json, read_json
    from wakebuilder.recipe_folders import REPORT

    path = atomic_write_json(out / REPORT, report)
    if onnx is not None:
        sidecar = onnx.with_suffix(".json")
        where = Path(os.path.relpath(path, sidecar.parent)).as_posix()  # ../report.json: moves with the run
        atomic_write_json(sidecar, {**read_json(sidecar), "heldout_report": heldout_summary(report, where)})
    log.info("report: %s", path)
    return path


def heldout_summary(report: dict[str, Any], where: str) -> dict[str, Any]:
    """What the held-out report measured of the detector as ``wb detect`` runs it, for its ``NAME.json``: a verified
    export's own ``fa_per_hour`` is its detector's alone at ``threshold`` on the calibration stream, while
    ``wb detect`` proposes from ``verify.candidate_threshold`` and counts what the recognizer hears (the report's
    ``threshold`` and figures)."""
    clips = report.get("metrics") or {}
    return {"file": where, "verified": "verify" in report, "threshold": report.get("threshold"),
            "recall": clips.get("recall"), "precision": clips.get("precision"), "n_clips": report.get("n_clips"),
            **{key: report.get(key) for key in ("false_accepts", "stream_hours", "fa_per_hour", "fa_per_hour_upper95")}}


def report_on_heldout(onnx: Path, data: RecipeData, *, device: str = "auto", model_dir: Path | None = None,
                      dtype: str = "auto", fused_members: Sequence[tuple[Path, Path, str]] = ()) -> dict[str, Any]:
    """``wb eval``'s metrics of the exported model on the held-out clips and report stream.

    With ``model_dir`` (the exported model's directory), the report stream is scored by its head on the
    backbone's pass kept in the cache (``stream_cache``), computed at ``dtype`` (the stores' precision, as the
    calibration stream's; in fp32 the ONNX's probabilities, which export checks), and the clips by the ONNX. With
    ``fused_members`` (a fused ``onnx``'s members: export, model directory, precision), each member's head on its
    backbone's cached pass, combined as the fused graph combines them (``fused_stream``), where they can be.
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
        from wakebuilder.calibrate import cached_stream_scores

        traces = {streams[0]: cached_stream_scores(model_dir, data.report_stream, hop_s=config.hop_s, device=device,
                                                   dtype=dtype)}
    elif fused_members and streams:
        from wakebuilder.fused_stream import fused_stream_scores

        trace = fused_stream_scores(detector.info, detector.window_samples, fused_members, data.report_stream,
                                    hop_s=config.hop_s, device=device)
        traces = {streams[0]: trace} if trace is not None else None
    return evaluate_detector(detector, manifests=manifests, streams=streams, config=config,
                             categories=[OTHER] * len(streams), traces=traces)  # mixed: per clip, by its segments
