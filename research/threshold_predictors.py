"""Does anything in a word's synthetic data predict where its real threshold lies?

For each word and data seed a ``linear_scores`` scorer is fitted (the word's store and the bank, the recipe's first
head's training split) and its realdev oracle threshold found (the lowest with at most one false accept, tuned on
realdev). Beside it, statistics that a rule could read without realdev: per kind of validation-split negative (and
the validation positives) the mean, standard deviation and maximum of the raw score, and the peak of the score over
the cached held-out stream pass. A rule "threshold = cohort mean + z cohort sd" transfers across words only if the
oracle's z against that cohort is about constant: the coefficient of variation of z (sd / |mean| over the 18
models) is printed per cohort, beside that of the raw oracle thresholds.

Usage: WB_CACHE_DIR=/tmp/rd-cache PYTHONPATH=research .venv/bin/python research/threshold_predictors.py \
       --tag r23-word --bank <cache>/banks/word-embedding-1.5s/store.zarr --stream <cache>/stream-embeddings/<x>.npy
Writes research/results/threshold_predictors_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from linear_scores import fit_scorer, store_arguments, training_rows, unit, vectors  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    store_arguments(p)
    p.add_argument("--stream", type=Path, required=True, help="word-embedding's cached held-out stream pass (.npy)")
    p.add_argument("--scorer", default="diff")
    p.add_argument("--data-seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)

    from wakebuilder.train.split import split_groups

    windows = rt.realdev_windows(1.5, args.workdir, rt.REALDEV, "word-embedding")
    queries = unit(vectors(windows["seq"]))
    stream = unit(vectors(np.load(args.stream)))
    models = []
    for seed in args.data_seeds:
        for word in rt.WORDS:
            x_train, y_train, *_ = training_rows(args.workdir, args.tag, args.bank, word, seed)
            x_all, y_all, groups, kinds = training_rows(args.workdir, args.tag, args.bank, word, seed, all_rows=True)
            train, val = split_groups(groups, y_all, kinds, seed=0).masks(groups)
            assert int(train.sum()) == len(y_train), "the split differs from training_rows'"
            score = fit_scorer(args.scorer, x_train, y_train)
            _, fa, _ = rt.word_traces(score(queries), windows, word)
            on_val = score(x_all[val])
            cohorts = {"positives": on_val[y_all[val] == 1], "negatives": on_val[y_all[val] == 0]}
            cohorts |= {kind: on_val[(y_all[val] == 0) & (kinds[val] == kind)] for kind in sorted(set(kinds[val]))}
            stats = {name: {"mean": float(v.mean()), "sd": float(v.std()), "max": float(v.max())}
                     for name, v in cohorts.items() if v.size}
            models.append({"word": word, "seed": seed, "oracle": rt.oracle_threshold(fa),
                           "stream_peak": float(score(stream).max()), "cohorts": stats})
            print(f"{word:8} s{seed}: oracle {models[-1]['oracle']:.3f}, stream peak {models[-1]['stream_peak']:.3f}",
                  file=sys.stderr, flush=True)
    oracle = np.array([m["oracle"] for m in models])
    cv = lambda v: float(np.std(v) / abs(np.mean(v)))  # noqa: E731
    summary = {"raw_oracle_cv": cv(oracle),
               "stream_peak_correlation": float(np.corrcoef(oracle, [m["stream_peak"] for m in models])[0, 1])}
    for name in sorted({k for m in models for k in m["cohorts"]}):
        if all(name in m["cohorts"] for m in models):
            z = [(m["oracle"] - m["cohorts"][name]["mean"]) / m["cohorts"][name]["sd"] for m in models]
            summary[f"z_cv_{name}"] = cv(z)
    for key, value in summary.items():
        print(f"{key:32} {value:.3f}")
    out = rt.RESULTS / f"threshold_predictors_{args.name or args.tag}.json"
    out.write_text(json.dumps({"tag": args.tag, "bank": str(args.bank), "scorer": args.scorer,
                               "library": rt.library_identity(), "summary": summary, "models": models}, indent=2)
                   + "\n")
    print(out)


if __name__ == "__main__":
    main()
