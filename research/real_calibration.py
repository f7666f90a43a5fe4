"""What would real negative speech at calibration buy? Each model's threshold read off realdev's other speakers.

A diagnostic of the calibration lever, never a recipe: realdev stays out of every model and threshold that the
product's figures report. The recipe's exported models (found by ``--pattern``, as ``score_exports.py`` finds them)
score realdev's cached windows; realdev's files are split into ``--folds`` folds by speaker
(``real_ceiling.speaker_folds``). For each fold, the threshold is the lowest with at most ``k`` false accepts on the
false-accept files (every file not the word's) of the *other* folds, never below ``--floor``; the fold's positives
and false-accept files are then counted at it. Summed over the folds, every file is counted at a threshold that
neither it nor its speaker set. This is what a user's own recordings of a room (`--real`) could give at best when
the room's speech is like realdev's: many speakers saying short words.

Usage: PYTHONPATH=research .venv/bin/python research/real_calibration.py \
       --pattern '/tmp/rd/r27-word/{word}-s{seed}/export/{word}.onnx' --k 0,1 --name r28-word
Writes research/results/real_calibration_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from real_ceiling import speaker_folds  # noqa: E402


def fold_counts(traces: list[np.ndarray], is_word: np.ndarray, folds: np.ndarray, k: int, floor: float,
                n_folds: int) -> dict:
    """Recall and false accepts of one model, each fold counted at the threshold of the other folds' false-accept
    files (``k`` allowed, not below ``floor``)."""
    detected = false_accepts = 0
    thresholds = []
    for fold in range(n_folds):
        others = [t for t, w, f in zip(traces, is_word, folds) if not w and f != fold]
        threshold = max(rt.oracle_threshold(others, k), floor)
        thresholds.append(threshold)
        detected += rt.n_detected([t for t, w, f in zip(traces, is_word, folds) if w and f == fold], threshold)
        false_accepts += rt.n_events([t for t, w, f in zip(traces, is_word, folds) if not w and f == fold],
                                     threshold)
    return {"detected": detected, "n_clips": int(is_word.sum()), "false_accepts": false_accepts,
            "thresholds": thresholds}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rt.export_arguments(p)
    p.add_argument("--k", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1],
                   help="false accepts allowed on the other folds (comma separated)")
    p.add_argument("--floor", type=float, default=0.0, help="no threshold below this")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--name", required=True)
    args = p.parse_args(argv)

    windows = rt.realdev_windows(args.window_s, args.workdir, rt.REALDEV, args.backbone)
    files = rt.realdev_files(rt.REALDEV)
    names = [path.name for label in (*rt.WORDS, "negative") for path in files[label]]
    folds = speaker_folds(names, args.folds)
    runs = []
    for seed in args.data_seeds:
        for word in rt.WORDS:
            onnx = Path(args.pattern.format(word=word, seed=seed))
            scores = rt.head_scores(onnx.with_name(f"{onnx.stem}.head.onnx"), windows)
            traces = np.split(scores, np.flatnonzero(np.diff(windows["file_index"])) + 1)
            is_word = windows["label"] == word
            fa_hours = float(windows["seconds"][~is_word].sum()) / 3600
            run = {"word": word, "seed": seed,
                   **{f"k{k}": {**fold_counts(traces, is_word, folds, k, args.floor, args.folds), "fa_hours": fa_hours}
                      for k in args.k}}
            runs.append(run)
            print(f"{word:8} s{seed}: " + "; ".join(
                f"k={k} {run[f'k{k}']['detected']}/{run[f'k{k}']['n_clips']}, {run[f'k{k}']['false_accepts']} FA"
                for k in args.k), flush=True)
    summary = {}
    for k in args.k:
        s = summary[f"k{k}"] = {**rt.pooled(runs, f"k{k}"),
                                "models_within_one": sum(r[f"k{k}"]["false_accepts"] <= 1 for r in runs)}
        print(f"k={k}: {s['detected']}/{s['n_clips']}, {s['false_accepts']} FA, {s['models_within_one']} of "
              f"{len(runs)} within one")
    out = rt.RESULTS / f"real_calibration_{args.name}.json"
    out.write_text(json.dumps({"pattern": args.pattern, "backbone": args.backbone, "folds": args.folds,
                               "floor": args.floor, "library": rt.library_identity(), "summary": summary,
                               "runs": runs}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
