"""`wb web` with models calibrated at different hops: each runs at its own, as `wb detect` runs it alone.

A threshold's false accepts per hour hold only at the hop it was calibrated at
(a model calibrated at 0.1 s and scored every 0.05 s scores twice the windows),
so the page cuts each model's frames, smooths its scores and spaces its events
by that model's hop. The two models are the chirp detector as exported
(calibrated at the defaults: hop 0.1 s) and a copy whose calibration records a
0.05 s hop, smoothing over 2 frames and a 0.5 s refractory period.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.model_helpers import planted_stream, tone_setup
from tests.test_web import _browser_missing, assert_events_match, needs_browser, run_selftests, wb
from wakebuilder.audio import load_audio, write_wav
from wakebuilder.detect import DetectConfig, detect_waveform, load_detector
from wakebuilder.streaming import frame_windows, hop_samples, smooth_scores
from wakebuilder.web.browser import Chromium, chromium_args
from wakebuilder.web.serve import page_url, serve_in_thread


def copy_with_settings(onnx_path: Path, folder: Path, name: str, settings: dict[str, Any]) -> Path:
    """A copy of an exported model whose sidecar records calibration at ``settings`` (hop_s, smooth, refractory_s)."""
    folder.mkdir()
    shutil.copyfile(onnx_path, folder / f"{name}.onnx")
    info = json.loads(onnx_path.with_suffix(".json").read_text())
    (folder / f"{name}.json").write_text(json.dumps({**info, "calibration_config": settings}))
    return folder / f"{name}.onnx"


@pytest.fixture(scope="module")
def two_hops(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hops")
    slow = Path(wb("export", "--model", str(tone_setup()["calibrated"]), "--out", str(root / "slow"),
                   "--name", "slow")) / "slow.onnx"
    fast = copy_with_settings(slow, root / "fast", "fast", {"hop_s": 0.05, "smooth": 2, "refractory_s": 0.5})
    return {"slow": slow, "fast": fast}


def test_page_json_gives_each_model_its_own_hop(two_hops: dict[str, Path], tmp_path: Path) -> None:
    """Each entry carries its calibration's hop and is streamed at it; a hop that is not a whole number of mel
    frames (0.055 s: 880 samples) keeps that model on the whole-window path without taking the others off it."""
    if _browser_missing():
        pytest.skip(str(_browser_missing()))
    odd = copy_with_settings(two_hops["slow"], tmp_path / "odd", "odd", {"hop_s": 0.055})
    page = json.loads(wb("web", str(two_hops["slow"]), str(two_hops["fast"]), str(odd), "--out",
                         str(tmp_path / "page"), "--json"))
    assert "hop_samples" not in page  # no page-wide hop: nothing needs one
    assert [(m["hop_s"], m["hop_samples"], m["smooth"], m["refractory_s"]) for m in page["models"]] == [
        (0.1, 1600, 1, 1.5), (0.05, 800, 2, 0.5), (0.055, 880, 1, 1.5)]  # none recorded: the 1.5 s window
    assert ["stream" in m for m in page["models"]] == [True, True, False]
    assert all(m["stream"]["parity_max_abs_diff"] <= 1e-4 for m in page["models"][:2])
    forced = json.loads(wb("web", str(two_hops["slow"]), str(two_hops["fast"]), "--out", str(tmp_path / "forced"),
                           "--hop-s", "0.1", "--json"))
    assert [m["hop_samples"] for m in forced["models"]] == [1600, 1600]  # --hop-s overrides every model's


@needs_browser
def test_each_model_scores_and_counts_at_its_own_hop(two_hops: dict[str, Path], tmp_path: Path) -> None:
    """Self-test and microphone: each model's frames, scores and events are wb detect's for that model alone."""
    out = Path(wb("web", str(two_hops["slow"]), str(two_hops["fast"]), "--out", str(tmp_path / "page")))
    # three events further apart than the slow model's refractory period (its 1.5 s window: its calibration
    # records none); the first window already hears the first chirp
    write_wav(out / "planted.wav", planted_stream((0.3, 2.7, 4.4), 6.0))
    server = serve_in_thread(out)
    try:
        result = run_selftests(page_url(server), ("planted",))["planted"]
        with Chromium(args=chromium_args(fake_audio=out / "planted.wav")) as browser:  # the worklet's frames
            browser.goto(page_url(server) + "?autostart=1")
            browser.wait_for("window.wbState && wbState.models.length === 2 && "
                             "wbState.models.every((m) => m.trace.length >= 4)", timeout_s=60)
            live = browser.evaluate("wbState.models.map((m) => m.trace.map((p) => [p.frame, p.timeS]))")
            labels = browser.evaluate("document.getElementById('models').textContent")
    finally:
        server.shutdown()
        server.server_close()
    audio = load_audio(out / "planted.wav")
    for onnx_path, model in zip((two_hops["slow"], two_hops["fast"]), result["models"], strict=True):
        detector = load_detector(onnx_path)
        settings = DetectConfig().resolved(detector)  # what wb detect runs this model at
        hop = hop_samples(settings.hop_s)
        assert model["hop_samples"] == hop and model["path"] == "stream"
        want = detector.scorer(frame_windows(audio, detector.window_samples, hop))
        assert len(model["raw"]) == want.size, model["name"]
        np.testing.assert_allclose(model["raw"], want, atol=1e-4, rtol=0)
        expected = detect_waveform(detector, audio, DetectConfig())
        assert len(expected) == 3
        assert_events_match(model["events"], expected, smooth_scores(want, settings.smooth),
                            offset_s=detector.window_samples / 2 / 16000, hop_s=settings.hop_s)
    assert [len(m["raw"]) for m in result["models"]] == [46, 91]  # (6 s - 1.5 s) / hop + 1
    assert "hop 100 ms" in labels and "hop 50 ms" in labels
    for trace, hop_s in zip(live, (0.1, 0.05), strict=True):  # each model's frame k ends k hops of its own in
        assert all(t == pytest.approx(0.75 + hop_s * frame) for frame, t in trace), (hop_s, trace[:5])
