"""EfficientWord-Net's word embedding model, offline through onnxruntime.

A ResNet-50 trained with an ArcFace loss on single spoken words of MLCommons' Multilingual Spoken Words
corpus (real speech of many speakers); it ships in the PyPI package ``EfficientWord-Net`` (Apache-2.0) as
``models/resnet_50_arc/slim_93%_accuracy_72.7390%.onnx``. It maps the 64-filter log filterbank of 1.5 s
(``python_speech_features.logfbank``: 25 ms rectangular frames every 10 ms, 512-point FFT, no pre-emphasis;
149 frames) to one unit-length 2048-d vector; the model min-max scales its input itself, so the audio's
level does not matter. A flat filterbank (digital silence), which that scaling would turn into NaN, is given a
fixed ramp instead.

A window of ``window_s`` >= 1.5 s is read as 1.5 s sub-windows every ``STRIDE_S``: the sequence holds one
vector per sub-window. The front end is an ONNX graph built here and composed in front of the model
(``encoder_model``), so that ``embed`` and the exported end-to-end graph run the same computation.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.backbones.base import balanced_parts
from wakebuilder.backbones.speech_embedding import SpeechEmbeddingBackbone
from wakebuilder.errors import BackboneError, ConfigError

NET_SAMPLES = 24000  # 1.5 s
FRAME, STEP, NFFT, FILTERS = 400, 160, 512, 64
FRAMES = 1 + -(-(NET_SAMPLES - FRAME) // STEP)  # 149, as python_speech_features frames 1.5 s
PAD = (FRAMES - 1) * STEP + FRAME - NET_SAMPLES  # zeros it appends to fill the last frame
EPS = float(np.finfo(np.float64).eps)  # python_speech_features' floor under the filterbank energies
DIM = 2048
STRIDE_S = 0.25
MAX_WINDOW_S = 3.0
MODEL_FILE = "models/resnet_50_arc/slim_93%_accuracy_72.7390%.onnx"
MODEL_ENV = "WB_WORD_EMBEDDING_MODEL"


def model_path() -> Path:
    """The ONNX file: ``$WB_WORD_EMBEDDING_MODEL``, else the installed ``eff_word_net`` package's.

    Raises:
        BackboneError: neither is there, saying how to install the package.
    """
    given = os.environ.get(MODEL_ENV)
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise BackboneError(f"{MODEL_ENV}={given}: no such file; point it at the package's {MODEL_FILE}")
        return path
    spec = importlib.util.find_spec("eff_word_net")  # located, not imported: its __init__ needs PyAudio
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
        if path.is_file():
            return path
    raise BackboneError(
        "word-embedding: the EfficientWord-Net model is not installed; run "
        "'pip install --no-deps EfficientWord-Net==1.0.5' or set WB_WORD_EMBEDDING_MODEL to its ONNX file"
    )


def mel_filters() -> np.ndarray:
    """``(257, 64)`` triangular mel filters on whole FFT bins, as ``python_speech_features.get_filterbanks``."""
    def mel(hz: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + hz / 700.0)

    points = np.linspace(mel(np.array(0.0)), mel(np.array(SAMPLE_RATE / 2)), FILTERS + 2)
    edges = np.floor((NFFT + 1) * (700 * (10 ** (points / 2595.0) - 1)) / SAMPLE_RATE)
    bins = np.arange(NFFT // 2 + 1)[:, None]
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]
    rise = np.where((bins >= lo) & (bins < mid), (bins - lo) / np.maximum(mid - lo, 1), 0.0)
    fall = np.where((bins >= mid) & (bins < hi), (hi - bins) / np.maximum(hi - mid, 1), 0.0)
    return (rise + fall).astype(np.float32)


def frontend_graph(window_samples: int, starts: np.ndarray) -> Any:
    """ONNX graph ``waveform (B, window_samples)`` -> log filterbank ``(B * T, 1, 149, 64)`` of the sub-windows
    beginning at ``starts`` (samples), each framed on its own and zero-padded at its end as the model's
    training front end did."""
    import onnx
    from onnx import helper, numpy_helper

    sub = (starts[:, None] + np.arange(NET_SAMPLES)[None]).astype(np.int64)  # (T, 24000)
    frames = (np.arange(FRAMES)[:, None] * STEP + np.arange(FRAME)[None]).astype(np.int64)  # (149, 400)
    angle = 2 * np.pi * np.outer(np.arange(FRAME), np.arange(NFFT // 2 + 1)) / NFFT
    consts = {
        "fe_sub": sub, "fe_frames": frames, "fe_pads": np.array([0, 0, 0, 0, 0, PAD], np.int64),
        "fe_cos": np.cos(angle).astype(np.float32), "fe_sin": np.sin(angle).astype(np.float32),
        "fe_scale": np.array(32767.0 ** 2 / NFFT, np.float32), "fe_mel": mel_filters(),
        "fe_eps": np.array(EPS, np.float32), "fe_shape": np.array([-1, 1, FRAMES, FILTERS], np.int64),
        "fe_ramp": np.repeat(np.linspace(0.0, 1.0, FRAMES, dtype=np.float32)[:, None], FILTERS, axis=1),
        "fe_zero": np.zeros((FRAMES, FILTERS), np.float32),
    }
    nodes = [
        helper.make_node("Gather", ["waveform", "fe_sub"], ["fe_w"], axis=1),  # (B, T, 24000)
        helper.make_node("Pad", ["fe_w", "fe_pads"], ["fe_padded"]),
        helper.make_node("Gather", ["fe_padded", "fe_frames"], ["fe_f"], axis=2),  # (B, T, 149, 400)
        helper.make_node("MatMul", ["fe_f", "fe_cos"], ["fe_re"]),
        helper.make_node("MatMul", ["fe_f", "fe_sin"], ["fe_im"]),
        helper.make_node("Mul", ["fe_re", "fe_re"], ["fe_re2"]),
        helper.make_node("Mul", ["fe_im", "fe_im"], ["fe_im2"]),
        helper.make_node("Add", ["fe_re2", "fe_im2"], ["fe_pow0"]),
        helper.make_node("Mul", ["fe_pow0", "fe_scale"], ["fe_pow"]),  # int16-scale power / NFFT
        helper.make_node("MatMul", ["fe_pow", "fe_mel"], ["fe_energy"]),
        helper.make_node("Max", ["fe_energy", "fe_eps"], ["fe_floored"]),
        helper.make_node("Log", ["fe_floored"], ["fe_log"]),
        # the model scales by (max - min): a flat filterbank (digital silence) would be 0 / 0, NaN; it gets a ramp
        helper.make_node("ReduceMin", ["fe_log"], ["fe_lo"], axes=[2, 3], keepdims=1),
        helper.make_node("ReduceMax", ["fe_log"], ["fe_hi"], axes=[2, 3], keepdims=1),
        helper.make_node("Equal", ["fe_lo", "fe_hi"], ["fe_flat"]),
        helper.make_node("Where", ["fe_flat", "fe_ramp", "fe_zero"], ["fe_bump"]),
        helper.make_node("Add", ["fe_log", "fe_bump"], ["fe_features"]),
        helper.make_node("Reshape", ["fe_features", "fe_shape"], ["features"]),
    ]
    graph = helper.make_graph(
        nodes, "wakebuilder_logfbank",
        [helper.make_tensor_value_info("waveform", onnx.TensorProto.FLOAT, ["batch", window_samples])],
        [helper.make_tensor_value_info("features", onnx.TensorProto.FLOAT, ["rows", 1, FRAMES, FILTERS])],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=7)


def batched_net(model: Any) -> Any:
    """The model with its batch of one made free: its input reshapes name batch 1 outright."""
    from onnx import numpy_helper

    fixed = {"/Constant_output_0": [0, -1], "/Constant_1_output_0": [-1, 1], "/Constant_5_output_0": [-1, 1, 149, 64]}
    found = 0
    for i, tensor in enumerate(model.graph.initializer):
        if tensor.name in fixed:
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(np.array(fixed[tensor.name], np.int64),
                                                                        tensor.name))
            found += 1
    if found != len(fixed):
        raise BackboneError("word-embedding: the ONNX file is not EfficientWord-Net 1.0.5's resnet_50_arc model")
    for value in (model.graph.input[0], model.graph.output[0]):
        value.type.tensor_type.shape.dim[0].dim_param = "rows"
    return model


def encoder_model(net: Any, window_samples: int, seq_len: int) -> Any:
    """One graph ``waveform (B, window_samples)`` -> ``sequence (B, seq_len, 2048)``."""
    import onnx
    from onnx import compose, helper, numpy_helper

    starts = np.round(np.arange(seq_len) * STRIDE_S * SAMPLE_RATE).astype(np.int64)
    front = frontend_graph(window_samples, starts)
    net = compose.add_prefix(net, "net_")
    shape = numpy_helper.from_array(np.array([-1, seq_len, DIM], np.int64), "enc_shape")
    nodes = [*front.graph.node, helper.make_node("Identity", ["features"], [net.graph.input[0].name]),
             *net.graph.node, helper.make_node("Reshape", [net.graph.output[0].name, "enc_shape"], ["sequence"])]
    graph = helper.make_graph(
        nodes, "wakebuilder_word_embedding", list(front.graph.input),
        [helper.make_tensor_value_info("sequence", onnx.TensorProto.FLOAT, ["batch", seq_len, DIM])],
        initializer=[*front.graph.initializer, *net.graph.initializer, shape],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 14)], ir_version=7)


class WordEmbeddingBackbone:
    """Batched onnxruntime runner of EfficientWord-Net's model; see the module docstring.

    Args:
        window_s: seconds one embedding sees (default and least 1.5, at most 3.0): sub-windows every 0.25 s.
        threads: onnxruntime calls at once on parts of a batch, each on one intra-op thread (0: one per core).
        max_clips: clips per onnxruntime call.
    """

    name = "word-embedding"
    sample_rate = SAMPLE_RATE
    dim = DIM
    device = "cpu"

    def __init__(self, window_s: float | None = None, *, threads: int = 0, max_clips: int = 16) -> None:
        import onnx
        import onnxruntime as ort

        from wakebuilder.devices import cpu_threads

        window = 1.5 if window_s is None else float(window_s)
        self.window_samples = int(round(window * SAMPLE_RATE))
        if not NET_SAMPLES <= self.window_samples <= MAX_WINDOW_S * SAMPLE_RATE:
            raise ConfigError(f"word-embedding window {window} s: must be between 1.5 and {MAX_WINDOW_S} s")
        self.window_s = self.window_samples / SAMPLE_RATE
        self.seq_len = 1 + int((self.window_samples - NET_SAMPLES) // round(STRIDE_S * SAMPLE_RATE))
        if threads < 0:
            raise ConfigError(f"--threads {threads}: must be >= 0")
        self.parallel_calls = threads or cpu_threads()
        self.max_clips = max_clips
        self._pool: Any = None
        path = model_path()
        raw = path.read_bytes()
        self._revision = hashlib.sha256(raw).hexdigest()[:16]
        self.encoder = encoder_model(batched_net(onnx.load_from_string(raw)), self.window_samples, self.seq_len)
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(self.encoder.SerializeToString(), options,
                                             providers=["CPUExecutionProvider"])

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name, "spec": self.name,
            "checkpoint": "EfficientWord-Net 1.0.5 resnet_50_arc (MLCommons spoken words)",
            "revision": self._revision, "window_s": self.window_s, "seq_len": self.seq_len, "dim": self.dim,
            "sample_rate": self.sample_rate,
            "frontend": {"logfbank": FILTERS, "frame": FRAME, "step": STEP, "nfft": NFFT, "net_s": 1.5,
                         "stride_s": STRIDE_S},
        }

    def embed(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embed ``(B, window_samples)`` audio: pooled ``(B, 2048)`` and sequence ``(B, T, 2048)``."""
        if waveforms.ndim != 2 or waveforms.shape[1] != self.window_samples:
            raise BackboneError(f"word-embedding expects (B, {self.window_samples}) audio, got {waveforms.shape}")
        batch = np.ascontiguousarray(waveforms, dtype=np.float32)
        parts = [batch[cut] for cut in balanced_parts(batch.shape[0], self.parallel_calls, self.max_clips)]
        sequence = np.concatenate(list(self._map(self._run, parts))).astype(np.float32)
        return sequence.mean(axis=1), sequence

    def _run(self, part: np.ndarray) -> np.ndarray:
        return self._session.run(None, {"waveform": part})[0]

    # ``parallel_calls`` onnxruntime calls at once on a lazily made thread pool, as speech-embedding runs them
    _map = SpeechEmbeddingBackbone._map

    def end_to_end_onnx(self, head: Any, head_onnx: Path, out_path: Path, *, example: np.ndarray) -> Path:
        """One ONNX graph waveform -> probability: this backbone's encoder composed with ``head_onnx``."""
        import onnx
        from onnx import compose, helper

        from wakebuilder.atomic import atomic_write_bytes

        head_model = compose.add_prefix(onnx.load(str(head_onnx)), "head_")
        enc = onnx.load_from_string(self.encoder.SerializeToString())
        nodes = [*enc.graph.node, helper.make_node("Identity", ["sequence"], [head_model.graph.input[0].name]),
                 *head_model.graph.node,
                 helper.make_node("Identity", [head_model.graph.output[0].name], ["probability"])]
        graph = helper.make_graph(
            nodes, "wakebuilder_word_embedding_detector", list(enc.graph.input),
            [helper.make_tensor_value_info("probability", onnx.TensorProto.FLOAT, ["batch"])],
            initializer=[*enc.graph.initializer, *head_model.graph.initializer],
        )
        opset = max(14, *(o.version for o in head_model.opset_import if o.domain in ("", "ai.onnx")))
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
        onnx.checker.check_model(model, full_check=True)
        return atomic_write_bytes(out_path, model.SerializeToString())
