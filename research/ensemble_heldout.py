"""A recipe run's heads averaged again with ``wb ensemble``'s threshold rule, and its held-out report redone.

For a ``wb quickstart --heads K`` run (``RUN/head-<k>/model``) this combines the calibrated heads into
``OUT/model`` with the calibration stream the heads were calibrated on (the FA/h rule on the ensemble's own trace,
not below the mean of the heads' best-F1 thresholds) and, with ``--mean-threshold``, at the mean of the heads'
thresholds (the rule before), then exports and reports each on the run's held-out clips and report stream, as
``export_and_report`` does in the recipe. The report stream and its clips are the cache's (``--cache``).

Usage: .venv/bin/python research/ensemble_heldout.py RUN --cache CACHE --out OUT
Prints one line per rule and writes OUT/ensemble_heldout.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def recipe_data(run: Path, cache: Path, calibration_stream: Path) -> object:
    """The run's held-out sets: its own clips, and the cache's report stream with its music and noise clips."""
    from wakebuilder.recipe import RecipeData

    stream = next(p for p in (cache / "heldout").glob("stream-*/stream.wav") if p != calibration_stream)
    return RecipeData(train_manifests=[], negatives=run / "negatives", calibration_stream=calibration_stream,
                      heldout_positives=run / "heldout-positives" / "manifest.jsonl",
                      heldout_negatives=run / "heldout-eval" / "manifest.jsonl", report_stream=stream,
                      heldout_nonspeech=stream.parent / "nonspeech" / "manifest.jsonl",
                      heldout_speech=run / "heldout-speech-report" / "manifest.jsonl")


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--cache", type=Path, required=True, help="the WB_CACHE_DIR the run used")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--mean-threshold", action="store_true", help="also report at the mean of the heads' thresholds")
    args = p.parse_args(argv)
    from wakebuilder.ensemble import combine_models
    from wakebuilder.recipe import RecipeConfig, export_and_report

    config = RecipeConfig.load(args.run / "recipe_config.json")
    heads = sorted(args.run.glob("head-*/model"))
    calibration = json.loads((heads[0] / "calibration.json").read_text())
    stream = Path(calibration["streams"][0])
    data = recipe_data(args.run, args.cache, stream)
    results = {}
    for rule, streams in (("stream", [stream]), ("mean", [])):
        if rule == "mean" and not args.mean_threshold:
            continue
        out = args.out / rule
        model_dir, summary = combine_models(heads, out / "model", streams=streams, overwrite=True, device="cpu")
        result = export_and_report(config, out, model_dir, args.run / "store.zarr", data, summary, device="cpu",
                                   bank=None)
        report = result.report or {}
        results[rule] = {"threshold": summary["threshold"], "objective": summary["objective"],
                         "calibration_fa_per_hour": summary["fa_per_hour"],
                         "member_thresholds": [m["threshold"] for m in summary["members"]], "report": report}
        at = report.get("metrics") or {}
        print(f"{rule}: threshold {summary['threshold']:.3f} ({summary['objective']}); held-out recall "
              f"{at.get('recall')}, precision {at.get('precision')}, {report.get('fa_per_hour')} FA/h", file=sys.stderr)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ensemble_heldout.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(args.out / "ensemble_heldout.json")


if __name__ == "__main__":
    main()
