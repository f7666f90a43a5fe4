"""Transforms, the chain, run_augment (reproducible, resumable) and the `wb augment` command."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from click.testing import CliRunner

from tests.conftest import chirp, noise, tone
from wakebuilder.audio import load_audio, quantize_pcm16, write_wav
from wakebuilder.cli import main
from wakebuilder.data.augment.banks import Banks, NoiseBank, RirBank
from wakebuilder.data.augment.pipeline import JOURNAL_NAME, run_augment
from wakebuilder.data.augment.transforms import AugmentConfig, apply_chain, clip_rng, draw_chain
from wakebuilder.errors import ConfigError, ManifestError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, read_manifest, resolve_clip_path, write_manifest

ALL_ON = AugmentConfig(speed_p=1, pitch_p=1, reverb_p=1, eq_p=1, shift_p=1, noise_p=1)


def test_gain_golden() -> None:
    x = tone(440, 0.5)
    np.testing.assert_allclose(apply_chain(x, [{"transform": "gain", "gain_db": -6.020599913}]), x / 2, atol=1e-6)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "file"])
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_mixed_noise_snr_within_half_a_db(tmp_path: Path, kind: str, snr_db: float) -> None:
    x = chirp(200, 3000, 1.5, amplitude=0.3)
    write_wav(tmp_path / "hum.wav", tone(60, 4.0, amplitude=0.2) + noise(4.0, amplitude=0.05))
    banks = Banks(noise=NoiseBank.open(tmp_path))
    params = {"transform": "noise", "type": kind, "snr_db": snr_db, "seed": 7, "file": "hum.wav", "start_s": 1.2}
    residual = quantize_pcm16(apply_chain(x, [params], banks=banks)) - x  # as written to the WAV
    measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(residual.astype(np.float64) ** 2))
    assert abs(measured - snr_db) < 0.5


def _banks(tmp_path: Path) -> Banks:
    (tmp_path / "noise").mkdir(exist_ok=True)
    (tmp_path / "rir").mkdir(exist_ok=True)
    write_wav(tmp_path / "noise" / "hum.wav", tone(60, 3.0, amplitude=0.2))
    sf.write(tmp_path / "noise" / "fan-22k.wav", noise(2.0, rate=22050), 22050)  # decoded and resampled
    decay = np.exp(-np.arange(3000) / 600.0) * noise(3000 / 16000, seed=4, amplitude=1.0)
    write_wav(tmp_path / "rir" / "hall.wav", np.concatenate([[0.0, 0.9], 0.3 * decay]))
    return Banks(NoiseBank.open(tmp_path / "noise"), RirBank.open(tmp_path / "rir"))


def test_numba_chain_equals_numpy_chain(tmp_path: Path) -> None:
    banks = _banks(tmp_path)
    x = tone(300, 1.5) + noise(1.5, seed=3)
    config = ALL_ON.replace(noise_file_p=0.5, rir_file_p=0.5)
    kinds = set()
    for copy in range(12):
        chain = draw_chain(clip_rng(0, "0123456789abcdef", copy), config, banks, length=x.size)
        kinds |= {f"{p['transform']}:{p.get('type', 'file' if 'rir_file' in p else '')}" for p in chain}
        fast, slow = apply_chain(x, chain, banks=banks), apply_chain(x, chain, banks=banks, backend="numpy")
        assert fast.shape == slow.shape and np.abs(fast).max() <= 0.99 + 1e-6
        np.testing.assert_allclose(fast, slow, atol=1e-4)
    assert {"noise:file", "reverb:file", "reverb:"} <= kinds


def test_lengths_speed_changes_pitch_and_shift_keep() -> None:
    x = tone(300, 1.0)
    assert apply_chain(x, [{"transform": "speed", "speed_factor": 1.25}]).size == 12_800
    assert apply_chain(x, [{"transform": "pitch", "pitch_semitones": 3.0}]).size == x.size
    rolled = apply_chain(x, [{"transform": "shift", "shift_s": 0.1, "mode": "circular"}])
    np.testing.assert_array_equal(rolled, np.roll(x, 1600))
    padded = apply_chain(x, [{"transform": "shift", "shift_s": -0.1, "mode": "pad"}])
    assert not padded[-1600:].any() and np.array_equal(padded[:-1600], x[1600:])
    assert np.abs(apply_chain(x * 3, [{"transform": "limit", "peak": 0.9}])).max() == pytest.approx(0.9)


@pytest.mark.parametrize("semitones", [-2.0, 1.0, 2.0, 7.0])
def test_pitch_shift_moves_the_tone(semitones: float) -> None:
    shifted = apply_chain(tone(400, 1.0), [{"transform": "pitch", "pitch_semitones": semitones}])[2000:-2000]
    spectrum = np.abs(np.fft.rfft(shifted * np.hanning(shifted.size), 64_000))
    assert np.argmax(spectrum) / 4 == pytest.approx(400 * 2 ** (semitones / 12), rel=0.01)


def test_params_are_a_function_of_seed_clip_and_copy() -> None:
    def draw(seed: int, clip: str, copy: int) -> list:
        return draw_chain(clip_rng(seed, clip, copy), ALL_ON, length=16_000)

    assert draw(1, "0123456789abcdef", 0) == draw(1, "0123456789abcdef", 0)
    assert draw(1, "0123456789abcdef", 0) != draw(1, "0123456789abcdef", 1)
    assert draw(1, "0123456789abcdef", 0) != draw(2, "0123456789abcdef", 0)
    assert draw(0, "voice-a", 0) == draw(0, "voice-a", 0) != draw(0, "voice-b", 0)  # ids that are not hex


def _manifest(folder: Path, n: int = 4) -> Path:
    records = []
    for i in range(n):
        x = tone(250 + 100 * i, 1.0) * 0.5
        write_wav(folder / f"{i}.wav", x)
        records.append(ClipRecord(id=audio_id(quantize_pcm16(x)), path=f"{i}.wav", label=i % 2, kind="tts",
                                  group=f"voice{i}", text="hey"))
    return write_manifest(folder / "manifest.jsonl", records)


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted((folder / "clips").glob("*.wav")))).hexdigest()


def test_run_augment_rows_rebuild_their_clips(tmp_path: Path) -> None:
    manifest, banks = _manifest(tmp_path), _banks(tmp_path)
    config = AugmentConfig(copies=3, noise_file_p=0.7, rir_file_p=0.7)
    dirs = {"noise_dir": tmp_path / "noise", "rir_dir": tmp_path / "rir", "progress": False}
    out = run_augment(manifest, out_dir=tmp_path / "a", config=config, workers=1, **dirs)
    records, parents = read_manifest(out), {r.id: r for r in read_manifest(manifest)}
    assert len(records) == 12 and all(r.kind == "augmented" for r in records)
    for record in records:
        parent = parents[record.parent_id]
        assert (record.group, record.label, record.text) == (parent.group, parent.label, parent.text)
        assert record.source == str(tmp_path / parent.path)
        rebuilt = apply_chain(load_audio(record.source), record.params["chain"], banks=banks)
        assert audio_id(quantize_pcm16(rebuilt)) == record.id == audio_id(load_audio(tmp_path / "a" / record.path))
    again = run_augment(manifest, out_dir=tmp_path / "b", config=config, workers=3, batch_size=3, **dirs)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") and out.read_bytes() == again.read_bytes()
    other = run_augment(manifest, out_dir=tmp_path / "c", config=config.replace(seed=1), **dirs)
    assert _digest(tmp_path / "c") != _digest(tmp_path / "a")


def test_resume_redoes_only_missing_or_damaged_copies(tmp_path: Path) -> None:
    manifest, out_dir = _manifest(tmp_path), tmp_path / "out"
    one_shot = run_augment(manifest, out_dir=tmp_path / "ref", config=AugmentConfig(copies=3), progress=False)
    run_augment(manifest, out_dir=out_dir, config=AugmentConfig(copies=2), progress=False)
    clips = sorted((out_dir / "clips").glob("*.wav"))
    clips[0].unlink()
    clips[1].write_bytes(clips[1].read_bytes()[:100])  # cut short
    kept = {p: p.stat().st_mtime_ns for p in clips[2:]}
    with open(out_dir / JOURNAL_NAME, "a", encoding="utf-8") as journal:
        journal.write('{"id": "cut sho')  # a kill in the middle of a journal line
    resumed = run_augment(manifest, out_dir=out_dir, config=AugmentConfig(copies=3), progress=False)
    assert resumed.read_bytes() == one_shot.read_bytes()
    assert all(p.stat().st_mtime_ns == t for p, t in kept.items())  # intact copies were not rewritten
    assert _digest(out_dir) == _digest(tmp_path / "ref")


def test_other_config_in_the_same_folder_is_refused_unless_overwrite(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, n=2)
    run_augment(manifest, out_dir=tmp_path / "o", config=AugmentConfig(copies=1), progress=False)
    with pytest.raises(ConfigError, match="--overwrite"):
        run_augment(manifest, out_dir=tmp_path / "o", config=AugmentConfig(copies=1, seed=5), progress=False)
    out = run_augment(manifest, out_dir=tmp_path / "o", config=AugmentConfig(copies=1, seed=5), overwrite=True,
                      progress=False)
    assert len(list((tmp_path / "o" / "clips").glob("*.wav"))) == len(read_manifest(out)) == 2
    with pytest.raises(ConfigError, match="input manifest"):
        run_augment(manifest, out_dir=tmp_path, config=AugmentConfig(), progress=False)


def test_keep_originals(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, n=2)
    out = run_augment(manifest, out_dir=tmp_path / "o", config=AugmentConfig(copies=1), keep_originals=True,
                      progress=False)
    records = read_manifest(out)
    originals = [r for r in records if r.kind == "tts"]
    assert len(records) == 4 and len(originals) == 2
    for record in originals:
        assert audio_id(load_audio(resolve_clip_path(out, record))) == record.id


def test_noise_bank_reads_chunks_and_wraps(tmp_path: Path) -> None:
    x = noise(1.0, seed=9)
    write_wav(tmp_path / "n.wav", x)
    bank, decoded = NoiseBank.open(tmp_path), load_audio(tmp_path / "n.wav")
    np.testing.assert_array_equal(bank.chunk(0, 0.25, 4000), decoded[4000:8000])
    np.testing.assert_array_equal(bank.chunk(0, 0.75, 8000), np.concatenate([decoded[12000:], decoded[:4000]]))
    assert bank.chunk(0, 0.5, 40_000).size == 40_000


def test_bad_input(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, n=1)
    (tmp_path / "empty").mkdir()
    for folder, message in [(tmp_path / "nope", "not a folder"), (tmp_path / "empty", "no audio files")]:
        with pytest.raises(ConfigError, match=message):
            run_augment(manifest, out_dir=tmp_path / "o", config=AugmentConfig(), noise_dir=folder)
    with pytest.raises(ConfigError, match="--copies"):
        AugmentConfig(copies=0)
    with pytest.raises(ConfigError, match="snr_db"):
        AugmentConfig(snr_db=(20.0, 5.0))
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    with pytest.raises(ManifestError, match="bad.jsonl:1"):
        run_augment(tmp_path / "bad.jsonl", out_dir=tmp_path / "o", config=AugmentConfig())


@pytest.mark.parametrize("args", [["--copies", "0"], ["--snr-db", "x"], ["--noise", "missing-dir"]])
def test_cli_bad_input_exits_with_a_message(tmp_path: Path, args: list[str]) -> None:
    manifest = _manifest(tmp_path, n=1)
    result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code != 0 and args[0] in result.output
    missing = CliRunner().invoke(main, ["augment", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")])
    assert missing.exit_code != 0 and "none.jsonl" in missing.output


def test_cli_writes_the_manifest(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path, n=2)
    result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(tmp_path / "o"), "--copies", "2",
                                       "--snr-db", "10,20", "--seed", "3", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # the progress bar goes to stderr
    assert summary["clips"] == 4 and summary["snr_db"] == [10.0, 20.0] and summary["seed"] == 3
    assert len(read_manifest(summary["manifest"])) == 4
