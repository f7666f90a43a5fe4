"""Would positives cut off before the word ends find realdev's cut-off clips, and at what cost in false accepts?

``missed_clips.py`` found that 4-5 of the 10 real clips every word-embedding scorer misses are words that Speech
Commands cut at the clip's one-second end. This probe makes such positives from each run's own TTS positives: the
clip is cut at a point drawn uniformly between ``--min-keep`` and ``--max-keep`` of its active span (frames within
30 dB of its loudest), centred in a window of silence as the store's rows are, and embedded by word-embedding. Their
vectors join the training rows of the ``linear_scores`` scorer (``--scorer``) as positives; realdev is scored as
``linear_scores`` scores it (at most K false accepts, thresholds tuned on realdev), with and without them, and the
cut-off clips named by ``--watch`` are reported one by one. realdev is never trained on.

Usage: WB_CACHE_DIR=/tmp/rd-cache PYTHONPATH=research .venv/bin/python research/truncated_positives.py --tag r23-word \
       --bank <cache>/banks/word-embedding-1.5s/store.zarr --data-seeds 0 --name NAME
Writes research/results/truncated_positives_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_heads as rh  # noqa: E402
import real_transfer as rt  # noqa: E402
from linear_scores import (  # noqa: E402
    fit_scorer, store_arguments, training_rows, unit, vectors, word_embedding_queries,
)

FRAME = 400  # 25 ms at 16 kHz
CUT_OFF = ["893705bb_nohash_4", "6379c6a2_nohash_0", "d1bf406b_nohash_0", "ea37ca08_nohash_0", "f17d21b5_nohash_0"]


def cut(audio: np.ndarray, keep: float) -> np.ndarray:
    """``audio`` up to ``keep`` of the way through its active span (25 ms frames within 30 dB of the loudest)."""
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME)
    level = 10 * np.log10((frames**2).mean(axis=1) + 1e-12)
    active = np.flatnonzero(level > level.max() - 30)
    start, end = active[0] * FRAME, (active[-1] + 1) * FRAME
    return audio[: start + int(keep * (end - start))]


def centred(audio: np.ndarray, samples: int) -> np.ndarray:
    """``audio`` centred in ``samples`` of silence (its middle kept where it is longer)."""
    out = np.zeros(samples, dtype=np.float32)
    if audio.size >= samples:
        start = (audio.size - samples) // 2
        return audio[start: start + samples].astype(np.float32)
    start = (samples - audio.size) // 2
    out[start: start + audio.size] = audio
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    store_arguments(p, scorer="shrink:0.2", data_seeds=(0,))
    p.add_argument("--min-keep", type=float, default=0.4)
    p.add_argument("--max-keep", type=float, default=0.8)
    p.add_argument("--copies", type=int, default=1, help="cut copies of each TTS positive")
    p.add_argument("--words", type=lambda s: s.split(","), default=list(rt.WORDS))
    p.add_argument("--name", required=True)
    args = p.parse_args(argv)

    from wakebuilder.audio import load_audio
    from wakebuilder.backbones import load_backbone

    backbone = load_backbone("word-embedding", window_s=1.5, threads=1)
    windows, queries = word_embedding_queries(args.workdir)
    runs = []
    for seed in args.data_seeds:
        for word in args.words:
            x, y, *_ = training_rows(args.workdir, args.tag, args.bank, word, seed)
            run_dir = args.workdir / args.tag / f"{word}-s{seed}" / "positives"
            rows = [json.loads(line) for line in (run_dir / "manifest.jsonl").read_text().splitlines() if line]
            rng = np.random.default_rng(seed)
            clips = [centred(cut(load_audio(run_dir / r["path"]), rng.uniform(args.min_keep, args.max_keep)),
                             backbone.window_samples)
                     for r in rows if r["kind"] == "tts" for _ in range(args.copies)]
            extra = unit(vectors(backbone.embed(np.stack(clips))[1]))
            files = rt.realdev_files(rt.REALDEV)[word]
            cats = rh.categories_of(windows, word, rt.REALDEV)
            for arm, (xa, ya) in {"as made": (x, y), "+ cut-off positives": (
                    np.concatenate([x, extra]), np.concatenate([y, np.ones(len(extra), dtype=y.dtype)]))}.items():
                scores = fit_scorer(args.scorer, xa, ya)(queries).astype(np.float32)
                pos, fa, _ = rt.word_traces(scores, windows, word)
                threshold = rt.oracle_threshold(fa)
                watched = {f.stem: bool(t.max() >= threshold) for f, t in zip(files, pos) if f.stem in CUT_OFF}
                run = {"word": word, "seed": seed, "arm": arm, "n_cut": len(extra), "watched_detected": watched,
                       **rh.score_scores(scores, word, windows, cats)}
                runs.append(run)
                print(f"{word:8} s{seed} {arm:20} at 1 FA {run['recall_at_1fa']}/{run['n_clips']} "
                      f"(0 FA {run['recall_at_0fa']}, 3 FA {run['recall_at_3fa']}); cut-off clips {watched}",
                      file=sys.stderr, flush=True)
    summary = {}
    for arm in ("as made", "+ cut-off positives"):
        rows = [r for r in runs if r["arm"] == arm]
        summary[arm] = {"n_clips": sum(r["n_clips"] for r in rows),
                        **{f"recall_at_{k}fa": sum(r[f"recall_at_{k}fa"] for r in rows) for k in rh.KS},
                        "cut_off_detected": sum(sum(r["watched_detected"].values()) for r in rows),
                        "cut_off_clips": sum(len(r["watched_detected"]) for r in rows)}
        s = summary[arm]
        print(f"{arm:20} {s['n_clips']} clips: " + ", ".join(f"{s[f'recall_at_{k}fa']} at <= {k} FA" for k in rh.KS)
              + f"; cut-off clips found {s['cut_off_detected']} of {s['cut_off_clips']}")
    out = rt.RESULTS / f"truncated_positives_{args.name}.json"
    out.write_text(json.dumps({"tag": args.tag, "bank": str(args.bank), "scorer": args.scorer,
                               "keep": [args.min_keep, args.max_keep], "copies": args.copies,
                               "library": rt.library_identity(), "summary": summary, "runs": runs}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
