"""Two backbones' models of one word, their realdev score traces fused: does one backbone rank what the other misses?

Twenty-three rounds found the frozen backbone the largest lever (word-embedding, trained on real spoken words,
81.6 % of realdev at one false accept per model against speech-embedding's 73.1 %), and word-embedding's false
accepts are real words that share a syllable with the wake word ("four" for forward). speech-embedding sees a
longer window (2.5 s against 1.5 s) through another network trained on other data, so its errors may differ.
This scores each (word, seed) model of two real_transfer runs on realdev's windows embedded once per backbone
(``real_transfer.realdev_windows``, the exported heads: ``--heads`` of ``real_ensemble.py``), aligns the two traces
of every file on their windows' centres (both hop 0.1 s from the padded file's start, so a 1.5 s window's frame
``i`` and a 2.5 s window's frame ``i - 5`` share a centre), optionally takes each trace's running maximum over
+-``k`` frames (the two networks need not peak at the same frame), and combines them frame by frame:

- ``mean``: the average probability;
- ``geo``: the geometric mean (a frame needs both to agree);
- ``min``: the smaller (both must fire);
- ``w2``, ``w3``: ``--a``'s probability weighted two or three times ``--b``'s.

Each fusion is scored as ``real_transfer`` scores a model: realdev recall at the oracle threshold (the lowest with
at most one false accept over every other realdev file: tuned on realdev, optimistic), pooled over words and seeds,
beside each backbone alone. It also reports each at its two members' calibrated thresholds combined the same way
(the recipe's own thresholds, chosen on synthetic data; word-embedding's floor of 0.8 applied), and with
``--stream-a``/``--stream-b`` (the two backbones' cached passes over the recipe's held-out calibration stream,
``<cache>/stream-embeddings/<key>.npy``) at the threshold the library's ensemble rule picks on the fused stream
trace: the lowest with at most the recipe's 0.5 FA/h on it, not below the members' best-F1 thresholds combined, nor
below their floors combined. Neither reads realdev.

Usage: PYTHONPATH=<library>:research .venv/bin/python research/backbone_fusion.py --a r23-word \
           --b r24-se-s0,r24-se-s12 --workdir /tmp/rd
Writes research/results/backbone_fusion_<a>+<b>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.ndimage import maximum_filter1d

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from real_ensemble import member_traces  # noqa: E402
from real_transfer import (  # noqa: E402
    HOP_S, REALDEV, REFRACTORY_S, RESULTS, WORDS, operating_point, oracle_threshold, pooled,
)

FLOOR = {"word-embedding": 0.8}  # the recipe's MIN_THRESHOLD (recipe_config), applied to the runs that predate it
COMBINE = {
    "mean": lambda a, b: (a + b) / 2,
    "geo": lambda a, b: np.sqrt(np.clip(a, 0, 1) * np.clip(b, 0, 1)),
    "min": np.minimum,
    "w2": lambda a, b: (2 * a + b) / 3,  # the first side (--a) weighted twice
    "w3": lambda a, b: (3 * a + b) / 4,
}


def load_runs(tags: str) -> tuple[str, float, list[dict]]:
    """The runs of the comma-separated real_transfer tags, their backbone and its window in seconds."""
    sources = [RESULTS / f"real_transfer_{tag}.json" for tag in tags.split(",")]
    data = [json.loads(s.read_text(encoding="utf-8")) for s in sources]
    backbones = {d["recipe"].get("backbone", "speech-embedding") for d in data}
    if len(backbones) != 1:
        raise SystemExit(f"{tags}: runs of several backbones {sorted(backbones)}; give one backbone's runs a side")
    runs = [r for d in data for r in d["runs"]]
    windows = {r["window_samples"] for r in runs}
    if len(windows) != 1:
        raise SystemExit(f"{tags}: runs of several windows {sorted(windows)}")
    return backbones.pop(), windows.pop() / 16000, runs


def align(trace: np.ndarray, shift: int, length: int) -> np.ndarray:
    """``trace`` moved ``shift`` frames later and cut or edge-padded to ``length`` frames."""
    moved = np.pad(trace, (shift, 0), mode="edge") if shift > 0 else trace[-shift:]
    if moved.size >= length:
        return moved[:length]
    return np.pad(moved, (0, length - moved.size), mode="edge")


def fuse(a: list[np.ndarray], b: list[np.ndarray], shift: int, k: int, how: str) -> list[np.ndarray]:
    out = []
    for ta, tb in zip(a, b, strict=True):
        tb = align(tb, shift, ta.size)
        if k:
            ta, tb = maximum_filter1d(ta, 2 * k + 1, mode="nearest"), maximum_filter1d(tb, 2 * k + 1, mode="nearest")
        out.append(COMBINE[how](ta, tb).astype(np.float32))
    return out


def point(pos: list[np.ndarray], fa: list[np.ndarray], seconds: float, calibrated: float,
          stream_rule: float | None = None) -> dict:
    out = {"calibrated": operating_point(pos, fa, seconds, calibrated),
           "oracle_tuned_on_realdev": operating_point(pos, fa, seconds, oracle_threshold(fa))}
    if stream_rule is not None:
        out["stream_rule"] = operating_point(pos, fa, seconds, stream_rule)
    return out


def member_f1(run: dict) -> float:
    """The model's members' mean best-F1 threshold, as its calibration recorded it (the recipe's three heads)."""
    calibration = Path(run["onnx"]).parent.parent / "model" / "calibration.json"
    return float(json.loads(calibration.read_text(encoding="utf-8"))["member_f1_threshold"])


def stream_rule(trace: np.ndarray, floor: float) -> float:
    """The library ensemble's FA/h rule on one held-out stream trace (hop 0.1 s, refractory 1 s, 0.5 FA/h)."""
    from wakebuilder import metrics
    from wakebuilder.calibrate import CalibrateConfig, fa_rule_threshold, stream_fa_per_hour

    config = CalibrateConfig(refractory_s=REFRACTORY_S)  # as the runs' models were calibrated (before c871088)
    hours = (trace.size * HOP_S) / 3600  # the stream's windows every 0.1 s: its length up to one window
    grid = metrics.threshold_grid(stream_peak=float(trace.max()))
    fa_h = stream_fa_per_hour([trace], hours, grid, config)
    return fa_rule_threshold(fa_h, grid, config.target_fa_per_hour, floor=floor, unbound=floor)


def stream_trace(run: dict, sequences: np.ndarray) -> np.ndarray:
    onnx = Path(run["onnx"])
    return rt.head_scores(onnx.with_name(f"{onnx.stem}.head.onnx"), {"seq": sequences})


def side(runs: list[dict], backbone: str, windows: dict[str, np.ndarray], stream: np.ndarray | None, word: str
         ) -> tuple[list[np.ndarray], list[np.ndarray], float, float, np.ndarray | None, float | None]:
    """One backbone's side of a fusion: its runs' realdev traces (averaged frame by frame over several runs, as
    ``real_ensemble.py`` averages seeds), the false-accept seconds, the mean of their calibrated thresholds (each
    floored as the recipe floors it now), and with ``stream`` their held-out stream trace and best-F1 threshold."""
    traces = [member_traces(r, word, {}, windows) for r in runs]  # the exported heads on the cached windows
    pos = [sum(parts) / len(runs) for parts in zip(*(t[0] for t in traces))]
    fa = [sum(parts) / len(runs) for parts in zip(*(t[1] for t in traces))]
    threshold = float(np.mean([max(r["calibrated"]["threshold"], FLOOR.get(backbone, 0.0)) for r in runs]))
    if stream is None:
        return pos, fa, traces[0][2], threshold, None, None
    st = sum(stream_trace(r, stream) for r in runs) / len(runs)
    return pos, fa, traces[0][2], threshold, st, float(np.mean([member_f1(r) for r in runs]))


def summarize_arm(arm: str, results: list[dict], width: int = 24) -> tuple[dict, str]:
    """One arm's operating points pooled over its models (calibrated, oracle and, where scored, the stream rule), the
    models within one false accept, and its printed line."""
    keys = [k for k in ("calibrated", "oracle_tuned_on_realdev", "stream_rule") if k in results[0]]
    summary = {key: pooled(results, key) for key in keys}
    summary["models_within_one"] = sum(r["calibrated"]["false_accepts"] <= 1 for r in results)
    c, o = summary["calibrated"], summary["oracle_tuned_on_realdev"]
    line = (f"{arm:{width}} oracle {o['detected']}/{o['n_clips']} ({o['recall']:.1%})  | at the members' thresholds "
            f"{c['detected']}/{c['n_clips']} ({c['recall']:.1%}), {c['false_accepts']} FA, "
            f"{summary['models_within_one']} of {len(results)} within one")
    if "stream_rule" in summary:
        r = summary["stream_rule"]
        summary["stream_rule_within_one"] = sum(x["stream_rule"]["false_accepts"] <= 1 for x in results)
        line += (f" | stream rule {r['detected']}/{r['n_clips']} ({r['recall']:.1%}), {r['false_accepts']} FA, "
                 f"{summary['stream_rule_within_one']} within one")
    return summary, line


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", required=True, help="real_transfer tags of one backbone (comma separated)")
    p.add_argument("--b", required=True, help="real_transfer tags of the other backbone")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/real_transfer"), help="realdev's cached windows")
    p.add_argument("--realdev", type=Path, default=REALDEV)
    p.add_argument("--pool", default="0,2,5", help="running-maximum half-widths in frames (comma separated)")
    p.add_argument("--how", default="mean,geo,min", help="combinations: " + ",".join(COMBINE))
    p.add_argument("--no-floor", action="store_true",
                   help="take the runs' calibrated thresholds as they are (word-embedding's without the 0.8 floor)")
    p.add_argument("--average-seeds", action="store_true",
                   help="fuse each word's models of every seed, averaged per side, instead of each seed's pair")
    p.add_argument("--stream-a", type=Path, default=None, help="--a's backbone's cached pass over the held-out stream")
    p.add_argument("--stream-b", type=Path, default=None, help="--b's backbone's cached pass over the same stream")
    args = p.parse_args(argv)
    (name_a, win_a, runs_a), (name_b, win_b, runs_b) = load_runs(args.a), load_runs(args.b)
    if args.no_floor:
        FLOOR.clear()
    # both hop HOP_S from the padded file's start: the centres meet when b moves (win_b - win_a) / 2 later
    shift = round((win_b - win_a) / 2 / HOP_S)
    windows_a = rt.realdev_windows(win_a if name_a != "word-embedding" else None, args.workdir, args.realdev, name_a)
    windows_b = rt.realdev_windows(win_b if name_b != "word-embedding" else None, args.workdir, args.realdev, name_b)
    if not np.array_equal(windows_a["label"], windows_b["label"]):
        raise SystemExit("the two backbones' realdev windows list other files; delete the caches and run again")
    streams = None
    if args.stream_a and args.stream_b:
        streams = (np.load(args.stream_a), np.load(args.stream_b))
    pairs = [(ra, rb) for ra in runs_a for rb in runs_b if (ra["word"], ra["seed"]) == (rb["word"], rb["seed"])]
    if not pairs:
        raise SystemExit(f"{args.a} and {args.b} share no (word, seed)")
    arms = {f"{name_a} alone": [], f"{name_b} alone": []}
    for how in args.how.split(","):
        for k in (int(x) for x in args.pool.split(",")):
            arms[f"{how} k={k}"] = []
    groups = [([ra], [rb]) for ra, rb in sorted(pairs, key=lambda pr: (WORDS.index(pr[0]["word"]), pr[0]["seed"]))]
    if args.average_seeds:  # each word's models of every seed both sides share, traces averaged per side
        groups = [([ra for ra, _ in pairs if ra["word"] == w], [rb for _, rb in pairs if rb["word"] == w])
                  for w in WORDS if any(ra["word"] == w for ra, _ in pairs)]
    for group_a, group_b in groups:
        start = time.perf_counter()
        word = group_a[0]["word"]
        seed = group_a[0]["seed"] if len(group_a) == 1 else [r["seed"] for r in group_a]
        stream_a, stream_b = streams if streams is not None else (None, None)
        pos_a, fa_a, seconds, thr_a, st_a, f1_a = side(group_a, name_a, windows_a, stream_a, word)
        pos_b, fa_b, _, thr_b, st_b, f1_b = side(group_b, name_b, windows_b, stream_b, word)
        tag = {"word": word, "seed": seed}
        arms[f"{name_a} alone"].append(tag | point(pos_a, fa_a, seconds, thr_a))
        arms[f"{name_b} alone"].append(tag | point(pos_b, fa_b, seconds, thr_b))
        for arm in list(arms)[2:]:
            how, k = arm.split(" k=")
            pos, fa = fuse(pos_a, pos_b, shift, int(k), how), fuse(fa_a, fa_b, shift, int(k), how)
            both = float(COMBINE[how](np.float64(thr_a), np.float64(thr_b)))
            rule = None
            if streams is not None:
                floor = max(float(COMBINE[how](np.float64(f1_a), np.float64(f1_b))),
                            float(COMBINE[how](np.float64(FLOOR.get(name_a, 0.0)), np.float64(FLOOR.get(name_b, 0.0)))))
                rule = stream_rule(fuse([st_a], [st_b], shift, int(k), how)[0], floor)
            arms[arm].append(tag | point(pos, fa, seconds, both, rule))
        line = "  ".join(f"{arm}: {arms[arm][-1]['oracle_tuned_on_realdev']['detected']}" for arm in arms)
        print(f"{word:8} s{seed} ({len(pos_a)} clips, {time.perf_counter() - start:.0f} s)  {line}",
              file=sys.stderr)
    summary = {}
    for arm, results in arms.items():
        summary[arm], line = summarize_arm(arm, results)
        print(line)
    out = RESULTS / (f"backbone_fusion_{args.a.replace(',', '+')}+{args.b.replace(',', '+')}"
                     f"{'-seeds' if args.average_seeds else ''}{'-nofloor' if args.no_floor else ''}.json")
    out.write_text(json.dumps({"a": args.a, "b": args.b, "average_seeds": args.average_seeds,
                               "backbones": [name_a, name_b], "shift_frames": shift, "floors": FLOOR,
                               "summary": summary, "arms": arms}, indent=2) + "\n",
                   encoding="utf-8")
    print(out)


if __name__ == "__main__":
    main()
