"""`wb web`: the exported model in a page, run in headless Chromium with a WAV file as the microphone.

The "wake word" is the chirp of tests.model_helpers (a head fit on chirp-vs-noise
clips over the shipped speech-embedding backbone). Browser tests skip with the
reason when Chromium or ONNX Runtime Web (both installed by bin/setup) is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner

from tests.conftest import noise, tone
from tests.model_helpers import planted_stream, tone_model_with_window, tone_setup
from wakebuilder.audio import load_audio, write_wav
from wakebuilder.cli import main
from wakebuilder.detect import DetectConfig, detect_waveform, load_detector
from wakebuilder.streaming import count_events, first_frame_s, frame_windows
from wakebuilder.web.browser import Chromium, chromium_args, find_chromium
from wakebuilder.web.build import find_ort_web
from wakebuilder.web.serve import page_url, serve_in_thread

WAKE_AT = (1.5,)  # the chirp's start in the positive file, seconds
PAGE_DONE = "document.body && ['done', 'error'].includes(document.body.dataset.state)"


def _browser_missing() -> str | None:
    if find_chromium() is None:
        return "chromium not installed (bin/setup apt-get installs chromium where it runs as root)"
    try:
        find_ort_web()
    except Exception as exc:  # the library's own error names the set-up step
        return str(exc)
    return None


needs_browser = pytest.mark.skipif(_browser_missing() is not None, reason=str(_browser_missing()))


def wb(*args: str) -> str:
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("web")
    out = wb("export", "--model", str(tone_setup()["calibrated"]), "--out", str(root / "export"), "--name", "chirp")
    return Path(out) / "chirp.onnx"


@pytest.fixture(scope="module")
def page(exported: Path) -> Iterator[dict[str, Any]]:
    if _browser_missing():
        pytest.skip(str(_browser_missing()))
    out = Path(wb("web", str(exported), "--out", str(exported.parent.parent / "page")))
    wavs = {"positive": planted_stream(WAKE_AT, 5.0), "negative": np.concatenate(
        [noise(3.0, amplitude=0.05, seed=9), tone(1000, 3.0, amplitude=0.3)])}
    for name, audio in wavs.items():
        write_wav(out / f"{name}.wav", audio)
    server = serve_in_thread(out)
    yield {"dir": out, "url": page_url(server), "audio": wavs}
    server.shutdown()
    server.server_close()


def test_build_writes_a_self_contained_folder(exported: Path, tmp_path: Path) -> None:
    if _browser_missing():
        pytest.skip(str(_browser_missing()))
    out = str(tmp_path / "p")
    summary = json.loads(wb("web", str(exported.parent), "--out", out, "--refractory-s", "2", "--json"))
    (model,) = summary["models"]
    assert model["window_samples"] == 24000 and model["threshold"] == 0.5 and model["refractory_s"] == 2.0
    assert model["hop_samples"] == 1600 and model["onnx"] == "models/chirp.onnx"
    files = {p.relative_to(tmp_path / "p").as_posix() for p in (tmp_path / "p").rglob("*") if p.is_file()}
    assert {"index.html", "app.js", "worklet.js", "events.js", "page.json", "models/chirp.onnx", "models/chirp.json",
            "ort/ort.wasm.min.mjs", "ort/ort-wasm-simd-threaded.wasm"} <= files
    # nothing is loaded from the internet at page time
    for name in ("index.html", "app.js", "worklet.js", "events.js", "stream.js"):
        text = (tmp_path / "p" / name).read_text()
        assert "http://" not in text and "https://" not in text
    again = CliRunner().invoke(main, ["web", str(exported), "--out", str(tmp_path / "p")])
    assert again.exit_code != 0 and "--overwrite" in again.stderr


def test_missing_runtime_and_bad_models_fail_clearly(exported: Path, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    head = exported.with_name("chirp.head.onnx")
    result = CliRunner().invoke(main, ["web", str(head), "--out", str(tmp_path / "a")])
    monkeypatch.setenv("WB_ORT_WEB_DIR", str(tmp_path / "nothing"))
    missing = CliRunner().invoke(main, ["web", str(exported), "--out", str(tmp_path / "b")])
    assert missing.exit_code != 0 and "bin/setup" in missing.stderr and "onnxruntime-web@" in missing.stderr
    assert missing.stderr.startswith("wb: error:") and missing.stderr.count("\n") == 1
    assert not (tmp_path / "b").exists()
    assert result.exit_code != 0 and "head file" in result.stderr
    served = CliRunner().invoke(main, ["web", "serve", str(tmp_path)])
    assert served.exit_code != 0 and "not a page folder" in served.stderr


def test_server_types_and_loopback(page: dict[str, Any]) -> None:
    url = page["url"]
    assert url.startswith("http://127.0.0.1:")
    for path, mime in (("ort/ort-wasm-simd-threaded.wasm", "application/wasm"),
                       ("ort/ort.wasm.min.mjs", "text/javascript"), ("page.json", "application/json")):
        with urllib.request.urlopen(url + path) as reply:
            assert reply.headers["Content-Type"].split(";")[0] == mime, path
            assert reply.headers["Cross-Origin-Embedder-Policy"] == "require-corp"


def test_wb_web_serve_prints_its_address_and_serves(page: dict[str, Any]) -> None:
    wb_exe = Path(sys.executable).with_name("wb")
    proc = subprocess.Popen([str(wb_exe), "web", "serve", str(page["dir"]), "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    try:
        url = proc.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:"), url
        with urllib.request.urlopen(url) as reply:
            assert b"<canvas" in reply.read()
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def python_scores(onnx_path: Path, audio: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    windows = frame_windows(audio, 24000, 1600)
    return np.concatenate([session.run(None, {"waveform": np.ascontiguousarray(w[None])})[0] for w in windows])


@needs_browser
def test_page_scores_and_events_equal_python(page: dict[str, Any], exported: Path) -> None:
    results = {}
    with Chromium() as browser:
        for name in ("positive", "negative"):
            browser.goto(page["url"] + f"?selftest={name}.wav")
            browser.wait_for(PAGE_DONE, timeout_s=60)
            results[name] = browser.evaluate("JSON.stringify(window.wbResult)")
            assert results[name], browser.evaluate("document.getElementById('status').textContent")
        # the page's event rule on a crafted trace: two crossings inside the refractory period, then a third
        trace = [0.1, 0.7, 0.3, 0.8, 0.9, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.6, 0.2]
        events_js = browser.evaluate(
            "import('./events.js').then(({ EventCounter }) => { const c = new EventCounter(0.5, { frameS: 0.1, "
            f"refractoryS: 0.5, offsetS: 0.75 }}); const out = []; {json.dumps(trace)}.forEach((v, i) => "
            "out.push(...c.update(i, v).final)); return out.concat(c.flush()); })")
        nan_error = browser.evaluate(  # as streaming.EventCounter: a NaN score is an error, not "below"
            "import('./events.js').then(({ EventCounter }) => { try { new EventCounter(0.5, { frameS: 0.1 })"
            ".update(3, NaN); return 'no error'; } catch (err) { return err.message; } })")
    assert "window at 0.30 s NaN" in nan_error
    for name, raw in results.items():
        result = json.loads(raw)
        audio = load_audio(page["dir"] / f"{name}.wav")
        (model,) = result["models"]
        want = python_scores(exported, audio)
        assert len(model["raw"]) == want.size
        np.testing.assert_allclose(model["raw"], want, atol=1e-4, rtol=0)
        expected = detect_waveform(load_detector(exported), audio, DetectConfig())
        assert [(round(e["onsetS"], 6), round(e["timeS"], 6)) for e in model["events"]] == [
            (round(e.onset_s, 6), round(e.time_s, 6)) for e in expected]
    assert len(json.loads(results["positive"])["models"][0]["events"]) == 1
    assert json.loads(results["negative"])["models"][0]["events"] == []
    want_events = count_events(np.array(trace), 0.5, frame_s=0.1, refractory_s=0.5, offset_s=0.75)
    assert [v for e in events_js for v in (e["timeS"], e["score"], e["onsetS"])] == pytest.approx(
        [v for e in want_events for v in (e.time_s, e.score, e.onset_s)])
    assert len(want_events) == 2


@needs_browser
def test_several_models_one_trace_each(exported: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    for suffix in (".onnx", ".json"):
        shutil.copyfile(exported.with_suffix(suffix), other / f"second{suffix}")
    out = Path(wb("web", str(exported), str(other / "second.onnx"), "--out", str(tmp_path / "page")))
    assert [m["name"] for m in json.loads((out / "page.json").read_text())["models"]] == ["chirp", "second"]
    write_wav(out / "short.wav", planted_stream((0.2,), 1.7))
    server = serve_in_thread(out)
    try:
        with Chromium() as browser:
            browser.goto(page_url(server) + "?selftest=short.wav")
            browser.wait_for(PAGE_DONE, timeout_s=60)
            result = json.loads(browser.evaluate("JSON.stringify(window.wbResult)"))
            labels = browser.evaluate("document.getElementById('models').textContent")
    finally:
        server.shutdown()
        server.server_close()
    first, second = result["models"]
    assert len(first["raw"]) == 3 and first["raw"] == second["raw"] and labels.count("window 1.50 s") == 2
    assert len(first["events"]) == len(second["events"]) == 1


def assert_events_match(page_events: list[dict[str, float]], expected: list[Any], scores: np.ndarray, *,
                        offset_s: float, hop_s: float = 0.1) -> None:
    """The page's events are wb detect's: the same onsets, and each peak at wb detect's frame or, on a plateau
    of saturated scores, at a frame whose score ties wb detect's peak within the page's 1e-4 tolerance."""
    assert [round(e["onsetS"], 6) for e in page_events] == [round(e.onset_s, 6) for e in expected]
    for got, want in zip(page_events, expected, strict=True):
        peak = round((got["timeS"] - offset_s) / hop_s)
        assert got["timeS"] >= got["onsetS"] and scores[peak] == pytest.approx(want.score, abs=1e-4), (got, want)


def run_selftests(url: str, names: tuple[str, ...]) -> dict[str, Any]:
    """The page's ``?selftest=NAME.wav`` result for each name, in one headless Chromium."""
    results = {}
    with Chromium() as browser:
        for name in names:
            browser.goto(url + f"?selftest={name}.wav")
            browser.wait_for(PAGE_DONE, timeout_s=120)
            raw = browser.evaluate("JSON.stringify(window.wbResult)")
            assert raw, browser.evaluate("document.getElementById('status').textContent")
            results[name] = json.loads(raw)
    return results


@needs_browser
def test_models_of_different_windows_each_cut_their_own_frames(exported: Path, tmp_path: Path) -> None:
    """A 1.5 s and a 2.5 s model on one page: each scores the windows wb detect cuts for it, from the
    stream's start, so a wake word before the longer window is full is still found by the shorter model; a
    recording shorter than a model's window is centred in its one window and timed at its centre."""
    long_model = tone_model_with_window(tmp_path / "long-model", 2.5)
    long = Path(wb("export", "--model", str(long_model), "--out", str(tmp_path / "long"), "--name", "long"))
    long = long / "long.onnx"
    out = Path(wb("web", str(exported), str(long), "--out", str(tmp_path / "page")))
    wavs = {"early": planted_stream((0.3, 3.0, 6.2), 8.0), "shorter": planted_stream((0.3,), 2.0),
            "tiny": planted_stream((0.1,), 1.0)}
    for name, audio in wavs.items():
        write_wav(out / f"{name}.wav", audio)
    server = serve_in_thread(out)
    try:
        results = run_selftests(page_url(server), tuple(wavs))
        with Chromium(args=chromium_args(fake_audio=out / "early.wav")) as browser:  # the worklet's frames
            browser.goto(page_url(server) + "?autostart=1")
            browser.wait_for("window.wbState && wbState.models.length === 2 && wbState.models[1].trace.length >= 3",
                             timeout_s=60)
            live = browser.evaluate("wbState.models.map((m) => m.trace.map((p) => [p.frame, p.timeS]))")
    finally:
        server.shutdown()
        server.server_close()
    for name in wavs:
        audio = load_audio(out / f"{name}.wav")
        for onnx_path, model in zip((exported, long), results[name]["models"], strict=True):
            detector = load_detector(onnx_path)
            want = detector.scorer(frame_windows(audio, detector.window_samples, 1600))
            assert len(model["raw"]) == want.size, (name, model["name"])
            np.testing.assert_allclose(model["raw"], want, atol=1e-4, rtol=0)
            assert_events_match(model["events"], detect_waveform(detector, audio, DetectConfig()), want,
                                offset_s=first_frame_s(audio.size, detector.window_samples))
    chirp, long_result = results["early"]["models"]
    assert (len(chirp["raw"]), len(long_result["raw"])) == (66, 56)  # (8 s - window) / hop + 1
    # the wake word at 0.3 s: in each model's first window, at its own centre
    assert [m["events"][0]["onsetS"] for m in (chirp, long_result)] == pytest.approx([0.75, 1.25])
    assert len(chirp["events"]) == 3
    assert [len(m["raw"]) for m in results["shorter"]["models"]] == [6, 1]  # 2 s: one padded 2.5 s window
    assert [len(m["raw"]) for m in results["tiny"]["models"]] == [1, 1]
    assert [e["timeS"] for m in results["tiny"]["models"] for e in m["events"]] == [0.5] * 2  # its centre
    # from the microphone: the 1.5 s model scores from its first full window on, a second before the 2.5 s one
    short_live, long_live = live
    assert short_live[0] == pytest.approx([0, 0.75]) and len(short_live) > len(long_live)
    for trace, offset_s in ((short_live, 0.75), (long_live, 1.25)):
        assert all(t == pytest.approx(offset_s + 0.1 * frame) for frame, t in trace)


def live_run(page: dict[str, Any], name: str, until: str, *, timeout_s: float, screenshot: Path | None = None) -> Any:
    """Run the page on the fake microphone playing NAME.wav until ``until`` holds; returns the page's state."""
    with Chromium(args=chromium_args(fake_audio=page["dir"] / f"{name}.wav")) as browser:
        browser.goto(page["url"] + "?autostart=1")
        browser.wait_for(until, timeout_s=timeout_s)
        if screenshot is not None:
            browser.evaluate("new Promise((ok) => setTimeout(ok, 600))")  # a few more frames in the trace
            browser.screenshot(screenshot)
        return browser.evaluate(
            "({ state: document.body.dataset.state, frames: wbState.frames, status: document.getElementById('status')"
            ".textContent, detections: [...document.querySelectorAll('li.detection')]"
            ".map((li) => ({ ...li.dataset })) })")


@needs_browser
def test_fake_microphone_with_the_wake_word_detects_it(page: dict[str, Any], tmp_path: Path) -> None:
    shot = tmp_path / "web-detection.png"
    final = "!!document.querySelector('li.detection[data-final=\"1\"]')"  # the score fell back below the threshold
    seen = live_run(page, "positive", final, timeout_s=30, screenshot=shot)
    assert seen["state"] == "listening" and "resampled to 16000 Hz" in seen["status"], seen
    assert len(seen["detections"]) >= 1 and float(seen["detections"][0]["score"]) >= 0.5
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    if os.environ.get("WB_WEB_SCREENSHOT"):  # keep one for the README
        shutil.copyfile(shot, os.environ["WB_WEB_SCREENSHOT"])


@needs_browser
def test_fake_microphone_with_negatives_stays_quiet(page: dict[str, Any]) -> None:
    seen = live_run(page, "negative", "window.wbState && wbState.frames >= 45", timeout_s=30)
    assert seen["detections"] == [] and seen["frames"] >= 45, seen


def test_an_uncalibrated_model_needs_a_threshold(tmp_path: Path) -> None:
    """An uncalibrated export is refused in one line (no silent 0.5), and --threshold builds the page."""
    exported_dir = Path(wb("export", "--model", str(tone_setup()["model"]), "--out", str(tmp_path / "e")))
    result = CliRunner().invoke(main, ["web", str(exported_dir), "--out", str(tmp_path / "p")])
    assert result.exit_code != 0 and "not calibrated" in result.output and "--threshold" in result.output
    if _browser_missing() is None:
        page = json.loads((Path(wb("web", str(exported_dir), "--out", str(tmp_path / "q"), "--threshold", "0.4"))
                           / "page.json").read_text())
        assert page["models"][0]["threshold"] == 0.4


def test_a_sidecar_whose_name_differs_in_case_is_copied_and_read(exported: Path, tmp_path: Path) -> None:
    """wb web on NAME.onnx with NAME.JSON beside it (a copy through Windows or a FAT drive) took the threshold from
    the ONNX metadata, lost the settings it was calibrated with and wrote a placeholder for models/NAME.json; it
    reads and copies that sidecar now."""
    if _browser_missing():
        pytest.skip(str(_browser_missing()))
    folder = tmp_path / "copy"
    folder.mkdir()
    shutil.copy(exported, folder / "chirp.onnx")
    info = json.loads(exported.with_suffix(".json").read_text()) | {"threshold": 0.7}
    (folder / "chirp.JSON").write_text(json.dumps(info | {"calibration_config": {"smooth": 3}}))
    out = Path(wb("web", str(folder / "chirp.onnx"), "--out", str(tmp_path / "p"), "--no-stream"))
    (model,) = json.loads((out / "page.json").read_text())["models"]
    assert model["threshold"] == 0.7 and model["smooth"] == 3 and model["json"] == "models/chirp.json"
    assert json.loads((out / "models" / "chirp.json").read_text())["threshold"] == 0.7


def test_a_model_whose_suffix_is_in_capitals_is_found(exported: Path, tmp_path: Path) -> None:
    """wb web refused an exported model copied through Windows or a FAT drive as CHIRP.ONNX ('not the head file')
    and found none in an export folder holding one; the suffix is read in any case now (CHIRP.HEAD.ONNX is still
    the head file), and the page runs it with the threshold of CHIRP.JSON."""
    from wakebuilder.errors import ModelFileError
    from wakebuilder.web.build import resolve_model

    folder = tmp_path / "COPY"
    folder.mkdir()
    onnx = Path(shutil.copy(exported, folder / "CHIRP.ONNX"))
    shutil.copy(exported.with_suffix(".json"), folder / "CHIRP.JSON")
    shutil.copy(exported.with_name("chirp.head.onnx"), folder / "CHIRP.HEAD.ONNX")
    assert resolve_model(onnx) == onnx and resolve_model(folder) == onnx
    with pytest.raises(ModelFileError, match="not the head file"):
        resolve_model(folder / "CHIRP.HEAD.ONNX")
    if _browser_missing():
        pytest.skip(str(_browser_missing()))
    out = Path(wb("web", str(folder), "--out", str(tmp_path / "p"), "--no-stream"))
    (model,) = json.loads((out / "page.json").read_text())["models"]
    assert model["onnx"] == "models/CHIRP.ONNX" and model["json"] == "models/CHIRP.json" and model["threshold"] == 0.5
    assert (out / "models" / "CHIRP.ONNX").read_bytes() == exported.read_bytes()
    assert (out / "models" / "CHIRP.json").read_bytes() == exported.with_suffix(".json").read_bytes()


@pytest.mark.parametrize("rate", ["x", [16000], None, 8000])
def test_a_sample_rate_edited_by_hand_in_name_json_is_one_line(rate: Any, exported: Path, tmp_path: Path) -> None:
    """An exported NAME.json whose sample_rate is not a number crashed wb web with a ValueError or TypeError
    traceback (int() of it); it is refused like another rate, naming the file (as wb detect refuses it)."""
    from wakebuilder.errors import ModelFileError
    from wakebuilder.web.build import WebConfig, model_entry

    onnx = Path(shutil.copy(exported, tmp_path / "chirp.onnx"))
    info = json.loads(exported.with_suffix(".json").read_text())
    (tmp_path / "chirp.json").write_text(json.dumps(info | {"sample_rate": rate}))
    with pytest.raises(ModelFileError, match=re.escape(f"{onnx.with_suffix('.json')}: sample rate {rate!r}; "
                                                       "wakebuilder feeds detectors 16000 Hz audio only")):
        model_entry(onnx, WebConfig())

def test_chromium_that_never_answers_leaves_no_process_or_profile(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import contextlib
    import tempfile

    from wakebuilder.web.browser import BrowserError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    pid_file = tmp_path / "pid"
    mute = tmp_path / "chromium"  # starts, reads nothing, answers nothing
    mute.write_text(f"#!/bin/sh\necho $$ > {pid_file}\nexec sleep 60\n")
    mute.chmod(0o755)
    with pytest.raises(BrowserError, match="no answer"):
        Chromium(binary=str(mute), timeout_s=0.5)
    pid = int(pid_file.read_text())
    try:
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
        assert state.strip()[:1] in ("", "Z")  # gone, or dead and waiting for its parent
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    assert list((tmp_path / "tmp").iterdir()) == []
