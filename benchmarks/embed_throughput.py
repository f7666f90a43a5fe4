"""Embedding throughput: `wb embed` end to end against the bare backbone on ready arrays, in one run.

Run: .venv/bin/python benchmarks/embed_throughput.py [--ast-clips 64] [--se-clips 1000] [--skip-ast] [--out JSON]
Writes benchmarks/results/embed_throughput.json (or --out).

- AST at the full base geometry (ASTConfig() defaults, random weights: timing only, nothing downloaded),
  1 s clips in a 1.28 s window, batch 8, on the CPU (and CUDA when present): clips/s of embed_manifests
  (WAV decode in the pool, fbank, model, store writes; backbone loading excluded) over clips/s of
  backbone.embed on ready waveforms. Target >= 0.9. fp32 against bf16; torch threads 1 and 2.
- speech-embedding, 1.5 s clips: batched (64 a call) against one clip at a time, and against the
  openWakeWord way (the original model on each 76-frame window, one clip at a time); threads 1 and 2
  (onnxruntime calls at once, each on one intra-op thread; target >= 200 clips/s batched), and end to end.

Every rate is given per wall-clock second and per CPU second of this process (time.process_time): on a
shared machine the second is the stable one. The end-to-end CPU figure includes loading the backbone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wakebuilder.audio import fit_to_window, quantize_pcm16, write_wav  # noqa: E402
from wakebuilder.backbones import load_backbone  # noqa: E402
from wakebuilder.embed import EmbedConfig, embed_manifests  # noqa: E402
from wakebuilder.fingerprint import audio_id  # noqa: E402
from wakebuilder.manifest import ClipRecord, write_manifest  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "embed_throughput.json"
AST_BATCH = 8
SE_BATCH = 64


def make_clips(folder: Path, n: int, seconds: float) -> tuple[Path, np.ndarray]:
    """n noise clips as 16-bit WAVs and a manifest; also the decoded audio as an array."""
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal((n, int(seconds * 16_000))) * 0.1).astype(np.float32)
    records = []
    for i, clip in enumerate(audio):
        write_wav(folder / f"{i}.wav", clip)
        records.append(ClipRecord(id=audio_id(quantize_pcm16(clip)), path=f"{i}.wav", label=i % 2,
                                  kind="tts", group=f"g{i % 10}", duration_s=seconds))
    return write_manifest(folder / "manifest.jsonl", records), np.stack([quantize_pcm16(a) for a in audio])


def base_ast(folder: Path) -> Path:
    """A randomly initialised AST of the base geometry saved like a checkpoint."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(0)
    ASTModel(ASTConfig()).save_pretrained(folder)
    ASTFeatureExtractor().save_pretrained(folder)
    return folder


def bare_rate(backbone: Any, audio: np.ndarray, batch: int, *, method: str = "embed") -> tuple[float, float]:
    """(wall, CPU) clips/s of backbone.embed on ready arrays (after one warm-up batch)."""
    run = getattr(backbone, method)
    run(audio[:batch])
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(audio), batch):
        run(audio[i : i + batch])
    return len(audio) / (time.perf_counter() - wall), len(audio) / (time.process_time() - cpu)


def pipeline_rate(
    manifest: Path, store: Path, config: EmbedConfig, batch: int, device: str, threads: int
) -> tuple[float, float]:
    """(wall, CPU) clips/s of embed_manifests from WAV files to a new store (wall: after loading)."""
    cpu = time.process_time()
    summary = embed_manifests([manifest], store_path=store, config=config, batch_size=batch, device=device,
                              threads=threads, progress=False)
    clips = float(summary.embedded)
    return clips / float(summary.seconds), clips / (time.process_time() - cpu)


def run_ast(tmp: Path, n: int, device: str) -> list[dict[str, Any]]:
    import torch

    checkpoint = base_ast(tmp / "ast-base")
    manifest, audio = make_clips(tmp / "ast-clips", n, 1.0)
    rows = []
    for threads in (1, 2) if device == "cpu" else (0,):
        if threads:
            torch.set_num_threads(threads)
        for dtype in ("fp32", "bf16"):
            config = EmbedConfig(backbone=str(checkpoint), window_s=1.28, dtype=dtype)
            backbone = load_backbone(config.backbone, window_s=1.28, device=device, dtype=dtype)
            ready = np.stack([fit_to_window(a, backbone.window_samples) for a in audio])
            bare, bare_cpu = bare_rate(backbone, ready, AST_BATCH)
            del backbone
            store = tmp / f"ast-{device}-{threads}-{dtype}.zarr"
            end_to_end, end_to_end_cpu = pipeline_rate(manifest, store, config, AST_BATCH, device, threads)
            rows.append({"backbone": "ast-base (random weights)", "device": device, "threads": threads,
                         "dtype": dtype, "batch": AST_BATCH, "clips": n, "bare_clips_per_s": round(bare, 2),
                         "end_to_end_clips_per_s": round(end_to_end, 2),
                         "ratio": round(end_to_end / bare, 3), "bare_clips_per_cpu_s": round(bare_cpu, 2),
                         "end_to_end_clips_per_cpu_s": round(end_to_end_cpu, 2),
                         "cpu_ratio": round(end_to_end_cpu / bare_cpu, 3)})
            print_row(rows[-1])
    return rows


def run_speech_embedding(tmp: Path, n: int) -> list[dict[str, Any]]:
    from wakebuilder.backbones.speech_embedding import SpeechEmbeddingBackbone

    manifest, audio = make_clips(tmp / "se-clips", n, 1.5)
    rows = []
    for threads in (1, 2):
        backbone = SpeechEmbeddingBackbone(threads=threads)
        batched, batched_cpu = bare_rate(backbone, audio, SE_BATCH)
        single, single_cpu = bare_rate(backbone, audio[: min(n, 200)], 1)
        windowed, windowed_cpu = bare_rate(backbone, audio[: min(n, 100)], 1, method="embed_windowed")
        config = EmbedConfig(backbone="speech-embedding")
        end_to_end, end_to_end_cpu = pipeline_rate(manifest, tmp / f"se-{threads}.zarr", config, SE_BATCH,
                                                   "cpu", threads)
        rows.append({"backbone": "speech-embedding", "device": "cpu", "threads": threads, "dtype": "fp32",
                     "batch": SE_BATCH, "clips": n, "bare_clips_per_s": round(batched, 1),
                     "single_clip_per_s": round(single, 1), "batched_over_single": round(batched / single, 2),
                     "windowed_single_clip_per_s": round(windowed, 1),
                     "end_to_end_clips_per_s": round(end_to_end, 1), "ratio": round(end_to_end / batched, 3),
                     "bare_clips_per_cpu_s": round(batched_cpu, 1),
                     "single_clip_per_cpu_s": round(single_cpu, 1),
                     "windowed_single_clip_per_cpu_s": round(windowed_cpu, 1),
                     "end_to_end_clips_per_cpu_s": round(end_to_end_cpu, 1),
                     "cpu_ratio": round(end_to_end_cpu / batched_cpu, 3)})
        print_row(rows[-1])
    return rows


def print_row(row: dict[str, Any]) -> None:
    single = ""
    if "single_clip_per_s" in row:
        single = f"{row['single_clip_per_s']}/{row['windowed_single_clip_per_s']}"
    print(f"{row['backbone']:<26} {row['device']:<5} {row['threads']:>7} {row['dtype']:<5} {row['batch']:>5} "
          f"{row['bare_clips_per_s']:>9} {row['end_to_end_clips_per_s']:>9} {row['ratio']:>6} "
          f"{row['bare_clips_per_cpu_s']:>9} {row['end_to_end_clips_per_cpu_s']:>9} {row['cpu_ratio']:>6} "
          f"{single:>13}", flush=True)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--ast-clips", type=int, default=64)
    parser.add_argument("--se-clips", type=int, default=1000)
    parser.add_argument("--skip-ast", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, Any] = {"torch": torch.__version__, "cuda": torch.cuda.is_available()}
    print(f"{'backbone':<26} {'dev':<5} {'threads':>7} {'dtype':<5} {'batch':>5} {'bare c/s':>9} "
          f"{'e2e c/s':>9} {'ratio':>6} {'bare c/cs':>9} {'e2e c/cs':>9} {'ratio':>6} {'1-clip/oww':>13}")
    print("(c/s: clips per wall second; c/cs: clips per CPU second of this process)")
    with tempfile.TemporaryDirectory(prefix="wb-bench-") as tmp:
        results["speech_embedding"] = run_speech_embedding(Path(tmp), args.se_clips)
        if not args.skip_ast:
            results["ast"] = run_ast(Path(tmp), args.ast_clips, "cpu")
            if torch.cuda.is_available():
                results["ast"] += run_ast(Path(tmp), args.ast_clips * 8, "cuda")
    results["targets"] = {"ast_end_to_end_over_bare_min": 0.9,
                          "speech_embedding_batched_clips_per_s_min": 200}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
