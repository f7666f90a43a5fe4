"""Export: onnxruntime parity (AST, speech-embedding), self-describing files, safe loading, clean failures."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from tests.model_helpers import copy_model, make_model_dir, tiny_head, tone_setup
from wakebuilder import __version__
from wakebuilder.atomic import atomic_write_json
from wakebuilder.cli import main
from wakebuilder.errors import ExportParityError, ModelFileError
from wakebuilder.export import default_name, export_model, parity_inputs


@pytest.fixture(scope="module")
def ast_model(tiny_ast_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wakebuilder.backbones import load_backbone

    backbone = load_backbone(str(tiny_ast_dir), device="cpu")
    head = tiny_head(backbone.seq_len, backbone.dim)
    root = tmp_path_factory.mktemp("ast")
    model = make_model_dir(root / "model", head, backbone.identity, wake_word="Hey Tiny!")
    atomic_write_json(model / "calibration.json", {"threshold": 0.42, "temperature": 2.5, "bias": -0.3,
                                                   "metrics": {"f1": 0.9}, "fa_per_hour": 0.2,
                                                   "fa_per_hour_upper95": 7.19, "stream_hours": 0.42})
    return model


def test_ast_export_end_to_end_parity_and_metadata(ast_model: Path, tmp_path: Path) -> None:
    summary = export_model(ast_model, tmp_path / "out")
    assert summary.name == "hey_tiny" and not (tmp_path / "out.incomplete").exists()
    assert max(summary.parity_max_abs_diff.values()) <= 1e-4
    files = {k: Path(v) for k, v in summary.files.items()}
    assert all(p.is_file() for p in files.values())
    proto = onnx.load(str(files["onnx"]))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["wakebuilder_version"] == __version__ and float(meta["threshold"]) == 0.42
    assert meta["sample_rate"] == "16000" and meta["backbone_revision"] and meta["window_s"] == "1.28"
    info = json.loads(files["json"].read_text())
    assert info["temperature"] == 2.5 and info["bias"] == -0.3 and info["input"]["shape"][1] == 20720
    # the calibration stream's FA/h travels with its 95 % upper bound and the hours that bound it
    assert (info["fa_per_hour"], info["fa_per_hour_upper95"], info["stream_hours"]) == (0.2, 7.19, 0.42)
    # dynamic batch, calibrated output in (0, 1), and the head file agrees with the end-to-end one
    session = ort.InferenceSession(str(files["onnx"]), providers=["CPUExecutionProvider"])
    waves = np.concatenate([parity_inputs(20720), parity_inputs(20720)[:2]])
    probs = session.run(None, {"waveform": waves})[0]
    assert probs.shape == (5,) and np.all((probs > 0) & (probs < 1))
    np.testing.assert_allclose(probs[:2], probs[3:], atol=1e-6)


def test_pt_loads_with_weights_only(ast_model: Path, tmp_path: Path) -> None:
    from wakebuilder.train.head import HeadConfig, WakeHead

    summary = export_model(ast_model, tmp_path / "out", name="custom")
    payload = torch.load(summary.files["pt"], weights_only=True)
    assert payload["calibration"] == {"threshold": 0.42, "temperature": 2.5, "bias": -0.3}
    head = WakeHead(HeadConfig.from_dict(payload["head_config"]))
    head.load_state_dict(payload["state_dict"])
    assert Path(summary.files["pt"]).name == "custom.pt"


def test_speech_embedding_export_is_one_graph_with_parity(tmp_path: Path) -> None:
    setup = tone_setup()
    summary = export_model(setup["model"], tmp_path / "se")
    assert summary.parity_max_abs_diff["end_to_end"] <= 1e-4
    graph = onnx.load(summary.files["onnx"]).graph
    assert [i.name for i in graph.input] == ["waveform"]
    assert {n.op_type for n in graph.node} >= {"Conv", "MatMul"}
    session = ort.InferenceSession(summary.files["onnx"], providers=["CPUExecutionProvider"])
    quiet = np.zeros((1, 24_000), np.float32)
    quiet[0, 9_000:15_000] = 0.005 * np.sin(np.arange(6_000, dtype=np.float32) * 0.2)
    loud = (0.5 * np.sin(np.arange(24_000, dtype=np.float32) * 0.05))[None]
    (alone,) = session.run(None, {"waveform": quiet})
    (batched,) = session.run(None, {"waveform": np.concatenate([quiet, loud])})
    assert abs(float(alone[0]) - float(batched[0])) < 1e-6  # a window's score ignores its batch
    head_graph = onnx.load(summary.files["head_onnx"]).graph
    dims = [d.dim_value for d in head_graph.input[0].type.tensor_type.shape.dim]
    assert dims[1:] == [9, 96]


def test_exports_from_two_threads_never_overlap_in_torch_onnx_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """torch's TorchScript exporter keeps process-global state: two threads inside it at once fail.

    Each call waits at a two-party barrier: without the library's lock the second thread's call joins the
    first's (two inside at once, deterministically); with it the first waits out the timeout alone.
    """
    real_export, barrier, lock = torch.onnx.export, threading.Barrier(2, timeout=3.0), threading.Lock()
    inside, most_inside = [0], [0]

    def counting_export(*args: object, **kwargs: object) -> object:
        with lock:
            inside[0] += 1
            most_inside[0] = max(most_inside[0], inside[0])
        try:
            try:
                barrier.wait()
            except threading.BrokenBarrierError:  # alone in here: what the lock should give
                pass
            return real_export(*args, **kwargs)
        finally:
            with lock:
                inside[0] -= 1

    monkeypatch.setattr(torch.onnx, "export", counting_export)
    model = tone_setup()["calibrated"]
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [pool.submit(export_model, model, tmp_path / f"out{i}") for i in range(2)]
        failures = [run.exception() for run in runs]
    assert most_inside[0] == 1, "two torch.onnx.export calls ran at once"
    assert failures == [None, None]
    assert all(max(run.result().parity_max_abs_diff.values()) <= 1e-4 for run in runs)
    assert not list(tmp_path.glob("*.incomplete"))


def test_parity_failure_leaves_no_export(ast_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ExportParityError, match="differs from torch by"):
        export_model(ast_model, tmp_path / "bad", tolerance=-1.0)
    assert not (tmp_path / "bad").exists()


def test_existing_output_needs_overwrite(ast_model: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(main, ["export", "--model", str(ast_model), "--out", str(tmp_path / "out")])
    assert result.exit_code != 0 and "--overwrite" in result.stderr


def test_corrupt_or_missing_model_files(tmp_path: Path) -> None:
    model = copy_model(tone_setup()["model"], tmp_path / "model")
    (model / "head.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelFileError, match="corrupt"):
        export_model(model, tmp_path / "out")
    (model / "model.json").unlink()
    result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and result.stderr.startswith("wb: error:") and result.stderr.count("\n") == 1


def test_default_name_and_help() -> None:
    assert default_name("Hey, Nova!") == "hey_nova" and default_name(None) == "wakeword"
    assert CliRunner().invoke(main, ["export", "--help"]).exit_code == 0


def test_head_ensemble_exports_with_parity_and_reloads(tiny_ast_dir: Path, tmp_path: Path) -> None:
    from wakebuilder.backbones import load_backbone
    from wakebuilder.modeldir import load_model
    from wakebuilder.train.head import HeadConfig, HeadEnsemble, build_head

    backbone = load_backbone(str(tiny_ast_dir), device="cpu")
    members = [tiny_head(backbone.seq_len, backbone.dim, seed=s) for s in (0, 1)]
    config = members[0].config.replace(members=2)
    model = make_model_dir(tmp_path / "model", HeadEnsemble(config, members).eval(), backbone.identity)
    atomic_write_json(model / "calibration.json", {"threshold": 0.5, "temperature": 1.5, "bias": 0.1})
    loaded = load_model(model)
    assert isinstance(loaded.head, HeadEnsemble) and len(loaded.head.members) == 2
    summary = export_model(model, tmp_path / "out")
    assert max(summary.parity_max_abs_diff.values()) <= 1e-4
    payload = torch.load(summary.files["pt"], weights_only=True)
    head = build_head(HeadConfig.from_dict(payload["head_config"]))
    head.load_state_dict(payload["state_dict"], strict=True)
    x = torch.randn(3, backbone.seq_len, backbone.dim)
    with torch.no_grad():
        torch.testing.assert_close(head.eval()(x), (members[0](x) + members[1](x)) / 2)


@pytest.mark.parametrize("name", ["../model/model", "ABSOLUTE", "sub/x", "a\\b", ".", "..", "", ".hidden", "hey.head"])
def test_a_name_that_is_not_a_plain_file_stem_is_refused(name: str, tmp_path: Path) -> None:
    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    name = str(tmp_path / "abs" / "x") if name == "ABSOLUTE" else name
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(tmp_path / "out"),
                                       "--name", name])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: --name {name!r}")
    assert ("must not end in .head" if name == "hey.head" else "plain file name") in result.stderr
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


BAD_CALIBRATIONS = {
    "not a JSON object": b"[0.5]",
    "missing key threshold": b'{"temperature": 1.0, "bias": 0.0}',
    "missing key temperature": b'{"threshold": 0.5, "bias": 0.0}',
    "threshold 5 must be within 0..1": b'{"threshold": 5, "temperature": 1.0, "bias": 0.0}',
    "threshold must be a finite number": b'{"threshold": "0.5", "temperature": 1.0, "bias": 0.0}',
    "temperature 0 must be above 0": b'{"threshold": 0.5, "temperature": 0, "bias": 0.0}',
    "not UTF-8 text": b'{"threshold": 0.5\xff}',
}
BAD_METAS = {
    "not a JSON object": lambda meta: b"[]",
    "missing key backbone;": lambda meta: json.dumps({k: v for k, v in meta.items() if k != "backbone"}).encode(),
    "missing key head;": lambda meta: json.dumps({k: v for k, v in meta.items() if k != "head"}).encode(),
    "backbone must be an object": lambda meta: json.dumps(meta | {"backbone": "x"}).encode(),
    "missing key backbone.spec": lambda meta: json.dumps(
        meta | {"backbone": {k: v for k, v in meta["backbone"].items() if k != "spec"}}).encode(),
    "not UTF-8 text": lambda meta: b'{"head": "\xff"}',
}


BAD_CALIBRATION_CONFIGS = {
    "config [0.05, 5, 2.0] must be an object": [0.05, 5, 2.0],
    "config.hop_s 5 is not a number within": {"hop_s": 5},
    "config.smooth 0 is not an integer within": {"hop_s": 0.1, "smooth": 0},
    "config.refractory_s 1000000000.0 is not a number within": {"refractory_s": 1e9},
}


@pytest.mark.parametrize("problem", list(BAD_CALIBRATION_CONFIGS))
def test_a_calibration_config_wb_detect_refuses_is_refused_by_export(problem: str, tmp_path: Path) -> None:
    """wb export copied a calibration.json's config edited by hand (not an object; a hop, smoothing or refractory
    period out of bounds) into NAME.json unchecked, and only wb detect refused the export later. wb export now
    refuses it with wb detect's check, in one line naming calibration.json and the fix, and writes nothing."""
    from tests.model_helpers import planted_stream
    from wakebuilder.audio import write_wav

    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    calibration = json.loads((model / "calibration.json").read_text())
    (model / "calibration.json").write_text(json.dumps(calibration | {"config": BAD_CALIBRATION_CONFIGS[problem]}))
    result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {model / 'calibration.json'}: {problem}")
    assert result.stderr.rstrip().endswith(f"run wb calibrate on {model} again") and not (tmp_path / "out").exists()
    if "must be an object" in problem:  # the very line wb detect gives
        wav = write_wav(tmp_path / "a.wav", planted_stream((1.0,), 4.0))
        assert CliRunner().invoke(main, ["detect", str(model), str(wav)]).stderr == result.stderr


@pytest.mark.parametrize("problem", list(BAD_CALIBRATIONS))
def test_a_bad_calibration_json_is_one_line_naming_it(problem: str, tmp_path: Path) -> None:
    from wakebuilder.modeldir import load_model

    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    (model / "calibration.json").write_bytes(BAD_CALIBRATIONS[problem])
    loaded = load_model(model)  # wb calibrate loads it too, and replaces the bad file
    with pytest.raises(ModelFileError, match="calibration.json: .*wb calibrate"):
        loaded.calibration
    result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {model / 'calibration.json'}: ") and problem in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("problem", list(BAD_METAS))
def test_a_bad_model_json_is_one_line_naming_it(problem: str, tmp_path: Path) -> None:
    model = copy_model(tone_setup()["calibrated"], tmp_path / "model")
    meta = json.loads((model / "model.json").read_text())
    (model / "model.json").write_bytes(BAD_METAS[problem](meta))
    result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: {model / 'model.json'}: ") and problem in result.stderr
    assert "wb fit" in result.stderr


@pytest.mark.parametrize("where", ["the model directory", "its parent"])
def test_an_out_that_holds_the_model_is_refused_even_with_overwrite(where: str, tmp_path: Path) -> None:
    """--overwrite replaces --out: an --out that is the model directory, or a folder holding it, would delete the
    model it exports (wb export --model run/model --out run --overwrite)."""
    run = tmp_path / "run"
    model = copy_model(tone_setup()["calibrated"], run / "model")
    (run / "notes.txt").write_text("keep me")
    before = {p.name: p.read_bytes() for p in model.iterdir()}
    out = model if where == "the model directory" else run
    result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(out), "--overwrite"])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: --out {str(out)!r}") and "holds the model" in result.stderr
    assert {p.name: p.read_bytes() for p in model.iterdir()} == before
    assert (run / "notes.txt").read_text() == "keep me"


@pytest.mark.parametrize("head", [{"width": -1}, {"dropout": 1.5}, {"hidden": [-3]}, {"members": -1}])
def test_a_head_config_no_head_can_be_built_from_is_one_line(head: dict, tmp_path: Path) -> None:
    from wakebuilder.modeldir import load_model

    model = copy_model(tone_setup()["model"], tmp_path / "model")
    meta = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps(meta | {"head": meta["head"] | head}))
    with pytest.raises(ModelFileError, match=r"model.json: no valid head config"):
        load_model(model)


def test_an_existing_out_is_refused_before_the_model_is_read(tmp_path: Path) -> None:
    """The refusal is the one line on stderr: not after the uncalibrated model's warning and the backbone's load."""
    model = copy_model(tone_setup()["model"], tmp_path / "model")  # uncalibrated: export warns about it
    (tmp_path / "out").mkdir()
    result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert result.stderr == (f"wb: error: {tmp_path / 'out'}: already exists; pass --overwrite to replace it, "
                             "or choose another --out\n")


def test_a_centroids_head_exports_with_onnx_outputs_matching_torch(tmp_path: Path) -> None:
    from wakebuilder.export import CalibratedHead
    from wakebuilder.train.head import CentroidHead, HeadConfig

    setup = tone_setup()
    head = CentroidHead(HeadConfig(input_dim=96, seq_len=9, kind="centroids"))
    head.direction.copy_(torch.nn.functional.normalize(torch.randn(96, generator=torch.Generator().manual_seed(0)),
                                                       dim=0))
    model = make_model_dir(tmp_path / "model", head, setup["identity"])
    atomic_write_json(model / "calibration.json", {"threshold": 0.5, "temperature": 0.2, "bias": 0.05})
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(out), "--name", "c", "--json"])
    assert result.exit_code == 0, result.output
    sequences = np.random.default_rng(0).standard_normal((5, 9, 96)).astype(np.float32)
    session = ort.InferenceSession(str(out / "c.head.onnx"), providers=["CPUExecutionProvider"])
    (onnx_probs,) = session.run(None, {"sequence": sequences})
    with torch.no_grad():
        expected = CalibratedHead(head.eval(), 0.2, 0.05)(torch.from_numpy(sequences)).numpy()
    np.testing.assert_allclose(onnx_probs, expected, atol=1e-5)
    assert expected.std() > 0.01  # the scores vary: a constant graph would not pass for the head
    whole = ort.InferenceSession(str(out / "c.onnx"), providers=["CPUExecutionProvider"])
    (probs,) = whole.run(None, {"waveform": parity_inputs(setup["window_samples"])})
    assert np.all((probs > 0) & (probs < 1))
