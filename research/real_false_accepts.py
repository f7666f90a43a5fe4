"""Which realdev files a real_transfer run's models fire on, at their calibrated thresholds.

Usage: .venv/bin/python research/real_false_accepts.py --tag pf-words-6x3 --seed 0 [--words forward,house]
Prints, per word, the false-accept files (relative to realdev) and how many activations each gave, counted by
the protocol of real_transfer.py (1 s of silence around each file, hop 0.1 s, refractory 1 s).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_transfer import REALDEV, RESULTS, WORDS, n_events, padded_traces, realdev_files  # noqa: E402

from wakebuilder.detect import load_detector  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--words", default=",".join(WORDS))
    p.add_argument("--realdev", type=Path, default=REALDEV, help="the realdev recordings [default: %(default)s]")
    args = p.parse_args(argv)
    runs = json.loads((RESULTS / f"real_transfer_{args.tag}.json").read_text(encoding="utf-8"))["runs"]
    files = realdev_files(args.realdev)
    for run in runs:
        if run["seed"] != args.seed or run["word"] not in args.words.split(","):
            continue
        word, detector = run["word"], load_detector(run["onnx"])
        paths = files["negative"] + [p for w in WORDS if w != word for p in files[w]]
        traces, _ = padded_traces(detector, paths)
        fired = {str(p.relative_to(args.realdev)): n_events([t], detector.threshold) for p, t in zip(paths, traces)}
        fired = {p: n for p, n in fired.items() if n}
        # speech_commands_other_words/<word>_<speaker>_nohash_<k>.wav: group by the spoken word
        spoken = Counter(Path(p).name.split("_")[0] if "speech_commands" in p else p.split("/")[0] + "/" + p.split("/")[1]
                         for p in fired)
        print(f"{word} s{args.seed} thr {detector.threshold:.3f}: {sum(fired.values())} false accepts in "
              f"{len(fired)} files; by word or folder: {dict(spoken.most_common())}")
        for path, n in sorted(fired.items()):
            print(f"  {n}  {path}")


if __name__ == "__main__":
    main()
