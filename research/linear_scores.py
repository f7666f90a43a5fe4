"""Scorers without a neural head on one-vector backbones (word-embedding): does a simpler decision rule on the
cached training rows rank realdev's real clips better than the recipe's head?

word-embedding gives one 2048-d vector a window (an ArcFace embedding: its own library compares them by cosine
similarity to a few reference recordings). The recipe's head (LayerNorm, a projection, a TCN and an MLP, trained
with focal loss and mixup) fits the synthetic rows, and the twenty-third round found its ranking of real clips
(79.5 % at one false accept per model) to be what keeps word-embedding under 90 %. Each scorer here is fitted on
the same rows ``wb fit`` reads (the word's store and the bank, the rows that say the word left out; the head's
training split only, so that a comparison with the head is fair) and scored on realdev's cached windows with
``real_heads.score_scores``: recall at the lowest threshold with at most K false accepts (tuned on realdev,
threshold-free figures for ranking only). realdev is never trained on.

Scorers (``--scorer``, repeatable):
  centroid   cosine to the mean of the L2-normalised positives
  center     diff after subtracting the training rows' mean from every vector (and scaling to length one again)
  abtt:K     center, and the K largest principal directions of the centred training rows projected out
  poskinds:K diff with the positives' mean over rows of kinds K only ('+'-joined: tts, augmented)
  shrink:A   a linear discriminant whose covariance is shrunk toward a multiple of the identity by 1 - A
  hardw:T    diff with the negatives' mean weighted by softmax(cosine to the positives' mean / T)
  balanced   diff with the negatives' mean the mean of each kind's mean (every kind weighted alike)
  diff       cosine to the positives' mean minus cosine to the negatives' mean
  diff:A     the same with the negatives' cosine weighted A
  negkinds:K the cosine to the positives' mean minus the largest cosine to the mean of one kind of negatives
             (K: kinds joined by '+', e.g. hard_negative; none: every kind of negative row)
  engines    the largest cosine to one engine's positives' mean, minus the cosine to the negatives' mean
  knn:K      mean of the K largest cosines to positive rows minus that to negative rows
  logreg:C   logistic regression on L2-normalised vectors (sklearn, inverse regularisation C, classes balanced)
  lda        linear discriminant with Ledoit-Wolf shrinkage on L2-normalised vectors

Usage: PYTHONPATH=research .venv/bin/python research/linear_scores.py --tag r23-word --workdir /tmp/rd \
       --bank <cache>/banks/word-embedding-1.5s/store.zarr --data-seeds 0,1,2 --scorer centroid --scorer logreg:1
Writes research/results/linear_scores_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_heads as rh  # noqa: E402
import real_transfer as rt  # noqa: E402


def unit(x: np.ndarray) -> np.ndarray:
    """Rows scaled to length one (a zero row stays zero)."""
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norm, 1e-12)


def vectors(seq: np.ndarray) -> np.ndarray:
    """``(N, T, D)`` sequences -> ``(N, D)`` float32 means over time (word-embedding has T = 1)."""
    return np.asarray(seq, dtype=np.float32).mean(axis=1)


def top_k_mean(sims: np.ndarray, k: int) -> np.ndarray:
    """Mean of each row's ``k`` largest values."""
    k = min(k, sims.shape[1])
    return np.partition(sims, sims.shape[1] - k, axis=1)[:, -k:].mean(axis=1)


def shrunk_direction(x: np.ndarray, y: np.ndarray, alpha: float) -> np.ndarray:
    """A linear discriminant on unit vectors ``x``: ``(A * S + (1 - A) * tr(S) / D * I)^-1 (mu_p - mu_n)``, with
    ``S`` the within-class covariance and ``A`` = ``alpha`` (0: the difference of the class means; 1: LDA)."""
    pos, neg = x[y == 1].astype(np.float64), x[y == 0].astype(np.float64)
    centred = np.concatenate([pos - pos.mean(axis=0), neg - neg.mean(axis=0)])
    cov = centred.T @ centred / len(centred)
    target = np.eye(cov.shape[0]) * np.trace(cov) / cov.shape[0]
    w = np.linalg.solve(alpha * cov + (1 - alpha) * target, pos.mean(axis=0) - neg.mean(axis=0))
    return w.astype(np.float32)


def fit_scorer(spec: str, x: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None,
               kinds: np.ndarray | None = None):
    """A function of ``(M, D)`` unit vectors -> ``(M,)`` scores, fitted on unit vectors ``x`` with labels ``y``
    (``groups``: each row's voice group, ``kinds``: each row's clip kind, for the scorers that split by them)."""
    name, _, arg = spec.partition(":")
    pos, neg = x[y == 1], x[y == 0]
    mean_unit = lambda rows: unit(rows.mean(axis=0, keepdims=True))[0]  # noqa: E731
    if name == "diff" and arg:  # cos to the positives' mean minus ARG times cos to the negatives'
        mu_p, mu_n = mean_unit(pos), mean_unit(neg)
        return lambda q: q @ mu_p - float(arg) * (q @ mu_n)
    if name == "negkinds":  # minus the largest cosine to one kind of negatives' mean (ARG: kinds, '+'-joined)
        present = set(np.asarray(kinds)[y == 0])
        wanted = [k for k in arg.split("+") if k in present] if arg else sorted(present)
        mus_n = np.stack([mean_unit(x[(y == 0) & (np.asarray(kinds) == k)]) for k in wanted])
        mu_p = mean_unit(pos)
        if len(wanted) == 1:
            return lambda q: q @ mu_p - q @ mus_n[0]
        return lambda q: q @ mu_p - (q @ mus_n.T).max(axis=1)
    if name == "engines":  # the largest cosine to one engine's positives' mean, minus cos to the negatives' mean
        engines = np.char.partition(np.asarray(groups).astype(str), ":")[:, 0]
        mus = np.stack([mean_unit(x[(y == 1) & (engines == e)]) for e in sorted(set(engines[y == 1]))])
        mu_n = mean_unit(neg)
        return lambda q: (q @ mus.T).max(axis=1) - q @ mu_n
    if name in ("center", "abtt"):  # diff after centring on the training rows' mean (abtt: and K top PCs removed)
        mean = x.mean(axis=0, keepdims=True)
        basis = np.zeros((0, x.shape[1]), dtype=np.float32)
        if name == "abtt":
            sample = (x - mean)[np.random.default_rng(0).permutation(len(x))[:4000]]
            basis = np.linalg.svd(sample, full_matrices=False)[2][: int(arg or 1)].astype(np.float32)
        post = lambda q: unit((q - mean) - ((q - mean) @ basis.T) @ basis)  # noqa: E731
        mu_p, mu_n = mean_unit(post(pos)), mean_unit(post(neg))
        return lambda q: post(q) @ mu_p - post(q) @ mu_n
    if name == "poskinds":  # diff with the positives' mean over the rows of kinds ARG ('+'-joined) only
        keep = np.isin(np.asarray(kinds), arg.split("+")) & (y == 1)
        mu_p, mu_n = mean_unit(x[keep]), mean_unit(neg)
        return lambda q: q @ mu_p - q @ mu_n
    if name == "balanced":  # diff with the negatives' mean the mean of each kind's unit mean
        kind_arr = np.asarray(kinds)
        mu_n = unit(np.stack([mean_unit(x[(y == 0) & (kind_arr == k)]) for k in sorted(set(kind_arr[y == 0]))])
                    .mean(axis=0, keepdims=True))[0]
        mu_p = mean_unit(pos)
        return lambda q: q @ mu_p - q @ mu_n
    if name == "shrink":
        w = shrunk_direction(x, y, float(arg))
        return lambda q: q @ w
    if name == "hardw":  # the negatives' mean weighted by softmax(cos to the positives' mean / ARG)
        mu_p = mean_unit(pos)
        logits = (neg @ mu_p) / float(arg)
        weights = np.exp(logits - logits.max())
        mu_n = unit((weights[:, None] * neg).sum(axis=0, keepdims=True))[0]
        return lambda q: q @ mu_p - q @ mu_n
    if name == "centroid":
        mu = unit(pos.mean(axis=0, keepdims=True))[0]
        return lambda q: q @ mu
    if name == "diff":
        mu_p, mu_n = unit(pos.mean(axis=0, keepdims=True))[0], unit(neg.mean(axis=0, keepdims=True))[0]
        return lambda q: q @ mu_p - q @ mu_n
    if name == "knn":
        k = int(arg or 10)

        def knn(q: np.ndarray) -> np.ndarray:
            out = np.empty(q.shape[0], dtype=np.float32)
            for i in range(0, q.shape[0], 2048):
                part = q[i: i + 2048]
                out[i: i + part.shape[0]] = top_k_mean(part @ pos.T, k) - top_k_mean(part @ neg.T, k)
            return out
        return knn
    if name == "logreg":
        from sklearn.linear_model import LogisticRegression

        model = LogisticRegression(C=float(arg or 1.0), class_weight="balanced", max_iter=2000).fit(x, y)
        return lambda q: model.decision_function(q)
    if name == "lda":
        from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

        model = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto").fit(x, y)
        return lambda q: model.decision_function(q)
    raise SystemExit(f"--scorer {spec!r}: not a scorer this script knows (see its docstring)")


def store_arguments(p: argparse.ArgumentParser, *, scorer: str | None = None,
                    data_seeds: tuple[int, ...] | None = None) -> None:
    """``--tag``, ``--workdir`` and ``--bank``: where a real_transfer run's stores and its bank are; with ``scorer``,
    ``--scorer`` (one, that default), and with ``data_seeds``, ``--data-seeds`` (comma separated, that default)."""
    p.add_argument("--tag", required=True, help="real_transfer tag (its stores under --workdir)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/rd"))
    p.add_argument("--bank", type=Path, required=True)
    if scorer is not None:
        p.add_argument("--scorer", default=scorer, help=f"a scorer of linear_scores.py [default: {scorer}]")
    if data_seeds is not None:
        p.add_argument("--data-seeds", type=lambda s: [int(x) for x in s.split(",")], default=list(data_seeds))


def word_embedding_queries(workdir: Path) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """realdev's cached word-embedding windows (1.5 s) and their unit vectors."""
    windows = rt.realdev_windows(1.5, workdir, rt.REALDEV, "word-embedding")
    return windows, unit(vectors(windows["seq"]))


def rows_and_split(workdir: Path, tag: str, bank: Path, word: str, seed: int) -> tuple[np.ndarray, ...]:
    """A word's rows as ``wb fit`` reads them (its store and the bank): unit vectors, labels, voice groups and kinds,
    and the masks of the recipe's first head's training and validation splits (``split_groups`` seed 0)."""
    from wakebuilder.train.split import split_groups

    arrays, _ = rh.load_with_bank(workdir / tag / f"{word}-s{seed}" / "store.zarr", bank, word, [])
    x, y = unit(vectors(arrays.sequence)), np.asarray(arrays.label).astype(int)
    groups, kinds = np.asarray(arrays.group).astype(str), np.asarray(arrays.kind).astype(str)
    train, val = split_groups(arrays.group, np.asarray(arrays.label), arrays.kind, seed=0).masks(arrays.group)
    return x, y, groups, kinds, train, val


def training_rows(workdir: Path, tag: str, bank: Path, word: str, seed: int, *, all_rows: bool = False
                  ) -> tuple[np.ndarray, ...]:
    """``rows_and_split``'s rows of the training split (every row with ``all_rows``): vectors, labels, groups, kinds."""
    *rows, train, _ = rows_and_split(workdir, tag, bank, word, seed)
    return tuple(rows) if all_rows else tuple(column[train] for column in rows)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    store_arguments(p)
    p.add_argument("--backbone", default="word-embedding")
    p.add_argument("--window-s", type=float, default=1.5)
    p.add_argument("--words", type=lambda s: s.split(","), default=list(rt.WORDS))
    p.add_argument("--data-seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0])
    p.add_argument("--scorer", action="append", required=True)
    p.add_argument("--all-rows", action="store_true", help="fit on every row, not only the head's training split")
    p.add_argument("--pool-seeds", action="store_true",
                   help="fit each word's scorer once on the training rows of every --data-seeds store together "
                        "(three times the synthetic data; reported as data seed -1)")
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)

    windows = rt.realdev_windows(args.window_s, args.workdir, rt.REALDEV, args.backbone)
    queries = unit(vectors(windows["seq"]))
    runs = []
    rows_of = lambda word, seed: training_rows(args.workdir, args.tag, args.bank, word, seed,  # noqa: E731
                                               all_rows=args.all_rows)
    for seed in [-1] if args.pool_seeds else args.data_seeds:
        for word in args.words:
            if seed == -1:
                parts = [rows_of(word, s) for s in args.data_seeds]
                x, y, groups_kept, kinds_kept = (np.concatenate(column) for column in zip(*parts))
            else:
                x, y, groups_kept, kinds_kept = rows_of(word, seed)
            cats = rh.categories_of(windows, word, rt.REALDEV)
            for spec in args.scorer:
                start = time.perf_counter()
                scores = fit_scorer(spec, x, y, groups_kept, kinds_kept)(queries).astype(np.float32)
                run = {"scorer": spec, "word": word, "data_seed": seed, "n_train": int(len(y)),
                       "fit_score_s": round(time.perf_counter() - start, 1),
                       **rh.score_scores(scores, word, windows, cats)}
                runs.append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
    summary = {}
    for spec in args.scorer:
        rows = [r for r in runs if r["scorer"] == spec]
        summary[spec] = {"n_clips": sum(r["n_clips"] for r in rows),
                         **{f"recall_at_{k}fa": sum(r[f"recall_at_{k}fa"] for r in rows) for k in rh.KS},
                         "recall_at_1fa_per_seed": [sum(r["recall_at_1fa"] for r in rows if r["data_seed"] == s)
                                                    for s in ([-1] if args.pool_seeds else args.data_seeds)],
                         "auc_mean": float(np.mean([r["auc"] for r in rows]))}
    print(f"\nlinear_scores {args.tag}: {', '.join(args.words)}; data seeds {args.data_seeds} (pooled; thresholds "
          "tuned on realdev)")
    for spec, s in summary.items():
        print(f"{spec:14} {s['n_clips']:>4} " + " ".join(f"{s[f'recall_at_{k}fa']:5d}" for k in rh.KS)
              + f"  per seed {s['recall_at_1fa_per_seed']}  AUC {s['auc_mean']:.4f}")
    out = rt.RESULTS / f"linear_scores_{args.name or args.tag}.json"
    out.write_text(json.dumps({"tag": args.tag, "bank": str(args.bank), "backbone": args.backbone,
                               "window_s": args.window_s, "words": args.words, "data_seeds": args.data_seeds,
                               "all_rows": args.all_rows, "pool_seeds": args.pool_seeds,
                               "library": rt.library_identity(), "summary": summary, "runs": runs}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
