"""The realdev benchmark's oracle threshold (research/real_transfer.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_oracle_is_just_above_the_last_false_accept_excluded(real_transfer) -> None:
    # Two negative files: one peaks at 0.977 (allowed: the one false accept), one at 0.612 (must not fire).
    fa = [np.array([0.1, 0.9, 0.977, 0.2], np.float32), np.array([0.3, 0.612, 0.1], np.float32)]
    threshold = real_transfer.oracle_threshold(fa, max_false_accepts=1)
    assert real_transfer.n_events(fa, threshold) == 1
    assert threshold == float(np.nextafter(np.float32(0.612), np.float32(np.inf)))
    # A positive scoring 0.7 is found at the oracle threshold (the old search returned 0.9 and missed it).
    assert real_transfer.n_detected([np.array([0.7], np.float32)], threshold) == 1


@pytest.mark.parametrize("allowed", [0, 2, 5])
def test_oracle_is_the_lowest_threshold_with_that_many_false_accepts(real_transfer, allowed: int) -> None:
    rng = np.random.default_rng(allowed)
    fa = [rng.random(rng.integers(1, 40)).astype(np.float32) for _ in range(30)]
    threshold = real_transfer.oracle_threshold(fa, max_false_accepts=allowed)
    assert real_transfer.n_events(fa, threshold) <= allowed
    below = float(np.nextafter(np.float32(threshold), np.float32(-np.inf)))
    assert real_transfer.n_events(fa, below) > allowed


def test_word_traces_split_windows_by_file(real_transfer) -> None:
    # Three files: happy (2 windows), negative (3), sheila (1); scores are per window, in file order.
    windows = {"file_index": np.array([0, 0, 1, 1, 1, 2]), "label": np.array(["happy", "negative", "sheila"]),
               "seconds": np.array([1.0, 3.0, 0.5])}
    scores = np.array([0.1, 0.9, 0.2, 0.3, 0.4, 0.8], np.float32)
    pos, fa, fa_seconds = real_transfer.word_traces(scores, windows, "happy")
    assert [t.tolist() for t in pos] == [pytest.approx([0.1, 0.9])]
    assert [t.tolist() for t in fa] == [pytest.approx([0.2, 0.3, 0.4]), pytest.approx([0.8])]
    assert fa_seconds == 3.5


def test_flags_change_only_their_recipe_settings(real_transfer) -> None:
    config = real_transfer.recipe_config(real_transfer.parse_args([]), "happy")
    assert config == real_transfer.RecipeConfig.preset("quick", phrase="happy")
    args = real_transfer.parse_args(["--engines", "flite", "--n-pos", "10", "--augment", "formant_p=0.5",
                                     "--augment", "speed_range=[0.8, 1.2]", "--fit", "members=3"])
    changed = real_transfer.recipe_config(args, "happy")
    assert changed.engines == ("flite",) and changed.n_pos == 10 and changed.n_hard == config.n_hard
    assert changed.augment.formant_p == 0.5 and changed.augment.speed_range == (0.8, 1.2)
    assert changed.fit.members == 3 and args.tag == "flite"


def test_real_negatives_must_exist(real_transfer, tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        real_transfer.parse_args(["--real-negatives", str(tmp_path / "missing.jsonl")])


def test_false_accepts_by_category(real_transfer, tmp_path: Path) -> None:
    negatives = tmp_path / "negatives"
    for folder, name in (("music_debian", "a.flac"), ("noise_debian", "b.flac"), ("read_speech_x", "c.wav")):
        (negatives / folder).mkdir(parents=True)
        (negatives / folder / name).touch()
    found = sorted(p for p in negatives.rglob("*") if p.is_file())
    assert [real_transfer.category(p) for p in found] == ["music", "noise", "speech"]
    music = np.array([0.9] + [0.1] * 12 + [0.95], np.float32)  # two events 1.3 s apart (refractory 1 s)
    fa = [music, np.array([0.1], np.float32), np.array([0.8], np.float32)]
    point = real_transfer.operating_point([np.array([0.7], np.float32)], fa, 3600.0, 0.5,
                                          ["music", "noise", "speech"], [1800.0, 900.0, 900.0])
    assert point["false_accepts"] == 3 and point["recall"] == 1.0
    cats = point["by_category"]
    assert cats["music"]["false_accepts"] == 2 and cats["music"]["fa_per_hour"] == pytest.approx(4.0)
    assert cats["noise"]["false_accepts"] == 0 and cats["speech"]["fa_per_hour"] == pytest.approx(4.0)
    runs = [{"calibrated": point}, {"calibrated": point}]
    assert real_transfer.pooled(runs, "calibrated")["by_category"]["music"]["fa_per_hour"] == pytest.approx(4.0)


def test_kokoro_voices_default_to_the_shared_file_and_bundled_ones_are_refused(real_transfer, tmp_path: Path,
                                                                                monkeypatch) -> None:
    voices = tmp_path / "kokoro-v1.0-voices.npz"
    voices.touch()
    monkeypatch.delenv("WB_KOKORO_VOICES", raising=False)
    monkeypatch.setattr(real_transfer, "KOKORO_VOICES", voices)
    args = real_transfer.parse_args([])
    assert real_transfer.kokoro_voices(args) == str(voices)
    monkeypatch.setenv("WB_KOKORO_VOICES", "/elsewhere/voices.npz")
    assert real_transfer.kokoro_voices(args) == "/elsewhere/voices.npz"
    monkeypatch.delenv("WB_KOKORO_VOICES")
    monkeypatch.setattr(real_transfer, "KOKORO_VOICES", tmp_path / "missing.npz")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing fetched
    with pytest.raises(SystemExit, match="bundled"):
        real_transfer.kokoro_voices(args)
    assert real_transfer.kokoro_voices(real_transfer.parse_args(["--kokoro-bundled"])) == "bundled"
    assert real_transfer.kokoro_voices(real_transfer.parse_args(["--engines", "flite"])) is None


def test_store_from_fits_with_the_bank_as_the_recipe_does(real_transfer, tmp_path: Path, monkeypatch) -> None:
    import recalibrate_runs

    source = tmp_path / "old" / "forward-s0"
    (source / "store.zarr").mkdir(parents=True)
    (source / "stream.wav").touch()
    monkeypatch.setattr(recalibrate_runs, "run_calibration_stream", lambda config, run_dir: source / "stream.wav")
    seen = {}

    def train_and_export(config, out, store, data, *, device, bank=None):
        seen.update(store=store, bank=bank)
        return type("Exported", (), {"onnx": out / "export" / "forward.onnx"})()

    monkeypatch.setattr(real_transfer.recipe, "train_and_export", train_and_export)
    args = real_transfer.parse_args(["--store-from", "old", "--kokoro-bundled"])
    real_transfer.train_word("forward", 0, args, tmp_path / "new" / "forward-s0")
    config = real_transfer.recipe_config(args, "forward")
    assert seen["store"] == source / "store.zarr"
    assert seen["bank"] == real_transfer.bank_store_path(config.backbone, config.embed_window_s)
