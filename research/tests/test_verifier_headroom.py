"""research/verifier_headroom.py: recall at k allowed false accepts, and the loudest false-accept files."""

from __future__ import annotations

import numpy as np


def test_each_allowed_false_accept_lowers_the_threshold_past_the_next_loudest(verifier_headroom) -> None:
    fa = [np.array([0.1, 0.9, 0.1]), np.array([0.7]), np.array([0.2, 0.5]), np.array([0.3])]
    pos = [np.array([0.8]), np.array([0.6, 0.1]), np.array([0.4]), np.array([0.05])]
    room = verifier_headroom.headroom(pos, fa, [0, 1, 2, 3])
    assert [room[k]["detected"] for k in (0, 1, 2, 3)] == [0, 1, 2, 3]
    assert room[1]["threshold"] > 0.7 and room[2]["threshold"] > 0.5 and room[3]["threshold"] > 0.3
    assert room[0]["threshold"] > 0.9


def test_loudest_orders_files_by_their_peak(verifier_headroom) -> None:
    traces = [np.array([0.2, 0.4]), np.array([0.9]), np.array([0.1, 0.6])]
    assert verifier_headroom.loudest(traces, ["a", "b", "c"], 2) == [("b", 0.9), ("c", 0.6)]


def test_the_export_scripts_share_their_options(real_transfer, verifier_headroom) -> None:
    import argparse

    p = argparse.ArgumentParser()
    real_transfer.export_arguments(p)
    args = p.parse_args(["--pattern", "/x/{word}-s{seed}.onnx", "--data-seeds", "0,2"])
    assert (args.window_s, args.data_seeds, args.backbone) == (1.5, [0, 2], "word-embedding")
    p = argparse.ArgumentParser()
    real_transfer.export_arguments(p, window_s=None)
    assert p.parse_args(["--pattern", "p"]).window_s is None
