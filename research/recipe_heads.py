"""The library's model steps of the recipe, run again on real_transfer runs' stores: heads kept, a new rule on top.

For each word and data seed of a ``real_transfer.py`` run (``<workdir>/<tag>/<word>-s<seed>``), the recipe's own
``recipe_model.fit_heads`` and ``combine_export_report`` run with the run's ``recipe_config.json`` and ``--set``
changes on top (e.g. ``centroids=true``), into ``<out>/<word>-s<seed>``: the run's network heads are copied with their
fit markers, so ``recipe_keep`` keeps them (a head whose settings or stores changed is fitted again), every head is
calibrated by the current library's rule on the run's calibration stream, and the ensemble is exported as the recipe
exports it. ``score_exports.py --pattern '<out>/{word}-s{seed}/export/{word}.onnx'`` then scores the exports on
realdev. No synthesis, no embedding: the stores and the bank are the run's.

Usage: WB_CACHE_DIR=/tmp/rd-cache PYTHONPATH=research .venv/bin/python research/recipe_heads.py --tag r23-word \
       --bank <cache>/banks/word-embedding-1.5s/store.zarr --set centroids=true --out /tmp/r27/lib
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402

HEAD_FILES = ("head.safetensors", "model.json", "split.json", "recipe_step.json", "metrics.jsonl")


def setting(text: str) -> tuple[str, object]:
    """``name=value`` with a JSON value (``centroids=true``, ``centroids_shrinkage=0.3``)."""
    name, _, value = text.partition("=")
    return name, json.loads(value)


def run_one(run: Path, bank: Path, out: Path, changes: dict[str, object], device: str) -> Path:
    """The recipe's heads, ensemble and export of ``run``'s store under ``changes``; the export's path."""
    from types import SimpleNamespace

    from wakebuilder.recipe_config import RecipeConfig
    from wakebuilder.recipe_model import combine_export_report, fit_heads
    from wakebuilder.recipe_types import StepLog

    config = RecipeConfig.from_dict(json.loads((run / "recipe_config.json").read_text())).replace(
        report=False, **changes)
    calibration = json.loads((run / "head-0" / "model" / "calibration.json").read_text())
    data = SimpleNamespace(calibration_stream=Path(calibration["streams"][0]))  # all combine_export_report reads
    for k in range(config.heads):
        source, target = run / f"head-{k}" / "model", out / f"head-{k}" / "model"
        if not (target / "recipe_step.json").is_file():
            target.mkdir(parents=True, exist_ok=True)
            for name in HEAD_FILES:
                if (source / name).is_file():
                    shutil.copy2(source / name, target / name)
    step = StepLog()
    models = fit_heads(config, out, run / "store.zarr", data, device=device, step=step, bank=bank)
    result = combine_export_report(config, out, models, run / "store.zarr", data, device=device, step=step, bank=bank)
    return result.onnx


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True)
    p.add_argument("--workdir", type=Path, default=Path("/tmp/rd"))
    p.add_argument("--bank", type=Path, required=True, help="the negative bank's store the run fitted with")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--set", dest="changes", type=setting, action="append", default=[],
                   help="a RecipeConfig field and its JSON value (repeatable)")
    p.add_argument("--words", type=lambda s: s.split(","), default=list(rt.WORDS))
    p.add_argument("--data-seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--device", default="cpu")
    args = p.parse_args(argv)

    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    for seed in args.data_seeds:
        for word in args.words:
            onnx = run_one(args.workdir / args.tag / f"{word}-s{seed}", args.bank, args.out / f"{word}-s{seed}",
                           dict(args.changes), args.device)
            print(onnx, flush=True)


if __name__ == "__main__":
    main()
