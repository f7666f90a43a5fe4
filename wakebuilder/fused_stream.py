"""A fused detector's probability for every window of a stream, from its members' cached backbone passes.

A fused ``NAME.onnx`` (``wakebuilder.fuse``) runs every member's backbone on every window. Where each member's
calibrated model directory is at hand and its backbone's pass over the stream is in the cache (``stream_cache``, as
the recipe's calibration leaves it), the fused trace is its members' traces combined as the fused graph combines
them: member frame ``j = i + start / hop`` is the centred slice (``start``, recorded in ``NAME.json``) of fused
frame ``i``, and the fused probability is the weighted mean of the members'. So a report need not run both
backbones over its stream again.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import audio_seconds
from wakebuilder.fingerprint import cached_file_sha256
from wakebuilder.streaming import frame_starts, hop_samples

log = logging.getLogger(__name__)


def fused_stream_scores(
    info: dict[str, Any], window_samples: int, members: Sequence[tuple[Path, Path, str]],
    stream: str | os.PathLike[str], *, hop_s: float, device: str = "auto",
) -> np.ndarray | None:
    """The fused detector's raw probability for every window of ``stream``, or None where its members' traces
    cannot give it (the caller then scores the stream through the fused ONNX).

    ``info`` and ``window_samples`` are the fused detector's; ``members`` its members as ``(onnx, model_dir,
    dtype)`` in their fused order: the export, the calibrated model it was exported from and the precision its
    stream is scored at (``calibrate.cached_stream_scores``). None when ``info`` records no such members (other
    files, or another number), a member's slice does not start a whole number of hops into the fused window, or the
    stream is not longer than that window (its one frame is centred, not sliced from the members' frames).
    """
    from wakebuilder.calibrate import cached_stream_scores

    hop = hop_samples(hop_s)
    plan = _member_plan(info, members, hop)
    n_samples = round(audio_seconds(stream) * SAMPLE_RATE)
    if plan is None or n_samples <= window_samples:
        log.info("report stream: scored through the fused detector (its members' cached passes do not give it)")
        return None
    n_frames = len(frame_starts(n_samples, window_samples, hop))
    fused = np.zeros(n_frames, dtype=np.float64)
    for (_, model_dir, dtype), (shift, width, weight) in zip(members, plan, strict=True):
        trace = cached_stream_scores(model_dir, Path(stream), hop_s=hop_s, device=device, dtype=dtype)
        if len(trace) != len(frame_starts(n_samples, width, hop)):  # another window than the one fused
            log.info("report stream: %s gives %d frames, not its fused slice's; scored through the fused detector",
                     model_dir, len(trace))
            return None
        fused += weight * np.asarray(trace[shift : shift + n_frames], dtype=np.float64)
    return fused.astype(np.float32)


def _member_plan(info: dict[str, Any], members: Sequence[tuple[Path, Path, str]],
                 hop: int) -> list[tuple[int, int, float]] | None:
    """Each member's ``(frames into its trace of fused frame 0, window, weight)`` from ``info["fused"]``; None
    where the records are not of ``members``' files or a slice starts between hops."""
    fused = info.get("fused")
    records = fused.get("members") if isinstance(fused, dict) else None
    if not isinstance(records, list) or len(records) != len(members):
        return None
    plan = []
    for record, (onnx, _, _) in zip(records, members):
        try:
            (start, end), weight, sha256 = record["slice"], float(record["weight"]), record["sha256"]
        except (KeyError, TypeError, ValueError):  # a NAME.json of another version or hand-edited
            return None
        if sha256 != cached_file_sha256(onnx) or not (
                isinstance(start, int) and isinstance(end, int) and start % hop == 0 and end > start):
            return None
        plan.append((start // hop, end - start, weight))
    return plan
