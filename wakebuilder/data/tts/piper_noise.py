"""A Piper voice whose noise is a graph input, drawn by numpy from each clip's seed: reproducible synthesis.

onnxruntime's ``RandomNormalLike`` keeps one generator for the life of a
session, so each clip depended on every clip its process had made before.
``noise_fed_copy`` rewrites a voice (cached under ``WB_CACHE_DIR/piper``) so
that each such node reads an input instead, and ``NoiseFedSession`` fills
those inputs from the seed ``reseed`` set; see ``wakebuilder.data.tts.piper``.
"""

from __future__ import annotations

import glob
import hashlib
import re
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import atomic_write_bytes
from wakebuilder.bank.location import cache_dir
from wakebuilder.errors import EngineUnavailableError


NOISE_INPUT = "wakebuilder_noise_{}"
NOISE_PER_INPUT_VALUE = 4096  # noise drawn per phoneme id at first: a clip that needs more draws again
MAX_NOISE = 1 << 28


def noise_fed_copy(model: Path) -> Path:
    """A copy of the voice whose noise is a graph input (see ``NoiseFedSession``): reproducible synthesis.

    Each ``RandomNormalLike`` node becomes the first values of an input ``wakebuilder_noise_<k>``, reshaped to
    the node's shape (and scaled, shifted and cast as the node says).
    """
    model_bytes, config_bytes = _voice_bytes(model)
    # The copy is named after the contents, so a changed or different voice of the same name gets its own.
    digest = hashlib.sha256(hashlib.sha256(model_bytes).digest() + hashlib.sha256(config_bytes).digest())
    target = cache_dir() / "piper" / f"{model.stem}-{digest.hexdigest()[:16]}-noisefed.onnx"
    _remove_seeded_copies(model.stem)
    if target.is_file() and Path(str(target) + ".json").is_file():
        return target
    graph = _onnx_graph(model, model_bytes)
    _feed_noise(graph.graph)
    # Synthesis workers of one run (and other runs) may make the same copy at once: each writes its own temporary
    # file and renames it into place, the JSON first, so a model found beside its JSON is whole.
    atomic_write_bytes(str(target) + ".json", config_bytes)
    atomic_write_bytes(target, graph.SerializeToString())
    return target


def _remove_seeded_copies(stem: str) -> None:
    """Delete the voice's ``STEM-<hash>-seed<N>.onnx`` copies that versions before the noise-fed copy made
    (each as large as the voice); nothing reads them now."""
    pattern = re.compile(re.escape(stem) + r"-[0-9a-f]{16}-seed\d+\.onnx(\.json)?")
    for path in (cache_dir() / "piper").glob(f"{glob.escape(stem)}-*-seed*.onnx*"):
        if pattern.fullmatch(path.name):
            path.unlink(missing_ok=True)


def _feed_noise(graph: Any) -> None:
    """Replace each ``RandomNormalLike`` node of ``graph`` by a slice of a new noise input, in place."""
    from onnx import TensorProto, helper

    nodes: list[Any] = []
    count = 0
    for node in graph.node:
        if node.op_type != "RandomNormalLike":
            nodes.append(node)
            continue
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        name, prefix, out = NOISE_INPUT.format(count), f"/wakebuilder/noise_{count}/", node.output[0]
        graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, [f"{name}_length"]))
        graph.initializer.extend([helper.make_tensor(prefix + "start", TensorProto.INT64, [1], [0]),
                                  helper.make_tensor(prefix + "one", TensorProto.INT64, [1], [1])])
        steps = [("Shape", [node.input[0]], "shape", {}), ("Size", [node.input[0]], "size", {}),
                 ("Reshape", [prefix + "size", prefix + "one"], "end", {}),
                 ("Slice", [name, prefix + "start", prefix + "end"], "flat", {}),
                 ("Reshape", [prefix + "flat", prefix + "shape"], "noise", {})]
        for attr, op, default in (("scale", "Mul", 1.0), ("mean", "Add", 0.0)):
            if (value := attrs.get(attr, default)) != default:
                graph.initializer.append(helper.make_tensor(prefix + attr, TensorProto.FLOAT, [], [value]))
                steps.append((op, [prefix + steps[-1][2], prefix + attr], f"with_{attr}", {}))
        if attrs.get("dtype", TensorProto.FLOAT) != TensorProto.FLOAT:
            steps.append(("Cast", [prefix + steps[-1][2]], "cast", {"to": attrs["dtype"]}))
        for index, (op, inputs, output, kwargs) in enumerate(steps):
            last = index == len(steps) - 1
            nodes.append(helper.make_node(op, inputs, [out if last else prefix + output], **kwargs))
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)


class NoiseFedSession:
    """An onnxruntime session of a noise-fed voice that draws the noise from the seed ``reseed`` set.

    Noise is drawn for ``NOISE_PER_INPUT_VALUE`` values per phoneme id; a clip that needs more (a slow voice
    on a long text) is run again with four times as much. Draws of one seed share their first values, so the
    clip is the same as if enough had been drawn at once.
    """

    def __init__(self, session: Any) -> None:
        self.session = session
        prefix = NOISE_INPUT.format("")
        self.noise_inputs = [i.name for i in session.get_inputs() if i.name.startswith(prefix)]
        self.reseed(0)

    def reseed(self, seed: int | tuple[int, ...]) -> None:
        """Draw the next runs' noise from ``seed`` (and the run's number since)."""
        self._seed = (seed,) if isinstance(seed, int) else tuple(seed)
        self._runs = 0

    def run(self, output_names: Any, feed: dict[str, np.ndarray], run_options: Any = None) -> Any:
        from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidArgument, RuntimeException

        seed, self._runs = (*self._seed, self._runs), self._runs + 1
        length = NOISE_PER_INPUT_VALUE * max(int(np.size(v)) for v in feed.values())
        while True:
            noise = {name: np.random.default_rng([*seed, k]).standard_normal(length, dtype=np.float32)
                     for k, name in enumerate(self.noise_inputs)}
            try:
                return self.session.run(output_names, {**feed, **noise}, run_options)
            except (Fail, InvalidArgument, RuntimeException):  # too little noise fails to reshape: draw more
                if length * 4 > MAX_NOISE or not self.noise_inputs:
                    raise
                length *= 4


def _voice_bytes(model: Path) -> tuple[bytes, bytes]:
    """The bytes of a voice's ``.onnx`` and ``.onnx.json``; an unreadable one raises naming it."""
    out = []
    for where in (model, Path(str(model) + ".json")):
        try:
            out.append(where.read_bytes())
        except OSError as exc:
            raise EngineUnavailableError(f"{where}: cannot read the Piper voice ({exc.strerror}); "
                                         "pass the .onnx of a Piper voice with its .onnx.json beside it") from exc
    return out[0], out[1]


def _onnx_graph(model: Path, data: bytes) -> Any:
    """The parsed ONNX model of a voice; a file that is not one raises naming it."""
    import onnx

    try:
        graph = onnx.load_model_from_string(data)
    except Exception as exc:  # protobuf raises its DecodeError, onnx its own errors for odd files
        raise EngineUnavailableError(f"{model}: not a Piper voice model (the ONNX file cannot be read: "
                                     f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); "
                                     "download the voice's .onnx again") from exc
    if not graph.graph.node:
        raise EngineUnavailableError(f"{model}: not a Piper voice model (the ONNX file holds no graph); "
                                     "download the voice's .onnx again")
    return graph
