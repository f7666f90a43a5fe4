"""Benchmark the negative bank: the recipe for a first wake word with an empty cache, then a second one.

The first run builds the bank (generic speech of every voice, isolated words, stream windows and their
augmented copies, embedded once); the second finds it and synthesizes and embeds only its own positives
and sound-alikes. Both wall times and their ratio (target: the second <= 1/3 of the first on 2 cores),
with each run's held-out report, go to benchmarks/results/second_word.json.

Usage: .venv/bin/python benchmarks/second_word.py [--size small] [--first "hey jarvis"] [--second computer]
       [--engines piper,flite] [--threads 1] [--device cpu] [--keep DIR]
Sizes: small (a few minutes on a quiet 2-core machine), quick (the recipe's quick preset).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).parent / "results" / "second_word.json"
SMALL = dict(n_pos=100, pos_copies=2, n_hard=200, n_speech=200, n_words=300, neg_copies=1, train_stream_s=120.0,
             stream_s=120.0, report_stream_s=120.0, heldout_hard=40, heldout_speech=60, heldout_pos=30)


def run_once(phrase: str, size: str, out: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One recipe run with the bank; its wall time and held-out figures."""
    from wakebuilder.recipe import RecipeConfig, run_recipe

    changes: dict[str, Any] = {"phrase": phrase, "bank": True}
    if args.backbone:
        changes["backbone"] = args.backbone
    if args.engines:
        changes["engines"] = tuple(args.engines.split(","))
    config = RecipeConfig.preset("quick", **SMALL, **changes) if size == "small" else RecipeConfig.preset(
        size, **changes)
    started = time.perf_counter()
    result = run_recipe(config, out_dir=out, device=args.device, threads=args.threads)
    seconds = time.perf_counter() - started
    report = result.report or {}
    return {"phrase": phrase, "seconds": round(seconds, 1), "threshold": result.threshold,
            "recall": report.get("metrics", {}).get("recall"), "fa_per_hour": report.get("fa_per_hour"),
            "bank": str(result.bank) if getattr(result, "bank", None) else None, "backbone": config.backbone,
            "centroids": config.centroids_head is not None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="small", choices=["small", "quick", "full"])
    parser.add_argument("--first", default="hey jarvis")
    parser.add_argument("--second", default="computer")
    parser.add_argument("--engines", default=None, help="TTS engines [default: the recipe's]")
    parser.add_argument("--backbone", default=None, help="the recipe's backbone [default: the recipe's]")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument("--keep", default=None, metavar="DIR",
                        help="run in DIR (must not exist) and keep the runs and their cache [default: a temporary "
                             "folder]")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="second_word: %(message)s")
    if args.keep is not None and Path(args.keep).exists():
        parser.error(f"--keep {args.keep}: already exists; the first run needs an empty cache")
    with tempfile.TemporaryDirectory(prefix="wb-second-word-") as tmp:
        root = Path(args.keep or tmp)
        os.environ["WB_CACHE_DIR"] = str(root / "cache")  # an empty cache: the first run builds the bank
        first = run_once(args.first, args.size, root / "first", args)
        second = run_once(args.second, args.size, root / "second", args)
    ratio = second["seconds"] / first["seconds"]
    result = {
        "size": args.size, "sizes": SMALL if args.size == "small" else args.size,
        "engines": args.engines or "the recipe's",
        "threads": args.threads, "device": args.device, "first": first, "second": second,
        "backbone": first["backbone"], "centroids": first["centroids"],
        "ratio": round(ratio, 3), "target_ratio": round(1 / 3, 3), "met": ratio <= 1 / 3,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_1m": os.getloadavg()[0]},
    }
    print(f"{'phrase':<16} {'seconds':>8} {'recall':>7} {'FA/h':>8}")
    for run in (first, second):
        recall = "n/a" if run["recall"] is None else f"{run['recall']:.3f}"
        fa = "n/a" if run["fa_per_hour"] is None else f"{run['fa_per_hour']:.2f}"
        print(f"{run['phrase']:<16} {run['seconds']:>8.1f} {recall:>7} {fa:>8}")
    print(f"second / first = {ratio:.3f} (target <= 0.333: {'met' if result['met'] else 'NOT met'})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
