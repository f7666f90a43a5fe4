"""Calibrate and export the models of a real_transfer.py run again with this library's rule, without refitting.

For a change of the threshold rule only (``CalibrateConfig``): each run's head, stores and calibration stream
stay as they are; ``wakebuilder.recipe.train_and_export``'s calibrate and export steps run again with the
recipe config the run recorded (``wakebuilder.recipe.calibration_config``). Then
``real_transfer.py --rescore --tag TAG`` scores the new exports.

Usage: WB_CACHE_DIR=<the run's cache> .venv/bin/python research/recalibrate_runs.py --tag bank-voices-s0
(each run's folder is found from its exported ONNX's path in the results file)

For runs whose ``model/`` is one head. A recipe run with more than one head or a centroids head has its heads in
``head-*/`` and their ``wb ensemble`` in ``model/``, which ``wb calibrate`` does not take: such runs are refused
before any is recalibrated; research/recipe_heads.py calibrates each head again and combines and exports them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wakebuilder.atomic import read_json
from wakebuilder.calibrate import calibrate_model
from wakebuilder.export import export_model
from wakebuilder.modeldir import META_NAME, load_model
from wakebuilder.recipe import RecipeConfig, calibration_config
from wakebuilder.recipe_config import CALIBRATION_SEED
from wakebuilder.recipe_data import shared_stream

RESULTS = Path(__file__).parent / "results"


def recalibrate(run_dir: Path) -> float:
    """Calibrate ``run_dir/model`` on the stores it was fit on and the run's stream; export; the new threshold."""
    refuse_ensemble(run_dir)
    config = RecipeConfig.load(run_dir / "recipe_config.json")
    model = run_dir / "model"
    stores = [s["path"] for s in load_model(model).meta["stores"]]
    _, summary = calibrate_model(model, stores, streams=[run_calibration_stream(config, run_dir)],
                                 config=calibration_config(config, device="cpu"))
    export_model(model, run_dir / "export", name=config.slug, overwrite=True)
    return float(summary["threshold"])


def refuse_ensemble(run_dir: Path) -> None:
    """Exit naming ``run_dir`` when its ``model/`` is a ``wb ensemble`` (``model.json``'s ``ensemble``): no one head."""
    if members := (read_json(run_dir / "model" / META_NAME).get("ensemble") or {}).get("members"):
        word, _, seed = run_dir.name.rpartition("-s")  # <workdir>/<tag>/<word>-s<seed>
        raise SystemExit(f"{run_dir}: model/ is a wb ensemble of {len(members)} models (the recipe's head-*/), which "
                         "wb calibrate does not take; recalibrate its heads and export the ensemble with "
                         f"research/recipe_heads.py --workdir {run_dir.parent.parent} --tag {run_dir.parent.name} "
                         f"--words {word} --data-seeds {seed} (and --bank, --out; then score_exports.py)")


def run_calibration_stream(config: RecipeConfig, run_dir: Path) -> Path:
    """The run's calibration stream: in its folder (runs before the shared streams, or without the bank), else
    the one the recipe shares in the cache (WB_CACHE_DIR; made again, identically, if gone)."""
    own = run_dir / "stream-calibrate.wav"
    return own if own.is_file() or not config.bank else shared_stream(config, CALIBRATION_SEED, config.stream_s).stream


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", required=True)
    args = parser.parse_args(argv)
    result = json.loads((RESULTS / f"real_transfer_{args.tag}.json").read_text(encoding="utf-8"))
    run_dirs = [Path(run["onnx"]).parent.parent for run in result["runs"]]  # <run>/export/<word>.onnx
    for run_dir in run_dirs:  # all refused before any is recalibrated
        refuse_ensemble(run_dir)
    for run, run_dir in zip(result["runs"], run_dirs):
        before = run["calibrated"]["threshold"]
        print(f"{run['word']} s{run['seed']}: threshold {before:.3f} -> {recalibrate(run_dir):.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
