"""Bad option values end in one line naming the option (and its WB_* variable), never a traceback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.data.test_augment import _manifest
from wakebuilder.cli import main


def one_line_error(args: list[str], *, env: dict[str, str] | None = None) -> str:
    result = CliRunner().invoke(main, args, env=env)
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.stderr.startswith("wb: error: ") and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


@pytest.mark.parametrize(("args", "expected"), [
    (["augment", "{m}", "--out", "{o}", "--snr-db", "20,5"], "--snr-db '20,5': MIN is above MAX"),
    (["augment", "{m}", "--out", "{o}", "--snr-db", "nan,5"], "--snr-db 'nan,5': MIN and MAX must be finite"),
    (["augment", "{m}", "--out", "{o}", "--speed", "0.9,x"], "--speed '0.9,x': expected MIN,MAX"),
    (["augment", "{m}", "--out", "{o}", "--window-s", "1e9"], "--window-s '1e9': must be in [0, 3]"),
    (["augment", "{m}", "--out", "{o}", "--copies", "10000000"], "--copies '10000000': must be in [1, 1000]"),
    (["detect", "m.onnx", "a.wav", "--hop-s", "nan"], "--hop-s 'nan': must be a finite number"),
    (["detect", "m.onnx", "a.wav", "--hop-s", "0.0001"], "--hop-s '0.0001': must be in [0.01, 0.1]"),
    (["web", "build", "m.onnx", "--out", "{o}", "--hop-s", "0.0001"], "--hop-s '0.0001': must be in [0.01, 0.1]"),
    (["detect", "m.onnx", "a.wav", "--refractory-s", "inf"], "--refractory-s 'inf': must be a finite"),
    (["detect", "m.onnx", "a.wav", "--threshold", "1.5"], "--threshold '1.5': must be in (0, 1)"),
    (["calibrate", "--model", "m", "--store", "s", "--target-fa-per-hour", "-1"], "--target-fa-per-hour '-1'"),
    (["calibrate", "--model", "m", "--store", "s", "--min-threshold", "1.5"],
     "--min-threshold '1.5': must be in [0, 1)"),
    (["fit", "--store", "s", "--out", "m", "--lr", "nan"], "--lr 'nan': must be a finite number"),
    (["fit", "--store", "s", "--out", "m", "--width", "100000000"], "--width '100000000': must be in [1, 4096]"),
    (["fit", "--store", "s", "--out", "m", "--batch-size", "10000000"], "--batch-size '10000000'"),
    (["stream", "{m}", "--out", "{o}.wav", "--duration-s", "inf"], "--duration-s 'inf': must be a finite"),
    (["stream", "{m}", "--out", "{o}.wav", "--noise-dbfs", "10"], "--noise-dbfs '10': must be in [-150, 0]"),
    (["stream", "{m}", "--out", "{o}.wav", "--gap-min-s", "2", "--gap-max-s", "1"],
     "--gap-min-s 2.0 is above --gap-max-s 1.0"),
    (["synth", "hey", "--out", "{o}", "--seed", "-1"], "--seed '-1': must be in [0, 4294967295]"),
    (["embed", "{m}", "--store", "s.zarr", "--batch-size", "0"], "--batch-size '0': must be in [1, 4096]"),
    (["negatives", "--real", "{o}", "--out", "{o}2", "--min-s", "5", "--max-s", "2"],
     "--min-s 5.0 is above --max-s 2.0"),
])
def test_bad_values_name_the_option(tmp_path: Path, args: list[str], expected: str) -> None:
    manifest = _manifest(tmp_path)
    (tmp_path / "real").mkdir()
    filled = [a.format(m=manifest, o=tmp_path / ("real" if a == "{o}" and "--real" in args else "out"))
              for a in args]
    assert expected in one_line_error(filled)


def test_calibrate_min_threshold_reaches_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    from wakebuilder import calibrate

    seen = []

    def spy(model_dir: str, stores: list[str], **kwargs: object) -> None:
        seen.append(kwargs["config"])
        raise SystemExit(0)

    monkeypatch.setattr(calibrate, "calibrate_model", spy)
    for extra, floor in (([], 0.0), (["--min-threshold", "0.8"], 0.8)):
        result = CliRunner().invoke(main, ["calibrate", "--model", "m", "--store", "s", *extra])
        assert result.exit_code == 0, result.output
        assert seen.pop().min_threshold == floor


def test_values_from_the_environment_name_the_variable(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    args = ["augment", str(manifest), "--out", str(tmp_path / "o")]
    message = one_line_error(args, env={"WB_AUGMENT_SNR_DB": "20,5"})
    assert "--snr-db '20,5' (from WB_AUGMENT_SNR_DB): MIN is above MAX" in message
    message = one_line_error(["detect", "m.onnx", "a.wav"], env={"WB_DETECT_HOP_S": "0.5"})
    assert "--hop-s '0.5' (from WB_DETECT_HOP_S): must be in [0.01, 0.1]" in message


def test_an_output_path_under_a_file_is_refused(tmp_path: Path) -> None:
    manifest = _manifest(tmp_path)
    (tmp_path / "notes.txt").write_text("mine")
    under = tmp_path / "notes.txt" / "out"
    message = one_line_error(["augment", str(manifest), "--out", str(under)])
    assert f"{tmp_path / 'notes.txt'} is a file" in message
    message = one_line_error(["fit", "--store", str(tmp_path / "notes.txt" / "s.zarr"), "--out", "m"])
    assert "--store" in message and "is a file" in message
    message = one_line_error(["stream", str(manifest), "--out", str(tmp_path)])
    assert "is a directory" in message


@pytest.mark.parametrize(("args", "expected"), [
    (["augment", "{t}/nope.jsonl", "--out", "{t}/o"], "MANIFEST '{t}/nope.jsonl': not found; check the path"),
    (["augment", "{t}", "--out", "{t}/o"], "MANIFEST '{t}': is a folder; give a file"),
    (["embed", "{m}", "{t}/nope.jsonl", "--store", "{t}/s.zarr"], "MANIFESTS '{t}/nope.jsonl': not found"),
    (["bank", "build", "{t}"], "MANIFESTS '{t}': is a folder; give a file"),
    (["stream", "{t}/nope.jsonl", "--out", "{t}/s.wav"], "MANIFESTS '{t}/nope.jsonl': not found"),
    (["validate", "{t}", "--out", "{t}/o"], "RECORDINGS '{t}': is a folder; give a file"),
    (["calibrate", "--model", "m", "--store", "s", "--stream", "{t}"], "--stream '{t}': is a folder; give a file"),
    (["ensemble", "--model", "a", "--model", "b", "--out", "{t}/e", "--stream", "{t}"], "--stream '{t}': is a folder"),
    (["augment", "{m}", "--out", "{t}/o", "--noise", "{m}"], "--noise '{m}': is a file; give a folder"),
    (["augment", "{m}", "--out", "{t}/o", "--background-manifest", "{t}/no"], "--background-manifest '{t}/no': not"),
    (["fit", "--store", "s", "--out", "{t}/m", "--init", "{m}"], "--init '{m}': is a file; give a folder"),
    (["synth", "--list-voices", "--kokoro-voices", "{t}/no.bin"], "--kokoro-voices '{t}/no.bin': not found"),
    (["bank", "info", "--cache-dir", "{m}"], "--cache-dir '{m}': is a file; give a folder"),
    (["store", "verify", "{t}/nope"], "PATH '{t}/nope': not found"),
])
def test_a_bad_input_path_is_one_line_naming_it(args: list[str], expected: str, tmp_path: Path) -> None:
    """A missing input, or a folder where a file is expected (and the reverse), printed click's usage block (four
    lines, `Error: Invalid value for 'MANIFEST': ...`); it is one line naming the path and the fix."""
    manifest = _manifest(tmp_path)
    fill = {"t": str(tmp_path), "m": str(manifest)}
    message = one_line_error([a.format(**fill) for a in args])
    assert expected.format(**fill) in message


COMMANDS_WITH_DEVICE = [
    ["embed", "--device", "cuda", "{m}", "--store", "s.zarr"],
    ["fit", "--device", "cuda", "--store", "s.zarr", "--out", "m"],
    ["calibrate", "--device", "cuda", "--model", "m", "--store", "s.zarr"],
    ["detect", "--device", "cuda", "m.onnx", "a.wav"],
    ["eval", "--device", "cuda", "m.onnx", "a.wav"],
]


@pytest.mark.parametrize("args", COMMANDS_WITH_DEVICE, ids=lambda a: a[0])
def test_device_cuda_without_cuda_is_the_same_error_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    manifest = _manifest(tmp_path)
    message = one_line_error([a.format(m=manifest) for a in args])
    assert message == "wb: error: --device 'cuda': no CUDA device is available; use --device cpu or auto\n"


def test_library_backbones_refuse_cuda_without_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from wakebuilder.backbones import load_backbone
    from wakebuilder.errors import ConfigError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA device"):
        load_backbone("speech-embedding", device="cuda")  # ran silently on the CPU before


def test_unknown_backbone_or_missing_directory(tmp_path: Path) -> None:
    from wakebuilder.backbones import load_backbone
    from wakebuilder.errors import BackboneError

    with pytest.raises(BackboneError, match="unknown backbone.*known names: ast, speech-embedding"):
        load_backbone("wav2vec")
    with pytest.raises(BackboneError, match=f"the directory {tmp_path / 'nope'} does not exist"):
        load_backbone(str(tmp_path / "nope"))
    manifest = _manifest(tmp_path)
    result = CliRunner().invoke(main, ["embed", str(manifest), "--store", str(tmp_path / "s.zarr"),
                                       "--backbone", "./missing-checkpoint"])
    assert result.exit_code == 1 and "does not exist" in result.stderr and result.stderr.count("\n") == 1


def head_only_onnx(path: Path) -> Path:
    """An ONNX file shaped like NAME.head.onnx: (batch, seq, dim) embeddings in, probability out."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("embeddings", TensorProto.FLOAT, ["batch", 9, 96])
    y = helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])
    node = helper.make_node("ReduceMean", ["embeddings"], ["probability"], axes=[1, 2], keepdims=0)
    graph = helper.make_graph([node], "head", [x], [y])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    return path


def test_detect_given_a_head_onnx_says_so(tmp_path: Path) -> None:
    from wakebuilder.audio import write_wav

    head = head_only_onnx(tmp_path / "hey.head.onnx")
    audio = write_wav(tmp_path / "a.wav", np.zeros(16_000, dtype=np.float32))
    result = CliRunner().invoke(main, ["detect", str(head), str(audio)])
    assert result.exit_code == 1 and result.stderr.count("\n") == 1, result.output
    assert "head-only export" in result.stderr and "end-to-end NAME.onnx" in result.stderr
