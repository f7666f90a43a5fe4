"""Realdev recall and false accepts of a ``real_transfer.py`` run's models under other threshold rules.

Each rule reads only what calibration saw (the model's ``calibration.json``: the per-clip sweep of its synthetic
validation split and the FA/h of its synthetic stream), never realdev; realdev only scores the thresholds. For a
backbone whose synthetic calibration stream does not bind the threshold (word-embedding, twenty-second round).

    PYTHONPATH=research .venv/bin/python research/calibration_rules.py --tag r23-word [--seeds 0]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import real_transfer as rt
from fixed_threshold import new_total, tally, total_line

from wakebuilder.recipe_config import RecipeConfig


def _sweep(calibration: dict) -> dict[str, np.ndarray]:
    rows = calibration["sweep"]
    return {key: np.array([row[key] for row in rows], dtype=np.float64) for key in rows[0]}


def lowest_with_far(sweep: dict[str, np.ndarray], far: float) -> float:
    """The lowest threshold of the grid from which the per-clip false accept rate stays at or below ``far``."""
    above = sweep["far"] > far
    last_bad = int(np.flatnonzero(above)[-1]) if above.any() else -1
    return float(sweep["threshold"][min(last_bad + 1, len(above) - 1)])


def highest_with_frr(sweep: dict[str, np.ndarray], frr: float) -> float:
    """The highest threshold of the grid at which the per-clip false reject rate is at most ``frr``."""
    ok = np.flatnonzero(sweep["frr"] <= frr)
    return float(sweep["threshold"][ok[-1]]) if ok.size else float(sweep["threshold"][0])


# each rule on one head's sweep; an ensemble's (the recipe's three heads) is the mean of its members', as its F1
# floor is; never below the threshold the recipe chose
RULES: dict[str, Callable[[dict[str, np.ndarray]], float] | None] = {
    "recipe": None,
    "far<=0.001": lambda sweep: lowest_with_far(sweep, 0.001),
    "far<=0.003": lambda sweep: lowest_with_far(sweep, 0.003),
    "frr<=0.2": lambda sweep: highest_with_frr(sweep, 0.2),
    "frr<=0.3": lambda sweep: highest_with_frr(sweep, 0.3),
}


def rule_threshold(rule: Callable[[dict[str, np.ndarray]], float] | None, calibration: dict) -> float:
    chosen = float(calibration["threshold"])
    if rule is None:
        return chosen
    members = calibration.get("members") or [{"model": calibration["model"]}]
    sweeps = [_sweep(json.loads((Path(m["model"]) / "calibration.json").read_text(encoding="utf-8")))
              for m in members]
    return max(chosen, float(np.mean([rule(s) for s in sweeps])))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", action="append", required=True, help="a results file's tag (repeatable)")
    p.add_argument("--seeds", type=lambda s: {int(x) for x in s.split(",")}, default=None)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/rd"))
    args = p.parse_args()
    totals = {name: new_total() for name in RULES}
    for tag in args.tag:
        result = json.loads((rt.RESULTS / f"real_transfer_{tag}.json").read_text(encoding="utf-8"))
        config = RecipeConfig.from_dict(result["recipe"])
        windows = rt.realdev_windows(config.embed_window_s, args.workdir, rt.REALDEV, config.backbone)
        for run in result["runs"]:
            if args.seeds is not None and run["seed"] not in args.seeds:
                continue
            onnx = Path(run["onnx"])
            calibration = json.loads((onnx.parent.parent / "model" / "calibration.json").read_text(encoding="utf-8"))
            scores = rt.head_scores(onnx.with_name(f"{onnx.stem}.head.onnx"), windows)
            pos, fa, _ = rt.word_traces(scores, windows, run["word"])
            cells = []
            for name, rule in RULES.items():
                t = rule_threshold(rule, calibration)
                hits, events = tally(totals[name], pos, fa, t)
                cells.append(f"{name} {t:.3f}: {hits}/{len(pos)} {events} FA")
            print(f"{run['word']} s{run['seed']}  " + "; ".join(cells), flush=True)
    for name, total in totals.items():
        print(f"{name}: {total_line(total)}")


if __name__ == "__main__":
    main()
