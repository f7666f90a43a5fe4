"""Ensembles across ``real_heads.py --ensemble`` runs: heads of several data seeds and head seeds averaged.

``real_heads.py --ensemble`` keeps each head's calibrated probabilities on realdev's windows in
``<workdir>/ensemble-scores/<name>/<word>-d<data seed>-h<head seed>.npy``. This script averages any set of them per
word (``--data-seeds``, ``--head-seeds``) and reports recall at the lowest threshold with at most 0, 1 and 3 false
accepts per word (tuned on realdev, optimistic: for comparing ensembles only), pooled over words, with the mean
AUC over files. Each member set is named ``d<data seeds>h<head seeds>``, e.g. ``d012h0`` (three data seeds, head
seed 0 each: what ``--data-seeds 3`` averages) or ``d0h012`` (three head seeds of one store).

Usage: .venv/bin/python research/ensemble_scores.py --workdir /tmp/rd --names 'hsens-r12-s*' \\
       --set 0:0 --set 0:0,1,2 --set 0,1,2:0 --set 0,1,2:0,1,2
Writes research/results/ensemble_scores_<--out>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from real_heads import KS, score_scores  # noqa: E402


def member_files(root: Path, names: str, word: str, data_seeds: list[int], head_seeds: list[int]) -> list[Path]:
    """The kept score files of ``word`` for every (data seed, head seed) pair; an error names a missing one."""
    found = []
    for d in data_seeds:
        for h in head_seeds:
            hits = sorted(root.glob(f"{names}/{word}-d{d}-h{h}.npy"))
            if len(hits) != 1:
                raise SystemExit(f"{root}/{names}/{word}-d{d}-h{h}.npy: {len(hits)} files, expected 1")
            found.append(hits[0])
    return found


def parse_set(text: str) -> tuple[list[int], list[int]]:
    """``0,1,2:0`` -> data seeds [0, 1, 2], head seeds [0]."""
    data, _, heads = text.partition(":")
    return [int(x) for x in data.split(",")], [int(x) for x in heads.split(",")]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/real_transfer"))
    p.add_argument("--names", default="*", help="glob of the real_heads.py run names under ensemble-scores/")
    p.add_argument("--set", dest="sets", action="append", required=True, metavar="DATA:HEADS",
                   help="data seeds and head seeds to average, e.g. 0,1,2:0 (repeatable)")
    p.add_argument("--words", type=lambda s: s.split(","), default=list(rt.WORDS))
    p.add_argument("--window-s", type=float, default=2.5)
    p.add_argument("--realdev", type=Path, default=rt.REALDEV)
    p.add_argument("--out", default="hsens", help="results file suffix")
    args = p.parse_args(argv)
    windows = rt.realdev_windows(args.window_s, args.workdir, args.realdev)
    root = args.workdir / "ensemble-scores"
    results = {}
    for text in args.sets:
        data_seeds, head_seeds = parse_set(text)
        name = f"d{''.join(map(str, data_seeds))}h{''.join(map(str, head_seeds))}"
        rows = []
        for word in args.words:
            files = member_files(root, args.names, word, data_seeds, head_seeds)
            scores = np.mean([np.load(f).astype(np.float32) for f in files], axis=0)
            rows.append({"word": word, "members": [str(f) for f in files], **score_scores(scores, word, windows)})
        pooled = {f"recall_at_{k}fa": sum(r[f"recall_at_{k}fa"] for r in rows) for k in KS}
        results[name] = {"data_seeds": data_seeds, "head_seeds": head_seeds, "n_clips": sum(r["n_clips"] for r in rows),
                         **pooled, "auc_mean": float(np.mean([r["auc"] for r in rows])), "words": rows}
        print(f"{name:14} " + " ".join(f"<={k} FA {pooled[f'recall_at_{k}fa']:3d}" for k in KS)
              + f"  of {results[name]['n_clips']}  AUC {results[name]['auc_mean']:.4f}  "
              + " ".join(f"{r['word']}:{r['recall_at_1fa']}" for r in rows))
    out = rt.RESULTS / f"ensemble_scores_{args.out}.json"
    out.write_text(json.dumps({"workdir": str(args.workdir), "names": args.names, "library": rt.library_identity(),
                               "ensembles": results}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
