"""Cut an exported speech-embedding ``NAME.onnx`` into the pieces the page streams.

A window 100 ms after the last one shares all but ten of its mel frames with it,
and the embedding CNN has no padding along time, so what it computed for the
overlap can be kept instead of recomputed (:mod:`wakebuilder.web.stream`). The
pieces are subgraphs of the very file ``wb detect`` runs (``onnx.utils.Extractor``
on the ``mel_`` / ``emb_`` / ``head_`` parts that ``compose_speech_embedding``
prefixed), cut at the CNN's time poolings:

* ``front``: waveform ``(1, samples)`` -> dB mel frames before the floor ``(1, 1, frames, 32)``;
* ``stage1``: floored dB frames -> ``/10+2`` -> the CNN up to its second time pooling,
  time-major ``(1, n, 72, 8)`` (one row every 2 frames, each sees 22 frames);
* ``stage2``: rows of stage 1 (one phase) -> up to the third time pooling ``(1, n, 96, 2)``;
* ``tail``: the window's stage-2 rows -> last pooling and convolution -> head -> probability.

The floor (the window's loudest dB minus ``db_range``) is applied between
``front`` and ``stage1`` by the caller, since it depends on the whole window.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.errors import ModelFileError

STAGES = ("front", "stage1", "stage2", "tail")
TIME_MAJOR = [0, 2, 1, 3]  # (B, C, time, mel) <-> (B, time, C, mel)


@dataclasses.dataclass(frozen=True)
class StreamPieces:
    """The four subgraphs and the time geometry that streaming them needs.

    ``receptive`` and ``stride`` per stage count the stage's input steps: samples for
    ``front``, mel frames for ``stage1``, stage-1 rows for ``stage2``.
    """

    models: dict[str, Any]
    db_range: float
    receptive: dict[str, int]
    stride: dict[str, int]
    window_samples: int

    def geometry(self) -> dict[str, Any]:
        """The page's description of the pieces (``page.json``)."""
        return {"db_range": self.db_range, "receptive": self.receptive, "stride": self.stride}


def _attr(node: Any, name: str, default: Any = None) -> Any:
    from onnx import helper

    for attribute in node.attribute:
        if attribute.name == name:
            return helper.get_attribute_value(attribute)
    return default


def _constant(graph: Any, name: str) -> np.ndarray:
    from onnx import numpy_helper

    for init in graph.initializer:
        if init.name == name:
            return numpy_helper.to_array(init)
    for node in graph.node:
        if node.op_type == "Constant" and node.output[0] == name:
            return numpy_helper.to_array(_attr(node, "value"))
    raise ModelFileError(f"constant {name} not found")


def _time_geometry(nodes: list[Any], where: Path) -> tuple[int, int]:
    """Receptive field and stride along time (axis 2) of a chain of Conv / MaxPool nodes."""
    receptive, stride, seen = 1, 1, set()
    for node in nodes:
        if node.op_type not in ("Conv", "MaxPool") or node.input[0] in seen:
            continue  # the STFT's imaginary-part convolution runs beside the real one
        seen.add(node.input[0])
        kernel = _attr(node, "kernel_shape")
        pads = _attr(node, "pads", [0] * 2 * len(kernel))
        if pads[0] or pads[len(kernel)] or _attr(node, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise ModelFileError(f"{where}: {node.name} pads along time; the page cannot stream it")
        if any(d != 1 for d in _attr(node, "dilations", [1])):
            raise ModelFileError(f"{where}: {node.name} is dilated; the page cannot stream it")
        receptive += (kernel[0] - 1) * stride
        stride *= (_attr(node, "strides", [1] * len(kernel)))[0]
    return receptive, stride


def _extract(model: Any, nodes: list[Any], inputs: str, output: str) -> Any:
    """A model of ``nodes`` (a span of ``model``'s graph) from ``inputs`` to ``output``, all dimensions free."""
    import onnx
    from onnx import helper

    used = {name for node in nodes for name in node.input}
    initializers = [init for init in model.graph.initializer if init.name in used]
    rank = {"waveform": 2}.get(inputs, 4)
    out_rank = 1 if output == "probability" else 4
    graph = helper.make_graph(
        nodes, f"wakebuilder_stream_{output}",
        [helper.make_tensor_value_info(inputs, onnx.TensorProto.FLOAT, [f"in{i}" for i in range(rank)])],
        [helper.make_tensor_value_info(output, onnx.TensorProto.FLOAT, [f"out{i}" for i in range(out_rank)])],
        initializer=initializers,
    )
    return helper.make_model(graph, opset_imports=list(model.opset_import), ir_version=model.ir_version)


def _relabel(piece: Any, name_in: str | None, name_out: str | None) -> Any:
    """Give ``piece`` time-major input ``rows`` (if ``name_in``) and output ``rows_out`` (if ``name_out``)."""
    import onnx
    from onnx import helper

    graph = piece.graph
    if name_in is not None:
        graph.node.insert(0, helper.make_node("Transpose", ["rows"], [name_in], perm=TIME_MAJOR))
        graph.input[0].name = "rows"
    if name_out is not None:
        graph.node.append(helper.make_node("Transpose", [name_out], ["rows_out"], perm=TIME_MAJOR))
        graph.output[0].name = "rows_out"
    onnx.checker.check_model(piece, full_check=True)
    return piece


def stream_pieces(onnx_path: Path) -> StreamPieces | None:
    """The streaming pieces of an exported speech-embedding ``NAME.onnx``; None for other backbones."""
    import onnx

    model = onnx.load(str(onnx_path))
    graph, nodes = model.graph, list(model.graph.node)
    reduce = [n for n in nodes if n.op_type == "ReduceMax" and n.name.startswith("mel_")]
    if graph.name != "wakebuilder_speech_embedding" or len(reduce) != 1:
        return None
    db = reduce[0].input[0]
    sub = next(n for n in nodes if n.op_type == "Sub" and n.input[0] == reduce[0].output[0])
    clamp = [n for n in nodes if n.op_type == "Max" and n.input[0] == db]
    pools = [n for n in nodes if n.op_type == "MaxPool" and n.name.startswith("emb_") and _attr(n, "strides")[0] == 2]
    if len(clamp) != 1 or len(pools) != 3:
        raise ModelFileError(f"{onnx_path}: not the graph wb export writes for speech-embedding; re-export it")
    floored, cut1, cut2 = clamp[0].output[0], pools[1].input[0], pools[2].input[0]
    index = {n.output[0]: i for i, n in enumerate(nodes)}
    spans = {"front": nodes[: index[db] + 1], "stage1": nodes[index[floored] + 1 : index[cut1] + 1],
             "stage2": nodes[index[cut1] + 1 : index[cut2] + 1]}
    geometry = {name: _time_geometry(span, onnx_path) for name, span in spans.items()}
    models = {
        "front": _relabel(_extract(model, spans["front"], "waveform", db), None, None),
        "stage1": _relabel(_extract(model, spans["stage1"], floored, cut1), None, cut1),
        "stage2": _relabel(_extract(model, spans["stage2"], cut1, cut2), cut1, cut2),
        "tail": _relabel(_extract(model, nodes[index[cut2] + 1 :], cut2, "probability"), cut2, None),
    }
    window = graph.input[0].type.tensor_type.shape.dim[1].dim_value
    return StreamPieces(
        models=models, db_range=float(_constant(graph, sub.input[1])),
        receptive={k: v[0] for k, v in geometry.items()}, stride={k: v[1] for k, v in geometry.items()},
        window_samples=int(window),
    )


def write_pieces(pieces: StreamPieces, folder: Path, stem: str) -> dict[str, str]:
    """Write ``STEM.STAGE.onnx`` for each piece into ``folder``; returns stage -> file name."""
    from wakebuilder.atomic import atomic_write_bytes

    names = {}
    for stage in STAGES:
        names[stage] = f"{stem}.{stage}.onnx"
        atomic_write_bytes(folder / names[stage], pieces.models[stage].SerializeToString())
    return names
