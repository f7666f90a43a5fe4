"""The backbone's pass over a stream for the cache: one pass per window against ``embed_hopped``.

Calibration and the recipe's report embed every 0.1 s window of their streams once and keep the sequences in
the cache (``wakebuilder/stream_cache.py``). For speech-embedding, ``embed_hopped`` takes consecutive windows from
one mel and embedding pass over the audio they span. This times both paths over the same windows of a stream
(a WAV given with ``--stream``, else deterministic speech-like audio with silences) in one run, and checks that
they give the same float16 sequences (what the cache keeps).

Usage: .venv/bin/python benchmarks/stream_embed.py [--stream WAV] [--seconds 120] [--threads 1]
Writes benchmarks/results/stream_embed.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "stream_embed.json"


def synthetic_stream(seconds: float, seed: int = 0) -> np.ndarray:
    """Chirps, tones and noise at several levels between silences, deterministic."""
    rng = np.random.default_rng(seed)
    parts, total = [], 0
    while total < seconds * 16_000:
        n = int(rng.uniform(0.3, 2.5) * 16_000)
        t = np.arange(n) / 16_000
        kind = rng.integers(4)
        if kind == 0:
            piece = np.zeros(n)
        elif kind == 1:
            piece = np.sin(2 * np.pi * rng.uniform(100, 1000) * t * (1 + t))
        elif kind == 2:
            piece = np.sin(2 * np.pi * rng.uniform(200, 3000) * t)
        else:
            piece = rng.standard_normal(n)
        parts.append(piece * 10 ** rng.uniform(-3, -0.3))
        total += n
    return np.clip(np.concatenate(parts)[: int(seconds * 16_000)], -1, 1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stream", type=Path, default=None, help="a 16 kHz WAV [default: synthetic audio]")
    parser.add_argument("--seconds", type=float, default=120.0, help="of synthetic audio, or the first of --stream")
    parser.add_argument("--window-s", type=float, default=2.5)
    parser.add_argument("--hop-s", type=float, default=0.1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    from wakebuilder.audio import load_audio
    from wakebuilder.backbones.speech_embedding import SpeechEmbeddingBackbone

    backbone = SpeechEmbeddingBackbone(args.window_s, threads=args.threads)
    audio = load_audio(args.stream)[: int(args.seconds * 16_000)] if args.stream else synthetic_stream(args.seconds)
    hop, window = int(round(args.hop_s * 16_000)), backbone.window_samples
    windows = np.stack([audio[i : i + window] for i in range(0, audio.size - window + 1, hop)])
    timings = {}
    for name, run in (("per_window", lambda w: backbone.embed(w)[1]), ("hopped", lambda w: backbone.embed_hopped(w, hop))):
        run(windows[:64])  # warm up
        started = time.perf_counter()
        parts = [run(windows[i : i + 512]) for i in range(0, len(windows), 512)]  # the stream cache's chunks
        timings[name] = (time.perf_counter() - started, np.concatenate(parts).astype(np.float16))
    same = bool(np.array_equal(timings["per_window"][1], timings["hopped"][1]))
    result = {
        "stream": str(args.stream) if args.stream else "synthetic", "seconds": audio.size / 16_000,
        "windows": len(windows), "window_s": backbone.window_s, "hop_s": args.hop_s, "threads": args.threads,
        **{f"{name}_s": round(seconds, 2) for name, (seconds, _) in timings.items()},
        "speedup": round(timings["per_window"][0] / timings["hopped"][0], 2), "same_float16": same,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "load_avg_1m": os.getloadavg()[0]},
    }
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
