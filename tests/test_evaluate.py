"""wb eval: per-clip metrics on a manifest, FA/h on continuous audio, several models side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import noise
from tests.model_helpers import tone_clips, tone_setup
from wakebuilder import metrics
from wakebuilder.audio import quantize_pcm16, write_wav
from wakebuilder.cli import main
from wakebuilder.errors import ConfigError
from wakebuilder.evaluate import EvalConfig, evaluate_models, format_comparison, split_inputs
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, write_manifest


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from wakebuilder.export import export_model

    root = tmp_path_factory.mktemp("eval")
    clips, labels = tone_clips(24000, 24, seed=7)
    records = []
    for i, (clip, label) in enumerate(zip(clips, labels, strict=True)):
        write_wav(root / f"c{i}.wav", clip)
        records.append(ClipRecord(id=audio_id(quantize_pcm16(clip)), path=f"c{i}.wav", label=int(label),
                                  kind="tts" if label else "noise", group=f"g{i}", duration_s=1.5))
    manifest = write_manifest(root / "manifest.jsonl", records)
    stream = write_wav(root / "neg.wav", noise(20, amplitude=0.03, seed=11))
    onnx_path = Path(export_model(tone_setup()["calibrated"], root / "export", name="chirp").files["onnx"])
    return {"manifest": manifest, "stream": stream, "onnx": onnx_path, "model": tone_setup()["calibrated"]}


def test_metrics_on_manifest_and_stream(data: dict[str, Path]) -> None:
    (result,) = evaluate_models([data["onnx"]], [str(data["manifest"]), str(data["stream"])])
    assert result["n_clips"] == 24 and result["metrics"]["recall"] >= 0.9 and result["metrics"]["far"] <= 0.1
    assert result["false_accepts"] == 0 and result["fa_per_hour"] == 0.0
    assert result["stream_hours"] == pytest.approx(20 / 3600)
    # 0 false accepts in 20 s is no evidence of 0 FA/h: the 95 % upper bound beside it, 2.9957 per 20 s
    assert result["fa_per_hour_upper95"] == pytest.approx(2.9957 * 180, abs=0.1)


def test_two_models_side_by_side(data: dict[str, Path]) -> None:
    results = evaluate_models([data["onnx"], data["model"]], [str(data["manifest"])], config=EvalConfig())
    assert [r["model"] for r in results] == ["chirp", "model"]
    np.testing.assert_allclose(results[0]["metrics"]["f1"], results[1]["metrics"]["f1"], atol=1e-6)
    text = format_comparison(results)
    assert len(text.splitlines()) == 3 and "n/a" in text  # no stream: FA/h not available


def test_cli_json_and_model_options(data: dict[str, Path]) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["eval", str(data["onnx"]), str(data["stream"]), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["fa_per_hour"] == 0.0
    args = ["eval", "--model", str(data["onnx"]), "--threshold", "0.9", str(data["manifest"])]
    result = runner.invoke(main, args)
    assert result.exit_code == 0 and "chirp" in result.stdout and "0.900" in result.stdout


def test_bad_inputs(data: dict[str, Path], tmp_path: Path) -> None:
    assert split_inputs(["a.jsonl", "b.wav"]) == (["a.jsonl"], ["b.wav"])
    with pytest.raises(ConfigError, match="at least one"):
        evaluate_models([data["onnx"]], [])
    runner = CliRunner()
    assert runner.invoke(main, ["eval", "--help"]).exit_code == 0
    result = runner.invoke(main, ["eval", str(data["onnx"]), str(tmp_path / "missing.wav")])
    assert result.exit_code != 0 and "file not found" in result.stderr and result.stderr.count("\n") == 1
    result = runner.invoke(main, ["eval", str(data["onnx"]), str(data["manifest"]), "--hop-s", "0.5"])
    assert result.exit_code == 2 and "hop-s" in result.stderr


def test_an_empty_manifest_is_refused_not_scored_as_perfect(data: dict[str, Path], tmp_path: Path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    result = CliRunner().invoke(main, ["eval", str(data["onnx"]), str(empty)])
    assert result.exit_code == 1 and result.stdout == "" and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {empty}: no clips; ")
    (both,) = evaluate_models([data["onnx"]], [str(empty), str(data["manifest"])])  # another one has clips
    assert both["n_clips"] == 24


def test_fa_per_hour_per_category(data: dict[str, Path], tmp_path: Path) -> None:
    from tests.model_helpers import planted_stream
    from wakebuilder.categories import record_category

    music = tmp_path / "music_debian"
    music.mkdir()
    write_wav(music / "song.wav", planted_stream((2.0, 6.0, 10.0), 14.0))  # three "wake words" in music
    write_wav(tmp_path / "quiet.wav", noise(10, amplitude=0.01, seed=5))
    (result,) = evaluate_models([data["onnx"]], [str(data["manifest"]), str(music / "song.wav")],
                                categories=[f"noise={tmp_path / 'quiet.wav'}"])
    cats = result["categories"]
    assert set(cats) == {"music", "noise"} and cats["music"]["false_accepts"] == 3
    assert cats["music"]["fa_per_hour"] == pytest.approx(3 / (14 / 3600))
    assert cats["noise"]["false_accepts"] == 0 and cats["noise"]["hours"] == pytest.approx(10 / 3600)
    assert result["false_accepts"] == 3 and result["stream_hours"] == pytest.approx(24 / 3600)
    upper = metrics.fa_per_hour_upper
    for row in cats.values():  # each category's bound from its own false accepts and hours
        assert row["fa_per_hour_upper95"] == pytest.approx(upper(row["false_accepts"], row["hours"]))
        assert row["fa_per_hour_upper95"] > row["fa_per_hour"]
    assert cats["noise"]["fa_per_hour_upper95"] == pytest.approx(2.9957 * 360, abs=0.1)
    assert result["fa_per_hour_upper95"] == pytest.approx(upper(3, 24 / 3600))
    assert result["clip_categories"]["noise"]["negatives"] == 12  # the manifest's negatives are kind "noise"
    table = format_comparison([result]).splitlines()
    assert table[0].split()[-3:] == ["speech", "music", "noise"]
    assert table[1].split()[-3:] == ["n/a", f"{3 / (14 / 3600):.3f}", "0.000"]
    cells = dict(zip(table[0].split(), table[1].split(), strict=True))
    assert cells["FA/h"] == f"{3 / (24 / 3600):.3f}" and cells["FA/h<=95%"] == f"{upper(3, 24 / 3600):.3f}"
    runner = CliRunner()
    out = runner.invoke(main, ["eval", str(data["onnx"]), "--category", f"music={music}", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["categories"]["music"]["false_accepts"] == 3
    bad = runner.invoke(main, ["eval", str(data["onnx"]), "--category", "music"])
    assert bad.exit_code == 2 and "NAME=PATH" in bad.stderr
    assert record_category(ClipRecord(id="x", path="a.wav", label=0, kind="real_negative", group="g",
                                      source="negatives/music_debian/x.ogg")) == "music"


def test_a_mixed_stream_counts_false_accepts_per_clip_category(data: dict[str, Path], tmp_path: Path) -> None:
    """A stream built from music and noise clips: each false accept counts for the clip it falls in."""
    from tests.model_helpers import planted_stream
    from wakebuilder.categories import segments_path
    from wakebuilder.data.stream import StreamConfig, build_negative_stream

    clips = tmp_path / "clips"
    clips.mkdir()
    records = []
    for i in range(3):  # "music" that sounds like the wake word, and quiet noise
        write_wav(clips / f"m{i}.wav", planted_stream((1.0,), 3.0, seed=i))
        write_wav(clips / f"n{i}.wav", noise(3.0, amplitude=0.01, seed=20 + i))
        records += [ClipRecord(id=f"m{i}", path=f"m{i}.wav", label=0, kind="real_negative", group="m",
                               params={"category": "music"}),
                    ClipRecord(id=f"n{i}", path=f"n{i}.wav", label=0, kind="noise", group="n")]
    manifest = write_manifest(clips / "manifest.jsonl", records)
    stream = build_negative_stream([str(manifest)], out_path=tmp_path / "stream.wav",
                                   config=StreamConfig(duration_s=20.0, seed=1, gap_min_s=1.2, gap_max_s=1.5))
    sidecar = json.loads(segments_path(stream).read_text())
    assert {row[1] for row in sidecar["segments"]} == {"music", "noise"} and sidecar["duration_s"] == 20.0
    (result,) = evaluate_models([data["onnx"]], [str(stream)])
    cats = result["categories"]
    assert cats["music"]["false_accepts"] >= 1 and cats["noise"]["false_accepts"] == 0
    assert result["false_accepts"] == cats["music"]["false_accepts"]
    assert sum(c["hours"] for c in cats.values()) == pytest.approx(20 / 3600)


def test_a_stream_of_wake_word_clips_only_is_refused_naming_it(data: dict[str, Path], tmp_path: Path) -> None:
    """Streams of wb stream whose every clip says the model's wake word are all left out: wb eval said 'FA/h needs
    negative audio: got 0.0 hours' without naming them. Beside a stream of other audio such a one adds nothing."""
    from wakebuilder.categories import segments_path

    streams = []
    for name in ("a", "b"):
        stream = write_wav(tmp_path / f"{name}.wav", noise(8, amplitude=0.01, seed=5))
        segments = [[0.0, "speech", "x", "hey tone"], [4.0, "speech", "y", "well hey tone then"]]
        segments_path(stream).write_text(json.dumps({"duration_s": 8.0, "segments": segments}))
        streams.append(str(stream))
    result = CliRunner().invoke(main, ["eval", str(data["onnx"]), *streams])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {streams[0]}, {streams[1]}: every clip says 'hey tone'")
    assert "a.segments.json" in result.stderr and "wb stream" in result.stderr
    (mixed,) = evaluate_models([data["onnx"]], [streams[0], str(data["stream"])])
    assert mixed["stream_hours"] == pytest.approx(20 / 3600)


@pytest.mark.parametrize("category", ["other", "speech"])
def test_a_false_accept_right_after_a_wake_word_clip_counts_in_calibration_and_eval_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, category: str
) -> None:
    """One raw score trace over a stream of wb stream: the clip at 5..8 s says the wake word and scores high until
    its end; the next clip (not the wake word) scores high 1.4 s later, where no window hears the wake word, within
    the (2 s) refractory period of the wake word's firing. That is a real false accept; calibration's FA/h and wb
    eval's must both count it, and leave the wake word's clip out (and the windows that hear it), also where eval
    is told the stream's category (not mixed: ``other``)."""
    import wakebuilder.calibrate as calibrate
    from tests.model_helpers import tone_setup
    from wakebuilder.calibrate import CalibrateConfig, model_stream_traces, stream_fa_per_hour
    from wakebuilder.categories import segments_path
    from wakebuilder.detect import load_detector
    from wakebuilder.evaluate import evaluate_detector
    from wakebuilder.modeldir import load_model

    model = load_model(tone_setup()["calibrated"])  # threshold 0.5, wake word "hey tone"
    window_s = tone_setup()["window_samples"] / 16000
    stream = write_wav(tmp_path / "mixed.wav", noise(20, amplitude=0.01, seed=3))
    segments = [[0.0, "speech", "a", "nothing here"], [5.0, "speech", "b", "well hey tone then"],
                [8.0, "speech", "c", "something else"]]
    segments_path(stream).write_text(json.dumps({"duration_s": 20.0, "segments": segments}))
    times = np.arange(int((20 - window_s) / 0.1) + 1) * 0.1 + window_s / 2  # each window's centre
    raw = np.full(times.size, 0.01, np.float32)
    raw[(times > 7.45) & (times < 7.95)] = 0.99  # the wake word, to the end of its clip
    raw[(times > 8.85) & (times < 9.15)] = 0.9  # a false accept in the next clip
    monkeypatch.setattr(calibrate, "model_stream_scores", lambda *args, **kwargs: (raw, 20.0))
    traces, hours = model_stream_traces([stream], model, 1.0, 0.0, config=CalibrateConfig(device="cpu"))
    config = CalibrateConfig(refractory_s=2.0)
    calibrated = stream_fa_per_hour(traces, hours, np.array([0.5]), config)[0] * hours
    report = evaluate_detector(load_detector(model.path, device="cpu"), streams=[stream],
                               config=EvalConfig(refractory_s=2.0), categories=[category], traces={str(stream): raw})
    assert round(calibrated) == 1 and report["false_accepts"] == 1
    assert report["stream_hours"] == pytest.approx(hours) == pytest.approx((17 - window_s) / 3600)


def test_windows_that_hear_a_wake_word_clip_are_no_false_accepts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A window (1.5 s, timed at its centre) that overlaps a clip saying the wake word hears it: one centred 0.2..0.5 s
    after the clip hears its end, one centred 0.3..0.5 s before it its start. Only windows centred in the clip were
    left out, so these counted as false accepts in calibration and wb eval (FA/h too high, thresholds too high).
    They are left out now, and so is their time; a false accept no window of the clip hears still counts."""
    import wakebuilder.calibrate as calibrate
    from wakebuilder.calibrate import CalibrateConfig, model_stream_traces, stream_fa_per_hour
    from wakebuilder.categories import segments_path
    from wakebuilder.detect import load_detector
    from wakebuilder.evaluate import evaluate_detector
    from wakebuilder.modeldir import load_model

    model = load_model(tone_setup()["calibrated"])  # threshold 0.5, wake word "hey tone"
    window_s = tone_setup()["window_samples"] / 16000
    stream = write_wav(tmp_path / "mixed.wav", noise(20, amplitude=0.01, seed=3))
    segments = [[0.0, "speech", "a", "nothing here"], [5.0, "speech", "b", "well hey tone then"],
                [8.0, "speech", "c", "something else"]]  # no ends: a sidecar of a stream made before it said them
    segments_path(stream).write_text(json.dumps({"duration_s": 20.0, "segments": segments}))
    times = np.arange(int((20 - window_s) / 0.1) + 1) * 0.1 + window_s / 2  # each window's centre
    raw = np.full(times.size, 0.01, np.float32)
    raw[(times > 4.45) & (times < 4.75)] = 0.8  # hears the wake word's start
    raw[(times > 5.45) & (times < 7.95)] = 0.99  # the wake word
    raw[(times > 8.15) & (times < 8.55)] = 0.9  # hears its end
    raw[(times > 12.05) & (times < 12.35)] = 0.9  # a false accept
    monkeypatch.setattr(calibrate, "model_stream_scores", lambda *args, **kwargs: (raw, 20.0))
    traces, hours = model_stream_traces([stream], model, 1.0, 0.0, config=CalibrateConfig(device="cpu"))
    default = CalibrateConfig().resolved(model.window_samples)  # wb eval's default: the window
    calibrated = stream_fa_per_hour(traces, hours, np.array([0.5]), default)[0] * hours
    report = evaluate_detector(load_detector(model.path, device="cpu"), streams=[stream], config=EvalConfig(),
                               categories=["other"], traces={str(stream): raw})
    assert round(calibrated) == 1 and report["false_accepts"] == 1
    left_out = 8.0 + window_s / 2 - (5.0 - window_s / 2)  # every window centre whose window overlaps the clip
    assert hours * 3600 == pytest.approx(20 - left_out) and report["stream_hours"] == pytest.approx(hours)
    assert sum(c["hours"] for c in report["categories"].values()) * 3600 == pytest.approx(20 - left_out)


@pytest.mark.parametrize("beyond", [True, False])
def test_a_false_accept_in_the_pause_after_a_wake_word_clip_counts_beyond_half_a_window(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, beyond: bool
) -> None:
    """The clip at 5..6.5 s says the wake word; the pause after it runs to the next clip at 8 s. Windows (1.5 s, timed
    at their centre) were left out up to half a window after the next clip's start (the sidecar said no clip's end),
    so a false accept in the pause that no window of the clip hears was not counted (FA/h too low). The sidecar says
    where each clip ends now: a detection centred more than half a window after the clip's end counts, one within
    half a window hears the clip and does not; the time left out runs half a window either side of the clip."""
    import wakebuilder.calibrate as calibrate
    from wakebuilder.calibrate import CalibrateConfig, model_stream_traces, stream_fa_per_hour
    from wakebuilder.categories import segments_path
    from wakebuilder.detect import load_detector
    from wakebuilder.evaluate import evaluate_detector
    from wakebuilder.modeldir import load_model

    model = load_model(tone_setup()["calibrated"])  # threshold 0.5, wake word "hey tone"
    window_s = tone_setup()["window_samples"] / 16000
    stream = write_wav(tmp_path / "mixed.wav", noise(20, amplitude=0.01, seed=3))
    segments = [[0.0, "speech", "a", "nothing here", 4.5], [5.0, "speech", "b", "well hey tone then", 6.5],
                [8.0, "speech", "c", "something else", 10.0]]  # start, category, id, text, end
    segments_path(stream).write_text(json.dumps({"duration_s": 20.0, "segments": segments}))
    times = np.arange(int((20 - window_s) / 0.1) + 1) * 0.1 + window_s / 2  # each window's centre
    raw = np.full(times.size, 0.01, np.float32)
    raw[(times > 5.45) & (times < 6.45)] = 0.99  # the wake word
    first = 6.5 + (window_s / 2 + 0.1 if beyond else 0.2)  # the detection's first window centre, in the pause
    raw[(times > first - 0.05) & (times < first + 0.25)] = 0.9
    monkeypatch.setattr(calibrate, "model_stream_scores", lambda *args, **kwargs: (raw, 20.0))
    traces, hours = model_stream_traces([stream], model, 1.0, 0.0, config=CalibrateConfig(device="cpu"))
    default = CalibrateConfig().resolved(model.window_samples)  # wb eval's default: the window
    calibrated = stream_fa_per_hour(traces, hours, np.array([0.5]), default)[0] * hours
    report = evaluate_detector(load_detector(model.path, device="cpu"), streams=[stream], config=EvalConfig(),
                               categories=["other"], traces={str(stream): raw})
    assert round(calibrated) == int(beyond) and report["false_accepts"] == int(beyond)
    left_out = 6.5 + window_s / 2 - (5.0 - window_s / 2)  # every window centre whose window overlaps the clip
    assert hours * 3600 == pytest.approx(20 - left_out) and report["stream_hours"] == pytest.approx(hours)


@pytest.mark.parametrize("kept", [0, 1])
def test_a_manifest_of_one_class_reports_no_figure_for_the_other(data: dict[str, Path], kept: int) -> None:
    """Negatives only (how often does it fire on my clips?): recall, F1 and FRR have no positives to be measured
    on, and were reported 0.0000 (recall 0 beside FRR 0, targets failed); positives only: FAR likewise. They are
    n/a now, and so is the best-F1 threshold."""
    from wakebuilder.manifest import read_manifest

    rows = [r for r in read_manifest(data["manifest"]) if r.label == kept]
    manifest = write_manifest(data["manifest"].parent / f"only-{kept}.jsonl", rows)  # beside the clips
    (result,) = evaluate_models([data["model"]], [str(manifest)])
    undefined = {"recall", "f1", "frr"} if kept == 0 else {"far"}
    assert {k for k, v in result["metrics"].items() if v is None} == undefined and result["best_f1"] is None
    assert {row["metric"] for row in result["targets"] if row["pass"] is None} == undefined
    assert {row["metric"] for row in result["targets"] if row["pass"] is False} == set()
    head, row = format_comparison([result]).splitlines()
    cells = dict(zip(head.split(), row.split(), strict=True))
    assert {k for k, v in cells.items() if v == "n/a"} == undefined | {"FA/h", "FA/h<=95%", "speech", "music", "noise"}


def test_a_file_given_twice_is_evaluated_once(data: dict[str, Path], tmp_path: Path) -> None:
    """A stream given as a path and again through --category (its folder, or the file itself), or as a path twice,
    was scanned once per mention: its false accepts and hours counted twice (6 false accepts in 28 s of a 14 s
    file). Each file is evaluated once now; a --category name is its category, the name read from its path only a
    guess. A manifest given twice is scored once too."""
    from tests.model_helpers import planted_stream

    music = tmp_path / "music"
    music.mkdir()
    song = write_wav(music / "song.wav", planted_stream((2.0, 6.0, 10.0), 14.0))
    for inputs, given, category in (
        ([str(song)], [f"music={music}"], "music"),
        ([str(song), str(music / ".." / "music" / "song.wav")], [], "music"),
        ([str(song)], [f"noise={song}"], "noise"),
        ([], [f"music={music}", f"music={song}"], "music"),
    ):
        (result,) = evaluate_models([data["onnx"]], inputs, categories=given)
        assert result["false_accepts"] == 3 and result["stream_hours"] == pytest.approx(14 / 3600), (inputs, given)
        assert list(result["categories"]) == [category] and result["categories"][category]["false_accepts"] == 3
    (result,) = evaluate_models([data["onnx"]], [str(data["manifest"]), f"{data['manifest'].parent}/./manifest.jsonl"])
    assert result["n_clips"] == 24
    out = CliRunner().invoke(main, ["eval", str(data["onnx"]), str(song), "--category", f"music={music}", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)[0]["false_accepts"] == 3


def test_a_file_given_in_two_categories_is_refused_naming_it(data: dict[str, Path], tmp_path: Path) -> None:
    """Counted in both, its false accepts added up twice in the totals; which category is right, only its user
    knows."""
    song = write_wav(tmp_path / "song.wav", noise(2, amplitude=0.01, seed=3))
    args = ["eval", str(data["onnx"]), "--category", f"music={tmp_path}", "--category", f"noise={song}"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2 and result.stdout == "" and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {song}: given in two categories (music and noise); ")


def test_a_manifest_with_an_upper_case_suffix_is_read_as_one(data: dict[str, Path]) -> None:
    """X.JSONL (a Windows or FAT copy) was taken for audio: 'cannot decode audio'. The suffix's case does not
    matter now."""
    assert split_inputs(["a.JSONL", "b.Jsonl", "c.WAV"]) == (["a.JSONL", "b.Jsonl"], ["c.WAV"])
    upper = data["manifest"].with_name("UPPER.JSONL")  # beside the clips it lists
    upper.write_bytes(data["manifest"].read_bytes())
    result = CliRunner().invoke(main, ["eval", str(data["onnx"]), str(upper), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)[0]["n_clips"] == 24


def test_a_stream_shorter_than_the_window_is_timed_at_its_centre_with_or_without_a_trace(tmp_path: Path) -> None:
    """A stream shorter than the window is scored centred in it (as wb detect does); counted on a given trace, its
    one event was still timed half a window in, past the stream's end, where wb detect times it at its centre."""
    from wakebuilder.detect import Detector
    from wakebuilder.evaluate import stream_events

    detector = Detector("loud", lambda w: np.abs(w).max(axis=1), 24000, 0.5, {})
    stream = write_wav(tmp_path / "short.wav", np.full(16000, 0.9, np.float32))
    config = EvalConfig(hop_s=0.1, smooth=1, refractory_s=1.0)
    scanned, seconds = stream_events(detector, stream, config)
    counted, _ = stream_events(detector, stream, config, np.array([0.9], np.float32))
    assert seconds == 1.0 and [e.time_s for e in scanned] == [e.time_s for e in counted] == [0.5]
