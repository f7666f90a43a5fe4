"""How many realdev clips would a perfect second-stage verifier add? Recall when the top false accepts are removed.

A diagnostic, never a recipe. Each exported model (found by ``--pattern``) scores realdev's cached windows. For each
``k`` in ``--k``, the threshold is the oracle's lowest with at most ``k`` false-accept events (``oracle_threshold``),
and the word's clips are counted at it. ``k`` = 1 is the target's operating point. ``k`` = 5 is what a verifier
that rejected the model's four loudest false accepts, and no positive, would leave within one: the recall at
``k`` = 5 bounds what such a verifier could add. Each model's loudest false-accept files are listed too (what a
verifier would have to reject).

Usage: PYTHONPATH=research .venv/bin/python research/verifier_headroom.py \
       --pattern '/tmp/rd/r27-word/{word}-s{seed}/export/{word}.onnx' --name r29-word
Writes research/results/verifier_headroom_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402


def headroom(pos: list[np.ndarray], fa: list[np.ndarray], ks: list[int]) -> dict[int, dict]:
    """Per ``k``: the oracle threshold with at most ``k`` false-accept events and the positives detected at it."""
    out = {}
    for k in ks:
        threshold = rt.oracle_threshold(fa, k)
        out[k] = {"threshold": threshold, "detected": rt.n_detected(pos, threshold)}
    return out


def loudest(traces: list[np.ndarray], names: list[str], n: int) -> list[tuple[str, float]]:
    """The ``n`` files with the highest peak score, loudest first."""
    peaks = np.array([t.max() for t in traces])
    return [(names[i], float(peaks[i])) for i in np.argsort(-peaks, kind="stable")[:n]]


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rt.export_arguments(p)
    p.add_argument("--k", type=lambda s: [int(x) for x in s.split(",")], default=[1, 3, 5, 10, 20, 50, 100])
    p.add_argument("--name", required=True)
    args = p.parse_args(argv)

    windows = rt.realdev_windows(args.window_s, args.workdir, rt.REALDEV, args.backbone)
    files = rt.realdev_files(rt.REALDEV)
    names = [path.name for label in (*rt.WORDS, "negative") for path in files[label]]
    runs, pooled = [], {k: 0 for k in args.k}
    for seed in args.data_seeds:
        for word in rt.WORDS:
            onnx = Path(args.pattern.format(word=word, seed=seed))
            scores = rt.head_scores(onnx.with_name(f"{onnx.stem}.head.onnx"), windows)
            pos, fa, _ = rt.word_traces(scores, windows, word)
            is_word = windows["label"] == word
            fa_names = [n for n, w in zip(names, is_word) if not w]
            room = headroom(pos, fa, args.k)
            for k in args.k:
                pooled[k] += room[k]["detected"]
            runs.append({"word": word, "seed": seed, "n_clips": len(pos), "by_k": room,
                         "loudest_false_accepts": loudest(fa, fa_names, 6)})
            print(f"{word:8} s{seed}: " + ", ".join(f"k={k} {room[k]['detected']}" for k in args.k)
                  + f" of {len(pos)}; loudest: {', '.join(n for n, _ in runs[-1]['loudest_false_accepts'][:4])}",
                  flush=True)
    n_clips = sum(r["n_clips"] for r in runs)
    print("pooled: " + ", ".join(f"k={k} {pooled[k]}/{n_clips}" for k in args.k))
    out = Path(__file__).resolve().parent / "results" / f"verifier_headroom_{args.name}.json"
    out.write_text(json.dumps({"pattern": args.pattern, "k": args.k, "pooled": pooled, "n_clips": n_clips,
                               "runs": runs}, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
