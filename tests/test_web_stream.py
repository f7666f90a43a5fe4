"""The page's streaming path: pieces cut from NAME.onnx, reused rows between windows, exact scores.

The Python reference (wakebuilder.web.stream) is checked against onnxruntime's
end-to-end NAME.onnx here without a browser; one browser test holds stream.js
to the same scores. The test audio holds digital silence, where the window's
dB floor binds and rows computed under another floor must be recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tests.model_helpers import make_model_dir, tiny_head, tone_setup
from tests.test_web import PAGE_DONE, needs_browser, wb
from wakebuilder.audio import write_wav
from wakebuilder.backbones import load_backbone
from wakebuilder.cli import main
from wakebuilder.detect import load_onnx_detector
from wakebuilder.errors import ExportParityError
from wakebuilder.streaming import frame_windows
from wakebuilder.web import stream
from wakebuilder.web.pieces import stream_pieces
from wakebuilder.web.stream import StreamingScorer, check_stream_parity, parity_audio, stream_scores


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The chirp detector (1.5 s window) and a random head over a 2.5 s window, exported."""
    root = tmp_path_factory.mktemp("stream")
    chirp = Path(wb("export", "--model", str(tone_setup()["calibrated"]), "--out", str(root / "chirp"),
                    "--name", "chirp"))
    backbone = load_backbone("speech-embedding", window_s=2.5)
    model = make_model_dir(root / "long-model", tiny_head(backbone.seq_len, backbone.dim, seed=1), backbone.identity)
    long = Path(wb("export", "--model", str(model), "--out", str(root / "long"), "--name", "long"))
    return {"chirp": chirp / "chirp.onnx", "long": long / "long.onnx"}


def end_to_end(onnx_path: Path, audio: np.ndarray, hop: int) -> np.ndarray:
    detector = load_onnx_detector(onnx_path)
    return detector.scorer(frame_windows(audio, detector.window_samples, hop))


def test_pieces_are_cut_at_the_time_poolings(models: dict[str, Path]) -> None:
    pieces = stream_pieces(models["chirp"])
    assert pieces is not None and pieces.window_samples == 24000 and pieces.db_range == 80.0
    # STFT 512 samples every 160; the CNN's first stage sees 22 frames every 2, the second 18 of those every 2
    assert pieces.receptive == {"front": 512, "stage1": 22, "stage2": 18}
    assert pieces.stride == {"front": 160, "stage1": 2, "stage2": 2}
    assert stream_pieces(models["chirp"].with_name("chirp.head.onnx")) is None  # not a speech-embedding graph


@pytest.mark.parametrize(("name", "hop"), [("chirp", 1600), ("chirp", 800), ("long", 1600), ("long", 480)])
def test_streamed_rows_and_scores_equal_the_whole_window(models: dict[str, Path], name: str, hop: int) -> None:
    pieces = stream_pieces(models[name])
    audio = parity_audio(5.0)  # noise and a sweep around digital silence: the floor binds in some windows
    windows = frame_windows(audio, pieces.window_samples, hop)
    scorer, alone = StreamingScorer(pieces, hop_samples=hop), StreamingScorer(pieces, hop_samples=hop)
    for i, window in enumerate(windows):
        np.testing.assert_allclose(scorer.window_rows(i, window), alone.whole_window_rows(window), atol=1e-4, rtol=1e-5)
    want = end_to_end(models[name], audio, hop)
    np.testing.assert_allclose(stream_scores(pieces, audio, hop), want, atol=1e-4, rtol=0)


def test_rows_are_reused_and_recomputed_only_where_the_floor_changes(models: dict[str, Path]) -> None:
    pieces = stream_pieces(models["chirp"])
    rng = np.random.default_rng(5)
    steady = (0.1 * rng.standard_normal(16000 * 4)).astype(np.float32)  # white noise: the floor never binds
    scorer = StreamingScorer(pieces, hop_samples=1600)
    windows = frame_windows(steady, 24000, 1600)
    for i, window in enumerate(windows):
        scorer.score(i, window)
    n = len(windows)
    # the first window computes all 147 frames, 63 stage-1 and 23 stage-2 rows, the second its phase's 23
    # stage-2 rows; from then on each hop adds 10 frames, 5 stage-1 rows and 5 stage-2 rows
    assert scorer.work == {"frames": 147 + 10 * (n - 1), "rows1": 63 + 5 * (n - 1), "rows2": 2 * 23 + 5 * (n - 2)}
    silent = parity_audio(5.0)
    binding = StreamingScorer(pieces, hop_samples=1600)
    for i, window in enumerate(frame_windows(silent, 24000, 1600)):
        binding.score(i, window)
    assert binding.work["rows1"] > 63 + 5 * (len(frame_windows(silent, 24000, 1600)) - 1)  # recomputed


def test_reusing_rows_under_another_floor_would_be_wrong(models: dict[str, Path],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The test audio needs the floor rule: with every row reused regardless, streamed rows drift."""
    pieces = stream_pieces(models["chirp"])
    monkeypatch.setattr(stream, "_valid", lambda entry, floor: True)
    scorer, alone = StreamingScorer(pieces, hop_samples=1600), StreamingScorer(pieces, hop_samples=1600)
    worst = max(float(np.max(np.abs(scorer.window_rows(i, w) - alone.whole_window_rows(w))))
                for i, w in enumerate(frame_windows(parity_audio(5.0), 24000, 1600)))
    assert worst > 1e-2


def test_ast_models_keep_the_whole_window_path(tiny_ast_dir: Path, tmp_path: Path) -> None:
    from wakebuilder.export import export_model
    from wakebuilder.web.build import WebConfig, build_web_page, find_ort_web

    backbone = load_backbone(str(tiny_ast_dir), device="cpu")
    model = make_model_dir(tmp_path / "model", tiny_head(backbone.seq_len, backbone.dim), backbone.identity)
    onnx_path = Path(export_model(model, tmp_path / "export", name="ast").files["onnx"])
    assert stream_pieces(onnx_path) is None
    try:
        find_ort_web()
    except Exception:  # the page itself needs ONNX Runtime Web (bin/setup)
        return
    page = build_web_page([onnx_path], tmp_path / "page", config=WebConfig(threshold=0.5))
    assert "stream" not in page["models"][0] and not list((tmp_path / "page" / "models").glob("*.stage1.onnx"))


def test_parity_check_refuses_wrong_pieces(models: dict[str, Path]) -> None:
    import dataclasses

    pieces = stream_pieces(models["chirp"])
    assert check_stream_parity(models["chirp"], pieces, 1600) <= 1e-4
    with pytest.raises(ExportParityError, match="--no-stream"):
        check_stream_parity(models["chirp"], dataclasses.replace(pieces, db_range=60.0), 1600)


@needs_browser
def test_page_streams_speech_embedding_models_with_the_scores_of_python(models: dict[str, Path],
                                                                        tmp_path: Path) -> None:
    from wakebuilder.web.browser import Chromium
    from wakebuilder.web.serve import page_url, serve_in_thread

    out = Path(wb("web", str(models["chirp"]), str(models["long"]), "--out", str(tmp_path / "page"),
                  "--threshold", "0.5"))
    plain = CliRunner().invoke(main, ["web", str(models["chirp"]), "--out", str(tmp_path / "plain"), "--no-stream"])
    assert plain.exit_code == 0
    assert "stream" not in json.loads((tmp_path / "plain" / "page.json").read_text())["models"][0]
    entries = json.loads((out / "page.json").read_text())["models"]
    assert [sorted(e["stream"]["files"]) for e in entries] == [["front", "stage1", "stage2", "tail"]] * 2
    assert all((out / f).is_file() for e in entries for f in e["stream"]["files"].values())
    audio = parity_audio(5.0)
    write_wav(out / "p.wav", audio)
    server = serve_in_thread(out)
    results: dict[str, Any] = {}
    try:
        with Chromium() as browser:
            for path in ("stream", "full"):
                browser.goto(page_url(server) + f"?selftest=p.wav&path={path}")
                browser.wait_for(PAGE_DONE, timeout_s=90)
                raw = browser.evaluate("JSON.stringify(window.wbResult || null)")
                assert raw and raw != "null", browser.evaluate("document.getElementById('status').textContent")
                results[path] = json.loads(raw)
    finally:
        server.shutdown()
        server.server_close()
    from wakebuilder.audio import load_audio

    heard = load_audio(out / "p.wav")
    for path, result in results.items():
        for model, name in zip(result["models"], ("chirp", "long"), strict=True):
            assert model["path"] == path
            want = end_to_end(models[name], heard, 1600)  # each model's own windows, as wb detect cuts them
            np.testing.assert_allclose(model["raw"], want, atol=1e-4, rtol=0)
    work = results["stream"]["models"][0]["work"]
    assert work["frames"] < 147 + 12 * (len(results["stream"]["models"][0]["raw"]) - 1)  # rows were reused
    assert results["full"]["models"][0]["work"] is None
