from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from tests.conftest import chirp, noise
from wakebuilder.audio import resample
from wakebuilder.cli import main
from wakebuilder.data.validate import Reject, ValidateConfig, validate_recordings
from wakebuilder.errors import ArtifactExistsError, BadAudioError
from wakebuilder.manifest import ClipRecord, read_manifest, write_manifest


def speechlike(duration_s: float, rate: int = 16_000) -> np.ndarray:
    """A chirp burst between quiet stretches: voiced frames over a noise floor."""
    total = int(duration_s * rate)
    out = noise(duration_s, amplitude=0.001, rate=rate)[:total]
    burst = chirp(200, 1200, duration_s / 2, rate=rate)
    start = total // 4
    out[start : start + burst.size] += burst
    return out


def read_rejects(out: Path) -> list[Reject]:
    return [Reject(**row) for row in json.loads((out / "rejects.json").read_text())]


def write(path: Path, samples: np.ndarray, rate: int = 16_000, fmt: str | None = None) -> Path:
    sf.write(path, samples, rate, format=fmt)
    return path


def test_each_bad_recording_gets_its_reason(tmp_path: Path) -> None:
    good = write(tmp_path / "good.wav", speechlike(1.2))
    stereo = write(tmp_path / "stereo.flac", np.stack([speechlike(1.0, 44_100)] * 2, axis=1), 44_100, "FLAC")
    ogg = write(tmp_path / "rate8k.ogg", speechlike(1.0, 8_000), 8_000, "OGG")
    mp3 = write(tmp_path / "voice.mp3", speechlike(1.5, 22_050), 22_050, "MP3")
    short = write(tmp_path / "short.wav", speechlike(0.3))
    long = write(tmp_path / "long.wav", speechlike(4.0))
    silent = write(tmp_path / "silent.wav", np.zeros(16_000, dtype=np.float32))
    hum = write(tmp_path / "hum.wav", 0.3 * np.sin(np.arange(16_000) * 0.1).astype(np.float32))  # loud, no speech
    clipped = write(tmp_path / "clipped.wav", np.clip(speechlike(1.0) * 50, -1, 1))
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.wav"
    corrupt.write_bytes(b"RIFF....garbage")
    inputs = [good, stereo, ogg, mp3, short, long, silent, hum, clipped, empty, corrupt]
    manifest, rejects = validate_recordings(inputs, out_dir=tmp_path / "out", config=ValidateConfig())
    records = read_manifest(manifest)
    assert {Path(r.source).name for r in records} == {"good.wav", "stereo.flac", "rate8k.ogg", "voice.mp3"}
    assert all(r.kind == "recording" and r.label == 1 for r in records)
    assert len({r.group for r in records}) == 4
    reasons = {Path(r.path).name: r.reason for r in rejects}
    assert "shorter" in reasons["short.wav"] and "longer" in reasons["long.wav"]
    assert "silent" in reasons["silent.wav"] and "clipped" in reasons["clipped.wav"]
    assert "no speech found" in reasons["hum.wav"] and "quiet (" not in reasons["hum.wav"]
    assert "empty" in reasons["empty.wav"] and "cannot decode" in reasons["corrupt.wav"]
    assert sf.info(str(tmp_path / "out" / records[1].path)).samplerate == 16_000


def test_none_passing_fails_and_cli_exits_non_zero(tmp_path: Path) -> None:
    silent = write(tmp_path / "silent.wav", np.zeros(16_000, dtype=np.float32))
    with pytest.raises(BadAudioError, match="none of the 1 recording"):
        validate_recordings([silent], out_dir=tmp_path / "out", config=ValidateConfig())
    result = CliRunner().invoke(main, ["validate", str(silent), "--out", str(tmp_path / "o2")])
    assert result.exit_code != 0 and "silent" in result.output
    good = write(tmp_path / "good.wav", speechlike(1.0))
    ok = CliRunner().invoke(main, ["validate", str(good), "--out", str(tmp_path / "o3"), "--speaker", "me"])
    assert ok.exit_code == 0 and read_manifest(ok.stdout.strip())[0].group == "me"


def test_out_folder_of_another_command_is_refused_before_writing(tmp_path: Path) -> None:
    out = tmp_path / "negatives"
    out.mkdir()
    noise_clip = write(out / "n.wav", noise(1.0))
    manifest = write_manifest(out / "manifest.jsonl", [
        ClipRecord(id="n1", path=noise_clip.name, label=0, kind="noise", group="noise"),
        ClipRecord(id="n2", path=noise_clip.name, label=0, kind="noise", group="noise"),
    ])
    before = manifest.read_bytes()
    good = write(tmp_path / "rec.wav", speechlike(1.2))
    with pytest.raises(ArtifactExistsError, match="another command wrote.*choose another --out"):
        validate_recordings([good], out_dir=out, config=ValidateConfig())
    result = CliRunner().invoke(main, ["validate", str(good), "--out", str(out)])
    assert result.exit_code != 0 and str(out) in result.output and "choose another --out" in result.output
    assert manifest.read_bytes() == before
    assert not (out / "clips").exists() and not (out / "rejects.json").exists()


def test_adding_recordings_to_an_earlier_validate_output_keeps_both(tmp_path: Path) -> None:
    first = write(tmp_path / "a.wav", speechlike(1.2))
    second = write(tmp_path / "b.wav", speechlike(1.6))
    validate_recordings([first], out_dir=tmp_path / "out", config=ValidateConfig())
    manifest, _ = validate_recordings([second], out_dir=tmp_path / "out", config=ValidateConfig())
    assert {Path(r.source).name for r in read_manifest(manifest)} == {"a.wav", "b.wav"}


def vowel_like(rate: int, amplitude: float, duration_s: float = 1.2) -> np.ndarray:
    """Three harmonics under a sine envelope, 0.3 s of silence either side (peaks clip when loud)."""
    t = np.arange(int(duration_s * rate)) / rate
    envelope = np.sin(np.pi * t / duration_s)
    tones = sum(weight * np.sin(2 * np.pi * hz * t) for hz, weight in ((180, 1.0), (720, 0.5), (1500, 0.3)))
    pad = np.zeros(int(0.3 * rate))
    return np.concatenate([pad, amplitude * envelope * tones, pad]).astype(np.float32)


def test_clipping_is_counted_at_the_file_rate_and_per_channel(tmp_path: Path) -> None:
    """Resampling rounds off the flat tops of clipped audio, and mixing a clipped channel with a clean one
    halves it: 1.5% clipped at 48 kHz reads as 0.9% at 16 kHz, so clipping is counted before either."""
    clipped = np.clip(vowel_like(48_000, 0.72), -1, 1)
    assert 0.014 < np.mean(np.abs(clipped) >= 0.999) < 0.016
    rate48 = write(tmp_path / "rate48k.wav", clipped, 48_000)
    left = np.clip(vowel_like(16_000, 3.0), -1, 1)
    one_channel = write(tmp_path / "one_channel.wav", np.stack([left, 0.1 * vowel_like(16_000, 3.0)], axis=1))
    clean48 = write(tmp_path / "clean48k.wav", vowel_like(48_000, 0.5), 48_000)
    manifest, rejects = validate_recordings([rate48, one_channel, clean48], out_dir=tmp_path / "out",
                                            config=ValidateConfig())
    reasons = {Path(r.path).name: r.reason for r in rejects}
    assert "1.5% of samples are clipped" in reasons["rate48k.wav"]
    assert "clipped" in reasons["one_channel.wav"] and "channel 1 of 2" in reasons["one_channel.wav"]
    assert [Path(r.source).name for r in read_manifest(manifest)] == ["clean48k.wav"]


def test_channels_that_cancel_when_mixed_are_named(tmp_path: Path) -> None:
    """L = -R mixes to silence: the reason is the inverted channel, not a quiet speaker."""
    voice = speechlike(1.2)
    inverted = write(tmp_path / "inverted.wav", np.stack([voice, -voice], axis=1))
    nearly = write(tmp_path / "nearly.wav", np.stack([voice, -0.95 * voice], axis=1))  # mix 32 dB down
    one_silent = write(tmp_path / "one_silent.wav", np.stack([voice, np.zeros_like(voice)], axis=1))  # 6 dB
    manifest, rejects = validate_recordings([inverted, nearly, one_silent], out_dir=tmp_path / "out",
                                            config=ValidateConfig())
    reasons = {Path(r.path).name: r.reason for r in rejects}
    for name in ("inverted.wav", "nearly.wav"):
        assert "channels cancel out when mixed to mono" in reasons[name] and "record in mono" in reasons[name]
        assert "silent" not in reasons[name]
    assert [Path(r.source).name for r in read_manifest(manifest)] == ["one_silent.wav"]


def test_a_second_validate_into_one_folder_is_refused_while_the_first_writes(tmp_path: Path) -> None:
    """Each run reads the manifest, adds its rows and writes it back: two at once lost the first one's rows.
    The second now fails at once (LockedError) and writes nothing."""
    from wakebuilder.atomic import writer_lock
    from wakebuilder.errors import LockedError

    take = write(tmp_path / "a.wav", speechlike(1.2))
    with writer_lock(tmp_path / "out" / "manifest.jsonl"), pytest.raises(LockedError, match="another wakebuilder"):
        validate_recordings([take], out_dir=tmp_path / "out", config=ValidateConfig())
    assert not (tmp_path / "out" / "clips").exists() and not (tmp_path / "out" / "manifest.jsonl").exists()


def espeak_speech(text: str = "turn on the kitchen lights", *, voice: int = 0, peak: float = 0.9) -> np.ndarray:
    """The repo's TTS saying ``text`` at ``peak``, with 0.2 s of a quiet room either side (as a recording has)."""
    from wakebuilder.data.tts import get_engine

    engine = get_engine("espeak")
    said = engine.synthesize(text, engine.voices()[voice])
    said = said / np.abs(said).max() * peak
    room = noise(0.2, amplitude=0.001)
    return np.concatenate([room, said, room]).astype(np.float32)


def write_pcm(path: Path, samples: np.ndarray, subtype: str, rate: int = 16_000) -> Path:
    sf.write(path, samples, rate, subtype=subtype)
    return path


def test_clipping_below_full_scale_is_counted_at_the_channels_own_peak(tmp_path: Path) -> None:
    """A take clipped and then turned down has its flat tops at 0.5, not 1.0: only samples at 0.999 or above were
    counted, so 20% flat tops passed. Samples within one step of the channel's own peak, in runs of 3 or more, count
    now: in 16-bit, 24-bit and float files, on either side, in one channel of two."""
    speech = espeak_speech()
    turned_down = np.clip(speech * 5, -0.5, 0.5)
    assert np.mean(np.abs(turned_down) >= 0.5) > 0.15
    files = [write_pcm(tmp_path / "pcm16.wav", turned_down, "PCM_16"),
             write_pcm(tmp_path / "pcm24.wav", np.clip(speech * 5, -0.3, 0.3), "PCM_24", 48_000),
             write_pcm(tmp_path / "float.wav", np.clip(speech * 5, -0.3, 0.3), "FLOAT"),
             write_pcm(tmp_path / "negative.wav", np.maximum(speech * 5, -0.5) / 5, "PCM_16"),
             write_pcm(tmp_path / "stereo.wav", np.stack([0.5 * speech, turned_down], axis=1), "PCM_16")]
    with pytest.raises(BadAudioError, match="none of the 5"):
        validate_recordings(files, out_dir=tmp_path / "out", config=ValidateConfig())
    reasons = {Path(r.path).name: r.reason for r in read_rejects(tmp_path / "out")}
    assert all("of samples" in reason and "are clipped" in reason for reason in reasons.values()), reasons
    assert "channel 2 of 2" in reasons["stereo.wav"]
    percent = float(reasons["pcm16.wav"].split(": ")[1].split("%")[0])
    assert 10 < percent <= 100 * np.mean(np.abs(turned_down) >= 0.5)  # lone clipped samples are no flat top


def test_clipped_positive_tops_of_an_8_bit_file_are_counted(tmp_path: Path) -> None:
    """8-bit full scale is -1 .. 127/128 = 0.992: tops clipped there never reached 0.999, so a take clipped on its
    positive side only passed as clean."""
    speech = espeak_speech()
    positive_clipped = np.where(speech > 0, np.minimum(speech * 10, 1.0), speech)
    take = write_pcm(tmp_path / "u8.wav", positive_clipped, "PCM_U8")
    stored, _ = sf.read(str(take))
    assert stored.max() == 127 / 128 and np.mean(stored == 127 / 128) > 0.05 and np.mean(stored <= -0.999) == 0
    with pytest.raises(BadAudioError, match="none of the 1.*clipped"):
        validate_recordings([take], out_dir=tmp_path / "out", config=ValidateConfig())


def sustained_vowel(pitch_hz: float = 250, peak: float = 0.95, rate: int = 16_000) -> np.ndarray:
    """A steady sung vowel: every period reaches the peak, in one or two samples (no flat top)."""
    t = np.arange(int(1.2 * rate)) / rate
    fade = np.minimum(1, np.minimum(t, 1.2 - t) / 0.1)
    vowel = fade * sum(w * np.sin(2 * np.pi * pitch_hz * k * t + k) for k, w in ((1, 1.0), (4, 0.5), (8, 0.3)))
    pad = noise(0.3, amplitude=0.001, rate=rate)
    return np.concatenate([pad, vowel / np.abs(vowel).max() * peak, pad]).astype(np.float32)


@pytest.mark.parametrize("voice", [0, 200, 555, 901])
def test_clean_speech_at_any_level_and_depth_is_not_called_clipped(tmp_path: Path, voice: int) -> None:
    """Clean speech reaches its own peak in a few samples: normalised to 0.99 or spoken softly, in 8, 16 or 24 bits,
    at 8, 16 or 48 kHz, or with its peak reached by one sample alone, it is no clipped take; nor is a steady vowel
    reaching its peak in every period (1.7% of its samples are within a step of it, but none in a run of 3)."""
    speech = espeak_speech("hey jarvis, good morning", voice=voice)
    spike = 0.4 * speech
    spike[spike.size // 2] = 0.95
    takes = [write_pcm(tmp_path / "full.wav", speech / np.abs(speech).max() * 0.99, "PCM_16"),
             write_pcm(tmp_path / "soft.wav", 0.05 * speech, "PCM_16"),
             write_pcm(tmp_path / "u8.wav", speech, "PCM_U8"),
             write_pcm(tmp_path / "u8_48k.wav", resample(0.6 * speech, 16_000, 48_000), "PCM_U8", 48_000),
             write_pcm(tmp_path / "pcm24_8k.wav", resample(speech, 16_000, 8_000), "PCM_24", 8_000),
             write_pcm(tmp_path / "float.wav", speech, "FLOAT"),
             write_pcm(tmp_path / "one_sample_peak.wav", spike, "PCM_16"),
             write_pcm(tmp_path / "sustained.wav", sustained_vowel(), "PCM_16"),
             write_pcm(tmp_path / "stereo.wav", np.stack([speech, 0.3 * speech], axis=1), "PCM_16")]
    manifest, rejects = validate_recordings(takes, out_dir=tmp_path / "out", config=ValidateConfig())
    assert rejects == [] and len(read_manifest(manifest)) == len(takes)


def test_a_recording_below_16_khz_is_kept_with_a_warning_naming_it(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """An 8 kHz take was upsampled without a word, though it has nothing above 4 kHz, unlike the TTS positives. It
    is still kept, with a warning naming the file and its rate, in the log (stderr) and in wb validate --json."""
    speech = espeak_speech()
    narrow = write_pcm(tmp_path / "phone.wav", resample(speech, 16_000, 8_000), "PCM_16", 8_000)
    narrow_ogg = write(tmp_path / "radio.ogg", resample(speech, 16_000, 11_025), 11_025, "OGG")
    wide = write_pcm(tmp_path / "studio.wav", resample(speech, 16_000, 48_000), "PCM_16", 48_000)
    with caplog.at_level("WARNING", logger="wakebuilder.data.validate"):
        manifest, rejects = validate_recordings([narrow, narrow_ogg, wide], out_dir=tmp_path / "out",
                                                config=ValidateConfig())
    assert rejects == [] and len(read_manifest(manifest)) == 3
    warned = [r.getMessage() for r in caplog.records if "Hz" in r.getMessage()]
    assert len(warned) == 2 and str(narrow) in warned[0] and "8000 Hz" in warned[0] and "11025 Hz" in warned[1]
    assert "studio.wav" not in caplog.text
    result = CliRunner().invoke(main, ["validate", str(narrow), str(wide), "--out", str(tmp_path / "o2"), "--json"])
    assert result.exit_code == 0, result.output
    assert "phone.wav" in result.stderr and "8000 Hz" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["narrowband"] == [{"path": str(narrow), "sample_rate": 8000}] and summary["rejected"] == []


def steady_hum(peak: float, rate: int = 16_000, pitch_hz: float = 120,
               harmonics: tuple[tuple[int, float], ...] = ((1, 1.0),)) -> np.ndarray:
    """A hum held steady for 1 s at ``peak`` (20 ms fades), 0.3 s of a quiet room either side."""
    t = np.arange(rate) / rate
    hum = sum(w * np.sin(2 * np.pi * pitch_hz * k * t + k) for k, w in harmonics)
    hum = hum / np.abs(hum).max() * peak * np.minimum(1, np.minimum(t, 1 - t) / 0.02)
    pad = noise(0.3, amplitude=0.001, rate=rate)
    return np.concatenate([pad, hum, pad]).astype(np.float32)


def test_a_steady_hum_in_8_bit_is_not_called_clipped(tmp_path: Path) -> None:
    """In 8 bits a smooth peak stays within one step (1/128) of its top for a few samples: a steady hum at 0.3, that
    never reaches full scale, repeats its top values at every peak (6 to 10% of its samples) and was refused as clipped.
    A flat top that a smooth peak quantised explains is no clipping now; a hum clipped at 0.5, or at 127/128 on its
    positive side only, still is."""
    buzz = ((1, 1.0), (2, 0.4), (3, 0.2))
    takes = [write_pcm(tmp_path / "hum.wav", steady_hum(0.3, harmonics=buzz), "PCM_U8"),
             write_pcm(tmp_path / "sine_48k.wav", steady_hum(0.6, 48_000, pitch_hz=50), "PCM_U8", 48_000),
             write_pcm(tmp_path / "sine_8k.wav", steady_hum(0.95, 8_000, pitch_hz=100), "PCM_U8", 8_000)]
    for take in takes:
        stored, _ = sf.read(str(take))
        assert np.abs(stored).max() < 0.96
    manifest, rejects = validate_recordings(takes, out_dir=tmp_path / "out", config=ValidateConfig())
    assert rejects == [] and len(read_manifest(manifest)) == len(takes)
    sine = steady_hum(0.9, pitch_hz=50)
    clipped = [write_pcm(tmp_path / "clipped_hum.wav", np.clip(steady_hum(0.6, harmonics=buzz), -0.5, 0.5), "PCM_U8"),
               write_pcm(tmp_path / "clipped_top.wav", np.where(sine > 0, np.minimum(1.3 * sine, 1.0), sine), "PCM_U8")]
    assert sf.read(str(clipped[1]))[0].min() > -0.95  # clipped on its positive side only, at 127/128
    with pytest.raises(BadAudioError, match="none of the 2"):
        validate_recordings(clipped, out_dir=tmp_path / "out2", config=ValidateConfig())
    assert all("are clipped" in r.reason for r in read_rejects(tmp_path / "out2"))


@pytest.mark.parametrize("subtype", ["ULAW", "ALAW"])
def test_a_loud_hum_in_mu_law_or_a_law_is_not_called_clipped(tmp_path: Path, subtype: str) -> None:
    """Mu-law and A-law store 8-bit codes on levels that are far apart near full scale (1024 of 32768 in the top
    segment): a hum at -1 to -3 dBFS, that never reaches full scale, stays on its top level for several samples at
    every peak and was refused as 4-11% clipped. Its flat tops are judged at the step near its peak now, as an 8-bit
    PCM file's are; a sine driven past full scale, or a buzz clipped at 0.5, still is refused."""
    buzz = ((1, 1.0), (2, 0.4), (3, 0.2))
    takes = [write_pcm(tmp_path / "sine.wav", steady_hum(10 ** (-1 / 20)), subtype),
             write_pcm(tmp_path / "sine_8k.wav", steady_hum(10 ** (-3 / 20), 8_000, pitch_hz=100), subtype, 8_000),
             write_pcm(tmp_path / "buzz_48k.wav", steady_hum(10 ** (-2 / 20), 48_000, pitch_hz=50, harmonics=buzz),
                       subtype, 48_000),
             write_pcm(tmp_path / "soft_buzz.wav", steady_hum(10 ** (-9 / 20), harmonics=buzz), subtype)]
    for take in takes:
        assert sf.info(str(take)).subtype == subtype and np.abs(sf.read(str(take))[0]).max() < 0.9
    manifest, rejects = validate_recordings(takes, out_dir=tmp_path / "out", config=ValidateConfig())
    assert rejects == [] and len(read_manifest(manifest)) == len(takes)
    clipped = [write_pcm(tmp_path / "clipped_sine.wav", np.clip(steady_hum(1.5, pitch_hz=50), -1, 1), subtype),
               write_pcm(tmp_path / "clipped_buzz.wav", np.clip(steady_hum(0.75, harmonics=buzz), -0.5, 0.5), subtype)]
    with pytest.raises(BadAudioError, match="none of the 2"):
        validate_recordings(clipped, out_dir=tmp_path / "out2", config=ValidateConfig())
    assert all("are clipped" in r.reason for r in read_rejects(tmp_path / "out2"))


def write_opus(path: Path, samples: np.ndarray, rate: int = 16_000) -> Path:
    sf.write(path, samples, rate, format="OGG", subtype="OPUS")
    return path


def test_clipping_is_counted_in_mp3_and_ogg_files(tmp_path: Path) -> None:
    """MP3, Vorbis and Opus turn a clipped take's flat tops into ripples about full scale, so about half its clipped
    samples decode under 0.999: a take 1.5% clipped, refused as WAV, read as 0.5-0.8% clipped and passed. In a lossy
    file a sample counts from 0.95 up now (1.4-1.6% here); the same speech unclipped at full scale (0.02%) passes."""
    speech = espeak_speech(peak=1.0)
    speech_44k = resample(speech, 16_000, 44_100)
    clipped = np.clip(2 * speech, -1, 1)
    assert 0.012 < np.mean(np.abs(clipped) >= 0.999) < 0.02
    lossy = [write(tmp_path / "clipped.mp3", clipped, fmt="MP3"),
             write(tmp_path / "clipped.ogg", np.clip(2 * speech_44k, -1, 1), 44_100, "OGG"),
             write_opus(tmp_path / "clipped.opus", clipped)]
    for take in lossy:
        decoded, _ = sf.read(str(take))
        assert np.mean(np.abs(decoded) >= 0.999) < 0.75 * np.mean(np.abs(clipped) >= 0.999)
    takes = [write(tmp_path / "clipped.wav", clipped), *lossy,
             write(tmp_path / "clean.mp3", speech, fmt="MP3"), write(tmp_path / "clean.ogg", speech_44k, 44_100, "OGG"),
             write_opus(tmp_path / "clean.opus", speech)]
    manifest, rejects = validate_recordings(takes, out_dir=tmp_path / "out", config=ValidateConfig())
    reasons = {Path(r.path).name: r.reason for r in rejects}
    assert set(reasons) == {"clipped.wav", "clipped.mp3", "clipped.ogg", "clipped.opus"}, reasons
    assert all("of samples are clipped" in reason for reason in reasons.values()), reasons
    assert sorted(Path(r.source).name for r in read_manifest(manifest)) == ["clean.mp3", "clean.ogg", "clean.opus"]
