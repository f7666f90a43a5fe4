from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import chirp, noise, tone
from wakebuilder.audio import load_audio, write_wav
from wakebuilder.cli import main
from wakebuilder.data.augment.background import (
    BackgroundBank, BackgroundConfig, apply_background, background_rng, draw_background, render_background,
)
from wakebuilder.data.augment.pipeline import augment_clip, run_augment
from wakebuilder.data.augment.transforms import AugmentConfig
from wakebuilder.errors import ConfigError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, read_manifest, resolve_clip_path, write_manifest

# every transform of the main chain off, gain 0 dB: the output is the clip plus its background
PLAIN = AugmentConfig(copies=4, speed_p=0, pitch_p=0, reverb_p=0, eq_p=0, shift_p=0, noise_p=0, gain_db=(0.0, 0.0))
EMPTY = {"noise": [], "rir": []}


def _manifest(folder: Path, clips: list[np.ndarray], *, label: int = 0, name: str = "m.jsonl") -> Path:
    records = []
    for i, clip in enumerate(clips):
        clip_id = audio_id(clip)
        write_wav(folder / f"{clip_id}.wav", clip)
        records.append(ClipRecord(id=clip_id, path=f"{clip_id}.wav", label=label, kind="noise" if not label else "tts",
                                  group=f"g{i}"))
    return write_manifest(folder / name, records)


@pytest.mark.parametrize("generator", ["music", "noise", "hum", "click"])
@pytest.mark.parametrize("snr_db", [0.0, 10.0])
def test_background_is_mixed_at_the_drawn_snr(generator: str, snr_db: float) -> None:
    x = chirp(200, 3000, 1.5, amplitude=0.3)
    config = BackgroundConfig(generators=(generator,), snr_db=(snr_db, snr_db), p=1.0)
    params = draw_background(np.random.default_rng(1), config, files=0)
    assert params is not None and params["type"] == generator and params["snr_db"] == snr_db
    power = float(np.mean(x.astype(np.float64) ** 2))
    mixed = apply_background(x, params, BackgroundBank((), ()), signal_power=power)
    residual = mixed.astype(np.float64) - x
    assert abs(10 * np.log10(power / np.mean(residual**2)) - snr_db) < 0.1
    np.testing.assert_allclose(residual, mixed - x, atol=1e-6)
    np.testing.assert_array_equal(mixed, apply_background(x, params, BackgroundBank((), ()), signal_power=power))


def test_pipeline_snr_is_against_the_clip_not_the_padding(tmp_path: Path) -> None:
    x = tone(440, 0.5, amplitude=0.2)
    record = ClipRecord(id=audio_id(x), path="x.wav", label=1, kind="tts", group="g")
    config = PLAIN.replace(window_s=1.5)
    background = (BackgroundConfig(generators=("noise",), snr_db=(5.0, 5.0), p=1.0), BackgroundBank((), ()))
    out, params = augment_clip(x, record, 0, config, EMPTY, {"noise": [], "rir": []}, background)
    plain, _ = augment_clip(x, record, 0, config, EMPTY, {"noise": [], "rir": []})
    residual = out.astype(np.float64) - plain
    assert abs(10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(residual**2)) - 5.0) < 0.1
    assert params["background"]["snr_db"] == 5.0 and params["background"]["generator"]["generator"] == "noise"


@pytest.mark.parametrize("window_s", [0.0, 2.0])
def test_background_snr_is_against_the_processed_clip(window_s: float) -> None:
    """The background's SNR is measured on the clip as the chain left it (EQ, speed, gain), over its own span in
    the window, not on the parent's samples."""
    x = chirp(200, 3000, 0.8, amplitude=0.3)
    record = ClipRecord(id=audio_id(x), path="x.wav", label=1, kind="tts", group="g")
    config = PLAIN.replace(speed_p=1, eq_p=1, gain_db=(-6.0, -6.0), window_s=window_s)
    background = (BackgroundConfig(generators=("noise",), snr_db=(10.0, 10.0), p=1.0), BackgroundBank((), ()))
    for copy in range(4):
        out, params = augment_clip(x, record, copy, config, EMPTY, {"noise": [], "rir": []}, background)
        plain, _ = augment_clip(x, record, copy, config, EMPTY, {"noise": [], "rir": []})
        assert "limiter_gain" not in params and params["background"]["snr_db"] == 10.0
        length = int(x.size / params["speed_factor"])
        start = (round(window_s * 16000) - length) // 2 if window_s else 0
        speech = plain[start : start + length].astype(np.float64)
        residual = out.astype(np.float64) - plain
        assert abs(10 * np.log10(np.mean(speech**2) / np.mean(residual**2)) - 10.0) < 0.5, params


def test_background_leaves_the_chain_draws_unchanged() -> None:
    x = chirp(300, 2000, 1.0)
    record = ClipRecord(id=audio_id(x), path="x.wav", label=1, kind="tts", group="g")
    background = (BackgroundConfig(generators=("music", "noise"), p=1.0), BackgroundBank((), ()))
    for copy in range(4):
        _, without = augment_clip(x, record, copy, AugmentConfig(), EMPTY, {"noise": [], "rir": []})
        _, with_bg = augment_clip(x, record, copy, AugmentConfig(), EMPTY, {"noise": [], "rir": []}, background)
        drawn = with_bg.pop("background")
        with_bg.pop("limiter_gain", None), without.pop("limiter_gain", None)
        assert with_bg == without and drawn["type"] in ("music", "noise")
    first = draw_background(background_rng(0, record.id, 1), background[0], files=0)
    assert first == draw_background(background_rng(0, record.id, 1), background[0], files=0)
    assert first != draw_background(background_rng(0, record.id, 2), background[0], files=0)


def test_share_of_copies_with_a_background() -> None:
    config = BackgroundConfig(generators=("room",), p=0.3)
    drawn = [draw_background(background_rng(0, hashlib.sha1(str(i).encode()).hexdigest()[:24], 0), config, files=0) for i in range(400)]
    assert 0.22 < sum(d is not None for d in drawn) / 400 < 0.38
    assert draw_background(np.random.default_rng(0), config.replace(p=0.0), files=0) is None


def test_file_backgrounds_come_from_label_0_clips_of_manifests(tmp_path: Path) -> None:
    long, short = noise(3.0, seed=1), tone(700, 0.3)
    bank_manifest = _manifest(tmp_path, [long, short])
    wake = _manifest(tmp_path, [tone(1500, 1.0)], label=1, name="wake.jsonl")
    bank = BackgroundBank.load([str(bank_manifest), str(wake)])
    assert bank.names == tuple(r.id for r in read_manifest(bank_manifest))
    params = {"type": "file", "file_index": 1, "seed": 3, "snr_db": 0.0}
    looped = render_background(params, 16000, bank)
    assert looped.size == 16000 and np.allclose(looped[: short.size], load_audio(tmp_path / f"{audio_id(short)}.wav"))
    with pytest.raises(ConfigError, match="no label-0 clips"):
        BackgroundBank.load([str(wake)])


def test_run_augment_records_backgrounds_that_rebuild_the_clips(tmp_path: Path) -> None:
    source = _manifest(tmp_path, [tone(440, 1.0, amplitude=0.3), chirp(300, 900, 1.0, amplitude=0.3)], label=1,
                       name="pos.jsonl")
    (tmp_path / "bank").mkdir()
    bank_manifest = _manifest(tmp_path / "bank", [noise(2.0, seed=5), tone(90, 2.0)])
    config = BackgroundConfig(generators=("music",), manifests=(str(bank_manifest),), snr_db=(3.0, 12.0), p=1.0)
    out = run_augment(source, out_dir=tmp_path / "aug", config=PLAIN, background=config, progress=False)
    rows = read_manifest(out)
    assert len(rows) == 8 and {r.params["chain"]["background"]["type"] for r in rows} == {"music", "file"}
    bank = BackgroundBank.load(config.manifests)
    parents = {r.id: r for r in read_manifest(source)}
    for row in rows:
        drawn = row.params["chain"]["background"]
        assert 3.0 <= drawn["snr_db"] <= 12.0
        if drawn["type"] == "file":
            assert drawn["file"] == bank.names[drawn["file_index"]]
        parent = load_audio(resolve_clip_path(source, parents[row.parent_id]))
        rebuilt = apply_background(parent, drawn, bank, signal_power=float(np.mean(parent.astype(np.float64) ** 2)))
        np.testing.assert_allclose(load_audio(resolve_clip_path(out, row)), rebuilt, atol=2 / 32768)
    assert (tmp_path / "aug" / "background_config.json").is_file()


def test_cli_background(tmp_path: Path) -> None:
    source = _manifest(tmp_path, [tone(440, 1.0, amplitude=0.3)], label=1, name="pos.jsonl")
    args = ["augment", str(source), "--out", str(tmp_path / "aug"), "--copies", "2", "--background", "music,hum",
            "--background-snr-db", "5,5", "--background-p", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    rows = read_manifest(tmp_path / "aug" / "manifest.jsonl")
    assert all(r.params["chain"]["background"]["snr_db"] == 5.0 for r in rows)
    bad = CliRunner().invoke(main, [*args[:4], "--background", "babble", "--overwrite"])
    assert bad.exit_code != 0 and "--background-manifest" in bad.output
