"""Would real speech of other speakers find the realdev clips that word-embedding's synthetic models miss?

A diagnostic of the ranking's ceiling, never a recipe: it trains on realdev, which the protocol keeps out of every
model. For each word, data seed and mixing weight ``r``, the shrunk discriminant (``linear_scores.shrunk_direction``,
the recipe's centroids head) is fitted with its class means mixed ``r`` from realdev's real windows and ``1 - r``
from the synthetic training rows (the run's store and the bank, the recipe's first head's training split), and its
covariance pooled over both. realdev's files are split into ``--folds`` folds by speaker (Speech Commands' speaker
hash; a read-speech or music file is its own speaker): each fold is scored by the direction fitted without it, so no
clip and no speaker is scored by a model that saw it. A positive file gives the ``--positive-windows`` windows
around its middle (the 1 s clip inside the 1.5 s window), a negative file every window. ``r`` = 0 is the synthetic
model alone (one fit scores every file). Recall is at the oracle threshold (at most one false accept per model over
every other file, tuned on realdev), the ranking figure of the twenty-sixth round.

``--in-sample`` adds the bound with train = test: the direction fitted on all of realdev's real windows and
scored on them. What no direction of this backbone can rank (at that shrinkage) is missed there too.

Usage: PYTHONPATH=research .venv/bin/python research/real_ceiling.py --tag r27-word \
       --bank <cache>/banks/word-embedding-1.5s/store.zarr --data-seeds 0,1,2 --mix 0,0.1,0.25,0.5
Writes research/results/real_ceiling_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from linear_scores import store_arguments, training_rows, word_embedding_queries  # noqa: E402


def speaker(name: str) -> str:
    """A realdev file's speaker: Speech Commands' hash (``<hash>_nohash_<n>.wav`` or ``<word>_<hash>_nohash_<n>``),
    else the file itself (read speech, music, noise)."""
    if "_nohash_" not in name:
        return name
    return name.split("_nohash_")[0].split("_")[-1]


def speaker_folds(names: list[str], folds: int, seed: int = 0) -> np.ndarray:
    """Each file's fold, every speaker's files in one fold, speakers dealt round-robin in a seeded random order."""
    speakers = [speaker(n) for n in names]
    order = np.random.default_rng(seed).permutation(sorted(set(speakers)))
    fold_of = {s: i % folds for i, s in enumerate(order)}
    return np.array([fold_of[s] for s in speakers])


def file_spans(file_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of each file's windows in the cached realdev windows."""
    starts = np.r_[0, np.flatnonzero(np.diff(file_index)) + 1]
    return starts, np.r_[starts[1:], file_index.size]


def realdev_layout(workdir: Path, n_folds: int) -> tuple[dict[str, np.ndarray], np.ndarray, list[str], np.ndarray,
                                                         np.ndarray, np.ndarray]:
    """realdev's cached word-embedding windows and their unit vectors, its files' names in the windows' order, each
    file's span of windows (``file_spans``) and speaker fold (``speaker_folds``)."""
    windows, queries = word_embedding_queries(workdir)
    files = rt.realdev_files(rt.REALDEV)
    names = [path.name for label in (*rt.WORDS, "negative") for path in files[label]]
    return (windows, queries, names, *file_spans(windows["file_index"]), speaker_folds(names, n_folds))


def real_rows(files: np.ndarray, labels: np.ndarray, word: str, starts: np.ndarray, ends: np.ndarray,
              positive_windows: int) -> tuple[np.ndarray, np.ndarray]:
    """Window indices of ``files``: the word's positives (the middle ``positive_windows``) and the rest (all)."""
    pos, neg = [], []
    for i in files:
        if labels[i] == word:
            mid = (starts[i] + ends[i]) // 2
            lo = max(starts[i], mid - positive_windows // 2)
            pos.extend(range(lo, min(ends[i], lo + positive_windows)))
        else:
            neg.extend(range(starts[i], ends[i]))
    return np.array(pos, dtype=np.int64), np.array(neg, dtype=np.int64)


Stats = tuple  # (rows, their sum, their Gram matrix), float64: a class's sufficient statistics


def class_stats(rows: np.ndarray) -> Stats:
    """``rows``' count, sum and Gram matrix (float64)."""
    x = rows.astype(np.float64)
    return len(x), x.sum(axis=0), x.T @ x


def summed(stats: list[Stats]) -> Stats:
    """The statistics of the union of disjoint row sets."""
    return (sum(s[0] for s in stats), sum(s[1] for s in stats), sum(s[2] for s in stats))


def direction_from_stats(parts: list[tuple[Stats, Stats]], weights: list[float], alpha: float) -> np.ndarray:
    """The shrunk discriminant of ``linear_scores.shrunk_direction`` with each class mean the ``weights``-mix of the
    ``(positives, negatives)`` sources' means and the within-class covariance pooled over every source's rows (each
    source's class centred on its own mean), from each source's ``class_stats``."""
    used = [(pair, w) for pair, w in zip(parts, weights) if w]
    mu_p = sum(w * p[1] / p[0] for (p, _), w in used)
    mu_n = sum(w * n[1] / n[0] for (_, n), w in used)
    scatter = sum(s[2] - np.outer(s[1], s[1]) / s[0] for pair, _ in used for s in pair)
    cov = scatter / sum(s[0] for pair, _ in used for s in pair)
    target = np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
    return np.linalg.solve(alpha * cov + (1 - alpha) * target, mu_p - mu_n).astype(np.float32)


def recall(scores: np.ndarray, windows: dict[str, np.ndarray], word: str, names: list[str]) -> dict:
    """Detected clips at the oracle threshold, and the names of those missed."""
    pos, fa, _ = rt.word_traces(scores, windows, word)
    threshold = rt.oracle_threshold(fa)
    labels = windows["label"]
    word_names = [n for n, label in zip(names, labels) if label == word]
    missed = [n for n, trace in zip(word_names, pos) if not (trace >= threshold).any()]
    return {"detected": len(pos) - len(missed), "n_clips": len(pos), "missed": missed}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    store_arguments(p, data_seeds=(0, 1, 2))
    p.add_argument("--mix", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 0.1, 0.25, 0.5],
                   help="weights r of the real class means (comma separated)")
    p.add_argument("--alpha", type=float, default=0.2, help="the discriminant's shrinkage (the recipe's 0.2)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--positive-windows", type=int, default=5)
    p.add_argument("--in-sample", type=lambda s: [float(x) for x in s.split(",")], default=[0.2, 0.9],
                   help="shrinkages of the train = test bound (comma separated; empty: none)")
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)

    windows, queries, names, starts, ends, folds = realdev_layout(args.workdir, args.folds)
    labels = windows["label"]
    everything = np.arange(len(names))
    results: dict = {"cross": {}, "in_sample": {}}
    # each (label, fold)'s windows: every window as a negative, the middle ones of each file as a positive
    groups: dict[tuple[str, int], tuple[Stats, Stats]] = {}
    for label in (*rt.WORDS, "negative"):
        for fold in range(args.folds):
            chosen = np.flatnonzero((labels == label) & (folds == fold))
            middle, _ = real_rows(chosen, labels, label, starts, ends, args.positive_windows)
            every = np.concatenate([np.arange(starts[i], ends[i]) for i in chosen] + [np.zeros(0, np.int64)])
            groups[label, fold] = (class_stats(queries[middle]), class_stats(queries[every]))
    for seed in args.data_seeds:
        for word in rt.WORDS:
            x, y, *_ = training_rows(args.workdir, args.tag, args.bank, word, seed)
            synthetic = (class_stats(x[y == 1]), class_stats(x[y == 0]))
            for r in args.mix:
                scores = np.zeros(len(queries), np.float32)
                for fold in ([None] if r == 0 else range(args.folds)):
                    seen = [f for f in range(args.folds) if f != fold]
                    real = (summed([groups[word, f][0] for f in seen]),
                            summed([groups[label, f][1] for label in (*rt.WORDS, "negative") if label != word
                                    for f in seen]))
                    w = direction_from_stats([synthetic, real], [1 - r, r], args.alpha)
                    for i in (everything if fold is None else np.flatnonzero(folds == fold)):
                        scores[starts[i]:ends[i]] = queries[starts[i]:ends[i]] @ w
                got = recall(scores, windows, word, names)
                results["cross"].setdefault(f"{r:g}", {}).setdefault(str(seed), {})[word] = got
                print(f"seed {seed} r {r:g} {word:8} {got['detected']}/{got['n_clips']} missed {got['missed']}",
                      flush=True)
    for alpha in args.in_sample:
        for word in rt.WORDS:
            real = (summed([groups[word, f][0] for f in range(args.folds)]),
                    summed([groups[label, f][1] for label in (*rt.WORDS, "negative") if label != word
                            for f in range(args.folds)]))
            w = direction_from_stats([real], [1.0], alpha)
            got = recall(queries @ w, windows, word, names)
            results["in_sample"].setdefault(f"{alpha:g}", {})[word] = got
            print(f"in-sample alpha {alpha:g} {word:8} {got['detected']}/{got['n_clips']} missed {got['missed']}")

    def total(per_word: dict) -> int:
        return sum(v["detected"] for v in per_word.values())

    summary = {"cross": {r: {s: total(v) for s, v in by_seed.items()} for r, by_seed in results["cross"].items()},
               "in_sample": {a: total(v) for a, v in results["in_sample"].items()}}
    print(json.dumps(summary))
    out = rt.RESULTS / f"real_ceiling_{args.name or args.tag}.json"
    out.write_text(json.dumps({"tag": args.tag, "bank": str(args.bank), "alpha": args.alpha, "folds": args.folds,
                               "positive_windows": args.positive_windows, "data_seeds": args.data_seeds,
                               "library": rt.library_identity(), "summary": summary, **results}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
