"""Ensembles of a real_transfer run's models: each word's models over seeds, scores averaged, on realdev.

A head trains in seconds to minutes from the cached store, so averaging several is cheap at training time;
the question is whether it helps on real speech. For each word this loads the exported ONNX of every seed
in ``research/results/real_transfer_<tag>.json``, scores realdev with each (the protocol of
``real_transfer.py``: 1 s of silence around each file, hop 0.1 s, refractory 1 s), averages the score
traces frame by frame, and reports recall and false accepts at the mean of the members' calibrated
thresholds (chosen on synthetic data only) and at the oracle threshold tuned on realdev (<= 1 FA; optimistic).

Usage: .venv/bin/python research/real_ensemble.py --tag pf-words-6x3   (or --tag a,b: the runs of both files)
Writes research/results/real_ensemble_<tag>.json. Run it with the same PYTHONPATH as the real_transfer run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_transfer import REALDEV, RESULTS, WORDS, operating_point, oracle_threshold, padded_traces, pooled, realdev_files  # noqa: E402

from wakebuilder.detect import load_detector  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True, help="the real_transfer results to ensemble (a,b joins several)")
    p.add_argument("--realdev", type=Path, default=REALDEV, help="the realdev recordings [default: %(default)s]")
    args = p.parse_args(argv)
    sources = [RESULTS / f"real_transfer_{tag}.json" for tag in args.tag.split(",")]
    runs = [run for source in sources for run in json.loads(source.read_text(encoding="utf-8"))["runs"]]
    files = realdev_files(args.realdev)
    words = [w for w in WORDS if any(r["word"] == w for r in runs)]
    results = []
    for word in words:
        members = sorted((r for r in runs if r["word"] == word), key=lambda r: r["seed"])
        start = time.perf_counter()
        fa_paths = files["negative"] + [p for w in WORDS if w != word for p in files[w]]
        pos_sum: list[np.ndarray] | None = None
        fa_sum: list[np.ndarray] | None = None
        for member in members:
            detector = load_detector(member["onnx"])
            pos, _ = padded_traces(detector, files[word])
            fa, fa_seconds = padded_traces(detector, fa_paths)
            pos_sum = pos if pos_sum is None else [a + b for a, b in zip(pos_sum, pos)]
            fa_sum = fa if fa_sum is None else [a + b for a, b in zip(fa_sum, fa)]
        n = len(members)
        pos_mean, fa_mean = [t / n for t in pos_sum], [t / n for t in fa_sum]
        threshold = float(np.mean([m["calibrated"]["threshold"] for m in members]))
        results.append({"word": word, "seeds": [m["seed"] for m in members], "score_wall_s": time.perf_counter() - start,
                        "calibrated": operating_point(pos_mean, fa_mean, fa_seconds, threshold),
                        "oracle_tuned_on_realdev": operating_point(pos_mean, fa_mean, fa_seconds,
                                                                   oracle_threshold(fa_mean))})
        c, o = results[-1]["calibrated"], results[-1]["oracle_tuned_on_realdev"]
        print(f"{word:8} x{n}  thr {c['threshold']:.3f} recall {c['detected']}/{c['n_clips']} FA {c['false_accepts']} | "
              f"oracle {o['threshold']:.3f} recall {o['detected']}/{o['n_clips']} FA {o['false_accepts']}",
              file=sys.stderr)
    summary = {k: pooled(results, k) for k in ("calibrated", "oracle_tuned_on_realdev")}
    out = RESULTS / f"real_ensemble_{args.tag.replace(',', '+')}.json"
    out.write_text(json.dumps({"tag": args.tag, "sources": [s.name for s in sources], "threshold": "mean of members' calibrated",
                               "runs": results, "summary": summary}, indent=2) + "\n", encoding="utf-8")
    c, o = summary["calibrated"], summary["oracle_tuned_on_realdev"]
    print(f"pooled: recall {c['detected']}/{c['n_clips']} ({c['recall']:.1%}), FA {c['false_accepts']} "
          f"({c['fa_per_hour']:.1f}/h); oracle recall {o['detected']}/{o['n_clips']} ({o['recall']:.1%})")
    print(out)


if __name__ == "__main__":
    main()
