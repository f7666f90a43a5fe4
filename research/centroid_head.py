"""The two-centroid scorer on word-embedding, calibrated as the recipe calibrates a head, alone and fused with
speech-embedding's models.

``linear_scores.py`` found that on word-embedding's vectors the cosine to the positives' mean minus the cosine to
the negatives' mean ranks realdev's real clips better than the recipe's head (198 of 234 at one false accept per
model against 186). A ranking is not a detector: this script gives the scorer a threshold the way ``wb calibrate``
gives the recipe's heads one, without reading realdev, and scores the result:

1. the two centroids from the rows ``wb fit`` reads (word store and bank), training split only (``split_groups``
   seed 0, the recipe's first head's split);
2. Platt scaling fitted on the validation split's scores (``fit_platt``), so that scores are probabilities;
3. the threshold by the recipe's rule (``recipe_model.calibration_config``: the FA/h rule at 0.5 FA/h on the cached
   held-out stream pass, not below the validation split's best-F1 threshold), with ``--floor`` as the minimum
   (word-embedding's head takes 0.8; 0 = none);
4. realdev: recall and false accepts at that threshold, and the oracle (<= 1 false accept, tuned on realdev);
5. with ``--se`` (speech-embedding runs of the same words and seeds), the mean of the two probabilities frame by
   frame, windows aligned on their centres as ``backbone_fusion.py`` aligns them, at the mean of the two
   thresholds (as ``wb fuse`` combines them) and at the oracle.

The research protocol's 1.0 s refractory period applies (``real_transfer.py``).

Usage: WB_CACHE_DIR=/tmp/rd-cache PYTHONPATH=research .venv/bin/python research/centroid_head.py --tag r23-word \
       --bank <cache>/banks/word-embedding-1.5s/store.zarr --stream <cache>/stream-embeddings/<word-embedding>.npy \
       --se r24-se-s0,r24-se-s12 --se-stream <cache>/stream-embeddings/<speech-embedding>.npy
Writes research/results/centroid_head_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backbone_fusion as bf  # noqa: E402
import real_heads as rh  # noqa: E402
import real_transfer as rt  # noqa: E402
from linear_scores import shrunk_direction, unit, vectors  # noqa: E402


class Centroids:
    """cos(x, mean of positives) - cos(x, mean of negatives), Platt-scaled to a probability."""

    def __init__(self, x: np.ndarray, y: np.ndarray, shrink: float | None = None) -> None:
        if shrink is None:
            self.direction = (unit(x[y == 1].mean(axis=0, keepdims=True))[0]
                              - unit(x[y == 0].mean(axis=0, keepdims=True))[0]).astype(np.float32)
        else:  # linear_scores' shrink:A, the within-class covariance shrunk toward the identity
            self.direction = shrunk_direction(x, y, shrink)
        self.temperature, self.bias = 1.0, 0.0

    def raw(self, seq: np.ndarray) -> np.ndarray:
        return unit(vectors(seq)) @ self.direction

    def fit_platt(self, seq: np.ndarray, labels: np.ndarray) -> None:
        from wakebuilder.calibrate_rules import fit_platt

        self.temperature, self.bias = fit_platt(self.raw(seq), labels, where="centroids' validation split")

    def __call__(self, seq: np.ndarray) -> np.ndarray:
        from wakebuilder.scoring import apply_platt

        return np.asarray(apply_platt(self.raw(seq), self.temperature, self.bias), dtype=np.float32)


FIXED: list[float] = []  # --fixed: thresholds every arm is also scored at


def point(pos: list[np.ndarray], fa: list[np.ndarray], seconds: float, calibrated: float,
          stream_rule: float | None = None) -> dict:
    """``backbone_fusion.point`` and, for each ``--fixed`` threshold, the operating point there (``fixed <t>``)."""
    out = bf.point(pos, fa, seconds, calibrated, stream_rule)
    for t in FIXED:
        out[f"fixed {t:g}"] = rt.operating_point(pos, fa, seconds, t)
    return out


def threshold_for(scorer: Centroids, val_seq: np.ndarray, val_y: np.ndarray, stream_trace: np.ndarray,
                  floor: float) -> tuple[float, float]:
    """The recipe's threshold for ``scorer`` (FA/h rule on the stream, not below best F1 nor ``floor``) and the
    validation split's best-F1 threshold."""
    from wakebuilder import metrics
    from wakebuilder.calibrate import CalibrateConfig, stream_fa_per_hour
    from wakebuilder.calibrate_rules import choose_threshold

    config = CalibrateConfig(objective="auto", not_below_f1=True, min_threshold=floor, refractory_s=rt.REFRACTORY_S)
    scores = scorer(val_seq)
    grid = metrics.threshold_grid(scores, stream_peak=float(stream_trace.max()))
    table = metrics.sweep(val_y, scores, grid)
    hours = stream_trace.size * rt.HOP_S / 3600
    fa_h = stream_fa_per_hour([stream_trace], hours, grid, config)
    return choose_threshold(table, fa_h, config), metrics.best_f1_threshold(table)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True, help="word-embedding real_transfer tag (its stores under --workdir)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/rd"))
    p.add_argument("--bank", type=Path, required=True)
    p.add_argument("--stream", type=Path, required=True, help="word-embedding's cached held-out stream pass (.npy)")
    p.add_argument("--floor", type=float, default=0.0, help="minimum threshold [default: none]")
    p.add_argument("--se", default=None, help="speech-embedding real_transfer tags to fuse with (comma separated)")
    p.add_argument("--se-stream", type=Path, default=None, help="speech-embedding's pass over the same stream")
    p.add_argument("--word-head", default=None,
                   help="word-embedding real_transfer tags whose exported heads join the fusion (a third member)")
    p.add_argument("--fixed", type=lambda s: [float(x) for x in s.split(",")], default=[],
                   help="also score every arm at these fixed thresholds (choose them on one seed, read the others)")
    p.add_argument("--shrink", type=float, default=None,
                   help="score by linear_scores' shrink:A direction instead of the two centroids' difference")
    p.add_argument("--words", type=lambda s: s.split(","), default=list(rt.WORDS))
    p.add_argument("--data-seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)

    from wakebuilder.train.split import split_groups

    FIXED[:] = args.fixed
    windows = rt.realdev_windows(None, args.workdir, rt.REALDEV, "word-embedding")
    stream = np.load(args.stream)
    se_runs, se_windows, shift, se_stream = [], None, 0, None
    if args.se:
        name_b, win_b, se_runs = bf.load_runs(args.se)
        if name_b != "speech-embedding":
            raise SystemExit(f"--se {args.se}: runs of {name_b}, not speech-embedding")
        se_windows = rt.realdev_windows(win_b, args.workdir, rt.REALDEV, name_b)
        shift = round((win_b - 1.5) / 2 / rt.HOP_S)
        se_stream = np.load(args.se_stream) if args.se_stream else None
    arms: dict[str, list[dict]] = {"centroids": []}
    if args.se:
        arms.update({"speech-embedding": [], "centroids + speech-embedding": []})
    word_runs = bf.load_runs(args.word_head)[2] if args.word_head else []
    if args.word_head:
        arms.update({"word head": [], "centroids + word head": [], "centroids + word head, 1:3": []})
        if args.se:
            arms.update({"word head + speech-embedding": [], "centroids + word head + speech-embedding": []})
    for seed in args.data_seeds:
        for word in args.words:
            store = args.workdir / args.tag / f"{word}-s{seed}" / "store.zarr"
            arrays, _ = rh.load_with_bank(store, args.bank, word, [])
            labels = np.asarray(arrays.label).astype(int)
            train, val = split_groups(arrays.group, labels, arrays.kind, seed=0).masks(arrays.group)
            seq = np.asarray(arrays.sequence)
            scorer = Centroids(unit(vectors(seq[train])), labels[train], args.shrink)
            scorer.fit_platt(seq[val], labels[val])
            trace = scorer(stream)
            threshold, f1 = threshold_for(scorer, seq[val], labels[val], trace, args.floor)
            pos, fa, seconds = rt.word_traces(scorer(windows["seq"]), windows, word)
            tag = {"word": word, "seed": seed, "f1_threshold": f1, "temperature": scorer.temperature,
                   "bias": scorer.bias, "stream_peak": float(trace.max())}
            arms["centroids"].append(tag | point(pos, fa, seconds, threshold))
            c = arms["centroids"][-1]
            line = (f"{word:8} s{seed} centroids: thr {threshold:.3f} -> {c['calibrated']['detected']}/{len(pos)} "
                    f"{c['calibrated']['false_accepts']} FA; oracle {c['oracle_tuned_on_realdev']['detected']}")
            if args.se:
                runs = [r for r in se_runs if r["word"] == word and r["seed"] == seed]
                pb, fb, _, thr_b, st_b, f1_b = bf.side(runs, "speech-embedding", se_windows, se_stream, word)
                arms["speech-embedding"].append({"word": word, "seed": seed} | point(pb, fb, seconds, thr_b))
                both = (threshold + thr_b) / 2
                fused_pos, fused_fa = bf.fuse(pos, pb, shift, 0, "mean"), bf.fuse(fa, fb, shift, 0, "mean")
                rule = None
                if st_b is not None:
                    rule = bf.stream_rule(bf.fuse([trace], [st_b], shift, 0, "mean")[0], max((f1 + f1_b) / 2,
                                                                                            args.floor / 2))
                arms["centroids + speech-embedding"].append({"word": word, "seed": seed}
                                                            | point(fused_pos, fused_fa, seconds, both, rule))
                f = arms["centroids + speech-embedding"][-1]
                line += (f" | fused: thr {both:.3f} -> {f['calibrated']['detected']} {f['calibrated']['false_accepts']}"
                         f" FA; oracle {f['oracle_tuned_on_realdev']['detected']}")
            if args.word_head:
                runs = [r for r in word_runs if r["word"] == word and r["seed"] == seed]
                pw, fw, _, thr_w, *_ = bf.side(runs, "word-embedding", windows, None, word)
                arms["word head"].append({"word": word, "seed": seed} | point(pw, fw, seconds, thr_w))
                mean = lambda *ts: [sum(parts) / len(parts) for parts in zip(*ts)]  # noqa: E731
                arms["centroids + word head"].append({"word": word, "seed": seed} | point(
                    mean(pos, pw), mean(fa, fw), seconds, (threshold + thr_w) / 2))
                # as one ensemble of the centroids head and the recipe's three heads (wb ensemble's equal weights)
                quarter = lambda c, w: [(a + 3 * b) / 4 for a, b in zip(c, w)]  # noqa: E731
                arms["centroids + word head, 1:3"].append({"word": word, "seed": seed} | point(
                    quarter(pos, pw), quarter(fa, fw), seconds, (threshold + 3 * thr_w) / 4))
                if args.se:
                    pb_al = [bf.align(t, shift, a.size) for t, a in zip(pb, pos)]
                    fb_al = [bf.align(t, shift, a.size) for t, a in zip(fb, fa)]
                    arms["word head + speech-embedding"].append({"word": word, "seed": seed} | point(
                        mean(pw, pb_al), mean(fw, fb_al), seconds, (thr_w + thr_b) / 2))
                    arms["centroids + word head + speech-embedding"].append({"word": word, "seed": seed} | point(
                        mean(pos, pw, pb_al), mean(fa, fw, fb_al), seconds, (threshold + thr_w + thr_b) / 3))
                    three = arms["centroids + word head + speech-embedding"][-1]
                    line += f" | three: oracle {three['oracle_tuned_on_realdev']['detected']}"
            print(line, file=sys.stderr, flush=True)
    summary = {}
    for arm, results in arms.items():
        summary[arm], line = bf.summarize_arm(arm, results, width=30)
        print(line)
        for t in FIXED:
            key = f"fixed {t:g}"
            summary[arm][key] = bf.pooled(results, key)
            for seed in args.data_seeds:
                rows = [r for r in results if r["seed"] == seed]
                within = sum(r[key]["false_accepts"] <= 1 for r in rows)
                summary[arm][f"{key} seed {seed}"] = {**bf.pooled(rows, key), "models_within_one": within}
            print(f"{'':30} at {t:g}: " + "; ".join(
                f"seed {s}: {summary[arm][f'{key} seed {s}']['detected']}/{summary[arm][f'{key} seed {s}']['n_clips']}"
                f" {summary[arm][f'{key} seed {s}']['false_accepts']} FA, "
                f"{summary[arm][f'{key} seed {s}']['models_within_one']} within one" for s in args.data_seeds))
    out = rt.RESULTS / f"centroid_head_{args.name or args.tag}.json"
    out.write_text(json.dumps({"tag": args.tag, "bank": str(args.bank), "stream": str(args.stream),
                               "floor": args.floor, "shrink": args.shrink, "se": args.se, "words": args.words,
                               "data_seeds": args.data_seeds,
                               "library": rt.library_identity(), "summary": summary, "arms": arms}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
