"""Streaming detection: planted chirps found at the right times, nothing in noise or silence, stdin PCM."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import noise, tone
from tests.model_helpers import WAKE_CHIRP_S, planted_stream, tone_setup
from wakebuilder.audio import to_pcm16, write_wav
from wakebuilder.cli import main
from wakebuilder.detect import (
    DetectConfig, StreamDetector, detect_stream, detect_waveform, load_detector, pcm_blocks,
)
from wakebuilder.errors import ConfigError, ModelFileError

PLANTED = (3.0, 8.0, 13.5)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wakebuilder.export import export_model

    summary = export_model(tone_setup()["calibrated"], tmp_path_factory.mktemp("det") / "export", name="chirp")
    return Path(summary.files["onnx"])


def assert_found(events: list, times: tuple[float, ...]) -> None:
    assert len(events) == len(times), events
    for event, t0 in zip(events, times, strict=True):
        assert abs(event.time_s - (t0 + WAKE_CHIRP_S / 2)) <= 0.8, (event, t0)
        assert event.score >= 0.5


def test_planted_positives_found_at_their_times(exported: Path) -> None:
    detector = load_detector(exported)
    assert detector.window_samples == 24000 and detector.threshold == 0.5  # uncalibrated export
    assert_found(detect_waveform(detector, planted_stream(PLANTED, 16.0), DetectConfig()), PLANTED)


@pytest.mark.parametrize("audio", [np.zeros(16000 * 10, np.float32), noise(10, amplitude=0.05, seed=9),
                                   tone(1000, 10, amplitude=0.3)])
def test_nothing_in_silence_noise_or_a_steady_tone(exported: Path, audio: np.ndarray) -> None:
    assert detect_waveform(load_detector(exported), audio, DetectConfig()) == []


def test_incremental_blocks_equal_the_whole_file(exported: Path) -> None:
    detector = load_detector(exported)
    audio = planted_stream(PLANTED, 16.0)
    config = DetectConfig(smooth=3).resolved(detector)
    runner = StreamDetector(detector, config)
    events = []
    for start in range(0, audio.size, 7777):
        events += runner.push(audio[start : start + 7777])
    events += runner.flush()
    whole = detect_waveform(detector, audio, config)
    # batches of other sizes may change the last bits of a score, and so which of two near-equal
    # frames is the peak: onsets must agree exactly, peaks within one hop
    assert [e.onset_s for e in events] == [e.onset_s for e in whole]
    assert [e.time_s for e in events] == pytest.approx([e.time_s for e in whole], abs=config.hop_s + 1e-9)
    assert [e.score for e in events] == pytest.approx([e.score for e in whole], abs=1e-4)


def test_raw_pcm_stdin_matches_the_file(exported: Path) -> None:
    detector = load_detector(exported)
    audio = planted_stream(PLANTED, 16.0)
    pcm = to_pcm16(audio).tobytes()
    events = list(detect_stream(detector, io.BytesIO(pcm), DetectConfig(), block_s=0.37))
    assert_found(events, PLANTED)



def test_raw_pcm_refuses_a_wav_header_and_warns_of_an_odd_byte(caplog: pytest.LogCaptureFixture) -> None:
    from wakebuilder.audio import wav_bytes
    from wakebuilder.errors import BadAudioError

    pcm = to_pcm16(planted_stream((1.0,), 2.0)).tobytes()
    blocks = list(pcm_blocks(io.BytesIO(pcm[:5]), 2))  # an odd trailing byte is dropped, not misread
    assert sum(b.size for b in blocks) == 2 and "middle of a sample" in caplog.text
    with pytest.raises(BadAudioError, match="stdin: a WAV file, not raw PCM; pass its path"):
        list(pcm_blocks(io.BytesIO(wav_bytes(planted_stream((1.0,), 2.0))), 800))


def test_model_directory_detector_agrees_with_onnx(exported: Path) -> None:
    audio = planted_stream((2.0,), 6.0)
    onnx_events = detect_waveform(load_detector(exported), audio, DetectConfig())
    dir_events = detect_waveform(load_detector(tone_setup()["calibrated"]), audio, DetectConfig())
    assert [round(e.time_s, 2) for e in onnx_events] == [round(e.time_s, 2) for e in dir_events]
    assert onnx_events[0].score == pytest.approx(dir_events[0].score, abs=1e-4)


def test_cli_files_json_and_stdin(exported: Path, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "s.wav", planted_stream(PLANTED, 16.0))
    runner = CliRunner()
    result = runner.invoke(main, ["detect", str(exported), str(wav)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and lines[0].split("\t")[0] == str(wav)
    result = runner.invoke(main, ["detect", str(exported), "-", "--json", "--threshold", "0.6"],
                           input=to_pcm16(planted_stream((2.0,), 5.0)).tobytes())
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.strip())
    assert row["file"] == "-" and abs(row["time_s"] - 2.3) <= 0.8


def test_bad_models_and_inputs(tmp_path: Path) -> None:
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"garbage")
    with pytest.raises(ModelFileError, match="not a loadable ONNX"):
        load_detector(bad)
    with pytest.raises(ModelFileError, match="not found"):
        load_detector(tmp_path / "missing.onnx")
    with pytest.raises(ConfigError, match="threshold"):
        DetectConfig(threshold=1.5)
    runner = CliRunner()
    assert runner.invoke(main, ["detect", "--help"]).exit_code == 0
    result = runner.invoke(main, ["detect", str(bad), str(tmp_path / "x.wav")])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1
    result = runner.invoke(main, ["detect", str(bad)])
    assert result.exit_code == 2 and "AUDIO" in result.stderr


def test_an_uncalibrated_model_needs_an_explicit_threshold(tmp_path: Path) -> None:
    from wakebuilder.export import export_model

    audio = planted_stream(PLANTED, 16.0)
    model = tone_setup()["model"]  # no calibration.json
    with pytest.raises(ModelFileError, match="not calibrated.*wb calibrate.*--threshold") as raised:
        detect_waveform(load_detector(model), audio, DetectConfig())
    assert str(raised.value).startswith(f"{model}: ")
    assert_found(detect_waveform(load_detector(model), audio, DetectConfig(threshold=0.5)), PLANTED)
    onnx = Path(export_model(model, tmp_path / "export", name="raw").files["onnx"])
    assert load_detector(onnx).threshold is None  # NAME.json says calibrated: false
    wav = write_wav(tmp_path / "a.wav", audio)
    runner = CliRunner()
    refused = runner.invoke(main, ["detect", str(onnx), str(wav)])
    assert refused.exit_code == 1 and "not calibrated" in refused.stderr and refused.stderr.count("\n") == 1
    assert refused.stderr.startswith(f"wb: error: {onnx}: ")
    assert "run wb calibrate on the model folder before wb export" in refused.stderr
    given = runner.invoke(main, ["detect", str(onnx), str(wav), "--threshold", "0.5"])
    assert given.exit_code == 0 and len(given.stdout.splitlines()) == len(PLANTED)


@pytest.mark.parametrize("calibration", [b'{"threshold": 5, "temperature": 1.0, "bias": 0.0}', b"[]",
                                         b'{"threshold": 0.5}', b"\xff\xfe"])
def test_a_bad_calibration_json_is_refused_not_used(calibration: bytes, tmp_path: Path) -> None:
    from tests.model_helpers import copy_model

    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    (model / "calibration.json").write_bytes(calibration)
    wav = write_wav(tmp_path / "a.wav", planted_stream((1.0,), 4.0))
    result = CliRunner().invoke(main, ["detect", str(model), str(wav)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert f"{model / 'calibration.json'}: " in result.stderr and "wb calibrate" in result.stderr


@pytest.mark.parametrize("sidecar", [b"[]", b'{"threshold": 5, "calibrated": true}', b'{"threshold": "high"}',
                                     b'{"threshold": 0.5\xff}'])
def test_a_bad_export_sidecar_is_refused(exported: Path, sidecar: bytes, tmp_path: Path) -> None:
    onnx = tmp_path / exported.name
    onnx.write_bytes(exported.read_bytes())
    onnx.with_suffix(".json").write_bytes(sidecar)
    with pytest.raises(ModelFileError, match=f"{onnx.with_suffix('.json')}: .*wb export"):
        load_detector(onnx)


def test_a_sidecar_whose_name_differs_in_case_is_read(exported: Path, tmp_path: Path) -> None:
    """NAME.json copied through Windows or a FAT drive as NAME.JSON was not found on a case-sensitive file system:
    the threshold came from the ONNX metadata and the settings it was calibrated with were lost, so wb detect ran
    at the defaults without a word. It is read now, the exact name first; two names differing only in case and
    neither exact are refused naming both."""
    onnx = tmp_path / exported.name
    onnx.write_bytes(exported.read_bytes())
    settings = {"hop_s": 0.05, "smooth": 5, "refractory_s": 2.0}
    info = json.loads(exported.with_suffix(".json").read_text()) | {"calibrated": True, "calibration_config": settings}
    (tmp_path / "chirp.JSON").write_text(json.dumps(info | {"threshold": 0.7}))
    detector = load_detector(onnx)
    assert detector.threshold == 0.7 and detector.settings == settings and detector.info["threshold"] == 0.7
    assert DetectConfig().resolved(detector).smooth == 5
    (tmp_path / "chirp.Json").write_text(json.dumps(info | {"threshold": 0.8}))
    with pytest.raises(ModelFileError, match=f"^{onnx}: chirp.JSON and chirp.Json beside it differ only in case"):
        load_detector(onnx)
    (tmp_path / "chirp.json").write_text(json.dumps(info | {"threshold": 0.6}))
    assert load_detector(onnx).threshold == 0.6


def test_an_onnx_file_whose_suffix_is_in_capitals_is_loaded(exported: Path, tmp_path: Path) -> None:
    """wb detect and wb eval refused an exported model copied through Windows or a FAT drive as CHIRP.ONNX
    ('expected an exported .onnx file or a model directory'); the suffix is read in any case now, and the model
    gives the same events as chirp.onnx. Another suffix is still refused."""
    onnx = tmp_path / "CHIRP.ONNX"
    onnx.write_bytes(exported.read_bytes())
    (tmp_path / "CHIRP.JSON").write_bytes(exported.with_suffix(".json").read_bytes())
    detector, original = load_detector(onnx), load_detector(exported)
    assert detector.name == "CHIRP" and detector.threshold == original.threshold and detector.info == original.info
    audio = planted_stream(PLANTED, 16.0)
    assert detect_waveform(detector, audio, DetectConfig()) == detect_waveform(original, audio, DetectConfig())
    wav = write_wav(tmp_path / "planted.wav", audio)
    for command in (["detect", str(onnx), str(wav)], ["eval", str(onnx), str(wav), "--json"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 0, result.output
    (row,) = json.loads(result.stdout)
    assert row["model"] == "CHIRP" and row["false_accepts"] == len(PLANTED)  # a stream's detections are false accepts
    other = tmp_path / "chirp.onx"
    other.write_bytes(exported.read_bytes())
    with pytest.raises(ModelFileError, match=f"^{other}: expected an exported .onnx file or a model directory"):
        load_detector(other)


@pytest.mark.parametrize("rate", [8000, 44100.0, "16k", None])
@pytest.mark.parametrize("where", ["sidecar", "metadata"])
def test_a_model_of_another_sample_rate_is_refused_not_fed_16_khz(exported: Path, rate: object, where: str,
                                                                   tmp_path: Path) -> None:
    """wb detect and wb eval fed 16 kHz audio to a model whose NAME.json or ONNX metadata says another sample rate
    (a foreign detector, a file edited by hand) and counted what came out; wb web refused it. Both refuse it now,
    naming the file that says it."""
    from wakebuilder.export import add_metadata

    onnx = tmp_path / exported.name
    onnx.write_bytes(exported.read_bytes())
    info = json.loads(exported.with_suffix(".json").read_text())
    if where == "sidecar":
        onnx.with_suffix(".json").write_text(json.dumps(info | {"sample_rate": rate}))
        source = onnx.with_suffix(".json")
    else:
        add_metadata(onnx, {"threshold": 0.5, "sample_rate": rate})
        rate, source = str(rate), onnx
    with pytest.raises(ModelFileError, match=re.escape(f"{source}: sample rate {rate!r}; ") + ".*16000 Hz"):
        load_detector(onnx)


def test_a_foreign_onnx_without_a_threshold_names_its_file(exported: Path, tmp_path: Path) -> None:
    from wakebuilder.export import add_metadata

    onnx = tmp_path / "foreign.onnx"
    onnx.write_bytes(exported.read_bytes())
    add_metadata(onnx, {})  # no NAME.json, no threshold metadata
    with pytest.raises(ModelFileError, match=f"^{onnx}: records no threshold.*pass --threshold"):
        detect_waveform(load_detector(onnx), np.zeros(32000, np.float32), DetectConfig())


def test_detection_runs_with_the_settings_the_threshold_was_calibrated_with(tmp_path: Path,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    """A threshold chosen on smoothed scores with a 2 s refractory period is used with them, by the model folder,
    its export and wb eval, unless an option says otherwise."""
    from tests.model_helpers import copy_model
    from wakebuilder.evaluate import EvalConfig, evaluate_detector
    from wakebuilder.export import export_model

    caplog.set_level("INFO", logger="wakebuilder.detect")
    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    calibration = json.loads((model / "calibration.json").read_text())
    settings = {"hop_s": 0.05, "smooth": 5, "refractory_s": 2.0}
    (model / "calibration.json").write_text(json.dumps(calibration | {"config": settings}))
    audio = planted_stream((1.5, 3.0), 6.0)  # two wake sounds 1.5 s apart: one detection within 2 s
    plain = DetectConfig(hop_s=0.1, smooth=1, refractory_s=1.0)
    onnx = Path(export_model(model, tmp_path / "export", name="chirp").files["onnx"])
    for detector in (load_detector(model), load_detector(onnx)):
        assert detector.settings == settings
        as_calibrated = detect_waveform(detector, audio, DetectConfig())
        assert as_calibrated == detect_waveform(detector, audio, DetectConfig(**settings))
        assert len(as_calibrated) == 1 and len(detect_waveform(detector, audio, plain)) == 2
        assert detect_waveform(detector, audio, DetectConfig(refractory_s=1.0)) != as_calibrated  # an option wins
    assert "hop 0.05 s, smoothing 5, refractory 2 s (as calibrated)" in caplog.text
    wav = write_wav(tmp_path / "two.wav", audio)
    result = evaluate_detector(load_detector(onnx), streams=[str(wav)], config=EvalConfig())
    assert result["false_accepts"] == 1 and result["stream_settings"] == settings
    cli = CliRunner().invoke(main, ["detect", str(onnx), str(wav)])
    assert cli.exit_code == 0 and len(cli.stdout.strip().splitlines()) == 1, cli.output


@pytest.mark.parametrize("settings", [{"hop_s": "0.1"}, {"smooth": None}, {"smooth": 2.5}, {"refractory_s": [1]},
                                      {"hop_s": True}, {"refractory_s": float("nan")},
                                      {"refractory_s": float("inf")}])
def test_calibration_settings_of_the_wrong_type_are_one_line(settings: dict, tmp_path: Path) -> None:
    """A calibration.json (or NAME.json) whose config holds a hop, smoothing or refractory period that is not a
    number (hand-edited, damaged) is refused naming the model, not a TypeError traceback from deep in detection."""
    from tests.model_helpers import copy_model

    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    calibration = json.loads((model / "calibration.json").read_text())
    (model / "calibration.json").write_text(json.dumps(calibration | {"config": settings}))
    with pytest.raises(ModelFileError, match=f"^{model}: its calibration settings are not usable"):
        detect_waveform(load_detector(model), np.zeros(32000, np.float32), DetectConfig())
    wav = write_wav(tmp_path / "a.wav", planted_stream((1.0,), 4.0))
    result = CliRunner().invoke(main, ["detect", str(model), str(wav)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output


@pytest.mark.parametrize("config", [[0.05, 5, 2.0], "hop_s=0.05", 5])
def test_a_calibration_config_that_is_not_an_object_is_one_line(config: object, tmp_path: Path) -> None:
    """An exported NAME.json (or a model's calibration.json) whose calibration_config (config) was edited by hand
    into something other than an object was silently ignored: wb detect ran with the default hop, smoothing and
    refractory period, not those the threshold was calibrated with. It is now one line naming the file and the fix."""
    from tests.model_helpers import copy_model

    onnx = power_onnx(tmp_path / "power.onnx", "batch")
    (tmp_path / "power.json").write_text(json.dumps({"threshold": 0.5, "calibration_config": config}))
    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    calibration = json.loads((model / "calibration.json").read_text())
    (model / "calibration.json").write_text(json.dumps(calibration | {"config": config}))
    wav = write_wav(tmp_path / "a.wav", planted_stream((1.0,), 4.0))
    for path, where, fix in ((onnx, tmp_path / "power.json", "re-run wb export"),
                             (model, model / "calibration.json", "run wb calibrate")):
        with pytest.raises(ModelFileError, match=f"^{where}: .*must be an object.*; {fix}"):
            load_detector(path)
        result = CliRunner().invoke(main, ["detect", str(path), str(wav)])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
        assert str(where) in result.stderr and fix in result.stderr
    (tmp_path / "power.json").write_text(json.dumps({"threshold": 0.5, "calibration_config": None}))
    assert load_detector(onnx).settings == {}  # null (an export of a calibration without one): the defaults


def _calibrated_with(tmp_path: Path, key: str, value: object) -> tuple[list[Path], Path, Path]:
    """Two calibrated model folders and an exported ONNX whose calibration records ``key``: ``value`` (as if edited
    by hand), and a stream to scan."""
    from tests.model_helpers import copy_model

    models = [copy_model(tone_setup()["calibrated"], tmp_path / name) for name in ("a", "b")]
    for model in models:
        calibration = json.loads((model / "calibration.json").read_text())
        (model / "calibration.json").write_text(json.dumps(calibration | {"config": {key: value}}))
    onnx = power_onnx(tmp_path / "power.onnx", "batch")
    (tmp_path / "power.json").write_text(json.dumps({"threshold": 0.5, "calibration_config": {key: value}}))
    return models, onnx, write_wav(tmp_path / "a.wav", planted_stream((1.0,), 4.0))


@pytest.mark.parametrize("smooth", [10**30, 1001, 0, -3])
def test_a_smoothing_out_of_the_cli_bounds_in_a_calibration_is_one_line(smooth: int, tmp_path: Path) -> None:
    """A calibration.json or NAME.json whose smoothing is absurd (10**30: an OverflowError traceback; 0 or less: an
    error about --smooth, an option not given) is refused naming the model and the bounds of --smooth; wb ensemble
    refuses a member's likewise, before writing an ensemble no detector could run."""
    from wakebuilder.cli.options import STREAM_SETTINGS

    low, high = STREAM_SETTINGS["smooth"][1].min, STREAM_SETTINGS["smooth"][1].max
    problem = f"smooth {smooth!r} is not an integer within {low}..{high}"
    models, onnx, wav = _calibrated_with(tmp_path, "smooth", smooth)
    for where, path in ((models[0], models[0]), (onnx, onnx)):
        with pytest.raises(ModelFileError, match=f"^{where}: its calibration settings are not usable \\({problem}\\)"):
            detect_waveform(load_detector(path), np.zeros(32000, np.float32), DetectConfig())
        result = CliRunner().invoke(main, ["detect", str(path), str(wav)])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    result = CliRunner().invoke(main, ["ensemble", "--model", str(models[0]), "--model", str(models[1]),
                                       "--out", str(tmp_path / "ensemble")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert f"calibration.json: config.{problem}; run wb calibrate" in result.stderr
    assert not (tmp_path / "ensemble").exists()


@pytest.mark.parametrize("refractory", [1e9, 3600.5, -1.0])
def test_a_refractory_period_out_of_the_cli_bounds_in_a_calibration_is_one_line(refractory: float,
                                                                                tmp_path: Path) -> None:
    """A calibration.json or NAME.json whose refractory period is huge (1e9: every detection merged into one,
    silently) or negative (an error about --refractory-s, an option not given) is refused naming the model, the key
    and the bounds of --refractory-s (an option given still wins); wb ensemble refuses a member's likewise."""
    from wakebuilder.cli.options import STREAM_SETTINGS

    low, high = STREAM_SETTINGS["refractory_s"][1].min, STREAM_SETTINGS["refractory_s"][1].max
    problem = f"refractory_s {refractory!r} is not a number within {low:g}..{high:g}"
    models, onnx, wav = _calibrated_with(tmp_path, "refractory_s", refractory)
    for path in (models[0], onnx):
        with pytest.raises(ModelFileError, match=f"^{path}: its calibration settings are not usable \\({problem}\\)"):
            detect_waveform(load_detector(path), np.zeros(32000, np.float32), DetectConfig())
        result = CliRunner().invoke(main, ["detect", str(path), str(wav)])
        assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
        assert "--refractory-s must" not in result.stderr
    assert detect_waveform(load_detector(onnx), np.zeros(32000, np.float32), DetectConfig(refractory_s=high)) == []
    result = CliRunner().invoke(main, ["ensemble", "--model", str(models[0]), "--model", str(models[1]),
                                       "--out", str(tmp_path / "ensemble")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert f"calibration.json: config.{problem}; run wb calibrate" in result.stderr


def power_onnx(path: Path, batch: int | str, *, outputs: int = 1, samples: int | str = 8000,
               tail: int | None = None, middle: int | None = None) -> Path:
    """A foreign ONNX detector: mean power of a window of ``samples`` (a name: any length), of its last ``tail``
    samples (a score that follows the audio, not the window), or of its middle ``middle`` samples (of a fixed
    ``samples``: a score that hears only what is centred in the window), ``outputs`` values per window."""
    import onnx
    from onnx import TensorProto, helper

    heard, initializers = "audio", []
    if tail is not None or middle is not None:
        heard = "part"
        start, stop = (-tail, 2**62) if tail is not None else ((samples - middle) // 2, (samples + middle) // 2)
        initializers = [helper.make_tensor(name, TensorProto.INT64, [1], [value])
                        for name, value in (("starts", start), ("ends", stop), ("axes", 1))]
    nodes = [helper.make_node("Slice", ["audio", "starts", "ends", "axes"], ["part"])] if heard == "part" else []
    nodes += [helper.make_node("Mul", [heard, heard], ["power"]),
              helper.make_node("ReduceMean", ["power"], ["mean"], axes=[1], keepdims=1),
              helper.make_node("Concat", ["mean"] * outputs, ["p"], axis=1)]
    audio = helper.make_tensor_value_info("audio", TensorProto.FLOAT, [batch, samples])
    graph = helper.make_graph(nodes, "power", [audio], [helper.make_tensor_value_info("p", TensorProto.FLOAT,
                                                                                        [batch, outputs])],
                              initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_detector_that_records_no_refractory_period_takes_its_window(tmp_path: Path) -> None:
    """A wake word stays in the sliding window for about a window's length, so a detector's score can dip and rise
    again more than 1 s after it fired. A detector whose files record no refractory period (a foreign ONNX, an
    older export, a model folder calibrated by hand) took 1 s and fired twice for one utterance; it now takes its
    window, never below 1 s. Here the score rises twice 1.2 s apart: once with a 1.5 s window, twice with 0.5 s (1 s
    refractory) or --refractory-s 1.0."""
    from wakebuilder.export import add_metadata

    burst = tone(440, 0.3, amplitude=0.9)
    audio = np.zeros(16000 * 6, np.float32)
    for start_s in (2.0, 3.2):
        audio[int(start_s * 16000) : int(start_s * 16000) + burst.size] = burst
    wav = write_wav(tmp_path / "twice.wav", audio)
    for samples, refractory, n_events in ((24000, 1.5, 1), (8000, 1.0, 2)):
        onnx = power_onnx(tmp_path / f"tail{samples}.onnx", "batch", samples=samples, tail=1600)
        add_metadata(onnx, {"threshold": 0.1})  # no NAME.json: no calibration settings
        detector = load_detector(onnx)
        assert detector.settings == {} and DetectConfig().resolved(detector).refractory_s == refractory
        result = CliRunner().invoke(main, ["detect", str(onnx), str(wav)])
        assert result.exit_code == 0 and len(result.stdout.splitlines()) == n_events, result.output
        assert len(detect_waveform(detector, audio, DetectConfig(refractory_s=1.0))) == 2  # an option wins
    assert DetectConfig().resolved(load_detector(tone_setup()["calibrated"])).refractory_s == 1.5  # its config: none


def test_a_foreign_onnx_with_a_fixed_batch_size_scores_every_window(tmp_path: Path) -> None:
    """An ONNX detector exported with a fixed batch dimension (1, as many are) is fed that many windows at a
    time, not wb detect's 32 (an onnxruntime INVALID_ARGUMENT traceback), and gives the same events."""
    audio = np.r_[np.zeros(16000), tone(440, 1.0, amplitude=0.9), np.zeros(24000)].astype(np.float32)
    config = DetectConfig(threshold=0.1, hop_s=0.05)
    expected = detect_waveform(load_detector(power_onnx(tmp_path / "dynamic.onnx", "batch")), audio, config)
    assert len(expected) == 1
    for batch in (1, 3):
        detector = load_detector(power_onnx(tmp_path / f"fixed{batch}.onnx", batch))
        assert detect_waveform(detector, audio, config) == expected
        runner = StreamDetector(detector, config)
        assert [e for block in np.array_split(audio, 7) for e in runner.push(block)] + runner.flush() == expected


def test_a_recording_shorter_than_the_window_is_scored_centred_and_timed_at_its_centre(tmp_path: Path) -> None:
    """Training centres clips in the window; a 1 s recording under a 1.5 s model was padded at its end only, so
    a word in its middle sat a quarter second before the window's centre (a fused detector's members, each on
    the centred slice, missed it) and the event was timed at 0.75 s, the window's centre, past the file's end.
    Now the recording is centred: batch, stream and file give one event at its centre, 0.5 s."""
    from wakebuilder.export import add_metadata

    onnx = power_onnx(tmp_path / "middle.onnx", "batch", samples=24000, middle=4000)  # hears the window's middle
    add_metadata(onnx, {"threshold": 0.1})
    detector = load_detector(onnx)
    clip = np.zeros(16000, np.float32)
    clip[6000:10000] = tone(440, 0.25, amplitude=0.9)  # the middle quarter second of the recording
    config = DetectConfig(hop_s=0.1, smooth=1)
    events = detect_waveform(detector, clip, config)
    assert [(e.time_s, e.onset_s) for e in events] == [(0.5, 0.5)] and events[0].score > 0.3
    runner = StreamDetector(detector, config)
    assert [e for block in np.array_split(clip, 5) for e in runner.push(block)] + runner.flush() == events
    result = CliRunner().invoke(main, ["detect", str(onnx), str(write_wav(tmp_path / "clip.wav", clip))])
    assert result.exit_code == 0 and result.stdout.split("\t")[1] == "0.500", result.output


def test_a_foreign_onnx_with_more_than_one_score_a_window_is_one_line(tmp_path: Path) -> None:
    """A classifier with a (batch, 2) output (no wake word, wake word) gave twice as many scores as windows: wb
    detect on a file counted events on that trace, at the wrong times, without a word."""
    onnx = power_onnx(tmp_path / "two.onnx", "batch", outputs=2)
    wav = write_wav(tmp_path / "a.wav", np.zeros(32000, np.float32))
    result = CliRunner().invoke(main, ["detect", str(onnx), str(wav), "--threshold", "0.5"])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {onnx}: ") and "one probability per window" in result.stderr


@pytest.mark.parametrize("window", ["one second", "", "0", "-8000", "8000.5", "nan", "1e400"])
def test_a_window_length_in_the_metadata_that_is_no_number_of_samples_is_one_line(window: str,
                                                                                  tmp_path: Path) -> None:
    """A foreign ONNX detector without a fixed window length whose window_samples metadata is not a whole number
    of samples above 0 ended in a ValueError traceback (int('one second')), or ran on windows of 0 samples."""
    from wakebuilder.export import add_metadata

    onnx = power_onnx(tmp_path / "any.onnx", "batch", samples="samples")
    add_metadata(onnx, {"threshold": 0.5, "window_samples": window})
    wav = write_wav(tmp_path / "a.wav", np.zeros(32000, np.float32))
    result = CliRunner().invoke(main, ["detect", str(onnx), str(wav)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, (result.output, result.exception)
    assert result.stderr.startswith(f"wb: error: {onnx}: window_samples {window!r} ")
    assert "metadata" in result.stderr and "whole number" in result.stderr
    for good in ("8000", "8000.0", " 8000 "):
        add_metadata(onnx, {"threshold": 0.5, "window_samples": good})
        assert load_detector(onnx).window_samples == 8000


@pytest.mark.parametrize("hop", [0.5, 0.001, -0.1])
def test_a_hop_out_of_the_cli_bounds_in_a_calibration_is_one_line(hop: float, tmp_path: Path) -> None:
    """A calibration.json or NAME.json whose hop is out of --hop-s's bounds (edited by hand) is refused naming the
    model, the key and the bounds, not as if the user had passed a bad --hop-s; --hop-s given still wins."""
    from wakebuilder.streaming import MAX_HOP_S, MIN_HOP_S

    _, onnx, wav = _calibrated_with(tmp_path, "hop_s", hop)
    problem = f"hop_s {hop!r} is not a number within {MIN_HOP_S:g}..{MAX_HOP_S:g}"
    with pytest.raises(ModelFileError, match=f"^{onnx}: its calibration settings are not usable \\({problem}\\)"):
        detect_waveform(load_detector(onnx), np.zeros(32000, np.float32), DetectConfig())
    result = CliRunner().invoke(main, ["detect", str(onnx), str(wav)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "--hop-s " not in result.stderr, result.output
    assert detect_waveform(load_detector(onnx), np.zeros(32000, np.float32), DetectConfig(hop_s=MAX_HOP_S)) == []
