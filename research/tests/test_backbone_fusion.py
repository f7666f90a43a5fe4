"""research/backbone_fusion.py: two backbones' traces aligned on their windows' centres, then combined."""

from __future__ import annotations

import numpy as np
import pytest


def test_a_longer_window_trace_is_moved_onto_the_shorter_ones_centres(backbone_fusion) -> None:
    # A 1.5 s and a 2.5 s window, both every 0.1 s from the file's start: the 2.5 s window's frame j is centred
    # where the 1.5 s window's frame j + 5 is. A peak at the 2.5 s trace's frame 3 lands on the shorter's frame 8.
    short = np.zeros(20, np.float32)
    long = np.zeros(10, np.float32)
    long[3] = 1.0
    fused = backbone_fusion.fuse([short], [long], shift=5, k=0, how="mean")[0]
    assert fused.size == short.size
    assert int(np.argmax(fused)) == 8 and fused[8] == pytest.approx(0.5)
    # the edges take the nearest frame's score, not zeros that would read as a confident "no"
    edged = backbone_fusion.align(np.arange(10, dtype=np.float32), 5, 20)
    assert edged[:6].tolist() == [0.0] * 6 and edged[-5:].tolist() == [9.0] * 5


def test_a_running_maximum_lets_peaks_a_frame_apart_meet(backbone_fusion) -> None:
    a, b = np.zeros(12, np.float32), np.zeros(12, np.float32)
    a[5], b[6] = 0.9, 0.9
    assert backbone_fusion.fuse([a], [b], shift=0, k=0, how="min")[0].max() == 0.0
    assert backbone_fusion.fuse([a], [b], shift=0, k=1, how="min")[0].max() == pytest.approx(0.9)


def test_the_stream_rule_keeps_its_floor_and_meets_the_target(backbone_fusion) -> None:
    # 10 minutes of a stream (6,000 frames) with three bursts at 0.75: 18 FA/h up to 0.75, none above it
    trace = np.full(6000, 0.05, np.float32)
    for start in (1000, 3000, 5000):
        trace[start : start + 5] = 0.75
    assert backbone_fusion.stream_rule(trace, floor=0.2) == pytest.approx(0.76)
    assert backbone_fusion.stream_rule(trace, floor=0.9) == pytest.approx(0.9)
