"""Ensembles of a real_transfer run's models: each word's models over seeds, scores averaged, on realdev.

A head trains in seconds to minutes from the cached store, so averaging several is cheap at training time;
the question is whether it helps on real speech. For each word this loads the exported ONNX of every seed
in ``research/results/real_transfer_<tag>.json``, scores realdev with each (the protocol of
``real_transfer.py``: 1 s of silence around each file, hop 0.1 s, refractory 1 s), averages the score
traces frame by frame, and reports recall and false accepts at the mean of the members' calibrated
thresholds (chosen on synthetic data only) and at the oracle threshold tuned on realdev (<= 1 FA; optimistic).

``--heads`` scores each member's exported ``NAME.head.onnx`` on realdev's windows embedded once (the cache of
``real_transfer.realdev_windows`` under ``--workdir``) instead of running its whole ONNX per file: the same
scores within float precision, in seconds instead of minutes. ``--size K`` reports every ensemble of K members
(each word's models of the same seeds) instead of the one of all. ``--library DIR`` builds each word's ensemble of
all seeds with the library instead (``wb ensemble`` on the members' model directories, then ``wb export``, into
``DIR/<word>/``) and scores its exported model at its own threshold: the same figures if the library does what
the traces' average does.

Usage: .venv/bin/python research/real_ensemble.py --tag pf-words-6x3   (or --tag a,b: the runs of both files)
       .venv/bin/python research/real_ensemble.py --tag r12 --heads --workdir /tmp/rd --size 2
       .venv/bin/python research/real_ensemble.py --tag r12 --heads --workdir /tmp/rd --library /tmp/ens
Writes research/results/real_ensemble_<tag>[-k<K>][-heads][-lib].json. Run it with the same PYTHONPATH as the real_transfer run.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from real_transfer import REALDEV, RESULTS, WORDS, operating_point, oracle_threshold, padded_traces, pooled, realdev_files  # noqa: E402

from wakebuilder.detect import load_detector  # noqa: E402


def member_traces(member: dict, word: str, files: dict[str, list[Path]], windows: dict | None
                  ) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """One model's score traces on ``word``'s real clips and on its false-accept files, and those files' seconds."""
    onnx = Path(member["onnx"])
    if windows is not None:
        return rt.word_traces(rt.head_scores(onnx.with_name(f"{onnx.stem}.head.onnx"), windows), windows, word)
    detector = load_detector(onnx)
    pos, _ = padded_traces(detector, files[word])
    fa, fa_seconds = padded_traces(detector, files["negative"] + [p for w in WORDS if w != word for p in files[w]])
    return pos, fa, fa_seconds


def library_ensemble(model_dirs: list[Path], word: str, out: Path, streams: list[Path] = ()) -> dict:
    """``wb ensemble`` of the model directories (its threshold chosen on ``streams``, if given, as the recipe does)
    and ``wb export`` of it under ``out/<word>/``; returns it as a member (its exported ONNX, its threshold and its
    members'), seed -1."""
    from wakebuilder.ensemble import combine_models
    from wakebuilder.export import export_model

    model_dir, summary = combine_models(model_dirs, out / word / "model", streams=streams, overwrite=True,
                                        device="cpu")
    exported = export_model(model_dir, out / word / "export", name=word, overwrite=True)
    return {"seed": -1, "onnx": exported.files["onnx"], "calibrated": {"threshold": summary["threshold"]},
            "member_thresholds": [m["threshold"] for m in summary["members"]], "objective": summary["objective"]}


def ensemble(members: list[dict], traces: dict[int, tuple], word: str) -> dict:
    """The members' traces averaged frame by frame, at the mean of their calibrated thresholds and at the oracle."""
    n = len(members)
    pos = [sum(parts) / n for parts in zip(*(traces[m["seed"]][0] for m in members))]
    fa = [sum(parts) / n for parts in zip(*(traces[m["seed"]][1] for m in members))]
    fa_seconds = traces[members[0]["seed"]][2]
    threshold = float(np.mean([m["calibrated"]["threshold"] for m in members]))
    return {"word": word, "seeds": [m["seed"] for m in members],
            "calibrated": operating_point(pos, fa, fa_seconds, threshold),
            "oracle_tuned_on_realdev": operating_point(pos, fa, fa_seconds, oracle_threshold(fa))}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True, help="the real_transfer results to ensemble (a,b joins several)")
    p.add_argument("--realdev", type=Path, default=REALDEV, help="the realdev recordings [default: %(default)s]")
    p.add_argument("--heads", action="store_true", help="score the exported heads on realdev's cached windows")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/real_transfer"), help="where --heads caches the windows")
    p.add_argument("--window-s", type=float, default=2.5)
    p.add_argument("--size", type=int, default=0, help="ensembles of this many members [default: all]")
    p.add_argument("--library", type=Path, default=None, metavar="DIR",
                   help="build each word's ensemble of all seeds with wb ensemble and wb export under DIR and score it")
    args = p.parse_args(argv)
    if args.library and args.size:
        raise SystemExit("--library builds the ensemble of all seeds: leave out --size")
    sources = [RESULTS / f"real_transfer_{tag}.json" for tag in args.tag.split(",")]
    runs = [run for source in sources for run in json.loads(source.read_text(encoding="utf-8"))["runs"]]
    files = realdev_files(args.realdev)
    backbone = json.loads(sources[0].read_text(encoding="utf-8"))["recipe"].get("backbone", "speech-embedding")
    window_s = None if backbone == "word-embedding" and args.window_s == 2.5 else args.window_s  # its own 1.5 s
    windows = rt.realdev_windows(window_s, args.workdir, args.realdev, backbone) if args.heads else None
    words = [w for w in WORDS if any(r["word"] == w for r in runs)]
    seeds = sorted({r["seed"] for r in runs})
    size = args.size or len(seeds)
    if not 1 <= size <= len(seeds):
        raise SystemExit(f"--size {args.size}: give 1 to {len(seeds)} (the runs' seeds: {seeds})")
    groups: dict[tuple[int, ...], list[dict]] = {combo: [] for combo in itertools.combinations(seeds, size)}
    for word in words:
        start = time.perf_counter()
        members = {r["seed"]: r for r in runs if r["word"] == word}
        if args.library:
            built = library_ensemble([Path(members[seed]["onnx"]).parent.parent / "model" for seed in seeds], word,
                                     args.library)
            results = groups[tuple(seeds)]
            results.append(ensemble([built], {-1: member_traces(built, word, files, windows)}, word) | {"seeds": seeds})
            c = results[-1]["calibrated"]
            print(f"{word:8} wb ensemble of seeds {seeds}  thr {c['threshold']:.3f} recall {c['detected']}/{c['n_clips']} "
                  f"FA {c['false_accepts']}  ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
            continue
        traces = {seed: member_traces(member, word, files, windows) for seed, member in members.items()}
        for combo, results in groups.items():
            if all(seed in members for seed in combo):
                results.append(ensemble([members[seed] for seed in combo], traces, word))
                c, o = results[-1]["calibrated"], results[-1]["oracle_tuned_on_realdev"]
                print(f"{word:8} seeds {combo}  thr {c['threshold']:.3f} recall {c['detected']}/{c['n_clips']} "
                      f"FA {c['false_accepts']} | oracle {o['threshold']:.3f} recall {o['detected']}/{o['n_clips']} "
                      f"FA {o['false_accepts']}  ({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    summaries = []
    for combo, results in groups.items():
        summary = {k: pooled(results, k) for k in ("calibrated", "oracle_tuned_on_realdev")}
        summary["models_within_one"] = sum(r["calibrated"]["false_accepts"] <= 1 for r in results)
        summaries.append({"seeds": list(combo), "runs": results, "summary": summary})
        c, o = summary["calibrated"], summary["oracle_tuned_on_realdev"]
        print(f"seeds {combo} pooled: recall {c['detected']}/{c['n_clips']} ({c['recall']:.1%}), FA {c['false_accepts']} "
              f"({c['fa_per_hour']:.1f}/h), {summary['models_within_one']} of {len(results)} models within one; "
              f"oracle recall {o['detected']}/{o['n_clips']} ({o['recall']:.1%})")
    name = (args.tag.replace(",", "+") + (f"-k{size}" if args.size else "") + ("-heads" if args.heads else "")
            + ("-lib" if args.library else ""))
    out = RESULTS / f"real_ensemble_{name}.json"
    out.write_text(json.dumps({"tag": args.tag, "sources": [s.name for s in sources], "size": size,
                               "scoring": "heads on cached windows" if args.heads else "whole ONNX per file",
                               "threshold": "mean of members' calibrated",
                               "built": "wb ensemble + wb export" if args.library else "traces averaged",
                               "ensembles": summaries}, indent=2) + "\n",
                   encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main()
