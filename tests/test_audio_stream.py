"""File-mode scoring reads audio in blocks: same samples, same events, never the whole file at once."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from tests.conftest import noise, tone
from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import load_audio
from wakebuilder.audio_stream import AudioBlocks
from wakebuilder.cli import main
from wakebuilder.detect import DetectConfig, Detector, detect_file, detect_waveform
from wakebuilder.errors import BadAudioError
from wakebuilder.streaming import score_blocks, score_waveform

WINDOW = 8000


def loudness_detector() -> Detector:
    """Scores a window by its RMS (tones above 0.3 fire): enough to compare code paths exactly."""

    def score(windows: np.ndarray) -> np.ndarray:
        return np.sqrt(np.mean(np.square(windows), axis=1)) * 2

    return Detector("loudness", score, WINDOW, 0.4, {})


def long_file(path: Path, *, rate: int = SAMPLE_RATE, channels: int = 1) -> Path:
    """12 s of faint noise with three loud tones, at ``rate``."""
    audio = noise(12.0, amplitude=0.02, rate=rate)
    for start in (2.0, 5.5, 9.0):
        burst = tone(440, 0.8, amplitude=0.6, rate=rate)
        audio[int(start * rate) : int(start * rate) + burst.size] += burst
    data = np.stack([audio] * channels, axis=1) if channels > 1 else audio
    sf.write(str(path), data, rate, subtype="PCM_16")
    return path


def forbid_whole_file_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded a whole file: memory would grow with its length")

    import wakebuilder.audio

    monkeypatch.setattr(sf, "read", refuse)
    monkeypatch.setattr(wakebuilder.audio, "load_audio", refuse)


@pytest.mark.parametrize(("rate", "channels"), [(16_000, 1), (44_100, 2), (8_000, 1)])
def test_blocks_equal_load_audio_and_stay_small(tmp_path: Path, rate: int, channels: int) -> None:
    path = long_file(tmp_path / "a.wav", rate=rate, channels=channels)
    whole = load_audio(path)
    blocks = AudioBlocks(path, block_s=0.7)
    parts = list(blocks)
    assert np.array_equal(np.concatenate(parts), whole)
    assert blocks.samples == whole.size and blocks.seconds == pytest.approx(12.0, abs=1e-3)
    assert max(p.size for p in parts) <= 0.7 * SAMPLE_RATE + 2048  # one block (plus resampler slack)


def test_bad_files_are_bad_audio(tmp_path: Path) -> None:
    with pytest.raises(BadAudioError, match="not found"):
        AudioBlocks(tmp_path / "none.wav")
    (tmp_path / "empty.wav").write_bytes(b"")
    with pytest.raises(BadAudioError, match="empty"):
        AudioBlocks(tmp_path / "empty.wav")
    (tmp_path / "junk.wav").write_bytes(b"RIFF not really")
    with pytest.raises(BadAudioError, match="cannot decode"):
        list(AudioBlocks(tmp_path / "junk.wav"))
    sf.write(str(tmp_path / "nan.wav"), np.array([0.1, np.nan, 0.2] * 100, dtype=np.float32), SAMPLE_RATE,
             subtype="FLOAT")
    with pytest.raises(BadAudioError, match="NaN"):
        list(AudioBlocks(tmp_path / "nan.wav"))


def test_detect_file_equals_the_whole_waveform_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = long_file(tmp_path / "a.wav", rate=22_050)
    detector, config = loudness_detector(), DetectConfig(hop_s=0.05, smooth=2, refractory_s=0.5)
    expected = detect_waveform(detector, load_audio(path), config)
    assert len(expected) == 3
    forbid_whole_file_reads(monkeypatch)
    assert list(detect_file(detector, path, config)) == expected


def test_score_blocks_equals_score_waveform(tmp_path: Path) -> None:
    path = long_file(tmp_path / "a.wav")
    scorer = loudness_detector().scorer
    whole = score_waveform(load_audio(path), scorer, window_samples=WINDOW, hop=1600, batch_size=7)
    assert np.array_equal(score_blocks(AudioBlocks(path, block_s=0.3), scorer, window_samples=WINDOW, hop=1600,
                                       batch_size=7), whole)
    short = np.zeros(100, dtype=np.float32)  # shorter than a window: one padded frame, as before
    assert score_blocks([short], scorer, window_samples=WINDOW, hop=1600).shape == (1,)


def test_wb_detect_and_eval_stream_files_in_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wakebuilder.detect
    import wakebuilder.evaluate

    path = long_file(tmp_path / "a.wav")
    monkeypatch.setattr(wakebuilder.detect, "load_detector", lambda *a, **k: loudness_detector())
    monkeypatch.setattr(wakebuilder.evaluate, "load_detector", lambda *a, **k: loudness_detector())
    forbid_whole_file_reads(monkeypatch)
    runner = CliRunner()
    detect = runner.invoke(main, ["detect", "model.onnx", str(path), "--json"])
    assert detect.exit_code == 0, detect.output
    assert len([json.loads(line) for line in detect.output.splitlines()]) == 3
    evaluate = runner.invoke(main, ["eval", "model.onnx", str(path), "--json"])
    assert evaluate.exit_code == 0, evaluate.output
    (result,) = json.loads(evaluate.output)
    assert result["false_accepts"] == 3 and result["stream_hours"] == pytest.approx(12 / 3600)


def test_calibrate_stream_scores_in_blocks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wakebuilder.calibrate import CalibrateConfig, stream_file_scores

    path = long_file(tmp_path / "a.wav")
    scorer = loudness_detector().scorer
    expected = score_waveform(load_audio(path), scorer, window_samples=WINDOW, hop=1600, batch_size=32)
    forbid_whole_file_reads(monkeypatch)
    trace, seconds = stream_file_scores(path, scorer, window_samples=WINDOW, config=CalibrateConfig())
    hours = seconds / 3600
    assert np.array_equal(trace, expected) and hours == pytest.approx(12 / 3600)
