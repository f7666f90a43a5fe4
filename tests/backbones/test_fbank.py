"""The torch Kaldi fbank against transformers' ASTFeatureExtractor (its NumPy path: no torchaudio here)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from tests.conftest import chirp, noise, tone
from wakebuilder.backbones.fbank import (
    FbankSettings,
    KaldiFbank,
    compute_fbank,
    frame_transform,
    kaldi_mel_filters,
)
from wakebuilder.errors import ConfigError

PARITY_TOL = 1e-3


def _extractor(**kwargs: object):
    from transformers import ASTFeatureExtractor

    with warnings.catch_warnings():  # its Kaldi bank has an empty lowest filter; so does ours, on purpose
        warnings.filterwarnings("ignore", message="At least one mel filter has all zero values")
        return ASTFeatureExtractor(**kwargs)


def _reference(extractor, clips: np.ndarray) -> np.ndarray:
    rows = [extractor(clip, sampling_rate=16_000, return_tensors="np")["input_values"][0] for clip in clips]
    return np.stack(rows)


def _signals(n_samples: int) -> np.ndarray:
    duration_s = n_samples / 16_000 + 0.01
    rows = [
        tone(440.0, duration_s),
        tone(6_500.0, duration_s, amplitude=0.9),
        chirp(50.0, 7_900.0, duration_s),
        noise(duration_s, seed=1),
        noise(duration_s, amplitude=1e-4, seed=2),
        tone(300.0, duration_s) + 0.2,  # a DC offset the per-frame mean removal must cancel
        np.zeros(int(duration_s * 16_000), dtype=np.float32),
    ]
    return np.stack([row[:n_samples] for row in rows]).astype(np.float32)


@pytest.mark.parametrize("n_samples", [8_000, 20_720, 20_800, 48_000])  # pad, exact, exact + tail, truncate
def test_batched_fbank_matches_ast_feature_extractor(n_samples: int) -> None:
    settings = FbankSettings(max_length=128)
    clips = _signals(n_samples)
    got = compute_fbank(clips, settings)
    want = _reference(_extractor(max_length=128), clips)
    assert got.shape == want.shape == (len(clips), 128, 128)
    assert got.dtype == np.float32
    assert np.abs(got - want).max() < PARITY_TOL


def test_float64_fbank_matches_to_rounding() -> None:
    """The float32 gap is rounding only: in float64 the same graph agrees to 1e-5 even at full scale."""
    clips = np.stack([tone(7_990.0, 1.3, amplitude=1.0), chirp(20.0, 8_000.0, 1.3, amplitude=1.0)])
    module = KaldiFbank(FbankSettings(max_length=128), dtype=torch.float64)
    with torch.inference_mode():
        got = module(torch.from_numpy(clips)).numpy()
    assert np.abs(got - _reference(_extractor(max_length=128), clips)).max() < 1e-5


def test_checkpoint_settings_change_length_and_normalisation() -> None:
    preprocessor = {"max_length": 128, "mean": -6.845978, "std": 5.5654526, "num_mel_bins": 128}
    settings = FbankSettings.from_preprocessor(preprocessor, max_length=300)
    assert (settings.max_length, settings.mean, settings.std) == (300, -6.845978, 5.5654526)
    clips = np.stack([chirp(100.0, 4_000.0, 2.5), noise(2.5, seed=4)])
    extractor = _extractor(max_length=300, mean=-6.845978, std=5.5654526)
    assert np.abs(compute_fbank(clips, settings) - _reference(extractor, clips)).max() < PARITY_TOL


def test_no_normalisation_gives_raw_log_mel() -> None:
    settings = FbankSettings(max_length=50, do_normalize=False)
    silence = np.zeros((1, settings.window_samples), dtype=np.float32)
    assert np.allclose(compute_fbank(silence, settings), np.log(np.float32(settings.mel_floor)))


def test_mel_filters_equal_the_extractors() -> None:
    extractor = _extractor(max_length=128)
    assert np.array_equal(kaldi_mel_filters(FbankSettings()), extractor.mel_filters)


def test_frame_transform_is_dc_removal_preemphasis_window_and_rfft() -> None:
    settings = FbankSettings()
    frame = np.random.default_rng(0).standard_normal(settings.frame_length)
    step = frame - frame.mean()
    head = step[0] * (1 - settings.preemphasis)
    step = np.concatenate([[head], step[1:] - settings.preemphasis * step[:-1]])
    spectrum = np.fft.rfft(step * np.hanning(settings.frame_length), n=settings.fft_length)
    got = frame @ frame_transform(settings)
    assert np.allclose(got, np.concatenate([spectrum.real, spectrum.imag]), atol=1e-9)


@pytest.mark.parametrize("max_length", [16, 128, 300])
def test_window_samples_give_exactly_max_length_frames(max_length: int) -> None:
    settings = FbankSettings(max_length=max_length, do_normalize=False)
    waves = noise(settings.window_samples / 16_000 + 0.01, seed=5)
    exact = compute_fbank(waves[None, : settings.window_samples], settings)
    one_short = compute_fbank(waves[None, : settings.window_samples - 1], settings)
    assert settings.window_samples == 400 + 160 * (max_length - 1)
    assert np.all(exact[0, -1] > np.log(settings.mel_floor))  # last frame is real audio, not padding
    assert np.all(one_short[0, -1] == 0.0)  # one sample fewer: the last frame is zero padding


def test_rows_are_independent() -> None:
    clips = _signals(20_720)
    batched = compute_fbank(clips, FbankSettings(max_length=128))
    single = compute_fbank(clips[2:3], FbankSettings(max_length=128))
    assert np.array_equal(batched[2:3], single)


def test_bad_inputs_raise_config_errors() -> None:
    module = KaldiFbank(FbankSettings(max_length=128))
    with pytest.raises(ConfigError, match="samples >= 400"):
        module(torch.zeros(2, 399))
    with pytest.raises(ConfigError, match="std"):
        FbankSettings(std=0.0)
    with pytest.raises(ConfigError, match="hann"):
        frame_transform(FbankSettings(window="povey"))
