"""Every Numba kernel against its NumPy reference on random inputs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wakebuilder.data.augment import kernels, reference
from wakebuilder.data.augment.transforms import _WINDOW, OLA_HOP, biquad_coefficients

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def _signal(seed: int, n: int = 4000) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.3).astype(np.float32)


def _run(kernel, x, *args, length=None):  # type: ignore[no-untyped-def]
    out = np.empty(length or x.size, dtype=np.float32)
    kernel(x, *args, out)
    return out


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, gain=st.floats(0.0, 4.0), noise_gain=st.floats(0.0, 2.0))
def test_scale_add(seed: int, gain: float, noise_gain: float) -> None:
    x, noise = _signal(seed), _signal(seed + 1)
    np.testing.assert_allclose(_run(kernels._scale_add, x, gain, noise, noise_gain),
                               reference.scale_add(x, gain, noise, noise_gain), atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, factor=st.floats(0.7, 1.4))
def test_resample_linear(seed: int, factor: float) -> None:
    x = _signal(seed)
    length = int(x.size / factor)
    np.testing.assert_allclose(_run(kernels._resample_linear, x, factor, length=length),
                               reference.resample_linear(x, factor, length), atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, rate=st.floats(0.8, 1.25))
def test_ola_stretch(seed: int, rate: float) -> None:
    x = _signal(seed)
    out, norm = np.empty(x.size, np.float32), np.empty(x.size, np.float32)
    kernels._ola_stretch(x, rate, _WINDOW, OLA_HOP, out, norm)
    np.testing.assert_allclose(out, reference.ola_stretch(x, rate, _WINDOW, OLA_HOP, x.size), atol=1e-4)


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, kind=st.sampled_from(["lowpass", "highpass", "bandpass"]), cutoff=st.floats(100, 6000),
       q=st.floats(0.5, 1.5))
def test_biquad(seed: int, kind: str, cutoff: float, q: float) -> None:
    x = _signal(seed)
    b, a = biquad_coefficients(kind, cutoff, q)
    np.testing.assert_allclose(_run(kernels._biquad, x, *b, *a), reference.biquad(x, b, a), atol=1e-4)


@pytest.mark.parametrize("color", [0, 1, 2])
def test_color_noise(color: int) -> None:
    white = _signal(color, 16_000)
    np.testing.assert_allclose(_run(kernels._color_noise, white, color), reference.color_noise(white, color),
                               atol=1e-4)
    if color:  # pink and brown put more power below 500 Hz than white noise does
        spectrum = np.abs(np.fft.rfft(_run(kernels._color_noise, white, color))) ** 2
        assert spectrum[:500].sum() / spectrum.sum() > 0.1


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, offset=st.integers(-5000, 5000))
def test_shift(seed: int, offset: int) -> None:
    x = _signal(seed)
    np.testing.assert_array_equal(_run(kernels._shift, x, offset), reference.shift(x, offset))
