from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import tone
from wakebuilder.audio import fit_to_window, load_audio, quantize_pcm16, resample, rms_dbfs, write_wav
from wakebuilder.errors import BadAudioError
from wakebuilder.fingerprint import audio_id


@pytest.mark.parametrize(("fmt", "ext"), [("WAV", "wav"), ("FLAC", "flac"), ("OGG", "ogg"), ("MP3", "mp3")])
def test_formats_decode_to_16k_mono(tmp_path: Path, fmt: str, ext: str) -> None:
    stereo = np.stack([tone(440, 1.0, rate=44_100), tone(440, 1.0, rate=44_100)], axis=1)
    path = tmp_path / f"a.{ext}"
    sf.write(path, stereo, 44_100, format=fmt)
    audio = load_audio(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(audio.shape[0] - 16_000) < 1_200  # MP3 adds encoder padding
    assert 0.2 < np.abs(audio).max() < 0.7


def test_resample_keeps_a_tone() -> None:
    signal = tone(1000, 1.0, rate=48_000)
    out = resample(signal, 48_000, 16_000)
    assert out.shape == (16_000,)
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(int(np.argmax(spectrum)) - 1000) <= 1


def test_bad_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    text = tmp_path / "notes.wav"
    text.write_text("this is not audio")
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.0, np.nan, 0.1], dtype=np.float32), 16_000, subtype="FLOAT")
    tiny = tmp_path / "tiny.wav"  # one 48 kHz sample: nothing left at 16 kHz
    sf.write(tiny, np.zeros(1, np.float32), 48_000)
    cases = [(empty, "empty"), (text, "cannot decode"), (nan, "NaN"), (tmp_path / "x.wav", "not found"),
             (tmp_path, "a folder, not an audio file"), (tiny, "no samples at 16000 Hz")]
    for path, message in cases:
        with pytest.raises(BadAudioError, match=message):
            load_audio(path)
    from wakebuilder.audio_stream import AudioBlocks

    with pytest.raises(BadAudioError, match="a folder, not an audio file"):
        AudioBlocks(tmp_path)


def test_a_cut_off_wav_is_warned_of(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """libsndfile reads a WAV cut off mid-data as a shorter clip; the header's promise tells it apart."""
    whole = write_wav(tmp_path / "whole.wav", tone(440, 1.0))
    cut = tmp_path / "cut.wav"
    cut.write_bytes(whole.read_bytes()[:16_044])
    streamed = tmp_path / "streamed.wav"  # what a recorder writing to a pipe leaves: data size 0xFFFFFFFF
    data = bytearray(whole.read_bytes())
    data[40:44] = b"\xff\xff\xff\xff"
    streamed.write_bytes(bytes(data))
    for path in (whole, streamed, tmp_path / "a.flac"):
        if path.suffix == ".flac":
            sf.write(path, tone(440, 1.0), 16_000)
        load_audio(path)
    assert "cut off" not in caplog.text
    assert load_audio(cut).shape == (8_000,)
    assert "cut.wav: cut off: its WAV header promises 16000 more bytes than it holds (0.50 s read)" in caplog.text
    from wakebuilder.audio_stream import AudioBlocks

    caplog.clear()
    assert sum(b.size for b in AudioBlocks(cut)) == 8_000 and "cut.wav: cut off" in caplog.text


def test_written_wav_hashes_to_the_precomputed_id(tmp_path: Path) -> None:
    signal = np.random.default_rng(0).uniform(-1.5, 1.5, 4000).astype(np.float32)
    write_wav(tmp_path / "a.wav", signal)
    assert audio_id(load_audio(tmp_path / "a.wav")) == audio_id(quantize_pcm16(signal))


def test_fit_to_window_centres() -> None:
    padded = fit_to_window(np.ones(4, dtype=np.float32), 8)
    assert padded.tolist() == [0, 0, 1, 1, 1, 1, 0, 0]
    cropped = fit_to_window(np.arange(10, dtype=np.float32), 4)
    assert cropped.tolist() == [3, 4, 5, 6]


def test_rms_dbfs_golden() -> None:
    assert rms_dbfs(np.ones(100, dtype=np.float32)) == pytest.approx(0.0)
    assert rms_dbfs(np.full(100, 0.5, dtype=np.float32)) == pytest.approx(-6.0206, abs=1e-3)
    assert rms_dbfs(np.zeros(10, dtype=np.float32)) == float("-inf")


def test_frame_levels_db_golden() -> None:
    from wakebuilder.audio import frame_levels_db

    samples = np.concatenate([np.full(320, 0.5, np.float32), np.zeros(320, np.float32), np.ones(100, np.float32)])
    levels = frame_levels_db(samples, 320)
    assert levels.shape == (2,)  # the partial last frame is dropped
    assert levels[0] == pytest.approx(-6.0206, abs=1e-3) and levels[1] == pytest.approx(-120.0)
    assert frame_levels_db(np.zeros(10, np.float32), 320).shape == (0,)
