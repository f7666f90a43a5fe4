"""`wb fuse`: exported detectors of other windows and backbones as one, the weighted mean of their probabilities."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from wakebuilder.cli import main
from wakebuilder.detect import load_detector
from wakebuilder.errors import ArtifactExistsError, ConfigError, ModelFileError
from wakebuilder.fuse import fuse_detectors

SIDECAR = {"wake_word": "hey tone", "calibrated": True, "sample_rate": 16000, "backbone": {"name": "power"},
           "calibration_config": {"hop_s": 0.1, "smooth": 1, "refractory_s": 1.0}}


def member_onnx(path: Path, samples: int, *, opset: int, seed: int, head_only: bool = False,
                **sidecar: Any) -> Path:
    """A foreign detector: sigmoid(x . r + mean(x^2)) over ``samples``, r random (a slice off by one sample scores
    otherwise); opset 13 gives (batch, 1) as many foreign models do, a later opset (batch,). ``sidecar`` overrides
    keys of NAME.json beside it (None: no NAME.json)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    r = (np.random.default_rng(seed).standard_normal(samples) * 4 / np.sqrt(samples)).astype(np.float32)
    if opset < 18:
        mean = helper.make_node("ReduceMean", ["power"], ["mean"], axes=[1], keepdims=0)
        extra = []
    else:  # ReduceMean's axes became an input
        mean = helper.make_node("ReduceMean", ["power", "axes"], ["mean"], keepdims=0)
        extra = [numpy_helper.from_array(np.array([1], np.int64), "axes")]
    nodes = [helper.make_node("Mul", ["audio", "audio"], ["power"]), mean,
             helper.make_node("MatMul", ["audio", "r"], ["dot"]), helper.make_node("Add", ["dot", "mean"], ["z"]),
             helper.make_node("Sigmoid", ["z"], ["p1"])]
    out_shape: list[Any] = ["batch"]
    if opset < 18:
        nodes.append(helper.make_node("Unsqueeze", ["p1", "one"], ["p"]))
        extra.append(numpy_helper.from_array(np.array([1], np.int64), "one"))
        out_shape = ["batch", 1]
    else:
        nodes.append(helper.make_node("Identity", ["p1"], ["p"]))
    shape = ["batch", samples]
    if head_only:  # embedding sequences (batch, T, D) in, as NAME.head.onnx takes
        nodes, extra, shape, out_shape = [helper.make_node("ReduceMean", ["audio"], ["m"], axes=[1, 2], keepdims=0),
                                          helper.make_node("Sigmoid", ["m"], ["p"])], [], ["batch", 16, 96], ["batch"]
    graph = helper.make_graph(
        nodes, "foreign", [helper.make_tensor_value_info("audio", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, out_shape)],
        initializer=[] if head_only else [numpy_helper.from_array(r, "r"), *extra])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7 if opset < 18 else 8
    onnx.save(model, str(path))
    info = SIDECAR | {"threshold": 0.5, "window_s": samples / 16000} | sidecar
    if "calibration_config" in sidecar and sidecar["calibration_config"] is not None:
        info["calibration_config"] = SIDECAR["calibration_config"] | sidecar["calibration_config"]
    path.with_suffix(".json").write_text(json.dumps(info))
    return path


def run_onnx(path: Path, waves: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: waves})[0].reshape(-1)


@pytest.fixture()
def members(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "m").mkdir()
    short = member_onnx(tmp_path / "m" / "short.onnx", 8000, opset=13, seed=1, threshold=0.3)
    long = member_onnx(tmp_path / "m" / "long.onnx", 16000, opset=18, seed=2, threshold=0.6,
                       calibration_config={"refractory_s": 2.0}, wake_word="Hey Tone")
    return short, long


def test_the_fused_detector_is_the_weighted_mean_of_its_members_on_centred_slices(members: tuple[Path, Path],
                                                                                 tmp_path: Path) -> None:
    short, long = members
    result = fuse_detectors([short, long], tmp_path / "fused", weights=[2.0, 1.0])
    onnx_path = Path(result.files["onnx"])
    assert onnx_path == tmp_path / "fused" / "hey_tone.onnx" and result.window_samples == 16000
    waves = (0.3 * np.random.default_rng(5).standard_normal((5, 16000))).astype(np.float32)
    expected = (2 * run_onnx(short, waves[:, 4000:12000]) + run_onnx(long, waves)) / 3
    np.testing.assert_allclose(run_onnx(onnx_path, waves), expected, atol=1e-5)
    assert not np.allclose(run_onnx(short, waves[:, :8000]), run_onnx(short, waves[:, 4000:12000]), atol=1e-3)
    assert result.threshold == pytest.approx((2 * 0.3 + 0.6) / 3)
    detector = load_detector(onnx_path)
    assert detector.window_samples == 16000 and detector.threshold == pytest.approx(result.threshold)
    assert detector.settings == {"hop_s": 0.1, "smooth": 1, "refractory_s": 2.0}  # the longest refractory period
    info = json.loads(onnx_path.with_suffix(".json").read_text())
    assert info["calibrated"] is True and info["window_s"] == 1.0 and info["wake_word"] == "hey tone"
    assert info["parity_max_abs_diff"] <= 1e-4
    record = info["fused"]["members"]
    assert [m["file"] for m in record] == ["short.onnx", "long.onnx"]
    assert [m["slice"] for m in record] == [[4000, 12000], [0, 16000]]
    assert [m["weight"] for m in record] == pytest.approx([2 / 3, 1 / 3])
    assert [m["threshold"] for m in record] == [0.3, 0.6] and record[0]["backbone"] == "power"
    assert record[1]["sha256"] == hashlib.sha256(long.read_bytes()).hexdigest()
    import onnx

    proto = onnx.load(str(onnx_path))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["window_samples"] == "16000" and float(meta["threshold"]) == pytest.approx(result.threshold)
    onnx.checker.check_model(proto, full_check=True)


_OPENED: list[list[Path]] = []  # the files opened in Python while an opened_files() block runs (its list last)


def _audit_open(event: str, args: tuple[Any, ...]) -> None:
    if event == "open" and _OPENED and isinstance(args[0], (str, os.PathLike)):
        _OPENED[-1].append(Path(args[0]).resolve())


@contextlib.contextmanager
def opened_files() -> Iterator[list[Path]]:
    """The files Python opens in the block (an audit hook, added once: hooks cannot be removed)."""
    if _audit_open not in getattr(opened_files, "hooked", ()):
        sys.addaudithook(_audit_open)
        opened_files.hooked = (_audit_open,)  # type: ignore[attr-defined]
    _OPENED.append([])
    try:
        yield _OPENED[-1]
    finally:
        _OPENED.pop()


def test_each_member_file_is_read_once(members: tuple[Path, Path], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """wb fuse read each member's ONNX file three times: onnxruntime's session of it (its scorer, window and
    metadata), onnx.load for the fused graph and the sha256 NAME.json records; an AST export is hundreds of MB.
    It now reads each once, and all three take those bytes."""
    import onnxruntime as ort

    sessions: list[Path] = []
    session = ort.InferenceSession

    def counted(model: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(model, (str, os.PathLike)):  # a path: onnxruntime reads the file itself, in C++
            sessions.append(Path(model).resolve())
        return session(model, *args, **kwargs)

    monkeypatch.setattr(ort, "InferenceSession", counted)
    with opened_files() as opened:
        result = fuse_detectors(list(members), tmp_path / "fused")
    reads = [*sessions, *opened]
    assert [reads.count(m.resolve()) for m in members] == [1, 1]
    record = json.loads(Path(result.files["json"]).read_text())["fused"]["members"]
    assert [m["sha256"] for m in record] == [hashlib.sha256(m.read_bytes()).hexdigest() for m in members]


def test_a_member_with_external_data_fuses_as_when_inline(members: tuple[Path, Path], tmp_path: Path) -> None:
    """Read once as bytes, a member whose weights lie in a file beside it (onnx's external data) still fuses: its
    graph is loaded with them and its session opened from its path, where onnxruntime finds them."""
    import shutil

    import onnx

    short, long = members
    (tmp_path / "e").mkdir()
    outside = tmp_path / "e" / "long.onnx"
    onnx.save_model(onnx.load(str(long)), str(outside), save_as_external_data=True, location="long.data",
                    size_threshold=1024)  # its 16000 weights; the small constants stay inline
    shutil.copy(long.with_suffix(".json"), outside.with_suffix(".json"))
    inline, external = (fuse_detectors([short, m], tmp_path / name) for m, name in ((long, "in"), (outside, "ext")))
    waves = (0.3 * np.random.default_rng(5).standard_normal((3, 16000))).astype(np.float32)
    np.testing.assert_allclose(run_onnx(Path(external.files["onnx"]), waves), run_onnx(Path(inline.files["onnx"]),
                                                                                        waves), atol=1e-6)


def test_wb_fuse_prints_the_path_and_wb_detect_runs_on_it(members: tuple[Path, Path], tmp_path: Path) -> None:
    from wakebuilder.audio import write_wav

    short, long = members
    result = CliRunner().invoke(main, ["fuse", "--model", str(short), "--model", str(long), "--out",
                                       str(tmp_path / "f"), "--name", "both", "--threshold", "0.7"])
    assert result.exit_code == 0, result.output
    fused = tmp_path / "f" / "both.onnx"
    assert result.stdout.strip() == str(fused) and load_detector(fused).threshold == 0.7
    wav = write_wav(tmp_path / "a.wav", np.zeros(48000, np.float32))
    result = CliRunner().invoke(main, ["detect", str(fused), str(wav)])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["fuse", "--model", str(short), "--model", str(long), "--out",
                                       str(tmp_path / "f"), "--overwrite", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["window_samples"] == 16000 and summary["threshold"] == pytest.approx(0.45)
    assert summary["files"]["onnx"] == str(tmp_path / "f" / "hey_tone.onnx")


def refusal_cases(tmp: Path) -> list[tuple[list[str], Path | None, str]]:
    """(extra arguments, the file the line names, what it says) for each refusal."""
    short, long = tmp / "m" / "short.onnx", tmp / "m" / "long.onnx"

    def other(name: str, **sidecar: Any) -> Path:
        return member_onnx(tmp / "m" / f"{name}.onnx", 12000, opset=13, seed=3, **sidecar)

    return [
        (["--model", str(short)], None, "at least two"),
        (["--model", str(short), "--model", str(other("head", head_only=True))], tmp / "m" / "head.onnx",
         "head-only"),
        (["--model", str(short), "--model", str(other("raw", calibrated=False))], tmp / "m" / "raw.onnx",
         "not calibrated"),
        (["--model", str(short), "--model", str(other("jarvis", wake_word="hey jarvis"))], tmp / "m" / "jarvis.json",
         "'hey jarvis'"),
        (["--model", str(short), "--model", str(other("hop", calibration_config={"hop_s": 0.05}))],
         tmp / "m" / "hop.json", "hop_s 0.05"),
        (["--model", str(short), "--model", str(other("smooth", calibration_config={"smooth": 3}))],
         tmp / "m" / "smooth.json", "smooth 3"),
        (["--model", str(short), "--model", str(long), "--weight", "1"], None, "--weight"),
        (["--model", str(short), "--model", str(long), "--weight", "1", "--weight", "-1"], None, "--weight"),
        # one detector twice fused it with itself and exited 0 (most likely the second was meant to be another)
        (["--model", str(short), "--model", f"{tmp}/m/./short.onnx"], None,
         f"--model {tmp}/m/./short.onnx: given twice"),
        # a model directory (or the export's folder) said "ONNX model not found", though it is there
        (["--model", str(short), "--model", str(tmp / "m")], None, f"{tmp / 'm'}: a folder, not an exported NAME.onnx"),
    ]


@pytest.mark.parametrize("case", range(10))
def test_each_refusal_is_one_line_naming_the_file(members: tuple[Path, Path], tmp_path: Path, case: int) -> None:
    args, named, says = refusal_cases(tmp_path)[case]
    result = CliRunner().invoke(main, ["fuse", *args, "--out", str(tmp_path / "f")])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("wb: error: ") and says in result.stderr, result.stderr
    if named is not None:
        assert str(named) in result.stderr
    assert not (tmp_path / "f").exists()


def test_an_uncalibrated_member_is_fused_at_a_given_threshold(members: tuple[Path, Path], tmp_path: Path) -> None:
    raw = member_onnx(tmp_path / "m" / "raw.onnx", 12000, opset=13, seed=3, calibrated=False)
    with pytest.raises(ModelFileError, match="not calibrated"):
        fuse_detectors([members[0], raw], tmp_path / "f")
    assert fuse_detectors([members[0], raw], tmp_path / "f", threshold=0.4).threshold == 0.4


def test_an_existing_out_or_one_holding_a_member_is_refused(members: tuple[Path, Path], tmp_path: Path) -> None:
    fuse_detectors(members, tmp_path / "f")
    with pytest.raises(ArtifactExistsError, match="--overwrite"):
        fuse_detectors(members, tmp_path / "f")
    with pytest.raises(ConfigError, match="holds"):
        fuse_detectors(members, tmp_path / "m", overwrite=True)
    assert members[0].is_file()


def test_a_real_export_fuses_with_a_detector_of_another_window(tmp_path: Path) -> None:
    """A speech-embedding export (1.5 s) with a foreign 2.5 s detector: the export sees the middle 1.5 s."""
    from tests.model_helpers import tone_setup
    from wakebuilder.export import export_model

    exported = Path(export_model(tone_setup()["calibrated"], tmp_path / "export", name="chirp").files["onnx"])
    foreign = member_onnx(tmp_path / "foreign.onnx", 40000, opset=13, seed=4, threshold=0.7)
    result = fuse_detectors([exported, foreign], tmp_path / "fused")
    assert result.window_samples == 40000 and result.threshold == pytest.approx(0.6)
    waves = (0.2 * np.random.default_rng(6).standard_normal((3, 40000))).astype(np.float32)
    expected = (run_onnx(exported, waves[:, 8000:32000]) + run_onnx(foreign, waves)) / 2
    np.testing.assert_allclose(run_onnx(Path(result.files["onnx"]), waves), expected, atol=1e-4)
    info = json.loads(Path(result.files["json"]).read_text())
    assert info["fused"]["members"][0]["backbone"] == "speech-embedding"
    assert info["fused"]["members"][0]["slice"] == [8000, 32000]
    from wakebuilder.web.build import WebConfig, model_entry
    from wakebuilder.web.pieces import stream_pieces

    entry = model_entry(Path(result.files["onnx"]), WebConfig())  # wb web: the end-to-end path, not streamed
    assert entry["window_samples"] == 40000 and entry["threshold"] == pytest.approx(0.6)
    assert stream_pieces(Path(result.files["onnx"])) is None


def test_a_member_that_records_no_refractory_period_counts_with_its_window(tmp_path: Path) -> None:
    # no calibration_config: wb detect runs such a detector with its window (at least 1 s) as refractory period
    (tmp_path / "m").mkdir()
    short = member_onnx(tmp_path / "m" / "short.onnx", 8000, opset=13, seed=1, threshold=0.3, calibration_config=None)
    long = member_onnx(tmp_path / "m" / "long.onnx", 24000, opset=18, seed=2, threshold=0.6, calibration_config=None)
    for path in (short, long):
        info = json.loads(path.with_suffix(".json").read_text())
        path.with_suffix(".json").write_text(json.dumps({k: v for k, v in info.items() if k != "calibration_config"}))
    result = fuse_detectors([short, long], tmp_path / "fused")
    assert load_detector(result.files["onnx"]).settings["refractory_s"] == pytest.approx(1.5)
