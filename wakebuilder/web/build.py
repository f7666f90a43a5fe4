"""`wb web MODEL --out DIR`: a self-contained page that runs exported models on the microphone.

The folder holds ``index.html``, ``app.js`` (page logic), ``events.js`` (the
event rule of :mod:`wakebuilder.events` in JavaScript), ``worklet.js`` (an
AudioWorklet that resamples the microphone to 16 kHz and keeps the last window),
``stream.js`` (the streaming scorer of speech-embedding models), ``models/`` (each
``NAME.onnx`` and ``NAME.json``, and for speech-embedding models the streaming
pieces ``NAME.front|stage1|stage2|tail.onnx`` cut from ``NAME.onnx``, see
:mod:`wakebuilder.web.pieces`, checked against it before the page is written), ``ort/`` (ONNX Runtime
Web's WebAssembly build, copied from the npm package that set-up installs) and
``page.json`` (window, threshold, hop, refractory period and smoothing of each
model: each runs at its own calibration's hop, as ``wb detect`` runs it alone, since
its threshold's false accepts per hour hold only there). Nothing is fetched from
the internet when the page runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import sys
from importlib import resources
from pathlib import Path
from typing import Any

from wakebuilder import SAMPLE_RATE, __version__
from wakebuilder.atomic import atomic_directory, atomic_write_json
from wakebuilder.config import StageConfig
from wakebuilder.detect import DetectConfig, load_onnx_detector, threshold_for
from wakebuilder.detector import is_onnx_path, sidecar_path
from wakebuilder.errors import ConfigError, ModelFileError, WebRuntimeMissingError
from wakebuilder.streaming import check_stream_settings, hop_samples

ORT_WEB_VERSION = "1.31.1"  # pinned; bin/setup installs exactly this from the npm registry
ORT_WEB_FILES = ("ort.wasm.min.mjs", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_ASSETS = ("index.html", "app.js", "events.js", "stream.js", "worklet.js", "style.css")

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class WebConfig(StageConfig):
    """Streaming settings of the page; None takes the model's calibration settings (or wb detect's)."""

    threshold: float | None = None
    hop_s: float | None = None
    refractory_s: float | None = None
    smooth: int | None = None
    stream: bool = True  # stream speech-embedding models (the page's path=full URL parameter also turns it off)

    def __post_init__(self) -> None:
        if self.hop_s is not None:
            hop_samples(self.hop_s)
        if self.threshold is not None and not 0 < self.threshold < 1:
            raise ConfigError(f"--threshold {self.threshold}: must be in (0, 1)")
        check_stream_settings(smooth=self.smooth, refractory_s=self.refractory_s)


def ort_web_package() -> Path:
    """Where set-up installs onnxruntime-web (``WB_ORT_WEB_DIR`` overrides)."""
    override = os.environ.get("WB_ORT_WEB_DIR")
    if override:
        return Path(override)
    return Path(sys.prefix) / "share" / "onnxruntime-web" / "node_modules" / "onnxruntime-web"


def find_ort_web(package: Path | None = None) -> tuple[Path, str]:
    """The ``dist`` folder and version of the installed onnxruntime-web; a clear error if missing."""
    root = package or ort_web_package()
    dist = root / "dist"
    missing = [name for name in ORT_WEB_FILES if not (dist / name).is_file()]
    if missing:
        raise WebRuntimeMissingError(
            f"{dist / missing[0]}: ONNX Runtime Web is not installed; run bin/setup (it runs "
            f"npm install onnxruntime-web@{ORT_WEB_VERSION} into .venv/share/onnxruntime-web) "
            "or set WB_ORT_WEB_DIR to an onnxruntime-web package folder"
        )
    try:
        version = str(json.loads((root / "package.json").read_text(encoding="utf-8"))["version"])
    except (OSError, ValueError, KeyError):
        version = "unknown"
    return dist, version


def resolve_model(path: str | os.PathLike[str]) -> Path:
    """An exported ``NAME.onnx``, or the export directory holding exactly one."""
    where = Path(path)
    if where.is_dir():
        found = sorted(p for p in where.iterdir() if is_onnx_path(p) and not _is_head(p))
        if len(found) != 1:
            raise ModelFileError(f"{where}: expected one exported NAME.onnx (from wb export), found {len(found)}")
        return found[0]
    if not is_onnx_path(where) or _is_head(where):
        raise ModelFileError(f"{where}: expected an end-to-end NAME.onnx from wb export (not the head file)")
    return where


def _is_head(path: Path) -> bool:
    """Whether ``path`` is the head-only ``NAME.head.onnx`` of an export (in any case, as ``is_onnx_path``)."""
    return path.name.lower().endswith(".head.onnx")


def model_entry(onnx_path: Path, config: WebConfig) -> dict[str, Any]:
    """One model's part of ``page.json``: file names, window and the streaming settings it was calibrated at.

    The hop is the model's own (or ``--hop-s``), never another model's: its threshold's false accepts per hour
    were counted at that hop.
    """
    detector = load_onnx_detector(onnx_path)  # refuses a model of another sample rate than the page feeds
    info = detector.info if isinstance(detector.info, dict) else {}
    if info.get("verify") is not None:
        log.warning("%s: the page does not verify detections with a speech recognizer as wb detect does for this "
                    "model; it shows the detector's own at its calibrated threshold (wb detect --no-verify)",
                    onnx_path)
    settings = DetectConfig(hop_s=config.hop_s, smooth=config.smooth,
                            refractory_s=config.refractory_s).resolved(detector)
    return {
        "name": detector.name, "wake_word": info.get("wake_word") or detector.name,
        "onnx": f"models/{onnx_path.name}", "json": f"models/{onnx_path.stem}.json",
        "window_samples": int(detector.window_samples),
        "threshold": float(threshold_for(detector, DetectConfig(threshold=config.threshold))),
        "hop_s": float(settings.hop_s), "hop_samples": hop_samples(settings.hop_s),
        "refractory_s": float(settings.refractory_s), "smooth": int(settings.smooth),
    }


def page_config(models: list[dict[str, Any]], ort_version: str) -> dict[str, Any]:
    """``page.json``: the models (each with its own hop), versions."""
    return {
        "wakebuilder_version": __version__, "onnxruntime_web_version": ort_version,
        "sample_rate": SAMPLE_RATE, "models": models,
    }


def add_stream(entry: dict[str, Any], onnx_path: Path, models_dir: Path) -> None:
    """Write the streaming pieces of a speech-embedding model and describe them in its ``page.json`` entry.

    Other backbones, and a hop that is not a whole number of mel frames, keep the end-to-end path (for this
    model only: the others stream at their own hops). The pieces must reproduce ``NAME.onnx`` at the entry's
    hop on test audio (digital silence included) within 1e-4.
    """
    from wakebuilder.web.pieces import stream_pieces, write_pieces
    from wakebuilder.web.stream import check_stream_parity, streamable

    pieces, hop = stream_pieces(onnx_path), entry["hop_samples"]
    if not streamable(pieces, hop):
        return
    diff = check_stream_parity(onnx_path, pieces, hop)
    files = write_pieces(pieces, models_dir, onnx_path.stem)
    entry["stream"] = {"files": {k: f"models/{v}" for k, v in files.items()}, **pieces.geometry(),
                       "parity_max_abs_diff": diff}


def build_web_page(
    models: list[str | os.PathLike[str]],
    out_dir: str | os.PathLike[str],
    *,
    config: WebConfig | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write the page folder for one or more exported models; returns a summary."""
    if not models:
        raise ConfigError("wb web: give at least one exported NAME.onnx (or its export directory)")
    config = config or WebConfig()
    paths = [resolve_model(m) for m in models]
    dist, ort_version = find_ort_web()
    names = [p.stem for p in paths]
    if len(set(names)) != len(names):
        raise ConfigError(f"wb web: two models share a name ({', '.join(names)}); export them with --name")
    entries = [model_entry(p, config) for p in paths]
    target = Path(out_dir)
    with atomic_directory(target, overwrite=overwrite) as work:
        assets = resources.files("wakebuilder.web") / "assets"
        for name in PAGE_ASSETS:
            (work / name).write_bytes((assets / name).read_bytes())
        (work / "models").mkdir(exist_ok=True)
        for path in paths:
            shutil.copyfile(path, work / "models" / path.name)
            sidecar, copy = sidecar_path(path), work / "models" / f"{path.stem}.json"  # the name page.json gives
            if sidecar.is_file():
                shutil.copyfile(sidecar, copy)
            else:
                atomic_write_json(copy, {"note": "no sidecar JSON was exported"})
        (work / "ort").mkdir(exist_ok=True)
        for name in ORT_WEB_FILES:
            shutil.copyfile(dist / name, work / "ort" / name)
        (work / "ort" / "NOTICE.txt").write_text(
            f"onnxruntime-web {ort_version} (https://github.com/microsoft/onnxruntime), MIT licence, "
            "copyright Microsoft Corporation; installed from the npm registry by wakebuilder's bin/setup.\n",
            encoding="utf-8",
        )
        if config.stream:
            for path, entry in zip(paths, entries, strict=True):
                add_stream(entry, path, work / "models")
        page = page_config(entries, ort_version)
        atomic_write_json(work / "page.json", page)
    return {"out": str(target), "index": str(target / "index.html"), **page}
