"""The word-embedding backbone on a small stand-in of EfficientWord-Net's model (same input and output stages)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import chirp, noise, tone
from wakebuilder.backbones import backbone_from_identity, load_backbone
from wakebuilder.backbones import word_embedding as we
from wakebuilder.errors import BackboneError, ConfigError


def stand_in_model(path: Path, *, seed: int = 0, rename: bool = False) -> Path:
    """EfficientWord-Net's graph in small: batch-1 reshapes and per-input min-max scaling to [-1, 1] (the
    initializers named as in the real file), a convolution, average pooling, a projection to 2048 and L2
    normalization."""
    import onnx
    from onnx import helper, numpy_helper

    rng = np.random.default_rng(seed)
    consts = {
        "/Constant_output_0": np.array([1, -1], np.int64), "/Constant_1_output_0": np.array([1, 1], np.int64),
        "/Constant_5_output_0": np.array([1, 1, 149, 64], np.int64), "two": np.array(2.0, np.float32),
        "one": np.array(1.0, np.float32), "axes": np.array([1], np.int64),
        "conv_w": rng.standard_normal((4, 1, 3, 3)).astype(np.float32),
        "proj": rng.standard_normal((4, 2048)).astype(np.float32),
    }
    if rename:
        consts["/Constant_9_output_0"] = consts.pop("/Constant_5_output_0")
    shape5 = "/Constant_9_output_0" if rename else "/Constant_5_output_0"
    nodes = [
        helper.make_node("Reshape", ["input", "/Constant_output_0"], ["flat"]),
        helper.make_node("ReduceMin", ["flat"], ["lo0"], axes=[1], keepdims=0),
        helper.make_node("Reshape", ["lo0", "/Constant_1_output_0"], ["lo"]),
        helper.make_node("ReduceMax", ["flat"], ["hi0"], axes=[1], keepdims=0),
        helper.make_node("Reshape", ["hi0", "/Constant_1_output_0"], ["hi"]),
        helper.make_node("Sub", ["flat", "lo"], ["num"]), helper.make_node("Sub", ["hi", "lo"], ["den"]),
        helper.make_node("Div", ["num", "den"], ["unit"]), helper.make_node("Mul", ["unit", "two"], ["twice"]),
        helper.make_node("Sub", ["twice", "one"], ["scaled"]),
        helper.make_node("Reshape", ["scaled", shape5], ["image"]),
        helper.make_node("Conv", ["image", "conv_w"], ["conv"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["conv"], ["relu"]), helper.make_node("GlobalAveragePool", ["relu"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["pooled"]), helper.make_node("MatMul", ["pooled", "proj"], ["vec"]),
        helper.make_node("Mul", ["vec", "vec"], ["sq"]),
        helper.make_node("ReduceSum", ["sq", "axes"], ["ss"], keepdims=1),
        helper.make_node("Sqrt", ["ss"], ["norm"]), helper.make_node("Div", ["vec", "norm"], ["feature_output"]),
    ]
    graph = helper.make_graph(
        nodes, "stand_in", [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, [1, 1, 149, 64])],
        [helper.make_tensor_value_info("feature_output", onnx.TensorProto.FLOAT, [1, 2048])],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=7), str(path))
    return path


@pytest.fixture
def model_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = stand_in_model(tmp_path / "resnet_50_arc.onnx")
    monkeypatch.setenv(we.MODEL_ENV, str(path))
    return path


def reference_logfbank(signal: np.ndarray) -> np.ndarray:
    """python_speech_features.logfbank(signal, 16000, 0.025, 0.01, nfilt=64, nfft=512, preemph=0), its loops."""
    n_frames = 1 + math.ceil((len(signal) - 400) / 160)
    padded = np.concatenate([signal, np.zeros((n_frames - 1) * 160 + 400 - len(signal))])
    frames = np.stack([padded[i * 160 : i * 160 + 400] for i in range(n_frames)])
    power = np.abs(np.fft.rfft(frames, 512)) ** 2 / 512
    high = 2595 * np.log10(1 + 8000 / 700.0)
    points = np.linspace(0.0, high, 66)
    edges = np.floor(513 * (700 * (10 ** (points / 2595.0) - 1)) / 16000)
    bank = np.zeros((64, 257))
    for j in range(64):
        for i in range(int(edges[j]), int(edges[j + 1])):
            bank[j, i] = (i - edges[j]) / (edges[j + 1] - edges[j])
        for i in range(int(edges[j + 1]), int(edges[j + 2])):
            bank[j, i] = (edges[j + 2] - i) / (edges[j + 2] - edges[j + 1])
    energy = power @ bank.T
    return np.log(np.where(energy == 0, np.finfo(float).eps, energy))


def _clips(n: int, seconds: float = 1.5) -> np.ndarray:
    return np.stack([tone(250 + 90 * i, seconds) + noise(seconds, seed=i) for i in range(n)]).astype(np.float32)


def test_front_end_is_python_speech_features_logfbank() -> None:
    import onnxruntime as ort

    clips = _clips(2)
    clips[1] = chirp(150, 5000, 1.5)
    clips[1, :6000] = 0.0  # digital silence: the energy floor
    session = ort.InferenceSession(we.frontend_graph(24_000, np.array([0])).SerializeToString())
    features = session.run(None, {"waveform": clips})[0]
    assert features.shape == (2, 1, 149, 64)
    for i in range(2):
        reference = reference_logfbank(clips[i].astype(np.float64) * 32767)
        assert np.abs(features[i, 0] - reference).max() < 2e-3


def test_a_batch_is_each_clip_alone_and_the_level_does_not_matter(model_file: Path) -> None:
    backbone = load_backbone("word-embedding", threads=2)
    clips = _clips(5)
    pooled, sequence = backbone.embed(clips)
    assert sequence.shape == (5, 1, 2048) and np.allclose(pooled, sequence[:, 0])
    alone = np.concatenate([backbone.embed(clips[i : i + 1])[1] for i in range(5)])
    assert np.abs(alone - sequence).max() < 1e-5
    assert np.allclose(np.linalg.norm(sequence, axis=-1), 1.0, atol=1e-5)
    assert np.abs(backbone.embed(clips * 0.05)[1] - sequence).max() < 1e-3  # min-max scaling inside the model
    assert np.abs(sequence[0] - sequence[1]).max() > 1e-2
    silent = backbone.embed(np.zeros((2, 24_000), np.float32))[1]  # flat features: 0 / 0 in the model's scaling
    assert np.isfinite(silent).all() and np.array_equal(silent[0], silent[1])


def test_a_longer_window_is_its_sub_windows_every_quarter_second(model_file: Path) -> None:
    backbone = load_backbone("word-embedding", window_s=2.0, threads=1)
    assert (backbone.window_samples, backbone.seq_len) == (32_000, 3)
    clip = _clips(1, 2.0)
    _, sequence = backbone.embed(clip)
    short = load_backbone("word-embedding", threads=1)
    for k in range(3):
        _, part = short.embed(clip[:, k * 4000 : k * 4000 + 24_000])
        assert np.abs(sequence[0, k] - part[0, 0]).max() < 1e-5
    with pytest.raises(ConfigError, match="between 1.5 and 3.0"):
        load_backbone("word-embedding", window_s=1.0)


def test_identity_reloads_and_export_is_one_graph_equal_to_embed_then_head(
    model_file: Path, tmp_path: Path
) -> None:
    from tests.model_helpers import make_model_dir, tiny_head
    from wakebuilder.detect import load_detector
    from wakebuilder.export import export_model

    backbone = load_backbone("word-embedding", window_s=1.75, threads=1)
    assert backbone_from_identity(backbone.identity).identity == backbone.identity
    model = make_model_dir(tmp_path / "model", tiny_head(backbone.seq_len, 2048), backbone.identity)
    result = export_model(model, tmp_path / "export")
    assert result.parity_max_abs_diff["end_to_end"] < 1e-4
    detector = load_detector(Path(result.files["onnx"]))
    assert detector.window_samples == backbone.window_samples


def test_a_missing_model_is_refused_by_the_spec_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """word-embedding is the recipe's default: where its model is not installed the run fails at its start (the
    spec check), saying how to install it or which backbone is shipped, not at embedding after minutes of
    synthesis."""
    from wakebuilder.backbones import check_spec

    monkeypatch.delenv(we.MODEL_ENV, raising=False)
    monkeypatch.setattr(we.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackboneError, match="--backbone word_embedding: .*pip install --no-deps EfficientWord-Net.*"
                                            "or pass --backbone speech-embedding"):
        check_spec("word_embedding")
    check_spec("speech-embedding")  # shipped: nothing to locate
    with pytest.raises(BackboneError) as refused:
        check_spec("word-embedding")
    message = str(refused.value)  # one clause per fix, the backbone named once
    assert message.count("word-embedding") == 1 and message.count("; or") == 0, message
    with pytest.raises(BackboneError, match="leave --fuse-with out") as refused:  # the first may be speech-embedding
        check_spec("word-embedding", option="--fuse-with")
    assert "--fuse-with speech-embedding" not in str(refused.value)
    monkeypatch.setenv(we.MODEL_ENV, str(stand_in_model(tmp_path / "model.onnx")))
    check_spec("word-embedding")


def test_missing_or_foreign_model_is_a_one_line_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(we.MODEL_ENV, str(tmp_path / "absent.onnx"))
    with pytest.raises(BackboneError, match="WB_WORD_EMBEDDING_MODEL=.*absent.onnx: no such file"):
        load_backbone("word-embedding")
    monkeypatch.delenv(we.MODEL_ENV)
    monkeypatch.setattr(we.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackboneError, match="pip install --no-deps EfficientWord-Net"):
        load_backbone("word-embedding")
    monkeypatch.setenv(we.MODEL_ENV, str(stand_in_model(tmp_path / "other.onnx", rename=True)))
    with pytest.raises(BackboneError, match="not EfficientWord-Net"):
        load_backbone("word-embedding")


def test_the_installed_model_embeds_a_batch_as_each_clip_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real file, where set-up installed EfficientWord-Net (its sha256 prefix is the identity's revision)."""
    import importlib.util

    monkeypatch.delenv(we.MODEL_ENV, raising=False)
    if importlib.util.find_spec("eff_word_net") is None:
        pytest.skip("EfficientWord-Net is not installed (bin/setup installs it)")
    backbone = load_backbone("word-embedding", threads=1)
    assert backbone.identity["revision"] == "373916c2a52dffb7"
    clips = np.concatenate([_clips(2), np.zeros((1, 24_000), np.float32)])
    _, sequence = backbone.embed(clips)
    alone = np.concatenate([backbone.embed(clips[i : i + 1])[1] for i in range(3)])
    assert np.isfinite(sequence).all() and np.abs(alone - sequence).max() < 1e-4
    assert np.allclose(np.linalg.norm(sequence, axis=-1), 1.0, atol=1e-4)
