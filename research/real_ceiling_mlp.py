"""``real_ceiling.py`` with a nonlinear head: does a small network with real speech of other speakers find more?

A diagnostic, never a recipe (it trains on realdev). The same folds, rows and mixing as ``real_ceiling.py``, but the
head is a one-hidden-layer network (2048 -> 256, ReLU, dropout 0.3 -> 1) on the unit vectors, trained with a
weighted logistic loss: the synthetic positives and negatives weigh ``(1 - r) / 2`` each and realdev's positives and
negatives of the other folds ``r / 2`` each, every row of a group alike. Adam (1e-3, weight decay 1e-4), batches of
512, ``--epochs`` passes, torch seed 0. Recall at the oracle threshold, as ``real_ceiling.py``.

Usage: PYTHONPATH=research .venv/bin/python research/real_ceiling_mlp.py --tag r27-word \
       --bank <cache>/banks/word-embedding-1.5s/store.zarr --data-seeds 0,1,2 --mix 0,0.25,0.5 --epochs 8
Writes research/results/real_ceiling_mlp_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from linear_scores import store_arguments, training_rows  # noqa: E402
from real_ceiling import real_rows, realdev_layout, recall  # noqa: E402


def fit_network(groups: list[tuple[np.ndarray, int]], weights: list[float], epochs: int):
    """The head on ``(rows, label)`` groups, each group weighing its share of ``weights`` (see the docstring)."""
    import torch

    torch.manual_seed(0)
    x = torch.cat([torch.as_tensor(rows, dtype=torch.float32) for rows, _ in groups])
    y = torch.cat([torch.full((len(rows),), float(label)) for rows, label in groups])
    w = torch.cat([torch.full((len(rows),), share / len(rows)) for (rows, _), share in zip(groups, weights)])
    w = w / w.mean()
    net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], 256), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                              torch.nn.Linear(256, 1))
    opt = torch.optim.Adam(net.parameters(), 1e-3, weight_decay=1e-4)
    for _ in range(epochs):
        order = torch.randperm(len(x))
        for start in range(0, len(x), 512):
            batch = order[start : start + 512]
            opt.zero_grad()
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[batch]).squeeze(1), y[batch],
                                                                        reduction="none")
            (loss * w[batch]).mean().backward()
            opt.step()
    net.eval()
    return lambda rows: net(torch.as_tensor(rows, dtype=torch.float32)).squeeze(1).detach().numpy()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    store_arguments(p, data_seeds=(0, 1, 2))
    p.add_argument("--mix", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 0.25, 0.5])
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--positive-windows", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    windows, queries, names, starts, ends, folds = realdev_layout(args.workdir, args.folds)
    labels = windows["label"]
    results: dict = {}
    for seed in args.data_seeds:
        for word in rt.WORDS:
            x, y, *_ = training_rows(args.workdir, args.tag, args.bank, word, seed)
            synthetic = [(x[y == 1], 1), (x[y == 0], 0)]
            for r in args.mix:
                scores = np.zeros(len(queries), np.float32)
                for fold in ([None] if r == 0 else range(args.folds)):
                    groups, weights = list(synthetic), [(1 - r) / 2, (1 - r) / 2]
                    if fold is not None:
                        pos, neg = real_rows(np.flatnonzero(folds != fold), labels, word, starts, ends,
                                             args.positive_windows)
                        groups += [(queries[pos], 1), (queries[neg], 0)]
                        weights += [r / 2, r / 2]
                    head = fit_network(groups, weights, args.epochs)
                    scored = np.arange(len(names)) if fold is None else np.flatnonzero(folds == fold)
                    rows = np.concatenate([np.arange(starts[i], ends[i]) for i in scored])
                    scores[rows] = head(queries[rows])
                got = recall(scores, windows, word, names)
                results.setdefault(f"{r:g}", {}).setdefault(str(seed), {})[word] = got
                print(f"seed {seed} r {r:g} {word:8} {got['detected']}/{got['n_clips']} missed {got['missed']}",
                      flush=True)
    summary = {r: {s: sum(v["detected"] for v in per_word.values()) for s, per_word in by_seed.items()}
               for r, by_seed in results.items()}
    print(json.dumps(summary))
    out = rt.RESULTS / f"real_ceiling_mlp_{args.name or args.tag}.json"
    out.write_text(json.dumps({"tag": args.tag, "bank": str(args.bank), "epochs": args.epochs, "folds": args.folds,
                               "positive_windows": args.positive_windows, "data_seeds": args.data_seeds,
                               "library": rt.library_identity(), "summary": summary, "cross": results},
                              indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
