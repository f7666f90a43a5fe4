"""Recall on realdev against the number of distinct TTS speakers in the positives (research, development only).

One store (``prepare.sh``) holds one word's positives from 75 base voices (3 clips each plus 4 augmented copies)
and TTS negatives. Heads are fitted in-process on subsets of speakers (8, 16, 32, all) x 3 seeds (the seed draws
the speakers, the rows and the head's initialisation), with every negative row, in two ways:
  * equal: the same number of positive rows for every subset size (what 8 speakers hold: 8 x 15);
  * all: every positive row of the chosen speakers (more speakers also bring more rows).
Scored as ``benchmarks/real_heads.py`` scores heads: realdev's windows embedded once, recall of the word's real
clips at the lowest threshold with at most K false accepts on the rest of realdev (K = 0, 1, 3; tuned on
realdev, so optimistic: for comparing the sizes only). realdev is only scored, never trained on.

Usage: .venv/bin/python research/speaker_count/curve.py --store /tmp/spk/happy/store.zarr --word happy
Writes research/speaker_count/curve_<word>.json, .md and .png.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
import real_heads as rh  # noqa: E402
import real_transfer as rt  # noqa: E402

HERE = Path(__file__).parent
SIZES = (8, 16, 32)
KS = rh.KS


def speaker_of(group: str) -> str:
    """``engine:voice`` of a voice key (``kokoro:af_bella:blend=...:speed=0.9`` -> ``kokoro:af_bella``)."""
    return ":".join(group.split(":")[:2])


def subset(arrays, keep: np.ndarray):
    return dataclasses.replace(arrays, **{f.name: getattr(arrays, f.name)[keep] for f in dataclasses.fields(arrays)
                                          if getattr(arrays, f.name) is not None})


def choose_rows(speakers: np.ndarray, chosen: list[str], n_rows: int | None, rng: np.random.Generator) -> np.ndarray:
    """Indices of positive rows of ``chosen`` speakers: ``n_rows`` spread evenly over them (None: all)."""
    rows = [np.flatnonzero(speakers == s) for s in chosen]
    if n_rows is None:
        return np.concatenate(rows)
    share = [n_rows // len(chosen) + (k < n_rows % len(chosen)) for k in range(len(chosen))]
    return np.concatenate([rng.choice(r, size=min(n, len(r)), replace=False) for r, n in zip(rows, share)])


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--store", type=Path, required=True)
    p.add_argument("--word", required=True)
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--workdir", type=Path, default=Path("/tmp/spk"))
    args = p.parse_args()
    import torch

    from wakebuilder.train.fit import FitConfig, fit_head

    torch.set_num_threads(1)
    windows = rt.realdev_windows(2.5, args.workdir)
    arrays = rh.load_store(args.store)
    labels = np.asarray(arrays.label)
    speakers = np.array([speaker_of(str(g)) for g in np.asarray(arrays.group)])
    positives, negatives = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    every = sorted(set(speakers[positives]))
    per_speaker = min(int((speakers[positives] == s).sum()) for s in every)
    equal_rows = SIZES[0] * per_speaker
    runs = []
    for size in (*SIZES, len(every)):
        for mode in ("equal", "all"):
            for seed in args.seeds:
                rng = np.random.default_rng([seed, size])
                chosen = sorted(rng.choice(every, size=size, replace=False).tolist())
                picked = positives[choose_rows(speakers[positives], chosen, equal_rows if mode == "equal" else None,
                                               rng)]
                data = subset(arrays, np.sort(np.concatenate([picked, negatives])))
                start = time.perf_counter()
                head = fit_head(data, FitConfig(seed=seed), device="cpu").head
                run = {"speakers": size, "mode": mode, "seed": seed, "positive_rows": int(picked.size),
                       "fit_s": round(time.perf_counter() - start, 1), **rh.score_head(head, args.word, windows)}
                runs.append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
    table = summarize(runs)
    out = HERE / f"curve_{args.word}"
    meta = {"word": args.word, "store": str(args.store), "speakers_total": len(every), "rows_per_speaker": per_speaker,
            "equal_positive_rows": equal_rows, "negative_rows": int(negatives.size), "seeds": args.seeds,
            "library": rt.library_identity()}
    out.with_suffix(".json").write_text(json.dumps({**meta, "summary": table, "runs": runs}, indent=2) + "\n")
    out.with_suffix(".md").write_text(markdown(meta, table))
    plot(table, args.word, out.with_suffix(".png"))
    print(out.with_suffix(".md").read_text())


def summarize(runs: list[dict]) -> list[dict]:
    rows = []
    for key in sorted({(r["mode"], r["speakers"]) for r in runs}):
        group = [r for r in runs if (r["mode"], r["speakers"]) == key]
        row = {"mode": key[0], "speakers": key[1], "positive_rows": int(np.mean([r["positive_rows"] for r in group])),
               "n_clips": group[0]["n_clips"], "auc_mean": round(float(np.mean([r["auc"] for r in group])), 4)}
        for k in KS:
            values = [r[f"recall_at_{k}fa"] for r in group]
            row[f"recall_at_{k}fa_mean"], row[f"recall_at_{k}fa_sd"] = round(float(np.mean(values)), 2), round(
                float(np.std(values)), 2)
        rows.append(row)
    return rows


def markdown(meta: dict, table: list[dict]) -> str:
    lines = [f"# Recall on realdev ({meta['word']}) against distinct TTS speakers",
             "", f"{meta['speakers_total']} speakers, {meta['rows_per_speaker']} positive rows each (3 clips + "
             f"4 augmented copies); {meta['negative_rows']} negative rows in every fit; seeds {meta['seeds']}. "
             "Recall = real clips detected (mean over seeds +- sd) at the lowest threshold with <= K false "
             "accepts on the rest of realdev (tuned on realdev: optimistic, for comparing sizes only).", "",
             "| positives | speakers | rows | <=0 FA | <=1 FA | <=3 FA | AUC |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r in table:
        cells = " | ".join(f"{r[f'recall_at_{k}fa_mean']:.1f} +- {r[f'recall_at_{k}fa_sd']:.1f}" for k in KS)
        lines.append(f"| {r['mode']} | {r['speakers']} | {r['positive_rows']} | {cells} | {r['auc_mean']:.3f} |")
    clips = table[0]["n_clips"]
    return "\n".join([*lines, "", f"Out of {clips} real clips of '{meta['word']}'.", ""])


def plot(table: list[dict], word: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for mode, style in (("equal", "-o"), ("all", "--s")):
        rows = [r for r in table if r["mode"] == mode]
        for k, colour in zip(KS, ("C0", "C1", "C2")):
            ax.errorbar([r["speakers"] for r in rows], [r[f"recall_at_{k}fa_mean"] for r in rows],
                        yerr=[r[f"recall_at_{k}fa_sd"] for r in rows], fmt=style, color=colour, capsize=3,
                        label=f"{mode} rows, <={k} FA")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("distinct TTS speakers in the positives")
    ax.set_ylabel(f"real '{word}' clips detected (of {table[0]['n_clips']})")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
