"""Calibrate and export the models of a real_transfer.py run again with this library's rule, without refitting.

For a change of the threshold rule only (``CalibrateConfig``): each run's head, stores and calibration stream
stay as they are; ``wakebuilder.recipe.train_and_export``'s calibrate and export steps run again with the
recipe config the run recorded (``wakebuilder.recipe.calibration_config``). Then
``real_transfer.py --rescore --tag TAG`` scores the new exports.

Usage: WB_CACHE_DIR=<the run's cache> .venv/bin/python research/recalibrate_runs.py --tag bank-voices-s0
(each run's folder is found from its exported ONNX's path in the results file)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wakebuilder.calibrate import calibrate_model
from wakebuilder.export import export_model
from wakebuilder.modeldir import load_model
from wakebuilder.recipe import RecipeConfig, calibration_config
from wakebuilder.recipe_config import CALIBRATION_SEED
from wakebuilder.recipe_data import shared_stream

RESULTS = Path(__file__).parent / "results"


def recalibrate(run_dir: Path) -> float:
    """Calibrate ``run_dir/model`` on the stores it was fit on and the run's stream; export; the new threshold."""
    config = RecipeConfig.load(run_dir / "recipe_config.json")
    model = run_dir / "model"
    stores = [s["path"] for s in load_model(model).meta["stores"]]
    _, summary = calibrate_model(model, stores, streams=[run_calibration_stream(config, run_dir)],
                                 config=calibration_config(config, device="cpu"))
    export_model(model, run_dir / "export", name=config.slug, overwrite=True)
    return float(summary["threshold"])


def run_calibration_stream(config: RecipeConfig, run_dir: Path) -> Path:
    """The run's calibration stream: in its folder (runs before the shared streams, or without the bank), else
    the one the recipe shares in the cache (WB_CACHE_DIR; made again, identically, if gone)."""
    own = run_dir / "stream-calibrate.wav"
    return own if own.is_file() or not config.bank else shared_stream(config, CALIBRATION_SEED, config.stream_s).stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tag", required=True)
    args = parser.parse_args()
    result = json.loads((RESULTS / f"real_transfer_{args.tag}.json").read_text(encoding="utf-8"))
    for run in result["runs"]:
        run_dir = Path(run["onnx"]).parent.parent  # <workdir>/<tag>/<word>-s<seed>/export/<word>.onnx
        before = run["calibrated"]["threshold"]
        print(f"{run['word']} s{run['seed']}: threshold {before:.3f} -> {recalibrate(run_dir):.3f}", file=sys.stderr)


if __name__ == "__main__":
    main()
