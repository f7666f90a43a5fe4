"""The page's window cutting (``frameStarts``, ``centredWindow``, ``firstFrameS`` of web/assets/events.js, which
the self-test cuts a WAV file with), run in node and held to ``wakebuilder.streaming``'s. Skips where node is
missing, as test_web_wav does."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

from tests.test_web_wav import EVENTS_JS, NODE, needs_node
from wakebuilder.streaming import first_frame_s, frame_starts, frame_windows

CUT = """
import { centredWindow, firstFrameS, frameStarts } from %s;
const cases = JSON.parse(process.argv[1]);
console.log(JSON.stringify(cases.map(([n, window, hop]) => {
  const samples = Float32Array.from({ length: n }, (_, i) => i + 1);
  return { starts: frameStarts(n, window, hop), firstS: firstFrameS(n, window, 16000),
           centred: n < window ? Array.from(centredWindow(samples, window)) : null };
})));
"""

CASES = [(1, 40, 20), (10, 40, 20), (11, 40, 20), (39, 40, 20), (40, 40, 20), (100, 40, 20), (16000, 24000, 1600)]


@needs_node
def test_a_recording_shorter_than_the_window_is_cut_and_timed_as_wb_detect_cuts_it() -> None:
    """The self-test padded a recording shorter than a model's window at its end only; wb detect centres it (as
    training centres clips) and times its one frame at the recording's centre. The page must do the same."""
    done = subprocess.run([str(NODE), "--input-type=module", "-e", CUT % json.dumps(EVENTS_JS.as_uri()),
                           json.dumps(CASES)], capture_output=True, text=True, timeout=60, check=True)
    for (n, window, hop), got in zip(CASES, json.loads(done.stdout), strict=True):
        assert got["starts"] == frame_starts(n, window, hop).tolist(), (n, window)
        assert got["firstS"] == pytest.approx(first_frame_s(n, window), abs=1e-12), (n, window)
        if n < window:
            want = frame_windows(np.arange(1, n + 1, dtype=np.float32), window, hop)[0]
            np.testing.assert_array_equal(np.asarray(got["centred"], np.float32), want)
    assert json.loads(done.stdout)[-1]["firstS"] == 0.5  # 1 s under a 1.5 s model: its centre, not 0.75 s
