"""Which realdev positives a word-embedding scorer misses at one false accept per model, and what their audio is like.

For each word and data seed, a ``linear_scores`` scorer is fitted as that script fits it (the word's store and the
bank, the recipe's first head's training split) and realdev is scored at the oracle threshold (the lowest with at
most one false accept, tuned on realdev: a ranking figure). Each positive clip gets the number of seeds that miss
it, its mean margin to the threshold, and measures of its audio from 25 ms frames: RMS level, noise floor (10th
percentile frame level), peak, and the span of frames 15 dB above the floor (``on``: its start, ``off``: the time
left after its end, ``dur``: its length). A word that starts late and has ``off`` 0 runs past the clip's 1 s end
(Speech Commands cut its clips to one second).

Usage: WB_CACHE_DIR=/tmp/rd-cache PYTHONPATH=research .venv/bin/python research/missed_clips.py --tag r23-word \
       --bank <cache>/banks/word-embedding-1.5s/store.zarr --scorer shrink:0.2
Writes research/results/missed_clips_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from linear_scores import fit_scorer, store_arguments, training_rows, word_embedding_queries  # noqa: E402

FRAME = 400  # 25 ms at 16 kHz


def audio_measures(audio: np.ndarray) -> dict[str, float]:
    """Level, floor, peak and the active span of one clip (see the module's docstring)."""
    frames = audio[: audio.size // FRAME * FRAME].reshape(-1, FRAME)
    level = 20 * np.log10(np.sqrt((frames**2).mean(axis=1)) + 1e-9)
    floor = float(np.percentile(level, 10))
    active = np.flatnonzero(level > floor + 15)
    span = (active[0], active[-1]) if active.size else (0, -1)
    step = FRAME / rt.SAMPLE_RATE
    return {"rms_db": float(20 * np.log10(np.sqrt((audio**2).mean()) + 1e-9)), "floor_db": floor,
            "peak": float(np.abs(audio).max()), "on_s": span[0] * step, "off_s": (level.size - 1 - span[1]) * step,
            "dur_s": (span[1] - span[0] + 1) * step}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    store_arguments(p, scorer="shrink:0.2", data_seeds=(0, 1, 2))
    p.add_argument("--name", default=None)
    args = p.parse_args(argv)

    windows, queries = word_embedding_queries(args.workdir)
    files = rt.realdev_files(rt.REALDEV)
    clips = []
    for word in rt.WORDS:
        margins: dict[int, list[float]] = {}
        for seed in args.data_seeds:
            x, y, *_ = training_rows(args.workdir, args.tag, args.bank, word, seed)
            scores = fit_scorer(args.scorer, x, y)(queries)
            pos, fa, _ = rt.word_traces(scores, windows, word)
            threshold = rt.oracle_threshold(fa)
            for i, trace in enumerate(pos):
                margins.setdefault(i, []).append(float(trace.max() - threshold))
        for i, path in enumerate(files[word]):
            clips.append({"word": word, "clip": path.name, "seeds_missed": sum(m < 0 for m in margins[i]),
                          "mean_margin": float(np.mean(margins[i])), **audio_measures(rt.load_audio(path))})
    missed = [c for c in clips if c["seeds_missed"]]
    for c in missed:
        print(f"{c['word']:8} {c['clip']:22} missed by {c['seeds_missed']} seeds  "
              + " ".join(f"{k} {c[k]:.2f}" for k in ("rms_db", "floor_db", "peak", "on_s", "dur_s", "off_s")))
    cut = [c for c in missed if c["off_s"] == 0 and c["on_s"] >= 0.5]
    print(f"{len(missed)} clips missed by at least one seed ({sum(c['seeds_missed'] for c in missed)} clip-seeds); "
          f"{len(cut)} of them start at 0.5 s or later and run to the clip's end")
    out = rt.RESULTS / f"missed_clips_{args.name or args.tag}.json"
    out.write_text(json.dumps({"tag": args.tag, "bank": str(args.bank), "scorer": args.scorer,
                               "data_seeds": args.data_seeds, "library": rt.library_identity(), "clips": clips},
                              indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
