"""A fused detector's stream trace from its members' traces: aligned on the centred slices, weighted, or None."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import noise
from wakebuilder import calibrate
from wakebuilder.audio import write_wav
from wakebuilder.fused_stream import fused_stream_scores
from wakebuilder.streaming import frame_starts

HOP = 1600


def members_and_info(tmp_path: Path, windows: list[int], weights: list[float]) -> tuple[list, dict]:
    """Member files (their bytes name them) and the ``fused`` record wb fuse writes for them."""
    members, records, longest = [], [], max(windows)
    for i, (window, weight) in enumerate(zip(windows, weights)):
        onnx = tmp_path / f"m{i}.onnx"
        onnx.write_bytes(f"member {i} of window {window}".encode())
        start = (longest - window) // 2
        members.append((onnx, tmp_path / f"model-{window}", "fp32"))
        records.append({"sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(), "weight": weight,
                        "slice": [start, start + window]})
    return members, {"fused": {"members": records}}


@pytest.fixture
def member_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each member's trace: its window starts (its frame's start sample plus its window, so an offset shows)."""
    def traces(model_dir: Path, stream: Path, *, hop_s: float, device: str, dtype: str) -> np.ndarray:
        window = int(model_dir.name.split("-")[1])
        return (frame_starts(48000, window, HOP) + window).astype(np.float32)

    monkeypatch.setattr(calibrate, "cached_stream_scores", traces)


def test_each_member_scores_the_centred_slice_of_the_fused_window(tmp_path: Path, member_traces: None) -> None:
    stream = write_wav(tmp_path / "s.wav", noise(3.0))
    members, info = members_and_info(tmp_path, [40000, 24000], [0.75, 0.25])
    trace = fused_stream_scores(info, 40000, members, stream, hop_s=0.1)
    starts = frame_starts(48000, 40000, HOP)  # 6 frames; the short member's slice starts 8000 samples (5 hops) in
    assert trace is not None and np.allclose(trace, 0.75 * (starts + 40000) + 0.25 * (starts + 8000 + 24000))


@pytest.mark.parametrize("change", ["half-hop slice", "other file", "short stream", "one member"])
def test_without_what_the_members_need_the_stream_goes_through_the_fused_onnx(
    tmp_path: Path, member_traces: None, change: str
) -> None:
    stream = write_wav(tmp_path / "s.wav", noise(2.0 if change == "short stream" else 3.0))
    members, info = members_and_info(tmp_path, [40000, 40000 - HOP if change == "half-hop slice" else 24000],
                                     [0.5, 0.5])
    if change == "other file":
        members[1][0].write_bytes(b"re-exported")
    if change == "one member":
        members = members[:1]
    assert fused_stream_scores(info, 40000, members, stream, hop_s=0.1) is None
