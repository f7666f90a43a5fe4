"""`wb calibrate`: score calibration, threshold choice, per-clip metrics and FA/h.

The head's logits are mapped to probabilities with Platt scaling fitted on the
held-out validation groups, ``p = sigmoid((logit - bias) / temperature)``,
by minimising log loss against Platt's smoothed targets ((N+ + 1)/(N+ + 2)
for positives, 1/(N- + 2) for negatives). The smoothing keeps the fit finite
when the validation set is perfectly separated, which is what moves a chosen
threshold from 0.9996 to somewhere in the middle of (0, 1).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wakebuilder import SAMPLE_RATE, metrics
from wakebuilder.atomic import atomic_write_json
from wakebuilder.audio import audio_seconds
from wakebuilder.audio_stream import AudioBlocks
from wakebuilder.config import StageConfig
from wakebuilder.errors import ConfigError, StoreMismatchError, TrainingError
from wakebuilder.modeldir import CALIBRATION_NAME, LoadedModel, load_model
from wakebuilder.scoring import apply_platt, head_logits, model_scorer
from wakebuilder.events import count_events_many
from wakebuilder.streaming import Scorer, check_stream_settings, hop_samples, score_blocks, smooth_scores

if TYPE_CHECKING:
    from wakebuilder.bank.retired import BankView

OBJECTIVES = ("auto", "f1", "fa-per-hour")
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CalibrateConfig(StageConfig):
    """How the threshold is chosen and how streams are scored.

    ``auto`` (the default) chooses for false accepts per hour on the calibration
    stream when there is one (a wake word is judged by how often it wakes by
    mistake) and by per-clip F1 otherwise.
    """

    objective: str = "auto"
    target_fa_per_hour: float = 0.5
    # FA/h rule only: never below the best per-clip F1 threshold. A synthetic calibration stream is easier than
    # real audio; on realdev the lowest threshold with no false accept on it (0.03 for "happy") woke 145 times
    # an hour, so the stream may raise the threshold above F1's, never lower it.
    not_below_f1: bool = False
    hop_s: float = 0.1
    refractory_s: float = 1.0
    smooth: int = 1
    batch_size: int = 64
    device: str = "auto"
    # Keep the backbone's pass over each stream in the cache (``stream_cache``): a later head (another phrase,
    # seed or refit) on the same stream runs only the head. Costs disk: about 50 MB per 10 minutes for
    # speech-embedding.
    cache_streams: bool = False

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective {self.objective!r}: expected one of {', '.join(OBJECTIVES)}")
        if self.target_fa_per_hour <= 0:
            raise ConfigError(f"--target-fa-per-hour {self.target_fa_per_hour}: must be > 0")
        hop_samples(self.hop_s)
        check_stream_settings(smooth=self.smooth, refractory_s=self.refractory_s)


def fit_platt(logits: np.ndarray, labels: np.ndarray, *, where: str = "validation") -> tuple[float, float]:
    """Fit ``(temperature, bias)`` of ``sigmoid((logit - bias) / temperature)`` (see module docstring).

    ``where`` names the clips in errors (the model and its validation split).

    Raises:
        TrainingError: one class only, logits that are all equal, or logits that rank negatives above positives.
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise TrainingError(f"{where}: calibration needs positives and negatives, it has {n_pos} positives and "
                            f"{n_neg} negatives; fit with a --val-fraction that leaves both in validation")
    mu, sd = float(z.mean()), float(z.std())
    if not np.isfinite([mu, sd]).all() or sd <= 1e-9 * max(1.0, abs(mu)):
        raise TrainingError(f"{where}: the head gives every clip the same logit ({mu:.4g}), so no threshold "
                            "tells the wake word from negatives; retrain the head")
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    x = (z - mu) / sd

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        u = params[0] * x + params[1]
        value = np.mean(target * np.logaddexp(0, -u) + (1 - target) * np.logaddexp(0, u))
        residual = (1 / (1 + np.exp(-u)) - target) / x.size
        return float(value), np.array([np.sum(residual * x), np.sum(residual)])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    a, c = float(result.x[0]), float(result.x[1])
    if not np.isfinite([a, c]).all() or a <= 0:
        raise TrainingError(
            f"{where}: its logits do not separate wake word from negatives (Platt slope <= 0); retrain the head"
        )
    temperature = sd / a
    return temperature, mu - c * temperature


def validation_logits(
    model: LoadedModel, store_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
) -> tuple[np.ndarray, np.ndarray]:
    """Logits and labels of the model's validation groups, read from the stores it was fit on.

    Several stores are read as one, leaving out the bank rows the fit left out
    (the phrase and distance recorded in model.json); a bank is read as the fit read it (``bank_views``).
    """
    from wakebuilder.bank.exclude import open_for_phrase
    from wakebuilder.train.split import store_rows

    paths = [store_path] if isinstance(store_path, (str, os.PathLike)) else list(store_path)
    excluded = model.meta.get("bank_exclusion") or {}
    with open_for_phrase(paths, excluded.get("phrase"), max_distance=excluded.get("max_distance"),
                         views=bank_views(model, paths)) as (store, _):
        if store.fingerprint != model.meta.get("store_fingerprint") or store.spec.backbone != model.backbone:
            raise StoreMismatchError(
                f"{', '.join(map(str, paths))}: store fingerprint {store.fingerprint} does not match the "
                f"model's {model.meta.get('store_fingerprint')} ({model.path}); use the stores the model was fit on"
            )
        _check_stores(model, store.describe())
        groups = set(model.split.get("val_groups", []))
        # the fit's groups: an augmented copy in its parent's group, so no copy of a training clip validates
        rows, texts = store_rows(store)
        in_val = np.isin(rows.group, list(groups))
        _check_wake_word(model, [t for t, v, y in zip(texts, in_val, rows.label, strict=True) if v and y == 1], paths)
        logits, labels, start = [], [], 0
        for batch in store.iter_batches(1024, pooled=False, sequence=True):
            keep, start = in_val[start : start + len(batch)], start + len(batch)
            if keep.any():
                logits.append(head_logits(model.head, batch.sequence[keep]))
                labels.append(batch.label[keep].astype(np.int64))
    if not logits:
        raise TrainingError(
            f"{', '.join(map(str, paths))}: none of the model's {len(groups)} validation groups are in the store"
        )
    return np.concatenate(logits), np.concatenate(labels)


def bank_views(model: LoadedModel, paths: Sequence[str | os.PathLike[str]]) -> list[BankView | None]:
    """Per path: for a bank store that model.json's ``stores`` lists, how the fit read it (``BankView``: the rows
    it held then and their ids' hash, the retired clips it left out), else None. Another phrase's recipe may have
    grown the shared bank and retired clips since."""
    from wakebuilder.bank.location import is_bank_store
    from wakebuilder.bank.retired import BankView
    from wakebuilder.store.union import resolved_location

    fitted = {d["path"]: d for d in model.meta.get("stores") or [] if isinstance(d.get("path"), str)}
    views = []
    for path in paths:
        entry = fitted.get(resolved_location(path)) if is_bank_store(path) else None
        views.append(BankView(entry["rows"], entry.get("retired_sha256"), entry.get("ids_sha256"))
                     if entry else None)
    return views


def _check_stores(model: LoadedModel, given: list[dict[str, Any]]) -> None:
    """Refuse stores other than those the model was fit on (model.json ``stores``: each one's fingerprint, rows and
    their ids' sha256), which share a fingerprint when they hold one backbone's embeddings: a subset would calibrate on part
    of the validation split, another store's rows on clips the split never saw."""
    fitted = model.meta.get("stores")
    if not fitted:  # a model written before model.json recorded its stores
        return
    want = sorted((d.get("fingerprint"), d.get("rows")) for d in fitted)
    if sorted((d["fingerprint"], d["rows"]) for d in given) != want:
        listed = ", ".join(f"{d.get('path')} ({d.get('rows')} rows)" for d in fitted)
        found = ", ".join(f"{d['path']} ({d['rows']} rows)" for d in given)
        raise StoreMismatchError(f"{model.path}: fit on {listed}, given {found}; calibrate on the stores the model "
                                 "was fit on (wb fit's --store), all of them")
    recorded = {d.get("ids_sha256") for d in fitted} - {None}  # absent in a model.json written before it was
    for store in given:
        if recorded and store["ids_sha256"] not in recorded:
            raise StoreMismatchError(f"{store['path']}: holds {store['rows']} rows as when {model.path} was fit, but "
                                     "other clips (made again since the fit); fit the model again (wb fit) on it")


def _check_wake_word(model: LoadedModel, positive_texts: list[str], paths: list[Any]) -> None:
    """Refuse validation positives (their texts) of another phrase (stores of one backbone share voice group
    names)."""
    from wakebuilder.data.phonetics import plain_text

    wake_word = plain_text(model.meta.get("wake_word") or "")
    if not wake_word or not positive_texts:
        return
    texts = Counter(plain for text in positive_texts if (plain := plain_text(text)))
    found = texts.most_common(1)[0][0] if texts else ""
    if found and found != wake_word:
        raise StoreMismatchError(
            f"{', '.join(map(str, paths))}: its validation positives say {found!r}, the model's wake word is "
            f"{wake_word!r} ({model.path}); use the stores the model was fit on"
        )


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

    backbone = backbone_from_identity(model.backbone, device=config.device)
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


def stream_peak(traces: Sequence[np.ndarray]) -> float | None:
    """The highest score on the streams (``None`` without any), for ``metrics.threshold_grid``."""
    return max((float(np.max(t)) for t in traces if len(t)), default=None)


def stream_fa_per_hour(traces: Sequence[np.ndarray], hours: float, thresholds: np.ndarray,
                       config: CalibrateConfig) -> np.ndarray:
    """False accepts per hour of the smoothed ``traces`` (``hours`` long) at each of ``thresholds``."""
    frame_s = hop_samples(config.hop_s) / SAMPLE_RATE  # the hop in whole samples, as detection steps
    counts = count_events_many(traces, thresholds, frame_s=frame_s, refractory_s=config.refractory_s)
    return np.asarray(metrics.fa_per_hour(counts, hours), dtype=np.float64)


def resolved_objective(config: CalibrateConfig, *, has_stream: bool) -> str:
    """``f1`` or ``fa-per-hour``: what ``auto`` means with or without a calibration stream."""
    if config.objective != "auto":
        return config.objective
    return "fa-per-hour" if has_stream else "f1"


def choose_threshold(
    table: dict[str, np.ndarray], fa_h: np.ndarray | None, config: CalibrateConfig
) -> float:
    """Seed rule (best per-clip F1) or field rule (``fa_rule_threshold``; with ``not_below_f1``, not below the
    F1 rule's).

    With ``auto`` a target no threshold reaches takes the threshold of the fewest false accepts per hour, with
    a warning; asked for explicitly it is an error.
    """
    objective = resolved_objective(config, has_stream=fa_h is not None)
    f1_threshold = metrics.best_f1_threshold(table)
    if objective == "f1":
        return f1_threshold
    if fa_h is None:
        raise ConfigError("--objective fa-per-hour needs continuous negative audio: pass --stream AUDIO")
    return fa_rule_threshold(fa_h, table["threshold"], config.target_fa_per_hour,
                             floor=f1_threshold if config.not_below_f1 else 0.0, unbound=f1_threshold,
                             strict=config.objective != "auto")


def fa_rule_threshold(fa_h: np.ndarray, thresholds: np.ndarray, target: float, *, floor: float = 0.0,
                      unbound: float, strict: bool = False) -> float:
    """The lowest of ``thresholds`` from which every higher one has at most ``target`` FA/h, not below ``floor``.

    A stream with no more than ``target`` FA/h even at the lowest threshold (silence, or audio nothing like
    the wake word) does not bound the threshold: it takes ``unbound`` (the per-clip F1 rule's), with a
    warning, rather than the bottom of the grid. A target no threshold reaches takes the threshold of the
    fewest false accepts per hour, with a warning (``unbound`` again where that is the bottom of the grid: as
    many at every threshold); with ``strict`` it is an error.
    """
    chosen, bound = metrics.lowest_threshold_meeting(fa_h, thresholds, target), target
    if chosen is None:
        fewest = float(fa_h[-1])  # the highest threshold's: every lower one's bound is at least as high
        if strict:
            raise ConfigError(f"--target-fa-per-hour {target}: no threshold reaches it (lowest FA/h "
                              f"{fewest:.3f}); raise the target or train with more negatives")
        log.warning("no threshold reaches %.3g FA/h on the calibration stream; taking the fewest (%.3f FA/h)",
                    target, fewest)
        chosen, bound = float(metrics.lowest_threshold_meeting(fa_h, thresholds, fewest)), fewest
    if chosen <= float(thresholds[0]):  # as many at every threshold (silence, or a false accept scoring 1.0)
        log.warning("the calibration stream has at most %.3g FA/h at every threshold, so it does not bound the "
                    "threshold; taking the per-clip F1 rule's (%.3f)", bound, unbound)
        return max(unbound, floor)
    return max(chosen, floor)


def calibrate_model(
    model_dir: str | os.PathLike[str],
    store_path: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    streams: Sequence[str | os.PathLike[str]] = (),
    config: CalibrateConfig | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Calibrate a model directory; writes ``calibration.json`` and plots, returns its path and summary."""
    config = config or CalibrateConfig()
    model = load_model(model_dir)
    if model.meta.get("ensemble"):
        raise ConfigError(f"{model.path}: an ensemble (wb ensemble) takes its threshold from its members, each "
                          "calibrated on its own store; calibrate the members and combine them again")
    logits, labels = validation_logits(model, store_path)
    temperature, bias = fit_platt(logits, labels, where=f"{model.path}: its validation split")
    scores = apply_platt(logits, temperature, bias)
    fa_h, hours, traces = None, 0.0, None
    if streams:
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
    lines = {"threshold": summary["threshold"], "FA/h at threshold": summary["fa_per_hour"]}
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
        "stream_hours": hours,
        "frr_at_fa": {
            str(t): (metrics.frr_at_fa(table["frr"], fa_h, t) if fa_h is not None else None)
            for t in metrics.FA_TARGETS
        },
        "det": metrics.det_points(table["frr"], fa_h, table["threshold"]) if fa_h is not None else [],
        "sweep": sweep_rows,
        "model": str(model.path),
    }
