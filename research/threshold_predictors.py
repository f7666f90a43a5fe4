"""Does anything in a word's synthetic data predict where its real threshold lies?

For each word and data seed a ``linear_scores`` scorer is fitted (the word's store and the bank, the recipe's first
head's training split) and its realdev oracle threshold found (the lowest with at most one false accept, tuned on
realdev). Beside it, statistics that a rule could read without realdev: per kind of validation-split negative (and
the validation positives) the mean, standard deviation and maximum of the raw score, and the peak of the score over
the cached held-out stream pass. A rule "threshold = cohort mean + z cohort sd" transfers across words only if the
oracle's z against that cohort is about constant: the coefficient of variation of z (sd / |mean| over the 18
models) is printed per cohort, beside that of the raw oracle thresholds. Each such rule is then scored as the
twenty-second round scored a fixed threshold: z (or the raw threshold) is the highest of data seed 0's models, so
that each of them has at most one false accept, and the rule is read on every seed (seeds 1 and 2 share realdev's
clips with seed 0, so this is not a held-out measure).

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
from linear_scores import (  # noqa: E402
    fit_scorer, rows_and_split, store_arguments, unit, vectors, word_embedding_queries,
)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    store_arguments(p, scorer="diff", data_seeds=(0, 1, 2))
    p.add_argument("--stream", type=Path, required=True, help="word-embedding's cached held-out stream pass (.npy)")
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)

    windows, queries = word_embedding_queries(args.workdir)
    stream = unit(vectors(np.load(args.stream)))
    models, traces = [], {}
    for seed in args.data_seeds:
        for word in rt.WORDS:
            x_all, y_all, _, kinds, train, val = rows_and_split(args.workdir, args.tag, args.bank, word, seed)
            score = fit_scorer(args.scorer, x_all[train], y_all[train])
            pos, fa, seconds = rt.word_traces(score(queries), windows, word)
            traces[word, seed] = pos, fa, seconds
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
    rules = {"raw": lambda m, z: z} | {
        name: (lambda m, z, name=name: m["cohorts"][name]["mean"] + z * m["cohorts"][name]["sd"])
        for name in sorted({k for m in models for k in m["cohorts"]}) if all(name in m["cohorts"] for m in models)}
    summary["rules"] = {}
    for name, rule in rules.items():
        first = [m for m in models if m["seed"] == args.data_seeds[0]]
        if name == "raw":
            z = max(m["oracle"] for m in first)
        else:
            z = max((m["oracle"] - m["cohorts"][name]["mean"]) / m["cohorts"][name]["sd"] for m in first)
        points = [rt.operating_point(*traces[m["word"], m["seed"]][:2], traces[m["word"], m["seed"]][2], rule(m, z))
                  for m in models]
        summary["rules"][name] = {"z": z, "detected": sum(p["detected"] for p in points),
                                  "n_clips": sum(p["n_clips"] for p in points),
                                  "false_accepts": sum(p["false_accepts"] for p in points),
                                  "models_within_one": sum(p["false_accepts"] <= 1 for p in points)}
        r = summary["rules"][name]
        print(f"rule {name:20} z {z:7.3f}: {r['detected']}/{r['n_clips']}, {r['false_accepts']} FA, "
              f"{r['models_within_one']} of {len(points)} within one")
    oracle_hits = sum(rt.n_detected(traces[m["word"], m["seed"]][0], m["oracle"]) for m in models)
    summary["oracle_detected"] = oracle_hits
    print(f"oracle (each model's own): {oracle_hits}")
    out = rt.RESULTS / f"threshold_predictors_{args.name or args.tag}.json"
    out.write_text(json.dumps({"tag": args.tag, "bank": str(args.bank), "scorer": args.scorer,
                               "library": rt.library_identity(), "summary": summary, "models": models}, indent=2)
                   + "\n")
    print(out)


if __name__ == "__main__":
    main()
