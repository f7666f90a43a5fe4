"""ONNX graphs of a backbone followed by a head: the backbones' ``end_to_end_onnx``.

A torch backbone (AST) is traced with the head into one graph (``torch_to_onnx``); the
speech-embedding backbone, already ONNX, is composed with the head's ONNX file
(``compose_speech_embedding``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wakebuilder.atomic import atomic_write_bytes

OPSET = 17
# torch's TorchScript exporter keeps process-global state (GLOBALS.in_onnx_export, the export's opset), and
# warnings.catch_warnings swaps the process-wide filters: two threads exporting at once (run_recipe in a
# ThreadPoolExecutor) fail with "GLOBALS.in_onnx_export must be False". Every torch.onnx.export in wakebuilder
# goes through torch_to_onnx, which holds this lock.
_TORCH_ONNX_EXPORT_LOCK = threading.Lock()


class WaveformDetector(nn.Module):
    """Waveform encoder (front end + backbone) followed by the calibrated head."""

    def __init__(self, encoder: nn.Module, head: nn.Module) -> None:
        super().__init__()
        self.encoder, self.head = encoder, head

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        _, sequence = self.encoder(waveforms)
        return self.head(sequence)


def torch_to_onnx(module: nn.Module, example: torch.Tensor, path: Path, *, input_name: str) -> Path:
    """Export with a dynamic batch axis into one self-contained file (legacy TorchScript exporter).

    Safe to call from several threads: the exports take turns (the exporter's state is process-global).
    """
    import io
    import warnings

    buffer = io.BytesIO()
    with _TORCH_ONNX_EXPORT_LOCK, torch.no_grad(), warnings.catch_warnings():
        # the legacy exporter is deprecated but exact here (see DEPENDENCIES.md); shapes are fixed per window
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            module.eval(), (example,), buffer, input_names=[input_name], output_names=["probability"],
            dynamic_axes={input_name: {0: "batch"}, "probability": {0: "batch"}},
            opset_version=OPSET, dynamo=False,
        )
    return atomic_write_bytes(path, buffer.getvalue())


def compose_speech_embedding(backbone: Any, head_path: Path, out_path: Path) -> Path:
    """One ONNX graph: waveform -> x32767 -> melspectrogram -> /10+2 -> embedding CNN -> head.

    The embedding model is the backbone's fully convolutional rewrite (every
    76-frame window at stride 8 in one run), so the graph computes exactly
    what ``SpeechEmbeddingBackbone.embed`` computes.
    """
    import onnx
    from onnx import compose, helper, numpy_helper

    window = int(backbone.window_samples)
    parts = {
        "mel_": onnx.load_from_string(backbone.mel_model.SerializeToString()),
        "emb_": onnx.load_from_string(backbone.embedding_model.SerializeToString()),
        "head_": onnx.load(str(head_path)),
    }
    parts = {prefix: compose.add_prefix(model, prefix) for prefix, model in parts.items()}
    mel, emb, head = (parts[k].graph for k in ("mel_", "emb_", "head_"))
    consts = {
        "wb_scale": np.array(32767.0, np.float32), "wb_ten": np.array(10.0, np.float32),
        "wb_two": np.array(2.0, np.float32), "wb_axis1": np.array([1], np.int64),
        "wb_axis3": np.array([3], np.int64),
    }
    glue_in = [helper.make_node("Mul", ["waveform", "wb_scale"], [mel.input[0].name])]
    glue_mid = [
        helper.make_node("Squeeze", [mel.output[0].name, "wb_axis1"], ["wb_mel"]),
        helper.make_node("Div", ["wb_mel", "wb_ten"], ["wb_mel_div"]),
        helper.make_node("Add", ["wb_mel_div", "wb_two"], ["wb_mel_scaled"]),
        helper.make_node("Unsqueeze", ["wb_mel_scaled", "wb_axis3"], [emb.input[0].name]),
    ]
    glue_head = [helper.make_node("Identity", [emb.output[0].name], [head.input[0].name])]
    glue_out = [helper.make_node("Identity", [head.output[0].name], ["probability"])]
    graph = helper.make_graph(
        glue_in + list(mel.node) + glue_mid + list(emb.node) + glue_head + list(head.node) + glue_out,
        "wakebuilder_speech_embedding",
        [helper.make_tensor_value_info("waveform", onnx.TensorProto.FLOAT, ["batch", window])],
        [helper.make_tensor_value_info("probability", onnx.TensorProto.FLOAT, ["batch"])],
        initializer=[numpy_helper.from_array(v, k) for k, v in consts.items()]
        + list(mel.initializer) + list(emb.initializer) + list(head.initializer),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=8)
    onnx.checker.check_model(model, full_check=True)
    return atomic_write_bytes(out_path, model.SerializeToString())
