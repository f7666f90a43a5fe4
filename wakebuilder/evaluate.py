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
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import metrics
from wakebuilder.audio import fit_to_window, load_audio
from wakebuilder.audio_stream import AudioBlocks
from wakebuilder.detect import DetectConfig, Detector, detect_blocks, load_detector, threshold_for
from wakebuilder.errors import ConfigError
from wakebuilder.manifest import read_manifest, resolve_clip_path


@dataclasses.dataclass(frozen=True, kw_only=True)
class EvalConfig(DetectConfig):
    """Scoring settings shared by every model of one comparison: those of ``wb detect``."""

    def detect_config(self) -> DetectConfig:
        """The same settings for the streaming scan."""
        return DetectConfig(**self.to_dict())


def clip_scores(detector: Detector, manifests: Sequence[str | os.PathLike[str]], *, batch_size: int = 32
                ) -> tuple[np.ndarray, np.ndarray]:
    """Score every clip of the manifests in the detector's window -> (scores, labels)."""
    windows, labels, scores = [], [], []

    def run() -> None:
        if windows:
            scores.append(np.asarray(detector.scorer(np.stack(windows)), dtype=np.float64).reshape(-1))
            windows.clear()

    for manifest in manifests:
        for record in read_manifest(manifest):
            audio = load_audio(resolve_clip_path(manifest, record))
            windows.append(fit_to_window(audio, detector.window_samples))
            labels.append(record.label)
            if len(windows) >= batch_size:
                run()
    run()
    return (np.concatenate(scores) if scores else np.zeros(0)), np.asarray(labels, dtype=np.int64)


def evaluate_detector(
    detector: Detector, *, manifests: Sequence[str | os.PathLike[str]] = (),
    streams: Sequence[str | os.PathLike[str]] = (), config: EvalConfig | None = None,
) -> dict[str, Any]:
    """Per-clip metrics at the detector's threshold, best-F1 threshold, and streaming FA/h."""
    config = config or EvalConfig()
    threshold = threshold_for(detector, config)
    result: dict[str, Any] = {"model": detector.name, "threshold": threshold}
    if manifests:
        scores, labels = clip_scores(detector, manifests, batch_size=config.batch_size)
        result["n_clips"] = int(labels.size)
        result["metrics"] = metrics.metrics_at(labels, scores, threshold)
        result["targets"] = metrics.target_table(result["metrics"])
        table = metrics.sweep(labels, scores, metrics.threshold_grid(scores))
        best = metrics.best_f1_threshold(table)
        result["best_f1"] = {"threshold": best, "f1": metrics.metrics_at(labels, scores, best)["f1"]}
    if streams:
        n_events, seconds = 0, 0.0
        for path in streams:  # a block at a time: hours of audio in bounded memory
            blocks = AudioBlocks(path)
            n_events += sum(1 for _ in detect_blocks(detector, blocks, config.detect_config()))
            seconds += blocks.seconds
        result.update(false_accepts=n_events, stream_hours=seconds / 3600,
                      fa_per_hour=float(metrics.fa_per_hour(n_events, seconds / 3600)))
    return result


def split_inputs(paths: Sequence[str]) -> tuple[list[str], list[str]]:
    """Manifests (``.jsonl``) and continuous audio files."""
    manifests = [p for p in paths if Path(p).suffix == ".jsonl"]
    return manifests, [p for p in paths if Path(p).suffix != ".jsonl"]


def evaluate_models(
    models: Sequence[str | os.PathLike[str]], inputs: Sequence[str], *, config: EvalConfig | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Evaluate each model on the same manifests and audio; one result per model."""
    if not models:
        raise ConfigError("wb eval: give a model (.onnx or model directory)")
    if not inputs:
        raise ConfigError("wb eval: give at least one labelled manifest (.jsonl) or negative audio file")
    manifests, streams = split_inputs(inputs)
    return [
        evaluate_detector(
            load_detector(m, device=device), manifests=manifests, streams=streams, config=config
        )
        for m in models
    ]


def format_comparison(results: Sequence[dict[str, Any]]) -> str:
    """One row per model: per-clip metrics and FA/h."""
    cols = ("accuracy", "precision", "recall", "f1", "far", "frr")
    head = f"{'model':<24} {'thr':>6} " + " ".join(f"{c:>9}" for c in cols) + f" {'FA/h':>8}"
    lines = [head]
    for r in results:
        m = r.get("metrics", {})
        values = " ".join(f"{m[c]:>9.4f}" if c in m else f"{'n/a':>9}" for c in cols)
        fa = f"{r['fa_per_hour']:>8.3f}" if "fa_per_hour" in r else f"{'n/a':>8}"
        lines.append(f"{r['model'][:24]:<24} {r['threshold']:>6.3f} {values} {fa}")
    return "\n".join(lines)
