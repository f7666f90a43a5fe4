from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import tone
from wakebuilder.audio import load_audio, quantize_pcm16, write_wav
from wakebuilder.cli import main
from wakebuilder.data.stream import StreamConfig, build_negative_stream
from wakebuilder.errors import ManifestError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, write_manifest


def _manifest(tmp_path: Path, labels: list[int]) -> Path:
    records = []
    for i, label in enumerate(labels):
        samples = tone(300 + 100 * i, 0.5)
        write_wav(tmp_path / f"{i}.wav", samples)
        records.append(
            ClipRecord(id=audio_id(quantize_pcm16(samples)), path=f"{i}.wav", label=label, kind="speech_negative"
                       if label == 0 else "tts", group=f"g{i}", duration_s=0.5)
        )
    return write_manifest(tmp_path / "manifest.jsonl", records)


def test_stream_has_the_duration_and_only_negatives(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [0, 0, 1])
    out = build_negative_stream([str(manifest)], out_path=tmp_path / "s.wav", config=StreamConfig(duration_s=20))
    audio = load_audio(out)
    assert audio.shape == (20 * 16_000,)
    spectrum = np.abs(np.fft.rfft(audio))
    freqs = np.fft.rfftfreq(audio.shape[0], 1 / 16_000)
    assert spectrum[np.argmin(np.abs(freqs - 300))] > 100 * spectrum[np.argmin(np.abs(freqs - 500))]
    again = build_negative_stream([str(manifest)], out_path=tmp_path / "t.wav", config=StreamConfig(duration_s=20))
    assert again.read_bytes() == out.read_bytes()


def test_stream_without_negatives_fails(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, [1])
    with pytest.raises(ManifestError, match="no negative"):
        build_negative_stream([str(manifest)], out_path=tmp_path / "s.wav", config=StreamConfig(duration_s=5))
    result = CliRunner().invoke(main, ["stream", str(manifest), "--out", str(tmp_path / "s.wav")])
    assert result.exit_code != 0 and "no negative" in result.output


def test_stream_out_must_be_a_wav(tmp_path: Path) -> None:
    """The stream is WAV bytes: an --out named .mp3 would hold WAV under the wrong name."""
    manifest = _manifest(tmp_path, [0, 0])
    result = CliRunner().invoke(main, ["stream", str(manifest), "--out", str(tmp_path / "s.mp3")])
    assert result.exit_code == 2 and "name it NAME.wav" in result.output and not (tmp_path / "s.mp3").exists()


def test_segment_starts_are_whole_samples(tmp_path: Path) -> None:
    """A start is written to the sample (n / 16000 s needs 7 decimals; 4 put it up to a sample off)."""
    import json

    from wakebuilder.categories import segments_path

    manifest = _manifest(tmp_path, [0, 0])
    out = build_negative_stream([str(manifest)], out_path=tmp_path / "s.wav", config=StreamConfig(duration_s=20))
    starts = [row[0] for row in json.loads(segments_path(out).read_text())["segments"]]
    samples = [round(start * 16_000) for start in starts]
    assert len(starts) > 5 and [s / 16_000 for s in samples] == starts
    audio = load_audio(out)
    for sample in samples[1:]:  # each clip starts there: silence (the noise floor) before, a tone from it on
        assert np.abs(audio[sample - 40 : sample - 1]).max() < 0.01 < np.abs(audio[sample : sample + 40]).max()


def test_the_segments_say_where_each_clip_ends(tmp_path: Path) -> None:
    """Without the end of a clip's audio, windows that hear it were taken to run through the pause after it
    (to the next clip's start): the sidecar records each clip's end now, to the sample, cut at the stream's end."""
    import json

    from wakebuilder.categories import StreamSegments, segments_path

    manifest = _manifest(tmp_path, [0, 0])  # 0.5 s tones
    out = build_negative_stream([str(manifest)], out_path=tmp_path / "s.wav", config=StreamConfig(duration_s=20))
    rows = json.loads(segments_path(out).read_text())["segments"]
    assert all(len(row) == 5 for row in rows)
    assert [row[4] - row[0] for row in rows[:-1]] == pytest.approx([0.5] * (len(rows) - 1), abs=1e-9)
    assert rows[-1][4] == pytest.approx(min(20.0, rows[-1][0] + 0.5), abs=1e-9)
    audio = load_audio(out)
    for row in rows[:-1]:  # the tone up to the end, the noise floor after it
        sample = round(row[4] * 16_000)
        assert np.abs(audio[sample - 40 : sample - 1]).max() > 0.01 > np.abs(audio[sample + 1 : sample + 40]).max()
    segments = StreamSegments.read(out)
    assert segments is not None and segments.ends.tolist() == [row[4] for row in rows]


def test_stream_refuses_a_clip_that_decodes_to_no_samples(tmp_path: Path) -> None:
    """A 1-sample 48 kHz WAV resamples to 0 samples; with zero gaps the stream never advanced (a hang)."""
    import signal

    import soundfile as sf

    sf.write(tmp_path / "tiny.wav", np.zeros(1, np.float32), 48_000)
    record = ClipRecord(id="tiny", path="tiny.wav", label=0, kind="speech_negative", group="g", duration_s=0.0)
    manifest = write_manifest(tmp_path / "manifest.jsonl", [record])

    def _hung(*_: object) -> None:
        raise TimeoutError("build_negative_stream did not return")

    previous = signal.signal(signal.SIGALRM, _hung)
    signal.alarm(10)
    try:
        result = CliRunner().invoke(
            main, ["stream", str(manifest), "--out", str(tmp_path / "s.wav"), "--gap-min-s", "0", "--gap-max-s", "0"]
        )
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert not isinstance(result.exception, TimeoutError)
    assert result.exit_code != 0 and "tiny.wav" in result.output and "no samples" in result.output
    assert not (tmp_path / "s.wav").exists()


def test_segments_that_belong_to_another_wav_are_refused(tmp_path: Path) -> None:
    """The sidecar and the WAV are two files: a stream rebuilt and cut off between them (new segments beside
    the old WAV, or the other way round) must not count one stream's false accepts by the other's clips."""
    from wakebuilder.categories import StreamSegments, segments_path
    from wakebuilder.errors import ConfigError

    manifest = _manifest(tmp_path, [0, 0, 0])
    out = build_negative_stream([str(manifest)], out_path=tmp_path / "s.wav", config=StreamConfig(duration_s=20))
    assert StreamSegments.read(out) is not None
    old_segments = segments_path(out).read_bytes()
    build_negative_stream([str(manifest)], out_path=out, overwrite=True, config=StreamConfig(duration_s=20, seed=1))
    segments_path(out).write_bytes(old_segments)  # the cut-off rebuild: the seed-0 segments, the seed-1 WAV
    with pytest.raises(ConfigError, match="s.segments.json.*not the segments of s.wav.*wb stream"):
        StreamSegments.read(out)
