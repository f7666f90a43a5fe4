"""Embedding throughput: `wb embed` end to end against the bare backbone on ready arrays, in one run.

Run: .venv/bin/python benchmarks/embed_throughput.py [--ast-clips 32] [--se-clips 1000]
Writes benchmarks/results/embed_throughput.json.

- AST at the full base geometry (ASTConfig() defaults, random weights: timing only, nothing downloaded),
  1.28 s window, batch 8, on the CPU (and CUDA when present): clips/s of embed_manifests (WAV decode in
  the pool, fbank, model, store writes) over clips/s of backbone.embed on ready waveforms. Target >= 0.9.
  fp32 against bf16 on the CPU; torch threads 1 and 2.
- speech-embedding, 1.5 s clips: batched against one clip at a time (target >= 200 clips/s batched),
  and end to end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wakebuilder.audio import quantize_pcm16, write_wav  # noqa: E402
from wakebuilder.backbones import load_backbone  # noqa: E402
from wakebuilder.embed import EmbedConfig, embed_manifests  # noqa: E402
from wakebuilder.fingerprint import audio_id  # noqa: E402
from wakebuilder.manifest import ClipRecord, write_manifest  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "embed_throughput.json"


def make_clips(folder: Path, n: int, seconds: float) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((n, int(seconds * 16_000))) * 0.1).astype(np.float32)
    records = []
    for i, clip in enumerate(audio):
        write_wav(folder / f"{i}.wav", clip)
        records.append(ClipRecord(id=audio_id(quantize_pcm16(clip)), path=f"{i}.wav", label=i % 2, kind="tts",
                                  group=f"g{i % 10}", duration_s=seconds))
    return write_manifest(folder / "manifest.jsonl", records), np.stack([quantize_pcm16(a) for a in audio])


def base_ast(folder: Path) -> Path:
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    ASTModel(ASTConfig()).save_pretrained(folder)
    ASTFeatureExtractor().save_pretrained(folder)
    return folder


def bare_rate(backbone: object, audio: np.ndarray, batch: int) -> float:
    backbone.embed(audio[:batch])  # type: ignore[attr-defined]  # warm-up
    started = time.perf_counter()
    for i in range(0, len(audio), batch):
        backbone.embed(audio[i : i + batch])  # type: ignore[attr-defined]
    return len(audio) / (time.perf_counter() - started)


def pipeline_rate(manifest: Path, store: Path, config: EmbedConfig, batch: int, device: str) -> float:
    started = time.perf_counter()
    embed_manifests([manifest], store_path=store, config=config, batch_size=batch, device=device, progress=False)
    return len(manifest.read_text().splitlines()) / (time.perf_counter() - started)


def run_ast(tmp: Path, n: int, device: str) -> list[dict]:
    import torch

    checkpoint = base_ast(tmp / "ast-base")
    manifest, audio = make_clips(tmp / "ast-clips", n, 1.28)
    rows = []
    dtypes = ("fp32", "bf16") if device == "cpu" else ("auto",)
    for threads in ((1, 2) if device == "cpu" else (0,)):
        if threads:
            torch.set_num_threads(threads)
        for dtype in dtypes:
            config = EmbedConfig(backbone=str(checkpoint), window_s=1.28, dtype=dtype)
            backbone = load_backbone(config.backbone, window_s=1.28, device=device, dtype=dtype)
            window = np.stack([np.pad(a, (0, backbone.window_samples - a.size))[: backbone.window_samples]
                               for a in audio])
            bare = bare_rate(backbone, window, 8)
            del backbone
            end_to_end = pipeline_rate(manifest, tmp / f"ast-{device}-{threads}-{dtype}.zarr", config, 8, device)
            rows.append({"backbone": "ast-base(random)", "device": device, "threads": threads, "dtype": dtype,
                         "batch": 8, "clips": n, "bare_clips_per_s": round(bare, 2),
                         "end_to_end_clips_per_s": round(end_to_end, 2), "ratio": round(end_to_end / bare, 3)})
            print(rows[-1], flush=True)
    return rows


def run_speech_embedding(tmp: Path, n: int) -> dict:
    manifest, audio = make_clips(tmp / "se-clips", n, 1.5)
    backbone = load_backbone("speech-embedding")
    batched = bare_rate(backbone, audio, 64)
    single = bare_rate(backbone, audio[: min(n, 200)], 1)
    end_to_end = pipeline_rate(manifest, tmp / "se.zarr", EmbedConfig(backbone="speech-embedding"), 64, "cpu")
    row = {"backbone": "speech-embedding", "clips": n, "clip_s": 1.5, "batched_clips_per_s": round(batched, 1),
           "single_clip_per_s": round(single, 1), "batched_over_single": round(batched / single, 2),
           "end_to_end_clips_per_s": round(end_to_end, 1), "ratio": round(end_to_end / batched, 3)}
    print(row, flush=True)
    return row


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--ast-clips", type=int, default=32)
    parser.add_argument("--se-clips", type=int, default=1000)
    parser.add_argument("--skip-ast", action="store_true")
    args = parser.parse_args()
    results: dict = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        results["speech_embedding"] = run_speech_embedding(Path(tmp), args.se_clips)
        if not args.skip_ast:
            results["ast"] = run_ast(Path(tmp), args.ast_clips, "cpu")
            if torch.cuda.is_available():
                results["ast"] += run_ast(Path(tmp), args.ast_clips * 8, "cuda")
    results["targets"] = {"ast_end_to_end_over_bare_min": 0.9, "speech_embedding_batched_clips_per_s_min": 200}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
