"""Realdev recall and false accepts of a ``real_transfer.py`` run's models at fixed thresholds, not calibrated ones.

For a backbone whose synthetic calibration stream does not bind the threshold (every threshold above the per-clip F1
one keeps 0 FA/h there), what a fixed threshold would give on real speech: choose it on one data seed, check it on
the others. realdev's windows come from ``real_transfer.realdev_windows`` (cached under ``--workdir``).

    PYTHONPATH=. .venv/bin/python research/fixed_threshold.py --tag r22-word-s0 --thresholds 0.7,0.8,0.9
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import real_transfer as rt

from wakebuilder.recipe_config import RecipeConfig


def new_total() -> dict[str, int]:
    return {"detected": 0, "n_clips": 0, "false_accepts": 0, "within_one": 0, "models": 0}


def tally(total: dict[str, int], pos: list, fa: list, threshold: float) -> tuple[int, int]:
    """Add one model's realdev clips detected and false accepts at ``threshold`` to ``total``; both of them."""
    hits, events = rt.n_detected(pos, threshold), rt.n_events(fa, threshold)
    total["detected"] += hits
    total["n_clips"] += len(pos)
    total["false_accepts"] += events
    total["within_one"] += events <= 1
    total["models"] += 1
    return hits, events


def total_line(total: dict[str, int]) -> str:
    return (f"{total['detected']}/{total['n_clips']} ({total['detected'] / max(total['n_clips'], 1):.1%}), "
            f"{total['false_accepts']} false accepts, {total['within_one']} of {total['models']} models within one")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", action="append", required=True, help="a results file's tag (repeatable)")
    p.add_argument("--thresholds", type=lambda s: [float(x) for x in s.split(",")], required=True)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/rd"))
    args = p.parse_args()
    totals = {t: new_total() for t in args.thresholds}
    for tag in args.tag:
        result = json.loads((rt.RESULTS / f"real_transfer_{tag}.json").read_text(encoding="utf-8"))
        config = RecipeConfig.from_dict(result["recipe"])
        windows = rt.realdev_windows(config.embed_window_s, args.workdir, rt.REALDEV, config.backbone)
        for run in result["runs"]:
            onnx = Path(run["onnx"])
            scores = rt.head_scores(onnx.with_name(f"{onnx.stem}.head.onnx"), windows)
            pos, fa, _ = rt.word_traces(scores, windows, run["word"])
            cells = []
            for t in args.thresholds:
                hits, events = tally(totals[t], pos, fa, t)
                cells.append(f"{t:g}: {hits}/{len(pos)}, {events} FA")
            print(f"{run['word']} s{run['seed']}  " + "; ".join(cells))
    for t, total in totals.items():
        print(f"threshold {t:g}: {total_line(total)}")


if __name__ == "__main__":
    main()
