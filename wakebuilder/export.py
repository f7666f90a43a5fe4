"""`wb export`: a calibrated model as .pt, .json, an end-to-end .onnx and a head .onnx.

``NAME.onnx`` maps raw 16 kHz waveforms ``(batch, window_samples)`` float32 in
[-1, 1] to the calibrated wake-word probability ``(batch,)``, with the front
end inside the graph. ``NAME.head.onnx`` maps cached embedding sequences
``(batch, T, D)`` to the same probability. Both are checked against the
torch/numpy pipeline with onnxruntime before the export directory is renamed
into place; a failed check leaves only ``DIR.incomplete``, which the next export empties.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wakebuilder import SAMPLE_RATE, __version__
from wakebuilder.atomic import atomic_directory, atomic_write_bytes, atomic_write_json, refuse_existing
from wakebuilder.scoring import apply_platt, head_logits
from wakebuilder.errors import ConfigError, ExportParityError
from wakebuilder.backbones.onnx_compose import torch_to_onnx
from wakebuilder.modeldir import LoadedModel, load_model, refuse_out_holding
from wakebuilder.stream_settings import calibration_settings

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4


class CalibratedHead(nn.Module):
    """Head + Platt mapping: ``(B, T, D)`` sequences -> probabilities ``(B,)``."""

    def __init__(self, head: nn.Module, temperature: float, bias: float) -> None:
        super().__init__()
        self.head = head
        self.register_buffer("temperature", torch.tensor(float(temperature)))
        self.register_buffer("bias", torch.tensor(float(bias)))

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid((self.head(sequence) - self.bias) / self.temperature)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExportResult:
    """The exported files (``pt``, ``json``, ``onnx``, ``head_onnx``), their parity figures and calibration."""

    out: str
    name: str
    files: dict[str, str]
    parity_max_abs_diff: dict[str, float]
    threshold: float
    temperature: float
    bias: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (``wb export --json``)."""
        return dataclasses.asdict(self)


def default_name(wake_word: str | None) -> str:
    """A file-name-safe name from the wake word (``hey_nova``)."""
    slug = re.sub(r"[^a-z0-9]+", "_", (wake_word or "").lower()).strip("_")
    return slug or "wakeword"


def check_name(name: str) -> str:
    """``name`` when it is a plain file stem: the export's files must land inside ``--out``.

    Raises:
        ConfigError: a path (``/``, ``\\``), ``.``/``..``, an empty or a hidden name, or one ending in ``.head``.
    """
    if not name or "/" in name or "\\" in name or name.startswith(".") or "\0" in name:
        raise ConfigError(
            f"--name {name!r}: must be a plain file name without folders (such as hey_nova); "
            "the files are written inside --out"
        )
    if name.lower().endswith(".head"):  # NAME.onnx would read as the head-only NAME.head.onnx of another export
        raise ConfigError(f"--name {name!r}: must not end in .head (the head-only model is NAME.head.onnx); "
                          f"use {name[:-5] or 'another name'}")
    return name


def calibration_of(model: LoadedModel) -> dict[str, float]:
    """Threshold, temperature and bias (identity mapping and 0.5 before ``wb calibrate``)."""
    if model.calibration is None:
        log.warning("%s has no calibration.json: exporting with threshold 0.5; run wb calibrate", model.path)
        return {"threshold": 0.5, "temperature": 1.0, "bias": 0.0}
    cal = model.calibration
    return {k: float(cal[k]) for k in ("threshold", "temperature", "bias")}


def parity_inputs(window_samples: int, n: int = 3) -> np.ndarray:
    """Fixed synthetic waveforms: a tone, a chirp and noise (deterministic)."""
    t = np.arange(window_samples) / SAMPLE_RATE
    rng = np.random.default_rng(1234)
    waves = [0.5 * np.sin(2 * np.pi * 440 * t), 0.4 * np.sin(2 * np.pi * (200 + 900 * t) * t)]
    waves.append(0.1 * rng.standard_normal(window_samples))
    return np.stack(waves[:n]).astype(np.float32)


def check_parity(onnx_path: Path, inputs: np.ndarray, expected: np.ndarray, *, tolerance: float) -> float:
    """Run onnxruntime on ``inputs``; raise ``ExportParityError`` if it differs from ``expected``."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    want = np.asarray(expected, dtype=np.float64).reshape(-1)
    got = session.run(None, {name: inputs})[0].reshape(-1)
    single = session.run(None, {name: inputs[:1]})[0].reshape(-1)  # another batch size: dynamic axis
    diff = float(max(np.max(np.abs(got - want)), np.max(np.abs(single - want[:1]))))
    if not np.isfinite(diff) or diff > tolerance:
        raise ExportParityError(
            f"{onnx_path.name}: onnxruntime differs from torch by {diff:.3g} (tolerance {tolerance:g}); "
            "report this with the model directory"
        )
    return diff


def add_metadata(path: Path, props: dict[str, Any]) -> None:
    """Write ``metadata_props`` into an ONNX file (values as strings)."""
    import onnx

    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, str(value)
    atomic_write_bytes(path, proto.SerializeToString())


def describe(model: LoadedModel, cal: dict[str, float], backbone: Any) -> dict[str, Any]:
    """The ``NAME.json`` sidecar: everything a user of the exported files needs."""
    identity = model.backbone
    return {
        "wake_word": model.meta.get("wake_word"),
        "threshold": cal["threshold"], "temperature": cal["temperature"], "bias": cal["bias"],
        "calibrated": model.calibration is not None,
        "metrics": (model.calibration or {}).get("metrics"),
        "fa_per_hour": (model.calibration or {}).get("fa_per_hour"),
        # what the calibration stream's length can show (None for models calibrated before it was recorded)
        "fa_per_hour_upper95": (model.calibration or {}).get("fa_per_hour_upper95"),
        "stream_hours": (model.calibration or {}).get("stream_hours"),
        "frr_at_fa": (model.calibration or {}).get("frr_at_fa"),
        "calibration_config": (model.calibration or {}).get("config"),
        "fit": model.meta.get("fit"), "head": model.meta.get("head"),
        "backbone": identity, "backbone_id": identity.get("checkpoint", identity.get("name")),
        "backbone_revision": identity.get("revision"), "window_s": identity.get("window_s"),
        "store_fingerprint": model.meta.get("store_fingerprint"),
        "sample_rate": SAMPLE_RATE, "wakebuilder_version": __version__,
        "input": {
            "name": "waveform", "shape": ["batch", int(backbone.window_samples)], "dtype": "float32",
            "range": [-1.0, 1.0], "sample_rate": SAMPLE_RATE,
        },
        "output": {"name": "probability", "shape": ["batch"], "meaning": "calibrated wake-word probability"},
        "head_input": {"shape": ["batch", int(backbone.seq_len), int(backbone.dim)], "dtype": "float32"},
    }


def onnx_metadata(info: dict[str, Any]) -> dict[str, Any]:
    """The subset of the sidecar stored inside each ONNX file."""
    return {
        "wakebuilder_version": info["wakebuilder_version"], "wake_word": info["wake_word"] or "",
        "backbone_id": info["backbone_id"], "backbone_revision": info["backbone_revision"],
        "threshold": info["threshold"], "calibrated": str(info["calibrated"]).lower(),
        "sample_rate": info["sample_rate"], "window_s": info["window_s"],
        "window_samples": info["input"]["shape"][1],
    }


def export_model(
    model_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    name: str | None = None,
    overwrite: bool = False,
    tolerance: float = PARITY_TOLERANCE,
    verify: bool = False,
) -> ExportResult:
    """Export a model directory; returns a summary with the file paths and parity figures.

    ``verify``: ``NAME.json`` asks for speech recognizers to check each detection (``verify.record``), which
    ``wb detect`` and ``wb eval`` then do unless ``--no-verify``.

    Raises:
        ArtifactExistsError: ``out_dir`` exists (without ``overwrite``), checked first.
        ModelFileError: a model file is missing or corrupt, or its calibration ``config`` is one wb detect would
            refuse (``stream_settings.calibration_settings``), checked before anything is written.
    """
    from wakebuilder.backbones import backbone_from_identity

    if name is not None:
        check_name(name)
    # the export replaces out_dir (--overwrite): never the model it exports, nor a folder holding it
    refuse_out_holding(out_dir, [("the model directory", model_dir)],
                       instead=Path(os.path.realpath(model_dir)).parent / "export")
    refuse_existing(out_dir, overwrite=overwrite)  # before the model's warnings and the backbone's load
    model = load_model(model_dir)
    name = name or default_name(model.meta.get("wake_word"))
    cal = calibration_of(model)
    calibration_settings(model)  # NAME.json carries the config: a detector of the export scans as calibrated
    backbone = backbone_from_identity(model.backbone, device="cpu", dtype="fp32")
    info = describe(model, cal, backbone)
    if verify:
        from wakebuilder.verify import record

        info["verify"] = record()
    calibrated = CalibratedHead(model.head.cpu().eval(), cal["temperature"], cal["bias"]).eval()
    target = Path(out_dir)
    with atomic_directory(target, overwrite=overwrite) as work:
        parity = _write_files(work, name, model, calibrated, backbone, info, cal, tolerance)
    files = {kind: str(target / f"{name}{suffix}") for kind, suffix in _SUFFIXES.items()}
    return ExportResult(out=str(target), name=name, files=files, parity_max_abs_diff=parity, **cal)


_SUFFIXES = {"pt": ".pt", "json": ".json", "onnx": ".onnx", "head_onnx": ".head.onnx"}


def _write_files(
    work: Path, name: str, model: LoadedModel, calibrated: CalibratedHead, backbone: Any,
    info: dict[str, Any], cal: dict[str, float], tolerance: float,
) -> dict[str, float]:
    meta = onnx_metadata(info)
    seq_example = torch.from_numpy(np.random.default_rng(0).standard_normal(
        (3, backbone.seq_len, backbone.dim)).astype(np.float32))
    head_path = torch_to_onnx(calibrated, seq_example, work / f"{name}.head.onnx", input_name="sequence")
    add_metadata(head_path, meta)
    with torch.no_grad():
        expected_head = calibrated(seq_example).numpy()
    parity = {"head": check_parity(head_path, seq_example.numpy(), expected_head, tolerance=tolerance)}
    waves = parity_inputs(backbone.window_samples)
    e2e_path = work / f"{name}.onnx"
    backbone.end_to_end_onnx(calibrated, head_path, e2e_path, example=waves)
    add_metadata(e2e_path, meta)
    _, sequence = backbone.embed(waves)
    expected = apply_platt(head_logits(model.head, sequence), cal["temperature"], cal["bias"])
    parity["end_to_end"] = check_parity(e2e_path, waves, expected, tolerance=tolerance)
    state = {k: v.detach().cpu().clone() for k, v in model.head.state_dict().items()}
    payload = {"state_dict": state, "head_config": model.meta["head"], "calibration": cal, "info": info}
    torch.save(payload, work / f"{name}.pt")
    atomic_write_json(work / f"{name}.json", info | {"parity_max_abs_diff": parity})
    return parity
