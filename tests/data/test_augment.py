from __future__ import annotations

import dataclasses
import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import chirp, noise, tone
from wakebuilder.audio import load_audio, quantize_pcm16, write_wav
from wakebuilder.cli import main
from wakebuilder.data.augment.pipeline import run_augment
from wakebuilder.data.augment.transforms import (
    DRAWS, AugmentConfig, apply_params, clip_key, draw_params, formant_warp, noise_gain_for_snr, stable_hash,
)
from wakebuilder.errors import ConfigError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, read_manifest, write_manifest

ALL_ON = AugmentConfig(speed_p=1, pitch_p=1, reverb_p=1, eq_p=1, shift_p=1, noise_p=1, formant_p=1)


def test_gain_golden() -> None:
    x = tone(440, 0.5)
    out = apply_params(x, {"gain_db": -6.020599913})
    np.testing.assert_allclose(out, x / 2, atol=1e-6)


@pytest.mark.parametrize("kind", ["white", "pink", "brown"])
@pytest.mark.parametrize("snr_db", [0.0, 10.0, 20.0])
def test_mixed_noise_snr_within_half_a_db(kind: str, snr_db: float) -> None:
    x = chirp(200, 3000, 1.5)
    params = {"gain_db": 0.0, "noise": {"type": kind, "snr_db": snr_db, "seed": 7, "file_index": None}}
    mixed = apply_params(x, params)
    residual = mixed - x
    measured = 10 * np.log10(np.mean(x**2) / np.mean(residual**2))
    assert abs(measured - snr_db) < 0.5


def test_numba_chain_equals_numpy_chain() -> None:
    x = tone(300, 1.5) + noise(1.5, seed=3)
    for copy in range(5):
        params = draw_params(clip_key(0, "0123456789abcdef", copy), ALL_ON)
        fast, slow = apply_params(x, params), apply_params(x, params, backend="numpy")
        assert fast.shape == slow.shape
        np.testing.assert_allclose(fast, slow, atol=1e-4)


def test_params_are_a_function_of_seed_clip_and_copy() -> None:
    a = draw_params(clip_key(1, "0123456789abcdef", 0), ALL_ON)
    assert a == draw_params(clip_key(1, "0123456789abcdef", 0), ALL_ON)
    assert a != draw_params(clip_key(1, "0123456789abcdef", 1), ALL_ON)
    assert a != draw_params(clip_key(2, "0123456789abcdef", 0), ALL_ON)
    assert noise_gain_for_snr(np.ones(10), np.ones(10), 20.0) == pytest.approx(0.1)


def _manifest(folder: Path) -> Path:
    records = []
    for i in range(4):
        x = tone(250 + 100 * i, 1.0) * 0.5
        write_wav(folder / f"{i}.wav", x)
        records.append(ClipRecord(id=audio_id(quantize_pcm16(x)), path=f"{i}.wav", label=i % 2, kind="tts",
                                  group=f"voice{i}", text="hey"))
    return write_manifest(folder / "manifest.jsonl", records)


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted((folder / "clips").glob("*.wav")))).hexdigest()


def test_run_augment_rows_rebuild_their_clips(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    (tmp_path / "noise").mkdir()
    write_wav(tmp_path / "noise" / "hum.wav", tone(60, 3.0, amplitude=0.2))
    out = run_augment(manifest, out_dir=tmp_path / "a", config=AugmentConfig(copies=3), noise_dir=str(tmp_path / "noise"),
                      progress=False)
    records = read_manifest(out)
    parents = {r.id: r for r in read_manifest(manifest)}
    assert len(records) == 12 and all(r.kind == "augmented" for r in records)
    for record in records:
        parent = parents[record.parent_id]
        assert record.group == parent.group and record.label == parent.label
        rebuilt = apply_params(load_audio(tmp_path / parent.path), record.params["chain"],
                               banks={"noise": [load_audio(tmp_path / "noise" / "hum.wav")], "rir": []})
        if "limiter_gain" in record.params["chain"]:
            rebuilt = rebuilt * record.params["chain"]["limiter_gain"]
        assert audio_id(quantize_pcm16(rebuilt)) == record.id
    # one thread against three at once: the same clips and the same manifest, row for row
    again = run_augment(manifest, out_dir=tmp_path / "b", config=AugmentConfig(copies=3),
                        noise_dir=str(tmp_path / "noise"), progress=False, workers=1)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") and out.read_bytes() == again.read_bytes()
    threads = run_augment(manifest, out_dir=tmp_path / "c", config=AugmentConfig(copies=3),
                          noise_dir=str(tmp_path / "noise"), progress=False, workers=3)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "c") and out.read_bytes() == threads.read_bytes()


def test_augmented_copies_keep_their_parents_category(tmp_path: Path) -> None:
    """A copy's kind is "augmented", so its category is recorded from its parent: speech kinds stay speech, music
    stays music, and a parent folder whose name holds a category word ("mushroom" holds "room", noise) changes
    nothing, not even for a parent of no category."""
    from wakebuilder.categories import record_category

    folder = tmp_path / "mushroom"
    folder.mkdir()
    expected = {"speech_negative": "speech", "hard_negative": "speech", "tts": "speech", "music": "music",
                "real_negative": "other"}
    records = []
    for i, kind in enumerate(expected):
        x = tone(300 + 50 * i, 0.5)
        write_wav(folder / f"{i}.wav", x)
        records.append(ClipRecord(id=audio_id(quantize_pcm16(x)), path=f"{i}.wav", label=0, kind=kind, group=f"g{i}"))
    manifest = write_manifest(folder / "manifest.jsonl", records)
    copies = read_manifest(run_augment(manifest, out_dir=folder / "aug", config=AugmentConfig(copies=2),
                                       progress=False))
    kinds = {r.id: r.kind for r in records}
    assert len(copies) == 10 and all("mushroom" in c.source for c in copies)
    for copy in copies:
        assert record_category(copy) == copy.params["category"] == expected[kinds[copy.parent_id]]


def test_bad_input(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    with pytest.raises(ConfigError, match="not a folder"):
        run_augment(manifest, out_dir=tmp_path / "o", config=AugmentConfig(), noise_dir=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="--copies"):
        run_augment(manifest, out_dir=tmp_path / "o", config=AugmentConfig(copies=0))
    result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(tmp_path / "o"), "--snr-db", "x"])
    assert result.exit_code != 0 and "--snr-db" in result.output


def test_an_empty_manifest_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    result = CliRunner().invoke(main, ["augment", str(empty), "--out", str(tmp_path / "a"), "--copies", "1"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {empty}: no clips; nothing to augment")
    assert not (tmp_path / "a").exists()


def test_an_out_that_holds_the_input_is_refused(tmp_path: Path) -> None:
    """`wb augment DIR/manifest.jsonl --out DIR --overwrite` replaced the manifest it read with the copies' and deleted
    its clips (DIR/clips/*.wav, unlisted in the new manifest): the originals were lost. An --out whose manifest is
    the input, or whose clips/ holds input clips, is refused before anything is written."""
    data = tmp_path / "data"
    (data / "clips").mkdir(parents=True)
    records = []
    for i in range(2):
        x = tone(300 + 100 * i, 1.0) * 0.5
        write_wav(data / "clips" / f"{i}.wav", x)
        records.append(ClipRecord(id=audio_id(quantize_pcm16(x)), path=f"clips/{i}.wav", label=1, kind="tts",
                                  group=f"voice{i}", text="hey"))
    manifest = write_manifest(data / "manifest.jsonl", records)
    before = manifest.read_bytes()
    elsewhere = write_manifest(tmp_path / "other.jsonl", [dataclasses.replace(r, path=f"data/{r.path}")
                                                          for r in records])
    for given in (manifest, elsewhere):
        result = CliRunner().invoke(main, ["augment", str(given), "--out", str(data), "--overwrite", "--copies", "1"])
        assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
        assert result.stderr.startswith(f"wb: error: --out {str(data)!r}: ") and "choose another --out" in result.stderr
    assert manifest.read_bytes() == before and sorted(p.name for p in (data / "clips").iterdir()) == ["0.wav", "1.wav"]
    assert sorted(p.name for p in data.iterdir()) == ["clips", "manifest.jsonl"]


def test_speed_and_pitch_options_reach_every_copy(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(out), "--copies", "3",
                                       "--pitch", "-4,-3", "--pitch-p", "1", "--speed", "1.2,1.25", "--speed-p", "1"])
    assert result.exit_code == 0, result.output
    chains = [r.params["chain"] for r in read_manifest(out / "manifest.jsonl")]
    assert chains and all(-4 <= c["pitch_semitones"] <= -3 and 1.2 <= c["speed_factor"] <= 1.25 for c in chains)
    assert AugmentConfig.load(out / "augment_config.json").pitch_semitones == (-4.0, -3.0)
    for bad in (["--pitch", "-20,2"], ["--speed", "0,1"], ["--speed", "1.2,1.1"], ["--pitch", "a"]):
        result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(tmp_path / "x"), *bad])
        assert result.exit_code != 0 and bad[0] in result.output


def test_window_pads_before_noise_and_shift() -> None:
    """With window_s the clip is centred first: noise fills the window, a shift keeps the whole word, and the
    SNR is the clip's own, not the padded window's."""
    x = chirp(200, 3000, 0.5)
    params = {"gain_db": 0.0, "window_s": 2.0, "shift_s": 0.3,
              "noise": {"type": "white", "snr_db": 10.0, "seed": 7, "file_index": None}}
    out = apply_params(x, params)
    slow = apply_params(x, params, backend="numpy")
    np.testing.assert_allclose(out, slow, atol=1e-4)
    assert out.size == 32000
    clean = apply_params(x, {"gain_db": 0.0, "window_s": 2.0, "shift_s": 0.3})
    start = (32000 - x.size) // 2 + int(0.3 * 16000)
    np.testing.assert_allclose(clean[start : start + x.size], x, atol=1e-6)  # moved, not cut
    assert np.all(clean[:start] == 0) and np.all(clean[start + x.size :] == 0)
    residual = out - clean
    assert np.std(residual[:4000]) > 0  # noise in the pauses too
    measured = 10 * np.log10(np.mean(x**2) / np.mean(residual**2))
    assert abs(measured - 10.0) < 0.5
    # without the window the same shift cuts 0.3 s of a 0.5 s clip
    cut = apply_params(x, {"gain_db": 0.0, "shift_s": 0.3})
    assert cut.size == x.size and np.all(cut[: int(0.3 * 16000)] == 0)
    # a clip longer than the window is left as it is
    assert apply_params(chirp(200, 3000, 2.5), {"gain_db": 0.0, "window_s": 2.0}).size == 40000


def _speech_span(length: int, window_s: float, shift_s: float) -> slice:
    """Where a clip of ``length`` samples (after any speed change) lies in the output: centred in the window,
    then moved by the shift."""
    size = round(window_s * 16000) if window_s else length
    start = (size - length) // 2 + int(shift_s * 16000)
    return slice(max(start, 0), min(start + length, size))


SNR_CHAINS = {
    "bandpass": {"eq": {"type": "bandpass", "cutoff_hz": 1500.0, "q": 1.0}},
    "pitch": {"pitch_semitones": 2.0},
    "speed+highpass": {"speed_factor": 0.9, "eq": {"type": "highpass", "cutoff_hz": 400.0, "q": 0.7}},
    "lowpass+reverb+shift": {"eq": {"type": "lowpass", "cutoff_hz": 2500.0, "q": 0.7}, "shift_s": 0.15,
                             "reverb": {"rt60_s": 0.4, "seed": 3, "rir_index": None}},
}


@pytest.mark.parametrize("chain", SNR_CHAINS)
@pytest.mark.parametrize("window_s", [0.0, 2.0])
def test_recorded_snr_is_the_snr_of_the_processed_clip(chain: str, window_s: float) -> None:
    """The noise is scaled against the clip as it leaves the chain (after EQ, pitch, speed, reverb), over the
    clip's own span when it sits in a window, so the recorded snr_db is the SNR a listener gets."""
    x = chirp(200, 3000, 0.8, amplitude=0.3)
    clean_params = {"gain_db": -6.0, **SNR_CHAINS[chain], **({"window_s": window_s} if window_s else {})}
    noisy_params = {**clean_params, "noise": {"type": "pink", "snr_db": 10.0, "seed": 5, "file_index": None}}
    clean = apply_params(x, clean_params).astype(np.float64)
    residual = apply_params(x, noisy_params) - clean
    length = int(x.size / SNR_CHAINS[chain].get("speed_factor", 1.0))
    speech = clean[_speech_span(length, window_s, SNR_CHAINS[chain].get("shift_s", 0.0))]
    measured = 10 * np.log10(np.mean(speech**2) / np.mean(residual**2))
    assert abs(measured - 10.0) < 0.5


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def test_a_measured_rir_starts_at_its_direct_path() -> None:
    """A RIR file's silence before the direct path (distance, recorder latency) is dropped: the reverb keeps the
    clip's length, so that delay used to push the word late and cut its end off."""
    x = np.zeros(16000, np.float32)
    x[8000:] = tone(300, 0.5, amplitude=0.3)  # the word fills the second half, to the clip's end
    rir = np.zeros(4000, np.float32)
    rir[1600] = 1.0  # the direct path 100 ms in
    params = {"gain_db": 0.0, "reverb": {"rt60_s": 0.3, "seed": 0, "rir_index": 0}}
    for backend in ("numba", "numpy"):
        np.testing.assert_allclose(apply_params(x, params, banks={"noise": [], "rir": [rir]}, backend=backend), x,
                                   atol=1e-6)
    rir[1700] = -0.5  # a reflection after the direct path stays where it is, relative to it
    out = apply_params(x, params, banks={"noise": [], "rir": [rir]})
    echo = x - 0.5 * np.concatenate([np.zeros(100, np.float32), x[:-100]])
    np.testing.assert_allclose(out, echo * (_rms(x) / _rms(echo)), atol=1e-6)


def test_window_option_is_recorded_in_every_chain(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(out), "--window-s", "1.5"])
    assert result.exit_code == 0, result.output
    records = read_manifest(out / "manifest.jsonl")
    assert all(r.params["chain"]["window_s"] == 1.5 and r.duration_s == 1.5 for r in records)
    result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(out), "--window-s", "-1"])
    assert result.exit_code != 0 and "--window-s" in result.output


def _vowel(f0: float, formants: tuple[float, ...]) -> tuple[np.ndarray, Any]:
    """A 1 s harmonic vowel and its formant envelope (dB as a function of Hz)."""
    t = np.arange(16000) / 16000
    harmonics = np.arange(1, int(7000 / f0)) * f0

    def level_db(f: np.ndarray) -> np.ndarray:
        return -30 + sum(30 * np.exp(-0.5 * ((f - centre) / 120) ** 2) for centre in formants)

    x = sum(10 ** (level_db(h) / 20) * np.cos(2 * np.pi * h * t + 0.3 * i * i)
            for i, h in enumerate(harmonics, 1))
    return (0.5 * x / np.max(np.abs(x))).astype(np.float32), level_db


def _harmonic_db(x: np.ndarray, f0: float) -> tuple[np.ndarray, np.ndarray]:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    harmonics = np.arange(1, int(5000 / f0)) * f0
    return harmonics, 20 * np.log10(spectrum[np.round(harmonics * x.size / 16000).astype(int)] + 1e-12)


@pytest.mark.parametrize("f0", [110.0, 220.0])
@pytest.mark.parametrize("factor", [0.85, 1.2])
def test_formant_warp_moves_the_envelope_and_keeps_the_pitch(f0: float, factor: float) -> None:
    formants = (700.0, 1200.0, 2600.0)
    x, level_db = _vowel(f0, formants)
    out = formant_warp(x, factor)
    assert out.shape == x.shape
    assert np.sqrt(np.mean(out**2)) == pytest.approx(np.sqrt(np.mean(x**2)), rel=1e-4)
    harmonics, db = _harmonic_db(out, f0)
    moved = np.corrcoef(db, level_db(harmonics / factor))[0, 1]
    kept = np.corrcoef(db, level_db(harmonics))[0, 1]
    assert moved > 0.9 and kept < 0.6  # the harmonics now follow the warped envelope, not the original one
    spectrum = np.abs(np.fft.rfft(out))
    peaks = np.sort(np.argsort(spectrum)[-8:])  # the strongest bins are still harmonics of f0 (1 Hz bins)
    assert np.all(np.abs(peaks / f0 - np.round(peaks / f0)) * f0 <= 1)
    np.testing.assert_allclose(out, formant_warp(x, factor, fast=False), atol=1e-5)
    assert formant_warp(x, 1.0) is x


def test_formant_factor_is_relative_to_the_original_clip() -> None:
    """With a pitch shift, the envelope is warped by formant_factor / pitch factor: the resampling's move of
    the formants is undone, so the formant factor alone sets them."""
    x, _ = _vowel(110.0, (700.0, 1200.0, 2600.0))
    pitched = apply_params(x, {"gain_db": 0.0, "pitch_semitones": 3.0})
    both = apply_params(x, {"gain_db": 0.0, "pitch_semitones": 3.0, "formant_factor": 1.1})
    np.testing.assert_allclose(both, formant_warp(pitched, 1.1 / 2 ** (3 / 12)), atol=1e-6)


def test_formant_draw_is_off_by_default_and_leaves_the_others() -> None:
    """Chains drawn without --formant-p are the chains drawn before the option existed."""
    assert AugmentConfig().formant_p == 0
    without = draw_params(clip_key(0, "0123456789abcdef", 0), dataclasses.replace(ALL_ON, formant_p=0))
    with_it = draw_params(clip_key(0, "0123456789abcdef", 0), ALL_ON)
    assert 0.85 <= with_it.pop("formant_factor") <= 1.2 and with_it == without


def test_formant_option_reaches_every_copy(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    out = tmp_path / "o"
    result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(out), "--formant", "1.1,1.15",
                                       "--formant-p", "1"])
    assert result.exit_code == 0, result.output
    chains = [r.params["chain"] for r in read_manifest(out / "manifest.jsonl")]
    assert chains and all(1.1 <= c["formant_factor"] <= 1.15 for c in chains)
    for bad in (["--formant", "0.3,1"], ["--formant", "1.2,1.1"], ["--formant", "x"], ["--formant-p", "2"]):
        result = CliRunner().invoke(main, ["augment", str(manifest), "--out", str(tmp_path / "x"), *bad])
        assert result.exit_code != 0 and bad[0] in result.output


def test_each_transform_draws_from_its_own_generator() -> None:
    """Adding, removing or reordering a transform leaves every other transform's drawn values unchanged."""
    key = clip_key(5, "a clip", 1)
    base = draw_params(key, ALL_ON)

    def extra(rng: np.random.Generator, config: AugmentConfig, noise_files: int, rir_files: int) -> dict[str, Any]:
        return {"extra": float(rng.random()), "burn": rng.random(1000).sum()}

    added = draw_params(key, ALL_ON, draws={"extra": extra, **DRAWS})
    assert {k: v for k, v in added.items() if k not in ("extra", "burn")} == base
    without_speed = draw_params(key, ALL_ON, draws={k: v for k, v in DRAWS.items() if k != "speed"})
    assert without_speed == {k: v for k, v in base.items() if k != "speed_factor"}
    assert draw_params(key, ALL_ON, draws=dict(reversed(DRAWS.items()))) == base
    # a transform switched off in the config draws nothing and moves nothing
    assert draw_params(key, dataclasses.replace(ALL_ON, speed_p=0)) == without_speed


def test_stable_hash_is_sha256() -> None:
    assert stable_hash("abc") == int(hashlib.sha256(b"abc").hexdigest()[:16], 16)
    assert clip_key(-1, "x", 0)[0] == 2**64 - 1  # a negative seed is a valid key too


AUGMENT_IN_A_PROCESS = """
import hashlib, pathlib, sys
from wakebuilder.data.augment.pipeline import run_augment
from wakebuilder.data.augment.transforms import AugmentConfig
manifest, out = sys.argv[1], pathlib.Path(sys.argv[2])
config = AugmentConfig(copies=2, seed=3, speed_p=1, pitch_p=1, reverb_p=1, eq_p=1, shift_p=1, noise_p=1)
run_augment(manifest, out_dir=out, config=config, progress=False)
clips = sorted((out / "clips").glob("*.wav"))
print(hashlib.sha256(b"".join(p.name.encode() + p.read_bytes() for p in clips)).hexdigest())
"""


def test_non_hex_ids_augment_identically_in_two_processes(tmp_path: Path) -> None:
    """Hand-written ids (not hex digests) key the same draws in every process, whatever its hash salt."""
    records = []
    for i, clip_id in enumerate(["my take", "Zoë-2", "take three (kitchen)"]):
        write_wav(tmp_path / f"{i}.wav", tone(300 + 150 * i, 0.8))
        records.append(ClipRecord(id=clip_id, path=f"{i}.wav", label=1, kind="recording", group="me", text="hey"))
    manifest = write_manifest(tmp_path / "manifest.jsonl", records)
    digests = []
    for salt in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": salt}
        done = subprocess.run([sys.executable, "-c", AUGMENT_IN_A_PROCESS, str(manifest), str(tmp_path / salt)],
                              capture_output=True, text=True, env=env, check=True)
        digests.append(done.stdout.strip().splitlines()[-1])
    assert digests[0] == digests[1]
    assert (tmp_path / "1" / "manifest.jsonl").read_bytes() == (tmp_path / "2" / "manifest.jsonl").read_bytes()


def _kill_after(monkeypatch: pytest.MonkeyPatch, clips: int) -> None:
    """Make the writer raise (as a kill would stop it) once ``clips`` copies are written."""
    import wakebuilder.data.augment.pipeline as pipeline

    real, written = pipeline.write_wav, []

    def write(*args: Any, **kwargs: Any) -> Path:
        if len(written) == clips:
            raise KeyboardInterrupt
        written.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "write_wav", write)


def _count_copies(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    import wakebuilder.data.augment.pipeline as pipeline

    real, made = pipeline.augment_clip, []

    def counted(*args: Any, **kwargs: Any) -> Any:
        made.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(pipeline, "augment_clip", counted)
    return made


def _stamps(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in (folder / "clips").glob("*.wav")}


def test_a_killed_augment_run_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wb augment run again after a kill made every copy again; it now keeps the copies it finished, makes the
    rest, and ends with the clips and manifest an uninterrupted run writes."""
    manifest, config = _manifest(tmp_path), AugmentConfig(copies=3, seed=4)
    clean = run_augment(manifest, out_dir=tmp_path / "clean", config=config, progress=False, workers=1)
    with monkeypatch.context() as patch:
        _kill_after(patch, 5)
        with pytest.raises(KeyboardInterrupt):
            run_augment(manifest, out_dir=tmp_path / "a", config=config, progress=False, workers=1)
    kept = _stamps(tmp_path / "a")
    assert len(kept) == 5 and not (tmp_path / "a" / "manifest.jsonl").exists()
    made = _count_copies(monkeypatch)
    out = run_augment(manifest, out_dir=tmp_path / "a", config=config, progress=False, workers=2)
    assert len(made) == 12 - 5
    assert out.read_bytes() == clean.read_bytes()
    assert _digest(tmp_path / "a") == _digest(tmp_path / "clean")
    assert {name: _stamps(tmp_path / "a")[name] for name in kept} == kept  # the finished copies were not rewritten
    assert not (tmp_path / "a" / "augment.incomplete").exists()


def test_an_unfinished_augment_run_of_other_settings_is_refused_or_replaced(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """A run killed part-way and run again with another seed or another input manifest must not mix its copies
    with the new ones: refused, or replaced with --overwrite (its clips removed)."""
    from wakebuilder.errors import ArtifactExistsError

    manifest, config = _manifest(tmp_path), AugmentConfig(copies=3, seed=4)
    with monkeypatch.context() as patch:
        _kill_after(patch, 5)
        with pytest.raises(KeyboardInterrupt):
            run_augment(manifest, out_dir=tmp_path / "a", config=config, progress=False, workers=1)
    with pytest.raises(ArtifactExistsError, match="seed: 4 there, 5 now"):
        run_augment(manifest, out_dir=tmp_path / "a", config=config.replace(seed=5), progress=False)
    fewer = write_manifest(tmp_path / "fewer.jsonl", read_manifest(manifest)[:2])
    with pytest.raises(ArtifactExistsError, match="manifest"):
        run_augment(fewer, out_dir=tmp_path / "a", config=config, progress=False)
    out = run_augment(manifest, out_dir=tmp_path / "a", config=config.replace(seed=5), progress=False, overwrite=True)
    clean = run_augment(manifest, out_dir=tmp_path / "clean", config=config.replace(seed=5), progress=False)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "clean")  # the killed run's copies went
    assert {r.id for r in read_manifest(out)} == {r.id for r in read_manifest(clean)}


def test_copies_made_by_an_older_version_of_augment_are_made_again_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A release that changed how copies are made kept the copies an older release made in the recipe's folder
    forever: a run's identity held its settings and inputs, not the code that made them. It now holds the augment
    stage's version: copies recorded without it (made before it was recorded) or with a lower one are made again,
    once, saying why; those of this version are kept; an unfinished run of an older version is not resumed."""
    import json
    import logging

    import wakebuilder.data.augment.pipeline as pipeline
    from wakebuilder.data.augment.journal import RUN_NAME
    from wakebuilder.errors import ArtifactExistsError
    from wakebuilder.stage_version import KEY

    manifest, config, out = _manifest(tmp_path), AugmentConfig(copies=2, seed=4), tmp_path / "a"

    def run() -> Path:
        return pipeline.keep_or_run_augment(manifest, out_dir=out, config=config, progress=False, workers=1)

    first = run()
    made = _count_copies(monkeypatch)
    recorded = json.loads((out / RUN_NAME).read_text())
    assert recorded[KEY] == {"augment": pipeline.VERSION}
    (out / RUN_NAME).write_text(json.dumps({k: v for k, v in recorded.items() if k != KEY}))  # as written before
    with caplog.at_level(logging.INFO, logger="wakebuilder"):
        assert run() == first
    assert len(made) == 8 and "made by an older version of augment, made again" in caplog.text
    made.clear()
    assert run() == first and made == []  # this version's: kept
    monkeypatch.setattr(pipeline, "VERSION", pipeline.VERSION + 1)  # a release that changed the copies
    assert run() == first and len(made) == 8
    made.clear()
    assert run() == first and made == []
    with monkeypatch.context() as patch:
        _kill_after(patch, 3)
        with pytest.raises(KeyboardInterrupt):
            pipeline.run_augment(manifest, out_dir=tmp_path / "b", config=config, progress=False, workers=1)
    monkeypatch.setattr(pipeline, "VERSION", pipeline.VERSION + 1)
    with pytest.raises(ArtifactExistsError, match="made by an older version of augment"):
        pipeline.run_augment(manifest, out_dir=tmp_path / "b", config=config, progress=False)
