"""Every Numba kernel against its NumPy reference on random inputs, and the synthetic rooms.

Tolerances: 1e-5 absolute for feed-forward kernels on signals of unit scale (float32 rounding),
1e-4 for recursive filters (rounding accumulates over 4,000 samples), exact
equality for the shift (a copy); WSOLA's frame search has no fastmath, so it picks the
same frames as NumPy and agrees to 1e-5.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wakebuilder.data.augment import kernels, reference, rir
from wakebuilder.data.augment.filters import EQ_RANGES, biquad_coefficients
from wakebuilder.data.augment.transforms import WSOLA_HOP, WSOLA_STRIDE, WSOLA_TOLERANCE, WSOLA_WINDOW

SEEDS = st.integers(min_value=0, max_value=2**31 - 1)


def _signal(seed: int, n: int = 4000) -> np.ndarray:
    return (np.random.default_rng(seed).standard_normal(n) * 0.3).astype(np.float32)


def _run(kernel, x, *args, length=None):  # type: ignore[no-untyped-def]
    out = np.empty(length or x.size, dtype=np.float32)
    kernel(x, *args, out)
    return out


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, gain=st.floats(0.0, 4.0), other_gain=st.floats(0.0, 2.0))
def test_mix(seed: int, gain: float, other_gain: float) -> None:
    x, other = _signal(seed), _signal(seed + 1)
    np.testing.assert_allclose(_run(kernels._mix, x, gain, other, other_gain),
                               reference.mix(x, gain, other, other_gain), atol=1e-5)


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, factor=st.floats(0.7, 1.4))
def test_resample_linear(seed: int, factor: float) -> None:
    x = _signal(seed)
    length = int(x.size / factor)
    np.testing.assert_allclose(_run(kernels._resample_linear, x, factor, length=length),
                               reference.resample_linear(x, factor, length), atol=1e-5)


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, rate=st.floats(0.6, 1.6))
def test_wsola(seed: int, rate: float) -> None:
    x = _signal(seed, 6000)
    settings_ = (rate, WSOLA_WINDOW, WSOLA_HOP, WSOLA_TOLERANCE, WSOLA_STRIDE)
    out, norm = np.empty(x.size, np.float32), np.empty(x.size, np.float32)
    kernels._wsola(x, *settings_, out, norm)
    np.testing.assert_allclose(out, reference.wsola(x, *settings_, x.size), atol=1e-5)


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, kind=st.sampled_from(sorted(EQ_RANGES)), cutoff=st.floats(80, 6000), q=st.floats(0.3, 1.5),
       gain_db=st.floats(-12, 12))
def test_biquad(seed: int, kind: str, cutoff: float, q: float, gain_db: float) -> None:
    x = _signal(seed)
    b, a = biquad_coefficients(kind, cutoff, q, gain_db)
    np.testing.assert_allclose(_run(kernels._biquad, x, *b, *a), reference.biquad(x, b, a), atol=1e-4)


@pytest.mark.parametrize(("kind", "at_hz"), [("low_shelf", 0.0), ("high_shelf", 8000.0)])
def test_shelf_moves_its_band_by_gain_db(kind: str, at_hz: float) -> None:
    b, a = biquad_coefficients(kind, 1000.0, 0.7, 6.0)
    z = np.exp(1j * 2 * np.pi * at_hz / 16000)
    response = abs((b[0] + b[1] / z + b[2] / z**2) / (1 + a[0] / z + a[1] / z**2))
    assert 20 * np.log10(response) == pytest.approx(6.0, abs=1e-6)


@pytest.mark.parametrize("color", [0, 1, 2])
def test_color_noise(color: int) -> None:
    white = _signal(color, 16_000)
    coloured = _run(kernels._color_noise, white, color)
    np.testing.assert_allclose(coloured, reference.color_noise(white, color), atol=1e-4)
    spectrum = np.abs(np.fft.rfft(coloured)) ** 2
    low_share = spectrum[:500].sum() / spectrum.sum()  # below 500 Hz: 6 % of white noise's power
    assert low_share > 0.2 if color else 0.03 < low_share < 0.1


@settings(max_examples=20, deadline=None)
@given(seed=SEEDS, offset=st.integers(-5000, 5000), circular=st.booleans())
def test_shift(seed: int, offset: int, circular: bool) -> None:
    x = _signal(seed)
    np.testing.assert_array_equal(_run(kernels._shift, x, offset, circular), reference.shift(x, offset, circular))


@settings(max_examples=15, deadline=None)
@given(seed=SEEDS, n_taps=st.integers(1, 12))
def test_taps(seed: int, n_taps: int) -> None:
    rng = np.random.default_rng(seed)
    x = _signal(seed)
    delays = rng.integers(0, 5000, n_taps).astype(np.int64)
    gains = rng.uniform(-1, 1, n_taps).astype(np.float32)
    np.testing.assert_allclose(_run(kernels._taps, x, delays, gains), reference.taps(x, delays, gains), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("rt60_s", [0.1, 0.6])
def test_fdn(seed: int, rt60_s: float) -> None:
    room = rir.synthetic_room(rt60_s, 3.0, seed)
    x = _signal(seed, 6000)
    ring = np.empty((8, 2048), np.float32)
    fast = _run(kernels._fdn, x, rir.FDN_DELAYS, room.line_gains, room.in_gains, room.out_gains, ring)
    slow = reference.fdn(x, rir.FDN_DELAYS, room.line_gains, room.in_gains, room.out_gains)
    np.testing.assert_allclose(fast, slow, atol=1e-5 * max(1.0, float(np.abs(slow).max())))


def test_running_a_room_is_convolving_with_its_impulse_response() -> None:
    x = _signal(5, 8000)
    room_rir = rir.synthetic_rir(0.4, 4.0, 11, length=x.size)
    wet = rir.run_room(x, rir.synthetic_room(0.4, 4.0, 11))
    np.testing.assert_allclose(wet, np.convolve(x, room_rir)[: x.size], atol=1e-5)
    np.testing.assert_allclose(wet, rir.run_room(x, rir.synthetic_room(0.4, 4.0, 11), backend="numpy"), atol=1e-5)


@pytest.mark.parametrize(("rt60_s", "drr_db"), [(0.15, 0.0), (0.4, 6.0), (0.8, 10.0), (0.3, -3.0)])
def test_synthetic_rir_decays_over_rt60_with_the_asked_drr(rt60_s: float, drr_db: float) -> None:
    response = rir.synthetic_rir(rt60_s, drr_db, seed=3, length=int(3 * rt60_s * 16000)).astype(np.float64)
    assert response[0] == pytest.approx(1.0)
    reverberant = response[1:] ** 2
    assert 10 * np.log10(1.0 / reverberant.sum()) == pytest.approx(drr_db, abs=1.0)
    decay = np.cumsum(reverberant[::-1])[::-1]  # Schroeder backward integration, T30 from -5 to -35 dB
    decay_db = 10 * np.log10(decay / decay[0])
    t30 = 2 * (np.argmax(decay_db < -35) - np.argmax(decay_db < -5)) / 16000
    assert t30 == pytest.approx(rt60_s, rel=0.2)


def test_prepared_rir_starts_at_its_peak_with_unit_energy() -> None:
    raw = np.concatenate([np.zeros(50), [0.1, -0.8, 0.3], 0.05 * _signal(1, 500)]).astype(np.float32)
    prepared = rir.prepare_rir(raw)
    assert abs(prepared[0]) == np.abs(prepared).max()
    assert float(np.sum(prepared.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-5)
    impulse = np.zeros(100, np.float32)
    impulse[10] = 1.0
    np.testing.assert_allclose(rir.convolve_rir(impulse, prepared)[10:], prepared[:90], atol=1e-6)
