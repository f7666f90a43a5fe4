"""research/real_ensemble.py: members' traces averaged frame by frame, at the mean of their thresholds."""

from __future__ import annotations

import numpy as np
import pytest


def test_an_ensemble_averages_traces_and_thresholds(real_ensemble) -> None:
    # Two members each fire once on a different false-accept file; their average fires on neither, and the
    # real clip that both score 0.6 and 0.8 is found at the mean threshold 0.5.
    members = [{"seed": 0, "calibrated": {"threshold": 0.4}}, {"seed": 1, "calibrated": {"threshold": 0.6}}]
    silence = np.zeros(30, np.float32)
    traces = {
        0: ([np.full(30, 0.6, np.float32)], [np.r_[silence[:10], np.full(5, 0.9), silence[:15]], silence], 3600.0),
        1: ([np.full(30, 0.8, np.float32)], [silence, np.r_[silence[:10], np.full(5, 0.9), silence[:15]]], 3600.0),
    }
    single = real_ensemble.ensemble(members[:1], traces, "happy")["calibrated"]
    assert single["threshold"] == pytest.approx(0.4) and single["false_accepts"] == 1
    both = real_ensemble.ensemble(members, traces, "happy")
    assert both["seeds"] == [0, 1]
    assert both["calibrated"]["threshold"] == pytest.approx(0.5)
    assert both["calibrated"]["detected"] == 1 and both["calibrated"]["false_accepts"] == 0
