"""The backbone's pass over a stream kept in the cache, and shared streams that leave out the wake word's clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import noise
from tests.model_helpers import copy_model, planted_stream, tone_setup, wake_sound
from wakebuilder.audio import write_wav
from wakebuilder.backbones import backbone_from_identity
from wakebuilder.bank.location import cache_dir
from wakebuilder.calibrate import CalibrateConfig, model_stream_scores, model_stream_traces
from wakebuilder.categories import StreamSegments
from wakebuilder.data.stream import StreamConfig, build_negative_stream
from wakebuilder.detect import load_detector
from wakebuilder.evaluate import EvalConfig, evaluate_detector
from wakebuilder.manifest import ClipRecord, write_manifest
from wakebuilder.modeldir import load_model
from wakebuilder.stream_cache import stream_key


def model_with_wake_word(tmp_path: Path, wake_word: str) -> Path:
    """The calibrated tone model (threshold 0.5, identity calibration), told its wake word."""
    model = copy_model(tone_setup()["calibrated"], tmp_path / wake_word.replace(" ", "-") / "model")
    meta = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**meta, "wake_word": wake_word}))
    return model


def test_the_cached_pass_scores_as_the_backbone_does_and_is_reused(tmp_path: Path, monkeypatch) -> None:
    model = load_model(tone_setup()["model"])
    backbone = backbone_from_identity(model.backbone, device="cpu")
    stream = write_wav(tmp_path / "s.wav", planted_stream((2.0, 6.0), 10.0))
    plain, seconds = model_stream_scores(stream, model, backbone, 1.0, 0.0, config=CalibrateConfig())
    cached = CalibrateConfig(cache_streams=True)
    first, cached_seconds = model_stream_scores(stream, model, backbone, 1.0, 0.0, config=cached)
    assert cached_seconds == pytest.approx(seconds) == pytest.approx(10.0)
    assert first.shape == plain.shape and plain.max() > 0.9  # the planted chirps score high
    np.testing.assert_allclose(first, plain, atol=0.02)  # float16 sequences, as the stores keep them
    kept = cache_dir() / "stream-embeddings" / f"{stream_key(stream, backbone.identity, 1600)}.npy"
    assert kept.is_file()
    stamp = kept.stat().st_mtime_ns

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone ran again")

    monkeypatch.setattr(backbone, "embed", no_backbone)
    monkeypatch.setattr(backbone, "embed_hopped", no_backbone)
    again, _ = model_stream_scores(stream, model, backbone, 1.0, 0.0, config=cached)
    assert np.array_equal(again, first) and kept.stat().st_mtime_ns == stamp
    other = write_wav(tmp_path / "t.wav", planted_stream((3.0,), 10.0))  # other audio: another key
    with pytest.raises(AssertionError, match="ran again"):
        model_stream_scores(other, model, backbone, 1.0, 0.0, config=cached)


def test_the_pass_gives_the_backbone_whole_batches_not_a_block_at_a_time(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Audio arrives in 5 s blocks (50 windows at a 0.1 s hop); the backbone is given whole batches of 64 across
    them, the rest at the end, and the sequences are those of the windows one at a time."""
    from wakebuilder.stream_cache import stream_sequences

    model = load_model(tone_setup()["model"])
    backbone = backbone_from_identity(model.backbone, device="cpu")
    monkeypatch.setattr(backbone, "embed_hopped", None, raising=False)  # the windows' own embed, as word-embedding
    stream = write_wav(tmp_path / "s.wav", planted_stream((2.0, 9.0), 20.0))
    sizes: list[int] = []
    embed = backbone.embed

    def counted(windows: np.ndarray):
        sizes.append(windows.shape[0])
        return embed(windows)

    monkeypatch.setattr(backbone, "embed", counted)
    sequences = stream_sequences(stream, backbone, hop=1600, batch_size=64)
    frames = sequences.shape[0]
    assert sizes == [64] * (frames // 64) + ([frames % 64] if frames % 64 else []) and frames > 128
    from wakebuilder.audio_stream import AudioBlocks
    from wakebuilder.streaming import frame_windows

    windows = frame_windows(np.concatenate(list(AudioBlocks(stream))), backbone.window_samples, 1600)
    one_by_one = np.concatenate([embed(windows[i : i + 1])[1] for i in range(0, frames, 37)])
    np.testing.assert_array_equal(sequences[::37], one_by_one.astype(np.float16))


def mixed_stream(tmp_path: Path) -> Path:
    """A stream of noise clips and chirp clips whose text says "hey jarvis" (a shared held-out stream)."""
    folder = tmp_path / "clips"
    rows = []
    for i in range(6):
        says = i % 2 == 0
        audio = noise(2.5, amplitude=0.01, seed=i)
        if says:
            audio[16000 : 16000 + wake_sound().size] += wake_sound()  # centred: no window of a neighbour hears it
        write_wav(folder / f"c{i}.wav", audio)
        rows.append(ClipRecord(id=f"c{i}", path=f"c{i}.wav", label=0, kind="speech_negative", group=f"c{i}",
                               text="well hey jarvis then" if says else "nothing to see", duration_s=2.5))
    manifest = write_manifest(folder / "manifest.jsonl", rows)
    config = StreamConfig(duration_s=16.8, gap_min_s=0.3, gap_max_s=0.3)  # each clip once, in a seeded order
    return build_negative_stream([str(manifest)], out_path=tmp_path / "stream.wav", config=config)


def test_segments_that_say_the_wake_word_are_left_out(tmp_path: Path) -> None:
    stream = mixed_stream(tmp_path)
    segments = StreamSegments.read(stream)
    assert segments is not None and segments.texts.count("well hey jarvis then") == 3
    assert not segments.excluded.any() and not segments.without("computer").excluded.any()
    left_out = segments.without("hey jarvis")
    assert left_out.excluded.sum() == 3 and not segments.excluded.any()  # a copy: the shared stream is unchanged
    kept = sum(segments.seconds(window_s=1.5).values())
    assert sum(left_out.seconds(window_s=0.0).values()) == pytest.approx(kept - 3 * 2.5, abs=0.01)  # not the pauses
    spans = left_out.left_out_spans(1.5)  # every window centre whose 1.5 s window overlaps a left-out clip
    assert sum(left_out.seconds(window_s=1.5).values()) == pytest.approx(kept - float(np.diff(spans).sum()), abs=0.01)
    assert left_out.excluded_at(np.array(segments.starts) + 0.1).tolist() == left_out.excluded.tolist()


@pytest.mark.parametrize("cache_streams", [False, True])
def test_calibration_and_eval_count_no_false_accept_where_the_stream_says_the_wake_word(
    tmp_path: Path, cache_streams: bool
) -> None:
    stream = mixed_stream(tmp_path)
    config = CalibrateConfig(cache_streams=cache_streams, device="cpu")
    results = {}
    for wake_word in ("hey jarvis", "computer"):
        model = load_model(model_with_wake_word(tmp_path, wake_word))
        (trace,), hours = model_stream_traces([stream], model, 1.0, 0.0, config=config)
        detector = load_detector(model.path, device="cpu")
        report = evaluate_detector(detector, streams=[stream], config=EvalConfig(), categories=["other"])
        results[wake_word] = (float(trace.max()), hours * 3600, report)
    said, other = results["hey jarvis"], results["computer"]
    assert other[0] > 0.9 and said[0] < 0.5  # the chirps that "say hey jarvis" are masked for that wake word only
    left_out = StreamSegments.read(stream).without("hey jarvis").left_out_spans(1.5)  # windows that hear those
    assert said[1] == pytest.approx(other[1] - float(np.diff(left_out).sum()), abs=0.01)
    assert other[1] == pytest.approx(16.8, abs=0.01)
    assert other[2]["false_accepts"] == 3 and said[2]["false_accepts"] == 0
    assert said[2]["stream_hours"] * 3600 == pytest.approx(said[1], abs=0.01)


def test_cli_calibrate_keeps_the_stream_pass_and_records_the_streams(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from wakebuilder.cli import main

    setup = tone_setup()
    stream = write_wav(tmp_path / "s.wav", noise(12, amplitude=0.02, seed=7))
    identity = load_model(setup["model"]).backbone
    kept = cache_dir() / "stream-embeddings" / f"{stream_key(stream, identity, 1600)}.npy"
    summaries = []
    for name in ("a", "b"):  # two heads' calibrations on one stream: one backbone pass
        model = copy_model(setup["model"], tmp_path / name / "model")
        args = ["calibrate", "--model", str(model), "--store", str(setup["store"]), "--stream", str(stream),
                "--cache-streams", "--json"]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, result.output
        summaries.append(json.loads(result.stdout))
        if name == "a":
            assert kept.is_file()
            stamp = kept.stat().st_mtime_ns
    assert kept.stat().st_mtime_ns == stamp and summaries[0]["threshold"] == summaries[1]["threshold"]
    saved = json.loads((tmp_path / "b" / "model" / "calibration.json").read_text())
    assert saved["streams"] == [str(stream.resolve())] and saved["config"]["cache_streams"] is True


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage"])
def test_a_damaged_cache_entry_is_computed_again_and_replaced(tmp_path: Path, caplog, damage: str) -> None:
    model = load_model(tone_setup()["model"])
    backbone = backbone_from_identity(model.backbone, device="cpu")
    stream = write_wav(tmp_path / "s.wav", planted_stream((2.0, 6.0), 10.0))
    cached = CalibrateConfig(cache_streams=True)
    first, _ = model_stream_scores(stream, model, backbone, 1.0, 0.0, config=cached)
    kept = cache_dir() / "stream-embeddings" / f"{stream_key(stream, backbone.identity, 1600)}.npy"
    whole = kept.read_bytes()
    damaged = {"truncated": whole[: len(whole) // 2], "empty": b"", "garbage": b"not a numpy file" * 8}[damage]
    kept.write_bytes(damaged)
    with caplog.at_level("WARNING", logger="wakebuilder.stream_cache"):
        again, _ = model_stream_scores(stream, model, backbone, 1.0, 0.0, config=cached)
    np.testing.assert_array_equal(again, first)
    assert str(kept) in caplog.text and "computing it again" in caplog.text
    assert kept.read_bytes() == whole  # replaced by the whole file
    assert not [p for p in kept.parent.iterdir() if p.suffix == ".tmp"]  # no temporary file left


def test_the_key_tells_a_bf16_pass_from_fp32(tmp_path: Path) -> None:
    """AST embeds in bf16 on a GPU and fp32 on the CPU: their stream passes must not share a cache entry."""
    stream = tmp_path / "s.wav"
    stream.write_bytes(b"RIFF")
    identity = {"name": "ast", "window_s": 1.28}
    fp32 = stream_key(stream, identity, 1600, "fp32")
    assert fp32 == stream_key(stream, identity, 1600) == stream_key(stream, identity, 1600, None)
    assert stream_key(stream, identity, 1600, "bf16") != fp32


def test_stream_sequences_keeps_bf16_and_fp32_passes_apart(tmp_path: Path, monkeypatch) -> None:
    import types

    import wakebuilder.stream_cache as stream_cache

    stream = tmp_path / "s.wav"
    stream.write_bytes(b"RIFF")
    monkeypatch.setattr(stream_cache, "_embed_stream",
                        lambda path, backbone, **kw: np.full((2, 3, 4), {"fp32": 1, "bf16": 2}[backbone.dtype], np.float16))
    passes = {dtype: stream_cache.stream_sequences(stream, types.SimpleNamespace(identity={"name": "ast"}, dtype=dtype),
                                                   hop=1600, cache=tmp_path / "cache")
              for dtype in ("fp32", "bf16")}
    assert passes["fp32"][0, 0, 0] == 1 and passes["bf16"][0, 0, 0] == 2  # each its own pass...
    assert len(list((tmp_path / "cache" / "stream-embeddings").glob("*.npy"))) == 2  # ...and its own file


def test_each_pass_records_the_streams_it_was_made_or_read_for(tmp_path: Path) -> None:
    """A pass is keyed by a hash of its audio, so nothing told whose it was and ``wb bank reclaim`` could never know
    that of a held-out stream removed was dead. Each pass now records the streams it served (their real paths) and
    their bytes' SHA-256 beside it, also a pass kept from before, when it is read next."""
    from wakebuilder.backbones import load_backbone
    from wakebuilder.fingerprint import file_sha256
    from wakebuilder.stream_cache import RECORD_SUFFIX, recorded_passes, stream_sequences

    backbone, cache = load_backbone("speech-embedding"), tmp_path / "cache"
    stream = write_wav(tmp_path / "s.wav", planted_stream((2.0,), 4.0))
    copy = tmp_path / "elsewhere" / "copy.wav"
    copy.parent.mkdir()
    copy.write_bytes(stream.read_bytes())
    (tmp_path / "link.wav").symlink_to(stream)
    made = stream_sequences(tmp_path / "link.wav", backbone, hop=1600, cache=cache)
    key = stream_key(stream, backbone.identity, 1600)
    record = cache / "stream-embeddings" / f"{key}{RECORD_SUFFIX}"
    (cached,) = recorded_passes(cache)
    assert (cached.key, cached.sha256, cached.streams) == (key, file_sha256(str(stream)), (str(stream.resolve()),))
    assert set(cached.files) == {record, record.with_name(f"{key}.npy")}
    assert np.array_equal(stream_sequences(copy, backbone, hop=1600, cache=cache), made)  # the same bytes: read
    assert recorded_passes(cache)[0].streams == tuple(sorted([str(stream.resolve()), str(copy.resolve())]))
    record.unlink()  # a pass made before passes recorded their streams: none known...
    assert recorded_passes(cache)[0].streams is None
    stream_sequences(stream, backbone, hop=1600, cache=cache)  # ...until it is read again
    assert recorded_passes(cache)[0].streams == (str(stream.resolve()),)
