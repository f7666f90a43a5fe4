"""realdev figures of exported models found by a path pattern: the calibrated threshold and the oracle.

For models built outside ``real_transfer.py`` (by the library's commands in a shell loop): each ``{word}``/``{seed}``
export is scored with ``real_transfer.score_word`` on realdev's cached windows (its head ONNX), then pooled as
``real_transfer`` pools its runs: recall and false accepts at each model's calibrated threshold, and at the lowest
threshold with at most one false accept per model (tuned on realdev: a ranking figure).

Usage: WB_CACHE_DIR=/tmp/rd-cache PYTHONPATH=research .venv/bin/python research/score_exports.py \
       --pattern '/tmp/r26/lib/{word}-s{seed}/export/{word}.onnx' --backbone word-embedding --window-s 1.5 --name NAME
Writes research/results/score_exports_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rt.export_arguments(p, window_s=None)
    p.add_argument("--words", type=lambda s: s.split(","), default=list(rt.WORDS))
    p.add_argument("--name", required=True)
    args = p.parse_args(argv)

    windows = rt.realdev_windows(args.window_s, args.workdir, rt.REALDEV, args.backbone)
    files = rt.realdev_files(rt.REALDEV)
    runs = []
    for seed in args.data_seeds:
        for word in args.words:
            onnx = Path(args.pattern.format(word=word, seed=seed))
            run = {"word": word, "seed": seed, "onnx": str(onnx), **rt.score_word(word, onnx, files, windows)}
            runs.append(run)
            c, o = run["calibrated"], run["oracle_tuned_on_realdev"]
            print(f"{word:8} s{seed}: threshold {c['threshold']:.3f} -> {c['detected']}/{c['n_clips']}, "
                  f"{c['false_accepts']} FA; oracle {o['detected']}", file=sys.stderr, flush=True)
    summary = {}
    for key in ("calibrated", "oracle_tuned_on_realdev"):
        summary[key] = {**rt.pooled(runs, key),
                        "models_within_one": sum(r[key]["false_accepts"] <= 1 for r in runs)}
        s = summary[key]
        print(f"{key}: {s['detected']}/{s['n_clips']} ({100 * s['recall']:.1f} %), {s['false_accepts']} FA, "
              f"{s['models_within_one']} of {len(runs)} within one")
    out = rt.RESULTS / f"score_exports_{args.name}.json"
    out.write_text(json.dumps({"pattern": args.pattern, "backbone": args.backbone, "window_s": args.window_s,
                               "library": rt.library_identity(), "summary": summary, "runs": runs}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
