from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import chirp, tone
from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import load_audio, write_wav
from wakebuilder.cli import main
from wakebuilder.data.nonspeech import generators, music, noise
from wakebuilder.data.nonspeech.babble import SpeechSources
from wakebuilder.data.nonspeech.make import NonspeechConfig, make_nonspeech, nonspeech_clip
from wakebuilder.errors import ArtifactExistsError, ConfigError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, read_manifest, resolve_clip_path, write_manifest

N = 2 * SAMPLE_RATE


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _spectrum(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    power = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    return np.fft.rfftfreq(x.size, 1 / SAMPLE_RATE), power


def _peak_near(freqs: np.ndarray, power: np.ndarray, hz: float, *, width_hz: float = 3.0, floor_hz: float = 40.0) -> float:
    """How many dB the strongest bin within ``width_hz`` of ``hz`` stands above the median of its surroundings."""
    near = np.abs(freqs - hz) <= width_hz
    around = (np.abs(freqs - hz) > 2 * width_hz) & (np.abs(freqs - hz) < floor_hz)
    return float(10 * np.log10(power[near].max() / np.median(power[around])))


@pytest.mark.parametrize("name", sorted(generators.SYNTHETIC))
def test_each_generator_is_deterministic_for_a_seed(name: str) -> None:
    first = generators.draw(name, generators.clip_rng(3, name, 5))
    again = generators.draw(name, generators.clip_rng(3, name, 5))
    other = generators.draw(name, generators.clip_rng(4, name, 5))
    assert first == again and first["generator"] == name and first["group"].split(":")[0] == name
    x, y = generators.render(first, N), generators.render(again, N)
    np.testing.assert_array_equal(x, y)
    assert x.dtype == np.float32 and x.shape == (N,) and np.isfinite(x).all()
    assert abs(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))) - 1.0) < 1e-3
    assert not np.array_equal(x, generators.render(other, N))


@pytest.mark.parametrize(("color", "slope_db"), [("white", 0.0), ("pink", -3.0), ("brown", -6.0), ("blue", 3.0),
                                                 ("violet", 6.0)])
def test_noise_colours_have_their_slope_per_octave(color: str, slope_db: float) -> None:
    x = noise.colored_noise(4 * SAMPLE_RATE, color, _rng(1))
    assert abs(noise.octave_slope_db(x) - slope_db) < 0.5


@pytest.mark.parametrize("timbre", sorted(music.TIMBRES))
def test_a_note_has_peaks_at_integer_multiples_of_its_fundamental(timbre: str) -> None:
    f0 = music.midi_hz(57)  # 220 Hz
    x = music.note(f0, 1.0, timbre)
    freqs, power = _spectrum(x)
    assert _peak_near(freqs, power, f0) > 20
    for k in (2, 3):  # the flute's 2nd and 3rd, every timbre's lower harmonics
        assert _peak_near(freqs, power, k * f0) > 15
    # nothing between the harmonics: half-way points are far below the fundamental
    assert power[np.abs(freqs - 1.5 * f0) < 3].max() < 1e-3 * power[np.abs(freqs - f0) < 3].max()


def test_music_has_note_onsets_and_harmonic_partials() -> None:
    setting = music.MusicSetting("major", "organ", "strings", drums=True, bass=True)
    x = music.render_music(4 * SAMPLE_RATE, setting, _rng(2), tempo_bpm=120, key=57)
    freqs, power = _spectrum(x)
    # a harmonic signal: the spectrum is peaky (a few bins hold most of the energy), unlike noise
    top = np.sort(power)[::-1]
    assert top[: power.size // 100].sum() > 0.6 * power.sum()
    level = 10 * np.log10(np.convolve(x**2, np.ones(400) / 400, mode="valid") + 1e-12)
    assert level.max() - np.median(level) > 6  # drum hits and note onsets stand out


@pytest.mark.parametrize("mains_hz", [50.0, 60.0])
def test_hum_peaks_at_mains_multiples(mains_hz: float) -> None:
    x = noise.mains_hum(4 * SAMPLE_RATE, _rng(3), mains_hz=mains_hz, harmonics=5)
    freqs, power = _spectrum(x)
    for k in range(1, 6):
        assert _peak_near(freqs, power, k * mains_hz, width_hz=1.0, floor_hz=20.0) > 20
    other = 60.0 if mains_hz == 50.0 else 50.0
    assert _peak_near(freqs, power, other * 7, width_hz=1.0, floor_hz=20.0) < 10


def test_clicks_are_impulsive() -> None:
    x = noise.clicks(4 * SAMPLE_RATE, _rng(4), rate_hz=2.0, decay_ms=1.0)
    assert noise.crest_factor_db(x) > 20
    assert noise.crest_factor_db(noise.colored_noise(4 * SAMPLE_RATE, "white", _rng(4))) < 15
    assert noise.crest_factor_db(tone(440, 1.0)) == pytest.approx(3.01, abs=0.05)


def test_room_tone_is_low_and_tones_and_chirps_are_where_they_say() -> None:
    freqs, power = _spectrum(noise.room_tone(4 * SAMPLE_RATE, _rng(5), cutoff_hz=300, mod_hz=0.2, mod_depth=0.3))
    assert power[freqs < 600].sum() > 0.9 * power.sum()
    freqs, power = _spectrum(noise.tones(N, _rng(5), freqs_hz=(1000.0,), beep_s=0.2, gap_s=0.1))
    assert abs(freqs[np.argmax(power)] - 1000) < 2
    freqs, power = _spectrum(noise.chirps(N, _rng(5), low_hz=500, high_hz=2000, sweep_s=0.5, log=False))
    assert power[(freqs > 450) & (freqs < 2050)].sum() > 0.98 * power.sum()


def test_babble_overlaps_several_voices_from_a_manifest(tmp_path: Path) -> None:
    records = []
    for i, f0 in enumerate((150, 220, 330, 500, 700, 900)):
        clip = chirp(f0, f0 * 1.5, 0.7) if i % 2 else tone(f0, 0.6)
        clip_id = audio_id(clip)
        write_wav(tmp_path / f"{clip_id}.wav", clip)
        records.append(ClipRecord(id=clip_id, path=f"{clip_id}.wav", label=0, kind="speech_negative",
                                  group=f"voice{i}", text=f"sentence {i}"))
    wake = tone(1234, 0.5)
    write_wav(tmp_path / "wake.wav", wake)
    records.append(ClipRecord(id=audio_id(wake), path="wake.wav", label=1, kind="tts", group="v", text="wake"))
    manifest = write_manifest(tmp_path / "speech.jsonl", records)
    config = NonspeechConfig(n=2, kinds=("babble",), babble_from=str(manifest))
    sources = SpeechSources.from_manifest(manifest)
    assert len(sources.records) == 6  # the wake word is never babble
    x, params = nonspeech_clip(config, 0, sources)
    talkers = params["talkers"]
    assert 3 <= talkers <= 8 and len({i for i in params["talker_clips"]}) >= min(talkers, 6) - 1
    assert "wake" not in params["text"] and params["text"].count("sentence") >= 3
    np.testing.assert_array_equal(x, nonspeech_clip(config, 0, sources)[0])


def test_make_nonspeech_writes_a_manifest_and_refuses_an_existing_output(tmp_path: Path) -> None:
    config = NonspeechConfig(n=9, duration_s=1.0, seed=1)
    manifest = make_nonspeech(config, out_dir=tmp_path / "ns")
    rows = read_manifest(manifest)
    assert len(rows) == 9
    assert [r.params["generator"] for r in rows] == [*generators.SYNTHETIC, *generators.SYNTHETIC[:2]]
    assert {r.kind for r in rows} == {"noise", "music"} and all(r.label == 0 for r in rows)
    assert all(r.group.startswith(r.params["generator"]) for r in rows)
    for row in rows:  # each row's params rebuild its clip
        samples = load_audio(resolve_clip_path(manifest, row))
        level = row.params["level_dbfs"]
        rebuilt = generators.render(row.params, samples.size) * 10 ** (level / 20) * row.params.get("limiter_gain", 1.0)
        np.testing.assert_allclose(samples, rebuilt, atol=2 / 32768)
        assert abs(20 * np.log10(np.sqrt(np.mean(samples**2))) - level) < 0.2 or "limiter_gain" in row.params
    with pytest.raises(ArtifactExistsError, match="already exists"):
        make_nonspeech(config, out_dir=tmp_path / "ns")
    again = read_manifest(make_nonspeech(config, out_dir=tmp_path / "ns", overwrite=True, workers=1))
    assert [r.id for r in again] == [r.id for r in rows]  # one thread or one per core: the same clips in order
    more = read_manifest(make_nonspeech(config.replace(n=12), out_dir=tmp_path / "more"))
    assert [r.id for r in more[:9]] == [r.id for r in rows]  # a larger N only adds clips
    with pytest.raises(ConfigError, match="--kinds"):
        make_nonspeech(config.replace(kinds=("noise", "opera")), out_dir=tmp_path / "bad")


def test_cli_nonspeech(tmp_path: Path) -> None:
    out = tmp_path / "ns"
    args = ["negatives", "--nonspeech", "4", "--kinds", "music,hum", "--duration-s", "0.5", "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out / "manifest.jsonl")
    assert [r.params["generator"] for r in read_manifest(out / "manifest.jsonl")] == ["music", "hum"] * 2
    assert json.loads((out / "nonspeech_config.json").read_text())["kinds"] == ["music", "hum"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1 and "already exists; pass --overwrite" in refused.output
    missing = CliRunner().invoke(main, ["negatives", "--nonspeech", "2"])
    assert missing.exit_code != 0 and "--out" in missing.output


def test_nonspeech_rows_and_their_augmented_copies_count_as_music_or_noise(tmp_path: Path) -> None:
    from wakebuilder.categories import record_category
    from wakebuilder.data.augment.pipeline import run_augment
    from wakebuilder.data.augment.transforms import AugmentConfig

    config = NonspeechConfig(n=3, kinds=("music", "hum", "noise"), duration_s=0.5)
    manifest = make_nonspeech(config, out_dir=tmp_path / "ns")
    rows = read_manifest(manifest)
    assert [r.params["category"] for r in rows] == ["music", "noise", "noise"]
    copies = read_manifest(run_augment(manifest, out_dir=tmp_path / "aug", config=AugmentConfig(copies=1, seed=0)))
    parents = {r.id: r for r in rows}
    assert copies and all(c.kind == "augmented" for c in copies)
    assert all(record_category(c) == parents[c.parent_id].params["category"] for c in copies)


def test_a_generator_named_twice_in_kinds_is_refused_not_deduplicated(tmp_path: Path) -> None:
    # clip i draws from (seed, generator, i // len(kinds)): a generator named twice made pairs of identical
    # clips, which the manifest deduplicated, so --nonspeech 6 wrote 4 clips without a word
    config = NonspeechConfig(n=6, kinds=("noise", "noise", "music"), duration_s=0.5)
    with pytest.raises(ConfigError, match="noise.*once"):
        make_nonspeech(config, out_dir=tmp_path / "ns", workers=1)
    assert not (tmp_path / "ns").exists()


def test_drawn_chirps_stay_below_the_nyquist_frequency() -> None:
    """A sweep above 8 kHz folds back at 16 kHz (about 4 % of draws went up to 12 kHz): the top is capped,
    and the draws of every other parameter (and of other clips) are unchanged."""
    drawn = [generators.draw("chirp", generators.clip_rng(0, "chirp", i)) for i in range(400)]
    assert max(p["high_hz"] for p in drawn) <= noise.CHIRP_MAX_HZ < SAMPLE_RATE / 2
    assert sum(p["high_hz"] == noise.CHIRP_MAX_HZ for p in drawn) >= 4  # the cap was reached, not avoided
    assert all(p["high_hz"] > p["low_hz"] for p in drawn)
    again = generators.draw("chirp", generators.clip_rng(0, "chirp", 7))
    assert again == drawn[7]
