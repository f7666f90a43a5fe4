"""`wb calibrate`: score calibration, threshold choice, per-clip metrics and FA/h.

``calibrate_model`` fits Platt scaling on the model's validation split (read and checked against the stores it
was fit on by ``calibrate_validation``), scores the calibration streams and chooses the threshold by the rules of
``calibrate_rules`` (``CalibrateConfig``, ``fit_platt``, the F1 and FA/h rules). As the stage's public entry
point it exports those modules' names too.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE, metrics
from wakebuilder.atomic import atomic_write_json, refuse_unwritable_folder, writer_lock
from wakebuilder.audio import audio_seconds
from wakebuilder.audio_stream import AudioBlocks
from wakebuilder.calibrate_rules import (
    CalibrateConfig, choose_threshold, fa_rule_threshold, fit_platt, resolved_objective,
)
from wakebuilder.calibrate_validation import fit_precisions, validation_logits
from wakebuilder.errors import ConfigError
from wakebuilder.modeldir import CALIBRATION_NAME, LoadedModel, load_model
from wakebuilder.scoring import apply_platt, head_logits, model_scorer
from wakebuilder.events import count_events_many
from wakebuilder.streaming import Scorer, hop_samples, score_blocks, smooth_scores

__all__ = [  # with the names of calibrate_rules and calibrate_validation that the CLI, recipe, ensemble, tests
    # and research/ import from here
    "CalibrateConfig", "apply_platt", "cached_stream_scores", "calibrate_model", "choose_threshold",
    "fa_rule_threshold", "fit_platt", "format_report", "model_stream_scores", "model_stream_traces",
    "stream_fa_per_hour", "stream_file_scores", "stream_peak", "stream_precision", "validation_logits",
]
log = logging.getLogger(__name__)


def stream_file_scores(
    path: str | os.PathLike[str], scorer: Scorer, *, window_samples: int, config: CalibrateConfig
) -> tuple[np.ndarray, float]:
    """Unsmoothed scores of every window of a continuous audio file and its seconds."""
    blocks = AudioBlocks(path)  # a block at a time: hours of audio in bounded memory
    scores = score_blocks(blocks, scorer, window_samples=window_samples, hop=hop_samples(config.hop_s),
                          batch_size=config.batch_size)
    return scores, blocks.seconds


def model_stream_scores(
    path: str | os.PathLike[str], model: LoadedModel, backbone: Any, temperature: float, bias: float, *,
    config: CalibrateConfig,
) -> tuple[np.ndarray, float]:
    """The model's probability for every window of a stream (unsmoothed) and the stream's seconds.

    With ``config.cache_streams`` the backbone's pass comes from (or goes into) the cache (``stream_cache``)
    and only the head runs here.
    """
    if config.cache_streams:
        from wakebuilder.stream_cache import stream_sequences

        sequences = stream_sequences(path, backbone, hop=hop_samples(config.hop_s), batch_size=config.batch_size)
        return apply_platt(head_logits(model.head, sequences), temperature, bias), audio_seconds(path)
    scorer = model_scorer(model, backbone, temperature, bias)
    return stream_file_scores(path, scorer, window_samples=backbone.window_samples, config=config)


def cached_stream_scores(model_dir: str | os.PathLike[str], stream: str | os.PathLike[str], *, hop_s: float,
                         device: str = "auto", dtype: str = "auto") -> np.ndarray:
    """The calibrated model's probability for every window of ``stream``, its head on the backbone's pass in the
    cache (``stream_cache``) computed at ``dtype`` (``stream_precision``: ``auto`` is the one model.json records for
    its stores): a report or a fused detector's members need not run the backbone over a stream again."""
    from wakebuilder.backbones import backbone_from_identity

    model = load_model(model_dir)
    calibration = model.calibration or {}
    backbone = backbone_from_identity(model.backbone, device=device,
                                      dtype=stream_precision([model], dtype, device=device))
    scores, _ = model_stream_scores(stream, model, backbone, float(calibration.get("temperature", 1.0)),
                                    float(calibration.get("bias", 0.0)),
                                    config=CalibrateConfig(hop_s=hop_s, cache_streams=True, device=device))
    return scores


def model_stream_traces(
    paths: Sequence[str | os.PathLike[str]], model: LoadedModel, temperature: float, bias: float, *,
    config: CalibrateConfig,
) -> tuple[list[np.ndarray], float]:
    """Smoothed ``model_stream_scores`` of the streams and their hours, without the clips that say the wake word.

    In a stream with a segments sidecar (``data.stream``), the windows that overlap a clip whose text says the
    model's wake word score 0 and their time is not counted (``StreamSegments.negative_scores``): a stream shared
    by every phrase holds such sentences, and they are no false accepts.
    """
    from wakebuilder.backbones import backbone_from_identity
    from wakebuilder.categories import StreamSegments, segments_path

    backbone = backbone_from_identity(model.backbone, device=config.device, dtype=config.dtype)
    traces, hours = [], 0.0
    window_s = backbone.window_samples / SAMPLE_RATE
    for path in paths:
        segments = StreamSegments.read(path)
        raw, seconds = model_stream_scores(path, model, backbone, temperature, bias, config=config)
        if seconds < window_s:
            raise ConfigError(f"{path}: {seconds:.2f} s of audio, shorter than the backbone's {window_s:g} s window; "
                              "a calibration stream needs minutes of negative audio (wb stream makes one)")
        if segments is not None:
            segments = segments.without(model.meta.get("wake_word"))
            raw = segments.negative_scores(raw, window_samples=backbone.window_samples, hop=hop_samples(config.hop_s))
            seconds *= sum(segments.seconds(window_s=window_s).values()) / segments.duration_s
            if seconds <= 0:
                raise ConfigError(f"{path}: every clip of the stream says {model.meta.get('wake_word')!r} (its "
                                  f"{segments_path(path).name}), so it holds no negative audio for this model")
        traces.append(smooth_scores(raw, config.smooth))
        hours += seconds / 3600
    return traces, hours


def stream_precision(models: Sequence[LoadedModel], dtype: str, *, device: str) -> str:
    """The AST precision to score ``models``' streams at for ``dtype`` (``--dtype``).

    ``auto`` is the precision model.json records for the stores they were fit on, so the FA/h that sets a
    threshold comes from embeddings of the precision the head was fit on. Another precision asked for is honoured,
    with a warning. Where none is recorded (an ONNX backbone, a model.json written before it was), ``dtype`` as
    given: ``auto`` is the device's (``backbones.ast.resolve_dtype``: bf16 on CUDA, fp32 elsewhere).
    """
    from wakebuilder.backbones.ast import resolve_dtype
    from wakebuilder.devices import resolve_device

    fit_at = fit_precisions(models)
    if not fit_at:
        return dtype
    if dtype == "auto" and len(fit_at) == 1:
        return fit_at[0]
    resolved = resolve_dtype(dtype, resolve_device(device))
    if resolved not in fit_at:
        log.warning("scoring the stream in %s, but %s was fit on stores embedded in %s: its false accepts come from "
                    "other embeddings than the head was fit on (--dtype auto scores at the fit's precision)",
                    resolved, ", ".join(str(m.path) for m in models), "/".join(fit_at))
    return resolved


def stream_peak(traces: Sequence[np.ndarray]) -> float | None:
    """The highest score on the streams (``None`` without any), for ``metrics.threshold_grid``."""
    return max((float(np.max(t)) for t in traces if len(t)), default=None)


def stream_fa_per_hour(traces: Sequence[np.ndarray], hours: float, thresholds: np.ndarray,
                       config: CalibrateConfig) -> np.ndarray:
    """False accepts per hour of the smoothed ``traces`` (``hours`` long) at each of ``thresholds``.

    Raises:
        ConfigError: ``config`` not resolved for the model (``CalibrateConfig.resolved``): its refractory period is
            the model's window.
    """
    if config.refractory_s is None:
        raise ConfigError("stream_fa_per_hour: the refractory period is None (the model's window); pass "
                          "config.resolved(model.window_samples)")
    frame_s = hop_samples(config.hop_s) / SAMPLE_RATE  # the hop in whole samples, as detection steps
    counts = count_events_many(traces, thresholds, frame_s=frame_s, refractory_s=config.refractory_s)
    return np.asarray(metrics.fa_per_hour(counts, hours), dtype=np.float64)


def calibrate_model(
    model_dir: str | os.PathLike[str],
    store_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    streams: Sequence[str | os.PathLike[str]] = (),
    config: CalibrateConfig | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Calibrate a model directory; writes ``calibration.json`` and plots, returns its path and summary.

    Its ``config`` records the settings the threshold was chosen with, a refractory period not given resolved to the
    model's window (``CalibrateConfig.resolved``), so that wb export and wb detect carry and use them.
    """
    from wakebuilder.categories import refuse_repeated_streams

    refuse_repeated_streams(streams)
    model = load_model(model_dir)
    # calibration.json and the plots are written into the model at the end: a folder that refuses them fails now
    refuse_unwritable_folder(model.path, "calibrate writes calibration.json and its plots there: make the folder "
                             "writable (chmod u+w), or copy the model to a writable folder and calibrate the copy")
    # fit's writer lock of the model: a second calibrate, or a fit rewriting the model, fails at once instead of
    # leaving one run's calibration.json beside the other's plots
    with writer_lock(model.path):
        return _calibrate(model, store_path, streams, config)


def _calibrate(
    model: LoadedModel, store_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    streams: Sequence[str | os.PathLike[str]], config: CalibrateConfig | None,
) -> tuple[Path, dict[str, Any]]:
    """``calibrate_model``'s work on the loaded ``model``, its writer lock held."""
    config = (config or CalibrateConfig()).resolved(model.window_samples)
    if model.meta.get("ensemble"):
        raise ConfigError(f"{model.path}: an ensemble (wb ensemble) takes its threshold from its members, each "
                          "calibrated on its own store; calibrate the members and combine them again")
    logits, labels = validation_logits(model, store_path)
    temperature, bias = fit_platt(logits, labels, where=f"{model.path}: its validation split")
    scores = apply_platt(logits, temperature, bias)
    fa_h, hours, traces = None, 0.0, None
    if streams:
        config = config.replace(dtype=stream_precision([model], config.dtype, device=config.device))  # recorded
        traces, hours = model_stream_traces(streams, model, temperature, bias, config=config)
    grid = metrics.threshold_grid(scores, stream_peak=stream_peak(traces or []))
    table = metrics.sweep(labels, scores, grid)
    if traces is not None:
        fa_h = stream_fa_per_hour(traces, hours, grid, config)
    threshold = choose_threshold(table, fa_h, config)
    summary = _summary(model, labels, scores, table, fa_h, hours, threshold, temperature, bias, config)
    summary["streams"] = [str(Path(p).resolve()) for p in streams]  # what set the threshold (a recipe's: in the cache)
    from wakebuilder.plots_calibration import plot_det, plot_sweep

    summary["plots"] = [str(plot_sweep(model.path, table, threshold))]
    if fa_h is not None:
        summary["plots"].append(str(plot_det(model.path, table["frr"], fa_h, threshold)))
    return atomic_write_json(model.path / CALIBRATION_NAME, summary), summary


def format_report(summary: dict[str, Any]) -> str:
    """The seed's target table with the FA/h figures beside it, for stderr."""
    return metrics.format_table(summary["targets"], _fa_lines(summary))


def _fa_lines(summary: dict[str, Any]) -> dict[str, Any]:
    lines = {"threshold": summary["threshold"], "FA/h at threshold": summary["fa_per_hour"],
             "FA/h 95% upper bound": summary["fa_per_hour_upper95"]}
    lines["stream hours"] = summary["stream_hours"]
    for key, value in summary["frr_at_fa"].items():
        lines[f"FRR at {key} FA/h"] = value
    return lines


def _summary(
    model: LoadedModel, labels: np.ndarray, scores: np.ndarray, table: dict[str, np.ndarray],
    fa_h: np.ndarray | None, hours: float, threshold: float, temperature: float, bias: float,
    config: CalibrateConfig,
) -> dict[str, Any]:
    at = metrics.metrics_at(labels, scores, threshold)
    index = int(np.argmin(np.abs(table["threshold"] - threshold)))
    sweep_rows = [
        {k: float(table[k][i]) for k in ("threshold", "f1", "far", "frr", "precision", "recall")}
        | ({"fa_per_hour": float(fa_h[i])} if fa_h is not None else {})
        for i in range(len(table["threshold"]))
    ]
    return {
        "threshold": threshold, "temperature": temperature, "bias": bias,
        "objective": resolved_objective(config, has_stream=fa_h is not None), "config": config.to_dict(),
        "metrics": at, "targets": metrics.target_table(at),
        "n_validation": {"positives": int((labels == 1).sum()), "negatives": int((labels == 0).sum())},
        "fa_per_hour": float(fa_h[index]) if fa_h is not None else None,
        # what the stream's length can show: 0 false accepts in 25 minutes bound the rate below 7.2 an hour
        "fa_per_hour_upper95": (metrics.fa_per_hour_upper_of_rate(float(fa_h[index]), hours)
                                if fa_h is not None else None),
        "stream_hours": hours,
        "frr_at_fa": {
            str(t): (metrics.frr_at_fa(table["frr"], fa_h, t) if fa_h is not None else None)
            for t in metrics.FA_TARGETS
        },
        "det": metrics.det_points(table["frr"], fa_h, table["threshold"]) if fa_h is not None else [],
        "sweep": sweep_rows,
        "model": str(model.path),
    }
