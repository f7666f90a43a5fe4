"""Real-time factor of streaming detection with the exported end-to-end ONNX on CPU.

For each backbone (speech-embedding; word-embedding, the quickstart's default, where it is installed; a random AST
of the base size, 768 wide and 12 layers, at a 1.28 s window), a random head is saved as a model directory, exported
with ``wb export`` (parity-checked), and ``wb detect``'s code path
(``load_detector`` + ``detect_waveform``) scans deterministic synthetic audio at
hop 0.1 s. RTF = seconds of audio per second of wall time (above 1 keeps up with
live audio). onnxruntime threads: 1 and its default.

Usage: .venv/bin/python benchmarks/detect_rtf.py [--se-seconds 60] [--we-seconds 30] [--ast-seconds 10] [--skip-ast]
Writes benchmarks/results/detect_rtf.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "detect_rtf.json"


def synthetic_audio(seconds: float, seed: int = 0) -> np.ndarray:
    """Tones and noise bursts, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    audio = 0.2 * np.sin(2 * np.pi * (300 + 200 * np.sin(0.5 * t)) * t) + 0.05 * rng.standard_normal(t.size)
    return audio.astype(np.float32)


def export_random(backbone_spec: str, root: Path, window_s: float | None = None) -> tuple[Path, float]:
    """Model directory with a random head over ``backbone_spec``, exported; returns (onnx, export seconds)."""
    import torch

    from wakebuilder.backbones import load_backbone
    from wakebuilder.export import export_model
    from wakebuilder.modeldir import save_model
    from wakebuilder.train.head import HeadConfig, WakeHead

    backbone = load_backbone(backbone_spec, device="cpu", dtype="fp32", window_s=window_s)
    torch.manual_seed(0)
    head = WakeHead(HeadConfig(input_dim=backbone.dim, seq_len=backbone.seq_len)).eval()
    meta = {"backbone": backbone.identity, "store_fingerprint": "benchmark", "wake_word": "bench", "fit": {}}
    split = {"seed": 0, "val_fraction": 0.2, "train_groups": [], "val_groups": []}
    model = save_model(root / f"model-{backbone.name}-{backbone.window_samples}", head, meta=meta, split=split)
    start = time.perf_counter()
    summary = export_model(model, root / f"export-{backbone.name}-{backbone.window_samples}", name="bench")
    return Path(summary.files["onnx"]), time.perf_counter() - start


def random_base_ast(root: Path) -> str:
    """A random AST with the base model's geometry at 128 frames (1.28 s), saved offline."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(0)
    path = root / "ast-base-random"
    ASTModel(ASTConfig(max_length=128)).eval().save_pretrained(path)
    ASTFeatureExtractor(max_length=128).save_pretrained(path)
    return str(path)


def measure(onnx_path: Path, audio: np.ndarray, threads: int) -> dict:
    from wakebuilder.detect import DetectConfig, detect_waveform, load_detector

    detector = load_detector(onnx_path, threads=threads)
    config = DetectConfig(hop_s=0.1, threshold=0.5)  # a random, uncalibrated head
    detect_waveform(detector, audio[: 16000 * 3], config)  # warm-up
    start = time.perf_counter()
    detect_waveform(detector, audio, config)
    wall = time.perf_counter() - start
    seconds = audio.size / 16000
    return {"audio_s": seconds, "wall_s": round(wall, 3), "rtf": round(seconds / wall, 2),
            "windows_per_s": round((seconds / 0.1) / wall, 1), "ort_threads": threads or "default",
            "window_samples": detector.window_samples}


def word_embedding_installed() -> bool:
    from wakebuilder.backbones.word_embedding import model_path
    from wakebuilder.errors import BackboneError

    try:
        model_path()
    except BackboneError as exc:
        print(f"word-embedding skipped: {exc}")
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--se-seconds", type=float, default=60.0)
    parser.add_argument("--we-seconds", type=float, default=30.0)
    parser.add_argument("--ast-seconds", type=float, default=10.0)
    parser.add_argument("--skip-ast", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    rows = []
    with tempfile.TemporaryDirectory(prefix="wb-detect-rtf-") as tmp:
        root = Path(tmp)
        plans = [("speech-embedding", "speech-embedding", args.se_seconds)]
        if word_embedding_installed():
            plans.append(("word-embedding", "word-embedding", args.we_seconds))
        if not args.skip_ast:
            plans.append(("ast-base-random-1.28s", random_base_ast(root), args.ast_seconds))
        for label, spec, seconds in plans:
            onnx_path, export_s = export_random(spec, root)
            size_mb = onnx_path.stat().st_size / 1e6
            for threads in (1, 0):
                row = {"backbone": label, "onnx_mb": round(size_mb, 1), "export_s": round(export_s, 1)}
                rows.append(row | measure(onnx_path, synthetic_audio(seconds), threads))
    print(f"{'backbone':<24} {'threads':>7} {'audio s':>8} {'wall s':>8} {'RTF':>8} {'win/s':>8} {'MB':>7}")
    for r in rows:
        print(f"{r['backbone']:<24} {str(r['ort_threads']):>7} {r['audio_s']:>8.1f} {r['wall_s']:>8.2f} "
              f"{r['rtf']:>8.2f} {r['windows_per_s']:>8.1f} {r['onnx_mb']:>7.1f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    info = {"machine": platform.machine(), "cpus": os.cpu_count(), "load_avg": os.getloadavg(), "hop_s": 0.1}
    RESULTS.write_text(json.dumps({"rows": rows, "info": info}, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
