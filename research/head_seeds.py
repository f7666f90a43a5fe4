"""Heads of one store averaged, through the library: more head seeds on a real_transfer run's store, each
fitted and calibrated as the recipe does, combined with the run's own model by ``wb ensemble``, scored on realdev.

For each word of ``--tag`` (the run ``<workdir>/<tag>/<word>-s<seed>/``) this fits heads with the seeds
``seed + 100 * k`` (k = 1 .. ``--heads`` - 1; each seed its own validation split) on the run's store and the negative
bank, exactly as the recipe's ``fit_and_calibrate`` does (its ``FitConfig``, the phrase as wake word, the run's
calibration stream and threshold rule), then averages them with the run's model (``combine_models``: the mean of
the calibrated probabilities; the threshold by the FA/h rule on the ensemble's trace over the run's calibration
stream, as the recipe does, or with ``--mean-threshold`` the mean of the members'), exports the ensemble and scores
its ``NAME.head.onnx`` on realdev's cached windows with ``real_ensemble.py``'s code for ``--library`` and ``--heads``:
recall and false accepts at the calibrated threshold, and at the realdev-tuned oracle (<= 1 false accept).

Usage: .venv/bin/python research/head_seeds.py --tag r12 --seed 0 --heads 3 --workdir /tmp/rd --bank BANK
Writes research/results/head_seeds_<tag>-s<seed>-h<heads>.json.

For runs whose ``model/`` is one head. A recipe run with more than one head or a centroids head has its heads in
``head-*/`` (``head-k`` already of seed + 100 * k) and their ``wb ensemble`` in ``model/``: such runs are refused before
any work; ``research/recipe_heads.py --set heads=N`` keeps their heads and fits the others as the recipe does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from real_ensemble import library_ensemble, member_traces  # noqa: E402
from real_transfer import REALDEV, RESULTS, WORDS, operating_point, oracle_threshold, pooled  # noqa: E402


def calibration_stream(run: Path) -> Path:
    """The stream the run's model was calibrated on: its own file, or the shared one its calibration names."""
    calibration = json.loads((run / "model" / "calibration.json").read_text())
    streams = calibration.get("streams") or [run / "stream-calibrate.wav"]
    stream = Path(streams[0])
    if not stream.is_file():
        raise SystemExit(f"{run}: its calibration stream {stream} is gone")
    return stream


def refuse_ensemble(run: Path, heads: int) -> None:
    """Exit naming ``run`` when its ``model/`` is a ``wb ensemble`` (``model.json``'s ``ensemble``), not one head."""
    meta = json.loads((run / "model" / "model.json").read_text())
    if members := (meta.get("ensemble") or {}).get("members"):
        word, _, seed = run.name.rpartition("-s")  # <workdir>/<tag>/<word>-s<seed>
        raise SystemExit(f"{run}: model/ is a wb ensemble of {len(members)} models (the recipe's head-*/), not one "
                         f"head to add seeds to; use research/recipe_heads.py --workdir {run.parent.parent} --tag "
                         f"{run.parent.name} --words {word} --data-seeds {seed} --set heads={heads} (and --bank, "
                         "--out), which keeps the run's heads and fits the others as the recipe does")


def head_members(run: Path, word: str, bank: Path, heads: int, out: Path) -> list[Path]:
    """The run's model and ``heads - 1`` more, fitted and calibrated on its store as the recipe does."""
    from wakebuilder.recipe import RecipeConfig, RecipeData, fit_and_calibrate

    refuse_ensemble(run, heads)
    config = RecipeConfig.load(run / "recipe_config.json")
    data = RecipeData(train_manifests=[], negatives=run / "negatives", heldout_positives=None, heldout_negatives=None,
                      calibration_stream=calibration_stream(run), report_stream=None)
    models = [run / "model"]
    for k in range(1, heads):
        head_out = out / f"{word}-h{k}"
        if not (head_out / "model" / "calibration.json").is_file():
            fit_and_calibrate(config.replace(seed=config.seed + 100 * k), head_out, run / "store.zarr", data,
                              device="cpu", bank=bank)
        models.append(head_out / "model")
    return models


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True)
    p.add_argument("--seed", type=int, default=0, help="the run's data seed")
    p.add_argument("--heads", type=int, default=3, help="heads in each ensemble, the run's own included")
    p.add_argument("--bank", type=Path, required=True, help="the negative bank's store the runs fitted with")
    p.add_argument("--words", type=lambda s: s.split(","), default=list(WORDS))
    p.add_argument("--workdir", type=Path, default=Path("/tmp/real_transfer"))
    p.add_argument("--window-s", type=float, default=2.5)
    p.add_argument("--realdev", type=Path, default=REALDEV)
    p.add_argument("--mean-threshold", action="store_true",
                   help="the mean of the members' thresholds instead of the rule on the calibration stream")
    args = p.parse_args(argv)
    for word in args.words:  # all refused before any work
        refuse_ensemble(args.workdir / args.tag / f"{word}-s{args.seed}", args.heads)
    import torch

    torch.set_num_threads(1)
    windows = rt.realdev_windows(args.window_s, args.workdir, args.realdev)
    out = args.workdir / "head-seeds" / f"{args.tag}-s{args.seed}"
    results = []
    for word in args.words:
        start = time.perf_counter()
        run = args.workdir / args.tag / f"{word}-s{args.seed}"
        models = head_members(run, word, args.bank, args.heads, out)
        streams = [] if args.mean_threshold else [calibration_stream(run)]
        built = library_ensemble(models, word, out, streams)
        pos, fa, fa_seconds = member_traces(built, word, {}, windows)
        results.append({"word": word, "members": [str(m) for m in models],
                        "member_thresholds": built["member_thresholds"], "objective": built["objective"],
                        "at_mean_threshold": operating_point(pos, fa, fa_seconds,
                                                             float(sum(built["member_thresholds"]) / len(models))),
                        "calibrated": operating_point(pos, fa, fa_seconds, built["calibrated"]["threshold"]),
                        "oracle_tuned_on_realdev": operating_point(pos, fa, fa_seconds, oracle_threshold(fa)),
                        "wall_s": round(time.perf_counter() - start, 1)})
        c, o = results[-1]["calibrated"], results[-1]["oracle_tuned_on_realdev"]
        print(f"{word:8} {args.heads} heads  thr {c['threshold']:.3f} recall {c['detected']}/{c['n_clips']} FA "
              f"{c['false_accepts']} | oracle recall {o['detected']}/{o['n_clips']}  ({results[-1]['wall_s']:.0f} s)",
              file=sys.stderr, flush=True)
    summary = {k: pooled(results, k) for k in ("calibrated", "at_mean_threshold", "oracle_tuned_on_realdev")}
    summary["models_within_one"] = sum(r["calibrated"]["false_accepts"] <= 1 for r in results)
    c, o = summary["calibrated"], summary["oracle_tuned_on_realdev"]
    print(f"pooled: recall {c['detected']}/{c['n_clips']} ({c['recall']:.1%}), FA {c['false_accepts']}, "
          f"{summary['models_within_one']} of {len(results)} within one; oracle {o['detected']}/{o['n_clips']}")
    rule = "-mean" if args.mean_threshold else ""
    path = RESULTS / f"head_seeds_{args.tag}-s{args.seed}-h{args.heads}{rule}.json"
    path.write_text(json.dumps({"tag": args.tag, "seed": args.seed, "heads": args.heads, "bank": str(args.bank),
                                "library": rt.library_identity(), "summary": summary, "runs": results}, indent=2)
                    + "\n")
    print(path)


if __name__ == "__main__":
    main()
