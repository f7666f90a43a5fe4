"""The page's list of detections: every event it shows ends final, with the time and score of its own peak.

The page's ``record`` (exposed as ``window.wbRecord`` for these tests) feeds one
model's frame to its counter and keeps the list; the microphone skips frames when
scoring falls behind, so frame numbers may jump. Runs in headless Chromium and
skips with the reason where it or ONNX Runtime Web is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.model_helpers import planted_stream, tone_setup
from tests.test_web import _browser_missing, needs_browser, wb
from wakebuilder.audio import write_wav
from wakebuilder.web.browser import Chromium, chromium_args
from wakebuilder.web.serve import page_url, serve_in_thread

DETECTIONS = ("wbState.detections.map(({ onsetS, timeS, score, final, item }) => "
              "({ onsetS, timeS, score, final, shown: { ...item.dataset }, text: item.textContent }))")


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The chirp detector's page (hop 0.1 s, refractory 1 s, window 1.5 s), served, with a WAV of one chirp."""
    if _browser_missing():
        pytest.skip(str(_browser_missing()))
    root = tmp_path_factory.mktemp("detections")
    exported = Path(wb("export", "--model", str(tone_setup()["calibrated"]), "--out", str(root / "export"),
                       "--name", "chirp"))
    out = Path(wb("web", str(exported / "chirp.onnx"), "--out", str(root / "page")))
    write_wav(out / "positive.wav", planted_stream((1.5,), 5.0))
    server = serve_in_thread(out)
    yield {"dir": out, "url": page_url(server)}
    server.shutdown()
    server.server_close()


@needs_browser
def test_a_rising_edge_after_skipped_frames_finishes_the_old_event_first(page: dict[str, Any]) -> None:
    """Frames 13-24 skipped: frame 25 ends the event of frame 10 and starts another in one update. The old entry
    takes its own peak and is final; the new one stays open until the score falls, then takes its peak."""
    with Chromium() as browser:
        browser.goto(page["url"])
        browser.wait_for("document.body && document.body.dataset.state === 'ready'", timeout_s=60)
        feed = "(frames) => frames.forEach(([k, v]) => wbRecord(wbState.models[0], k, v))"
        browser.evaluate(f"({feed})({json.dumps([[10, 0.9], [11, 0.2], [12, 0.1], [25, 0.8]])})")
        both = browser.evaluate(DETECTIONS)
        browser.evaluate(f"({feed})({json.dumps([[26, 0.95], [27, 0.1], [40, 0.1]])})")
        after = browser.evaluate(DETECTIONS)
    old, new = both
    assert (old["onsetS"], old["timeS"], old["score"]) == pytest.approx((1.75, 1.75, 0.9))
    assert old["final"] and old["shown"]["final"] == "1" and old["shown"]["time"] == "1.750"
    assert "…" not in old["text"]
    assert (new["onsetS"], new["timeS"], new["score"]) == pytest.approx((3.25, 3.25, 0.8))
    assert not new["final"] and new["shown"]["final"] == "0" and new["text"].endswith("…")
    assert after[0] == old
    assert (after[1]["onsetS"], after[1]["timeS"], after[1]["score"]) == pytest.approx((3.25, 3.35, 0.95))
    assert after[1]["final"] and after[1]["shown"] == {"model": "chirp", "final": "1", "time": "3.350",
                                                       "score": "0.9500"}


@needs_browser
def test_stop_finishes_a_detection_still_open(page: dict[str, Any]) -> None:
    """Stop pressed while the wake word's event is open (in the same task that sees it open): the entry ends final
    with the time and score of the highest frame scored, as the self-test finishes its events."""
    open_then_stop = ("(() => { if (!document.querySelector('li.detection[data-final=\"0\"]')) return false; "
                      "document.getElementById('start').click(); return true; })()")
    with Chromium(args=chromium_args(fake_audio=page["dir"] / "positive.wav")) as browser:
        browser.goto(page["url"] + "?autostart=1")
        browser.wait_for(open_then_stop, timeout_s=30)
        browser.wait_for("document.body.dataset.state === 'stopped'", timeout_s=10)
        detections = browser.evaluate(DETECTIONS)
        trace = browser.evaluate("wbState.models[0].trace.map(({ timeS, score }) => ({ timeS, score }))")
        status = browser.evaluate("document.getElementById('status').textContent")
    assert status == "stopped" and detections, (status, detections)
    last = detections[-1]
    peak = max((p for p in trace if p["timeS"] >= last["onsetS"] - 1e-9), key=lambda p: p["score"])
    assert all(d["final"] and d["shown"]["final"] == "1" and "…" not in d["text"] for d in detections), detections
    assert (last["timeS"], last["score"]) == pytest.approx((peak["timeS"], peak["score"]))
    assert last["score"] >= 0.5 and last["shown"]["time"] == f"{peak['timeS']:.3f}"
