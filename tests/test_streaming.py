"""Sliding windows, smoothing and the event rule: goldens, and chunked == one-shot properties."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wakebuilder.errors import ConfigError
from wakebuilder.streaming import (
    EventCounter, MovingAverage, WindowBuffer, count_events, first_frame_s, frame_starts, frame_times, frame_windows,
    hop_samples, score_blocks, score_waveform, smooth_scores,
)

HOP = 0.1


def trace(*runs: tuple[int, int, float], n: int = 60) -> np.ndarray:
    """Zeros with ``value`` on frames [start, stop) for each run."""
    out = np.zeros(n)
    for start, stop, value in runs:
        out[start:stop] = value
    return out


def test_two_crossings_inside_refractory_are_one_event() -> None:
    scores = trace((10, 12, 0.9), (15, 17, 0.95))  # rises 0.5 s apart
    events = count_events(scores, 0.5, frame_s=HOP, refractory_s=1.0)
    assert len(events) == 1
    assert events[0].onset_s == pytest.approx(1.0)
    assert events[0].score == pytest.approx(0.95) and events[0].time_s == pytest.approx(1.5)


def test_plateau_is_one_event() -> None:
    assert len(count_events(trace((5, 55, 0.99)), 0.5, frame_s=HOP, refractory_s=1.0)) == 1


def test_two_separated_crossings_are_two_events() -> None:
    scores = trace((10, 12, 0.9), (30, 31, 0.7))
    events = count_events(scores, 0.5, frame_s=HOP, refractory_s=1.0, offset_s=0.75)
    assert [round(e.time_s, 3) for e in events] == [1.75, 3.75]
    assert [e.score for e in events] == [0.9, 0.7]


def test_rising_edge_exactly_one_refractory_later_is_new() -> None:
    assert len(count_events(trace((10, 11, 0.9), (20, 21, 0.9)), 0.5, frame_s=HOP, refractory_s=1.0)) == 2


def test_nothing_below_threshold_and_threshold_is_inclusive() -> None:
    assert count_events(trace((10, 20, 0.49)), 0.5, frame_s=HOP) == []
    assert len(count_events(trace((10, 20, 0.5)), 0.5, frame_s=HOP)) == 1


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(0, 1), min_size=1, max_size=120),
    st.integers(1, 40),
    st.floats(0.0, 2.0),
)
def test_event_counter_in_blocks_equals_count_events(
    values: list[float], block: int, refractory: float
) -> None:
    scores = np.asarray(values)
    counter = EventCounter(0.5, frame_s=HOP, refractory_s=refractory, offset_s=0.3)
    got = []
    for start in range(0, len(scores), block):
        got += counter.update(scores[start : start + block])
    got += counter.flush()
    assert got == count_events(scores, 0.5, frame_s=HOP, refractory_s=refractory, offset_s=0.3)


def test_frame_windows_and_times() -> None:
    audio = np.arange(100, dtype=np.float32)
    windows = frame_windows(audio, 40, 20)
    assert windows.shape == (4, 40) and windows[1, 0] == 20 and windows[-1, -1] == 99
    assert frame_windows(audio[:10], 40, 20).shape == (1, 40)  # short audio: one zero-padded window
    assert frame_windows(audio[:40], 40, 20).tolist() == [audio[:40].tolist()]  # exactly one window: no padding
    assert frame_times(3, window_samples=16000, hop=1600).tolist() == pytest.approx([0.5, 0.6, 0.7])


@pytest.mark.parametrize("n", [1, 10, 11, 39])
def test_audio_shorter_than_a_window_is_centred_in_it_as_in_training(n: int) -> None:
    """Training clips are centred in the window (``fit_to_window``); a short recording padded at its end only
    put the word at the window's start, where the detector never heard one, and timed it past the audio's end."""
    from wakebuilder.audio import fit_to_window

    audio = np.arange(1, n + 1, dtype=np.float32)
    (window,) = frame_windows(audio, 40, 20)
    np.testing.assert_array_equal(window, fit_to_window(audio, 40))
    left = (40 - n) // 2
    assert frame_starts(n, 40, 20).tolist() == [-left] and window[left] == 1 and window[left + n - 1] == n
    buffer = WindowBuffer(40, 20)
    assert buffer.push(audio).shape == (0, 40)
    np.testing.assert_array_equal(buffer.flush(), window[None])
    scores = score_blocks([audio[:3], audio[3:]], lambda w: w[:, 20], window_samples=40, hop=20)
    assert scores.tolist() == score_waveform(audio, lambda w: w[:, 20], window_samples=40, hop=20).tolist()
    # frame 0 is timed at its window's centre: the audio's centre (half a sample later where n is odd)
    assert first_frame_s(n, 40, sample_rate=1) == (40 / 2 - left) == pytest.approx(n / 2, abs=0.5)
    assert first_frame_s(40, 40, sample_rate=1) == first_frame_s(10**6, 40, sample_rate=1) == 20.0


def test_score_waveform_batches_in_order() -> None:
    audio = np.arange(1000, dtype=np.float32)
    scores = score_waveform(audio, lambda w: w[:, 0], window_samples=100, hop=50, batch_size=3)
    assert scores.tolist() == list(range(0, 901, 50))


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 700), st.integers(0, 900))
def test_window_buffer_matches_whole_stream(block: int, n: int) -> None:
    audio = np.random.default_rng(n).standard_normal(n).astype(np.float32)
    buffer = WindowBuffer(100, 30)
    parts = [buffer.push(audio[i : i + block]) for i in range(0, n, block)] + [buffer.flush()]
    got = np.concatenate(parts) if parts else np.zeros((0, 100))
    want = frame_windows(audio, 100, 30) if n else np.zeros((0, 100))
    np.testing.assert_array_equal(got, want)


def test_smoothing_golden_and_in_blocks() -> None:
    scores = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    np.testing.assert_allclose(smooth_scores(scores, 3), [1, 0.5, 1 / 3, 1 / 3, 2 / 3, 1], rtol=1e-6)
    np.testing.assert_array_equal(smooth_scores(scores, 1), scores.astype(np.float32))
    average = MovingAverage(3)
    blocks = np.concatenate([average.update(part) for part in (scores[:1], scores[1:4], scores[4:])])
    np.testing.assert_allclose(blocks, smooth_scores(scores, 3), rtol=1e-6)


@pytest.mark.parametrize("hop_s", [0.0, 0.2, -1.0, float("nan")])
def test_hop_over_100_ms_or_non_positive_is_refused(hop_s: float) -> None:
    with pytest.raises(ConfigError, match="hop-s"):
        hop_samples(hop_s)


@pytest.mark.parametrize("hop_s", [1 / 16000, 0.0001, 0.0099])
def test_hop_under_10_ms_is_refused(hop_s: float) -> None:
    """A one-sample hop made a window per sample: gigabytes of frames for a minute of audio."""
    with pytest.raises(ConfigError, match=rf"--hop-s {hop_s}: must be in \[0.01, 0.1\] seconds"):
        hop_samples(hop_s)


def test_hops_of_10_to_100_ms_are_accepted() -> None:
    assert (hop_samples(0.01), hop_samples(0.1)) == (160, 1600)


def test_a_nan_score_is_refused_not_counted_as_below_the_threshold() -> None:
    """A detector that scores a window NaN (a foreign ONNX on digital silence) gives no probability there: NaN
    compares below every threshold, so it would be counted as no false accept (and, smoothed, as none for the
    rest of the stream), and wb eval's FA/h would read better than the model is."""
    from wakebuilder.errors import ModelFileError

    scores = trace((10, 12, 0.9), (30, 31, 0.7))
    scores[20] = np.nan
    with pytest.raises(ModelFileError, match=r"at 2\.25 s NaN"):
        count_events(scores, 0.5, frame_s=HOP, refractory_s=1.0, offset_s=0.25)
    counter = EventCounter(0.5, frame_s=HOP, refractory_s=1.0, offset_s=0.25)
    counter.update(scores[:15])
    with pytest.raises(ModelFileError, match=r"at 2\.25 s NaN"):
        counter.update(scores[15:])


@pytest.mark.parametrize("settings", [{"smooth": 10**30}, {"smooth": 1001}, {"smooth": 0}, {"smooth": 2.5},
                                      {"smooth": True}, {"refractory_s": 1e9}, {"refractory_s": -1.0},
                                      {"refractory_s": float("nan")}, {"refractory_s": float("inf")}])
def test_library_configs_bound_smoothing_and_refractory_like_the_cli(settings: dict) -> None:
    """DetectConfig, EvalConfig, CalibrateConfig and WebConfig checked only smooth >= 1 and refractory_s >= 0: a
    library caller's smooth=10**30 ended in an OverflowError, refractory_s=1e9 merged every detection into one. They
    now refuse what --smooth and --refractory-s refuse, in one line naming the option; their bounds are allowed."""
    from wakebuilder import MAX_REFRACTORY_S, MAX_SMOOTH
    from wakebuilder.calibrate import CalibrateConfig
    from wakebuilder.detect import DetectConfig
    from wakebuilder.evaluate import EvalConfig
    from wakebuilder.web.build import WebConfig

    (name, value), = settings.items()
    option = "--" + name.replace("_", "-")
    for config in (DetectConfig, EvalConfig, CalibrateConfig, WebConfig):
        with pytest.raises(ConfigError, match=f"^{option} {value!r}: must be ") as caught:
            config(**settings)
        assert "\n" not in str(caught.value)
        assert config(smooth=MAX_SMOOTH, refractory_s=MAX_REFRACTORY_S).smooth == MAX_SMOOTH
        assert config(smooth=1, refractory_s=0.0).refractory_s == 0.0
