"""`wb fuse`: exported detectors of one phrase, of other backbones and windows, as one exported detector.

The fused ``NAME.onnx`` takes the longest member's window; each member sees the centred slice of it that is its
own window, and the fused probability is the weighted mean of the members' calibrated probabilities. Its threshold
is the weighted mean of theirs (or ``--threshold``). On the real development set (research/backbone_fusion.py) the
recipe's word-embedding (1.5 s) and speech-embedding (2.5 s) models of one word, their traces aligned on their
windows' centres and averaged, found 197 of 234 clips at one false accept per model against 186 and 169 alone; at
the mean of their calibrated thresholds all 18 fused models stayed within one false accept on ~50 min of real
speech, music and noise. ``wb detect``, ``wb eval`` and ``wb web`` take the result as any exported detector.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE, __version__
from wakebuilder.atomic import atomic_directory, atomic_write_bytes, atomic_write_json, refuse_existing
from wakebuilder.categories import refuse_repeated
from wakebuilder.detector import Detector, load_onnx_detector, sidecar_path
from wakebuilder.errors import ConfigError, ModelFileError
from wakebuilder.modeldir import refuse_out_holding, short_repr
from wakebuilder.stream_settings import setting_problem, stream_defaults
from wakebuilder.values import finite_number

THRESHOLD_RULE = "weighted mean of the members' calibrated thresholds"
COMBINE = "weighted mean of the members' calibrated probabilities, each on the centred slice of its window"
MIN_OPSET = 10  # Slice with its bounds as inputs


@dataclasses.dataclass(frozen=True, kw_only=True)
class FuseResult:
    """The fused files (``onnx``, ``json``), its window, threshold and the parity figure."""

    out: str
    name: str
    files: dict[str, str]
    window_samples: int
    threshold: float
    threshold_rule: str
    weights: list[float]
    parity_max_abs_diff: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``wb fuse --json``)."""
        return dataclasses.asdict(self)


def fuse_detectors(
    onnx_paths: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *, name: str | None = None,
    weights: Sequence[float] | None = None, threshold: float | None = None, overwrite: bool = False,
) -> FuseResult:
    """Write ``out_dir/NAME.onnx`` and ``NAME.json``: the weighted mean of exported detectors ``onnx_paths``.

    Raises:
        ConfigError: fewer than two members, one given twice, weights not one positive number per member, a
            threshold outside 0..1, a bad ``name``, an ``out_dir`` holding a member.
        ArtifactExistsError: ``out_dir`` exists (without ``overwrite``).
        ModelFileError: a member that is head-only, not calibrated (without ``threshold``), of another phrase or
            scanned otherwise (hop_s, smooth), whose opset cannot be converted; the fused graph disagreeing with
            its members (parity).
    """
    from wakebuilder.export import PARITY_TOLERANCE, check_name, default_name, onnx_metadata

    paths = [Path(p) for p in onnx_paths]
    if len(paths) < 2:
        raise ConfigError(f"wb fuse: give at least two exported detectors (--model NAME.onnx), got {len(paths)}")
    refuse_repeated(onnx_paths, option="--model", fix="most likely meant as another detector; fuse distinct "
                    "detectors, and give a member more weight with --weight")
    if name is not None:
        check_name(name)
    shares = _normalised(weights, len(paths))
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise ConfigError(f"wb fuse --threshold {threshold}: must be between 0 and 1")
    refuse_out_holding(out_dir, [("--model", p) for p in paths])
    refuse_existing(out_dir, overwrite=overwrite)
    members, protos, digests = map(list, zip(*(_member(p, need_threshold=threshold is None) for p in paths)))
    wake_word = _shared_wake_word(members)
    settings = _shared_settings(members)
    window = max(m.window_samples for m in members)
    slices = [((window - m.window_samples) // 2, (window - m.window_samples) // 2 + m.window_samples) for m in members]
    rule = "given" if threshold is not None else THRESHOLD_RULE
    if threshold is None:
        threshold = float(sum(w * float(m.threshold) for w, m in zip(shares, members)))
    info = _describe(members, digests, shares, slices, wake_word=wake_word, settings=settings, threshold=threshold,
                     rule=rule, window=window)
    asked = [m.info.get("verify") for m in members]
    if asked[0] is not None and all(a == asked[0] for a in asked):  # every member's detections verified alike
        info["verify"] = asked[0]
    model = fused_model(paths, protos, slices, shares, window)
    for key, value in onnx_metadata(info).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, str(value)
    name = name or default_name(wake_word)
    target = Path(out_dir)
    with atomic_directory(target, overwrite=overwrite) as work:
        atomic_write_bytes(work / f"{name}.onnx", model.SerializeToString())
        diff = _check_parity(work / f"{name}.onnx", members, slices, shares, window, tolerance=PARITY_TOLERANCE)
        atomic_write_json(work / f"{name}.json", info | {"parity_max_abs_diff": diff})
    files = {"onnx": str(target / f"{name}.onnx"), "json": str(target / f"{name}.json")}
    return FuseResult(out=str(target), name=name, files=files, window_samples=window, threshold=threshold,
                      threshold_rule=rule, weights=shares, parity_max_abs_diff=diff)


def _normalised(weights: Sequence[float] | None, n: int) -> list[float]:
    """One positive finite weight per member (all 1 when none are given), summing to 1."""
    given = list(weights) if weights else [1.0] * n
    if len(given) != n:
        raise ConfigError(f"--weight: {len(given)} given for {n} detectors; give one per --model, in their order")
    for weight in given:
        if not (finite_number(weight) and weight > 0):
            raise ConfigError(f"--weight {short_repr(weight)}: must be a positive finite number")
    return [float(w) / float(sum(given)) for w in given]


def _member(path: Path, *, need_threshold: bool) -> tuple[Detector, Any, str]:
    """An exported end-to-end detector (``load_onnx_detector`` refuses a head-only one, naming it), its ONNX graph
    and its file's sha256, all from one read of the file (an AST export is hundreds of MB; its session, the fused
    graph and NAME.json each read it before). A graph with external data is loaded with them, its session from its
    path, where onnxruntime finds them."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    if path.is_dir():
        raise ModelFileError(f"{path}: a folder, not an exported NAME.onnx; give the .onnx file wb export wrote "
                             "(export a model directory first)")
    if not path.is_file():
        raise ModelFileError(f"{path}: ONNX model not found")
    raw = path.read_bytes()
    try:
        proto = onnx.load_model_from_string(raw)
    except Exception as exc:  # protobuf's DecodeError and others: not an ONNX file
        raise ModelFileError(f"{path}: not a loadable ONNX model "
                             f"({(str(exc).splitlines() or [type(exc).__name__])[0]})") from exc
    external = any(uses_external_data(t) for t in proto.graph.initializer)
    if external:
        load_external_data_for_model(proto, str(path.parent))
    detector = load_onnx_detector(path, model=None if external else raw)
    if need_threshold and detector.threshold is None:
        raise ModelFileError(f"{path}: not calibrated (no calibrated threshold in {sidecar_path(path).name} or its "
                             "metadata); export a calibrated model (wb calibrate, then wb export), or pass --threshold")
    return detector, proto, hashlib.sha256(raw).hexdigest()


def _source(member: Detector) -> Path:
    """The file a member's recorded facts come from: its NAME.json, else the ONNX file (its metadata)."""
    sidecar = sidecar_path(Path(member.path or member.name))
    return sidecar if sidecar.is_file() else Path(member.path or member.name)


def _shared_wake_word(members: list[Detector]) -> str | None:
    """The phrase the members name (case and punctuation aside, as wb ensemble compares them); one that names
    none is taken as of that phrase."""
    from wakebuilder.data.phonetics import plain_text

    named = [(m, str(m.info.get("wake_word"))) for m in members if m.info.get("wake_word")]
    for member, word in named[1:]:
        if plain_text(word) != plain_text(named[0][1]):
            raise ModelFileError(f"{_source(member)}: wake word {word!r}, not {named[0][1]!r} of {named[0][0].path}; "
                                 "fuse detectors of one phrase")
    return named[0][1] if named else None


def _shared_settings(members: list[Detector]) -> dict[str, Any]:
    """The hop and smoothing the members were calibrated with, which must agree (the fused model is scanned one
    way); the longest refractory period of theirs (one that records none: its window, as wb detect runs it)."""
    settings = []
    for member in members:
        theirs = stream_defaults(member.window_samples) | member.settings
        for key, value in theirs.items():
            if problem := setting_problem(key, value):
                raise ModelFileError(f"{_source(member)}: calibration_config.{problem}; re-run wb export")
        settings.append(theirs)
    for member, theirs in zip(members[1:], settings[1:]):
        for key in ("hop_s", "smooth"):
            if theirs[key] != settings[0][key]:
                raise ModelFileError(f"{_source(member)}: calibrated with {key} {theirs[key]!r}, {members[0].path} "
                                     f"with {settings[0][key]!r}; fuse detectors calibrated alike")
    return settings[0] | {"refractory_s": max(s["refractory_s"] for s in settings)}


def _describe(members: list[Detector], digests: list[str], shares: list[float], slices: list[tuple[int, int]], *,
              wake_word: str | None, settings: dict[str, Any], threshold: float, rule: str,
              window: int) -> dict[str, Any]:
    """``NAME.json``: wb export's sidecar where it applies, and the members in ``fused`` (``digests``: their files'
    sha256)."""
    records = []
    for member, digest, share, (start, end) in zip(members, digests, shares, slices):
        backbone = member.info.get("backbone")
        records.append({
            "file": Path(member.path or member.name).name,
            "sha256": digest,
            "backbone": backbone.get("name") if isinstance(backbone, dict) else member.info.get("backbone_id"),
            "window_s": member.info.get("window_s") or member.window_samples / SAMPLE_RATE,
            "window_samples": member.window_samples, "threshold": member.threshold, "weight": share,
            "slice": [start, end],
        })
    return {
        "wake_word": wake_word, "threshold": threshold, "threshold_rule": rule, "calibrated": True,
        "metrics": None, "fa_per_hour": None, "frr_at_fa": None, "calibration_config": settings,
        "backbone": {"name": "fused", "members": [r["backbone"] for r in records]},
        "backbone_id": "fused:" + "+".join(str(r["backbone"]) for r in records), "backbone_revision": "",
        "window_s": window / SAMPLE_RATE, "sample_rate": SAMPLE_RATE, "wakebuilder_version": __version__,
        "input": {"name": "waveform", "shape": ["batch", window], "dtype": "float32", "range": [-1.0, 1.0],
                  "sample_rate": SAMPLE_RATE},
        "output": {"name": "probability", "shape": ["batch"], "meaning": "calibrated wake-word probability"},
        "fused": {"combine": COMBINE, "members": records},
    }


def fused_model(paths: list[Path], protos: list[Any], slices: list[tuple[int, int]], shares: list[float],
                window: int) -> Any:
    """One ONNX graph of the members' graphs ``protos`` (of the files ``paths``, named in errors): per member a Slice
    of ``waveform`` on axis 1 into its graph (names prefixed ``m{i}_``), its output flattened to ``(batch,)`` and
    weighted, and their Sum as ``probability``; one opset (the highest, members below it converted) and the
    highest IR version."""
    import onnx
    from onnx import compose, helper, numpy_helper

    opset = max(MIN_OPSET, *(_default_opset(m) for m in protos))
    nodes, initializers, value_info, functions, weighted = [], [], [], [], []
    domains: dict[str, int] = {}
    initializers.append(numpy_helper.from_array(np.array([1], np.int64), "wb_axis1"))
    initializers.append(numpy_helper.from_array(np.array([-1], np.int64), "wb_flat"))
    for i, (path, proto, (start, end), share) in enumerate(zip(paths, protos, slices, shares)):
        prefix = f"m{i}_"
        graph = compose.add_prefix(_at_opset(proto, opset, path), prefix).graph
        inputs = [x for x in graph.input if x.name not in {t.name for t in graph.initializer}]
        if len(inputs) != 1 or len(graph.output) != 1:
            raise ModelFileError(f"{path}: {len(inputs)} inputs and {len(graph.output)} outputs; a detector takes "
                                 "one waveform and gives one probability (wb export's NAME.onnx)")
        initializers += [numpy_helper.from_array(np.array([start], np.int64), f"{prefix}start"),
                         numpy_helper.from_array(np.array([end], np.int64), f"{prefix}end"),
                         numpy_helper.from_array(np.array(share, np.float32), f"{prefix}weight"), *graph.initializer]
        nodes.append(helper.make_node("Slice", ["waveform", f"{prefix}start", f"{prefix}end", "wb_axis1"],
                                      [inputs[0].name], name=f"{prefix}slice"))
        nodes += list(graph.node)
        nodes += [helper.make_node("Reshape", [graph.output[0].name, "wb_flat"], [f"{prefix}flat"]),
                  helper.make_node("Mul", [f"{prefix}flat", f"{prefix}weight"], [f"{prefix}weighted"])]
        weighted.append(f"{prefix}weighted")
        value_info += list(graph.value_info)
        functions += list(proto.functions)
        for entry in proto.opset_import:
            domain = "" if entry.domain == "ai.onnx" else entry.domain
            domains[domain] = max(domains.get(domain, 0), entry.version)
    nodes.append(helper.make_node("Sum", weighted, ["probability"], name="wb_weighted_mean"))
    domains[""] = opset
    graph = helper.make_graph(
        nodes, "wakebuilder_fused",
        [helper.make_tensor_value_info("waveform", onnx.TensorProto.FLOAT, ["batch", window])],
        [helper.make_tensor_value_info("probability", onnx.TensorProto.FLOAT, ["batch"])],
        initializer=initializers, value_info=value_info)
    imports = [helper.make_opsetid(domain, version) for domain, version in sorted(domains.items())]
    model = helper.make_model(graph, opset_imports=imports, functions=functions)
    model.ir_version = max(helper.find_min_ir_version_for(imports), *(p.ir_version for p in protos))
    try:
        onnx.checker.check_model(model, full_check=True)
    except Exception as exc:  # onnx's checker and shape inference raise several exception types
        raise ModelFileError(f"{', '.join(map(str, paths))}: their fused graph is not a valid ONNX model "
                             f"({str(exc).splitlines()[0]})") from exc
    return model


def _default_opset(proto: Any) -> int:
    return max((e.version for e in proto.opset_import if e.domain in ("", "ai.onnx")), default=1)


def _at_opset(proto: Any, opset: int, path: Path) -> Any:
    """``proto`` at the default domain's ``opset`` (onnx's version converter), so one opset import covers all."""
    from onnx import version_converter

    if _default_opset(proto) == opset:
        return proto
    try:
        return version_converter.convert_version(proto, opset)
    except Exception as exc:  # the converter raises several exception types (no adapter, failed inference)
        raise ModelFileError(f"{path}: its opset {_default_opset(proto)} cannot be converted to opset {opset} of "
                             f"another member ({str(exc).splitlines()[0]}); export it at opset {opset}") from exc


def _check_parity(onnx_path: Path, members: list[Detector], slices: list[tuple[int, int]], shares: list[float],
                  window: int, *, tolerance: float) -> float:
    """The fused graph against the weighted mean of the members' own scores on their slices of export's fixed
    waveforms (a batch, and one window alone: the batch axis is dynamic)."""
    from wakebuilder.export import parity_inputs

    waves = parity_inputs(window)
    expected = sum(w * m.scorer(waves[:, a:b]).astype(np.float64) for m, (a, b), w in zip(members, slices, shares))
    fused = load_onnx_detector(onnx_path)
    got = np.r_[fused.scorer(waves), fused.scorer(waves[:1])]
    diff = float(np.max(np.abs(got - np.r_[expected, expected[:1]])))
    if not math.isfinite(diff) or diff > tolerance:
        raise ModelFileError(f"{onnx_path.name}: the fused graph differs from its members' weighted mean by {diff:.3g} "
                             f"(tolerance {tolerance:g}); report this with the members' files")
    return diff
