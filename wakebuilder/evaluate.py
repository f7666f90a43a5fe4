"""`wb eval`: per-clip metrics on labelled manifests and FA/h on continuous negative audio.

Any detector with the exported contract can be evaluated (our ``NAME.onnx``,
another ONNX detector, or a model directory), so several models can be
compared side by side on the same data. Each manifest clip is scored once,
centred in the detector's window as in training; each audio file is treated
as continuous negative audio and scanned like ``wb detect``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wakebuilder import SAMPLE_RATE, metrics
from wakebuilder.audio import audio_seconds, fit_to_window, load_audio
from wakebuilder.audio_stream import AudioBlocks
from wakebuilder.categories import (
    CATEGORIES, OTHER, StreamSegments, file_key, from_path, record_category, segments_path, stream_categories,
)
from wakebuilder.detect import STREAM_DEFAULTS, DetectConfig, Detector, detect_blocks, load_detector, threshold_for
from wakebuilder.errors import ConfigError, ManifestError
from wakebuilder.events import Event, count_events
from wakebuilder.streaming import first_frame_s, hop_samples, score_blocks, smooth_scores
from wakebuilder.manifest import ClipRecord, is_manifest_path, read_manifest, resolve_clip_path

if TYPE_CHECKING:
    from wakebuilder.verify import Verifier, VerifySettings


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalConfig(DetectConfig):
    """Scoring settings of a comparison, those of ``wb detect``: each one not given is each model's own, as it
    was calibrated (``DetectConfig.resolved``), so every model is scored as it would run."""

    def detect_config(self) -> DetectConfig:
        """The same settings for the streaming scan."""
        return DetectConfig(**self.to_dict())


def clip_scores(detector: Detector, manifests: Sequence[str | os.PathLike[str]], *, batch_size: int = 32,
                records_out: list[ClipRecord] | None = None, paths_out: list[Path] | None = None,
                ) -> tuple[np.ndarray, np.ndarray]:
    """Score every clip of the manifests in the detector's window -> (scores, labels).

    ``records_out`` and ``paths_out``, when given, receive the clips' records and audio paths in score order.
    """
    windows, labels, scores = [], [], []

    def run() -> None:
        if windows:
            scores.append(np.asarray(detector.scorer(np.stack(windows)), dtype=np.float64).reshape(-1))
            windows.clear()

    for manifest in manifests:
        for record in read_manifest(manifest):
            path = resolve_clip_path(manifest, record)
            audio = load_audio(path)
            windows.append(fit_to_window(audio, detector.window_samples))
            labels.append(record.label)
            if records_out is not None:
                records_out.append(record)
            if paths_out is not None:
                paths_out.append(path)
            if len(windows) >= batch_size:
                run()
    run()
    return (np.concatenate(scores) if scores else np.zeros(0)), np.asarray(labels, dtype=np.int64)


def evaluate_detector(
    detector: Detector, *, manifests: Sequence[str | os.PathLike[str]] = (),
    streams: Sequence[str | os.PathLike[str]] = (), config: EvalConfig | None = None,
    categories: Sequence[str] | None = None, traces: Mapping[str, np.ndarray] | None = None,
    verify: VerifySettings | None = None,
) -> dict[str, Any]:
    """Per-clip metrics at the detector's threshold, best-F1 threshold, and streaming FA/h.

    Where ``verify`` (default: ``VerifySettings()``, as the model's files ask) verifies, a speech recognizer checks
    each detection (``wakebuilder.verify``): the threshold is the candidate one unless given, a stream's event counts
    only when verified, and a clip scored at or above the threshold that the recognizer rejects scores 0 (so the
    best-F1 sweep sees it as rejected at every threshold).

    Beside each FA/h, ``fa_per_hour_upper95``: its one-sided 95 % upper bound (``metrics.fa_per_hour_upper``), what
    the stream's length can show (0 false accepts in 25 minutes: below 7.2 an hour, not 0).

    FA/h is also given per category of negative audio (``categories``: one per
    stream, default from its path; see ``wakebuilder.categories``), and the
    manifests' negatives are counted per category of their rows. In a mixed stream,
    the clips whose text says the detector's wake word are left out. ``traces``:
    the detector's raw per-window scores of some streams (by path), computed
    elsewhere (from cached embeddings: ``stream_cache``); those are not scored again.
    """
    config = (config or EvalConfig()).resolved(detector)
    from wakebuilder.verify import VerifySettings

    verifier = (verify or VerifySettings()).for_detector(detector)
    threshold = threshold_for(detector, config, verifying=verifier is not None)
    result: dict[str, Any] = {"model": detector.name, "threshold": threshold,
                              "stream_settings": {k: getattr(config, k) for k in STREAM_DEFAULTS}}
    if verifier is not None:
        result["verify"] = {"phrase": verifier.phrase, "threshold": verifier.threshold, "margin_s": verifier.margin_s,
                            "detector_weight": verifier.detector_weight,
                            "recognizers": [member.name for member in verifier.members]}
    if manifests:
        records: list[ClipRecord] = []
        paths: list[Path] = []
        scores, labels = clip_scores(detector, manifests, batch_size=config.batch_size, records_out=records,
                                     paths_out=paths)
        if verifier is not None:
            scores = _verified_clip_scores(verifier, detector, paths, scores, threshold)
        if labels.size == 0:  # metrics of no clips would read as perfect
            raise ManifestError(f"{', '.join(map(str, manifests))}: no clips; pass a manifest of labelled clips "
                                "(label 1: the wake word, 0: not)")
        result["clip_categories"] = clip_categories(records, scores, threshold)
        result["n_clips"] = int(labels.size)
        result["metrics"] = metrics.metrics_at(labels, scores, threshold)
        result["targets"] = metrics.target_table(result["metrics"])
        result["best_f1"] = None  # F1 needs positives, its best threshold negatives too
        if 0 < labels.sum() < labels.size:
            best = metrics.best_f1_threshold(metrics.sweep(labels, scores, metrics.threshold_grid(scores)))
            result["best_f1"] = {"threshold": best, "f1": metrics.metrics_at(labels, scores, best)["f1"]}
    if streams:
        names = list(categories) if categories is not None else [from_path(p) for p in streams]
        per = _stream_tallies(detector, streams, names, config, traces or {}, verifier)
        n_events, seconds = sum(int(t[0]) for t in per.values()), sum(t[1] for t in per.values())
        result.update(false_accepts=n_events, stream_hours=seconds / 3600,
                      fa_per_hour=float(metrics.fa_per_hour(n_events, seconds / 3600)),
                      fa_per_hour_upper95=metrics.fa_per_hour_upper(n_events, seconds / 3600),
                      categories={name: _fa(int(t[0]), t[1]) for name, t in sorted(per.items())})
    return result


def _verified_clip_scores(verifier: Verifier, detector: Detector, paths: Sequence[Path], scores: np.ndarray,
                          threshold: float) -> np.ndarray:
    """``scores`` with 0 for each clip at or above ``threshold`` that ``verifier`` rejects; the clip is heard
    centred in the detector's window ``margin_s`` wider on each side, as a stream's event is."""
    out = np.array(scores, dtype=np.float64)
    length = detector.window_samples + 2 * round(verifier.margin_s * SAMPLE_RATE)
    proposed = np.flatnonzero(out >= threshold)
    heard = verifier.hears_all(lambda k: fit_to_window(load_audio(paths[proposed[k]]), length), out[proposed])
    out[proposed[~np.array(heard, dtype=bool)]] = 0.0
    return out


def _stream_tallies(detector: Detector, streams: Sequence[str | os.PathLike[str]], names: Sequence[str],
                    config: EvalConfig, traces: Mapping[str, np.ndarray],
                    verifier: Verifier | None = None) -> dict[str, list[float]]:
    """False accepts and seconds of the streams per category.

    A stream with a segments sidecar (``wb stream``) leaves out its clips that say the detector's wake word, by
    calibration's rule (``StreamSegments.negative_scores``); a mixed one (category ``other``) counts each false
    accept for the clip its peak falls in, and each clip's seconds for its category.
    """
    per: dict[str, list[float]] = {}
    sidecars = _negative_segments(streams, str(detector.info.get("wake_word") or "") or None)
    for path, name, segments in zip(streams, names, sidecars, strict=True):
        events, total_s = stream_events(detector, path, config, traces.get(str(path)), segments=segments,
                                        verifier=verifier)
        if segments is None:
            tally = per.setdefault(name, [0, 0.0])
            tally[0] += len(events)
            tally[1] += total_s
            continue
        for category, seconds in segments.seconds(window_s=detector.window_samples / SAMPLE_RATE).items():
            per.setdefault(category if name == OTHER else name, [0, 0.0])[1] += seconds * total_s / segments.duration_s
        for event in events:  # counted where the peak window centres
            per.setdefault(segments.category_at(event.time_s) if name == OTHER else name, [0, 0.0])[0] += 1
    return per


def _negative_segments(streams: Sequence[str | os.PathLike[str]], phrase: str | None) -> list[StreamSegments | None]:
    """Each stream's segments (None without a sidecar) less the clips that say ``phrase``.

    Raises:
        ConfigError: every clip of every stream says it, so no negative audio is left for FA/h (before scoring).
    """
    sidecars = [StreamSegments.read(path) for path in streams]
    sidecars = [segments.without(phrase) if segments is not None else None for segments in sidecars]
    if all(segments is not None and segments.excluded.all() for segments in sidecars):
        raise ConfigError(f"{', '.join(map(str, streams))}: every clip says {phrase!r} (by "
                          f"{', '.join(segments_path(p).name for p in streams)}), so no negative audio is left for "
                          "FA/h; pass a stream of other audio (wb stream joins negative clips into one)")
    return sidecars


def stream_events(detector: Detector, path: str | os.PathLike[str], config: EvalConfig,
                  trace: np.ndarray | None = None, *, segments: StreamSegments | None = None,
                  verifier: Verifier | None = None) -> tuple[list[Event], float]:
    """The detector's events in a stream file and its seconds: scanned like ``wb detect``, or, given the raw
    scores of its windows (``trace``), counted on them by the same rule. With ``segments``, the windows
    that overlap their left-out clips score 0 first (``StreamSegments.negative_scores``). With ``verifier``,
    only the events it keeps (the file is read whole for it when a trace is given and an event fired)."""
    config = config.resolved(detector)
    if trace is None and segments is None:  # a block at a time: hours of audio in bounded memory
        blocks = AudioBlocks(path)
        return list(detect_blocks(detector, blocks, config.detect_config(), verifier=verifier)), blocks.seconds
    hop = hop_samples(config.hop_s)
    if trace is None:  # the scores of every window (not the audio) in memory
        blocks = AudioBlocks(path)
        trace = score_blocks(blocks, detector.scorer, window_samples=detector.window_samples, hop=hop,
                             batch_size=config.batch_size)
        seconds = blocks.seconds
    else:
        seconds = audio_seconds(path)
    if segments is not None:
        trace = segments.negative_scores(trace, window_samples=detector.window_samples, hop=hop)
    events = count_events(smooth_scores(np.asarray(trace), config.smooth),
                          threshold_for(detector, config, verifying=verifier is not None),
                          frame_s=hop / SAMPLE_RATE, refractory_s=config.refractory_s,
                          offset_s=first_frame_s(round(seconds * SAMPLE_RATE), detector.window_samples))
    if verifier is not None and events:
        audio = load_audio(path)
        events = verifier.keep(events, detector.window_samples, lambda start, stop: audio[start:stop])
    return events, seconds


def _fa(events: int, seconds: float) -> dict[str, Any]:
    hours = seconds / 3600
    return {"false_accepts": events, "hours": hours,
            "fa_per_hour": float(metrics.fa_per_hour(events, hours)) if hours > 0 else None,
            "fa_per_hour_upper95": metrics.fa_per_hour_upper(events, hours)}


def clip_categories(records: Sequence[ClipRecord], scores: np.ndarray, threshold: float) -> dict[str, Any]:
    """Per category of the negative clips: how many, how many accepted, the share and per hour of clip audio."""
    out: dict[str, Any] = {}
    for record, score in zip(records, scores, strict=True):
        if record.label != 0:
            continue
        row = out.setdefault(record_category(record), {"negatives": 0, "false_accepts": 0, "seconds": 0.0})
        row["negatives"] += 1
        row["false_accepts"] += int(score >= threshold)
        row["seconds"] += float(record.duration_s)
    for row in out.values():
        row["far"] = row["false_accepts"] / row["negatives"]
        row["fa_per_hour"] = row["false_accepts"] / (row["seconds"] / 3600) if row["seconds"] > 0 else None
    return dict(sorted(out.items()))


def split_inputs(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Manifests (``.jsonl``, any case) and continuous audio files, each file once however often it is given
    (``file_key``): a manifest given twice would count its clips twice."""
    first: dict[object, str] = {}
    for path in paths:
        first.setdefault(file_key(path), path)
    once = list(first.values())
    return [p for p in once if is_manifest_path(p)], [p for p in once if not is_manifest_path(p)]


def evaluate_models(
    models: Sequence[str | os.PathLike[str]], inputs: Sequence[str], *, config: EvalConfig | None = None,
    device: str = "auto", categories: Sequence[str] = (), verify: VerifySettings | None = None,
) -> list[dict[str, Any]]:
    """Evaluate each model on the same manifests and audio; one result per model.

    ``categories`` are ``NAME=PATH`` negative audio of a named category (a file or a folder of files); ``verify``:
    whether a speech recognizer checks each detection (``evaluate_detector``).
    """
    if not models:
        raise ConfigError("wb eval: give a model (.onnx or model directory)")
    if not inputs and not categories:
        raise ConfigError("wb eval: give at least one labelled manifest (.jsonl) or negative audio file")
    manifests, plain = split_inputs(inputs)
    streams = stream_categories(plain, categories)
    return [
        evaluate_detector(
            load_detector(m, device=device), manifests=manifests, streams=[p for p, _ in streams], config=config,
            categories=[c for _, c in streams], verify=verify,
        )
        for m in models
    ]


def format_comparison(results: Sequence[dict[str, Any]]) -> str:
    """One row per model: per-clip metrics, FA/h with its 95 % upper bound (what the stream's length can show),
    and FA/h on speech, music and noise audio; a verified model's name says so (its threshold proposes)."""
    cols = ("accuracy", "precision", "recall", "f1", "far", "frr")
    extra = sorted({c for r in results for c in r.get("categories", {})} - set(CATEGORIES))
    shown = [*CATEGORIES, *extra]
    head = (f"{'model':<24} {'thr':>6} " + " ".join(f"{c:>9}" for c in cols) + f" {'FA/h':>8} {'FA/h<=95%':>9} "
            + " ".join(f"{c[:8]:>8}" for c in shown))
    lines = [head]
    for r in results:
        m = r.get("metrics", {})
        values = " ".join(f"{m[c]:>9.4f}" if m.get(c) is not None else f"{'n/a':>9}" for c in cols)
        fa = f"{r['fa_per_hour']:>8.3f}" if "fa_per_hour" in r else f"{'n/a':>8}"
        upper = r.get("fa_per_hour_upper95")
        fa += f" {upper:>9.3f}" if upper is not None else f" {'n/a':>9}"
        per = [r.get("categories", {}).get(c, {}).get("fa_per_hour") for c in shown]
        cells = " ".join(f"{v:>8.3f}" if v is not None else f"{'n/a':>8}" for v in per)
        name = f"{r['model'][:15]} (verified)" if r.get("verify") else r["model"][:24]  # its thr: the candidates'
        lines.append(f"{name:<24} {r['threshold']:>6.3f} {values} {fa} {cells}")
    return "\n".join(lines)
