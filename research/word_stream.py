"""A calibration stream of isolated words, and the thresholds it gives a real_transfer.py run's models.

The recipe calibrates on a synthetic stream of generic sentences, music and noise; for the word-embedding backbone
it holds no false accept above the per-clip F1 threshold, while real single words wake sheila, forward and house
15-40 times (twenty-second round). Here: ``--n`` single words (none says any realdev word: the user's phrase is
known, the realdev negatives are not looked at) spoken by the recipe's shared engines (its held-out voices), one
augmented copy each (the recipe's augment settings), joined into a stream with the recipe's pauses. Each model's
threshold becomes the FA/h rule's on the recipe's stream and this one together (never below the recipe's), and
realdev scores it.

    PYTHONPATH=research:. .venv/bin/python research/word_stream.py --tag r23-word [--seeds 0] [--target 0.5]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import real_transfer as rt
from calibration_rules import RULES, rule_threshold
from fixed_threshold import new_total, tally, total_line

from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import load_audio
from wakebuilder.calibrate import fa_rule_threshold
from wakebuilder.events import count_events_many
from wakebuilder.recipe_config import RecipeConfig
from wakebuilder.streaming import frame_windows, hop_samples

SEED = 7_000  # no recipe seed: other words than the training negatives'


def words_stream(config: RecipeConfig, work: Path, n: int, duration_s: float) -> Path:
    """``n`` isolated words by the shared engines, augmented once, joined into ``duration_s`` of stream."""
    from wakebuilder.data.augment.pipeline import keep_or_run_augment
    from wakebuilder.data.negatives import isolated_words, says
    from wakebuilder.data.stream import StreamConfig, build_negative_stream
    from wakebuilder.data.synth import keep_or_run_synth
    from wakebuilder.data.synth_plan import SynthConfig

    out = work / "stream.wav"
    if out.is_file():
        return out
    words = [w for w in isolated_words("happy", 3 * n, seed=SEED) if not any(says(w, p) for p in rt.WORDS)][:n]
    synth = SynthConfig(texts=tuple(words), n=n, engines=config.shared_speech_engines, seed=SEED, label=0,
                        kind="speech_negative", variants=False, workers=2)
    spoken = keep_or_run_synth(synth, out_dir=work / "speech")
    augmented = keep_or_run_augment(spoken, out_dir=work / "speech-aug",
                                    config=config.augment.replace(copies=1, seed=SEED))
    return build_negative_stream([str(augmented)], out_path=out, config=StreamConfig(duration_s=duration_s, seed=SEED))


def stream_windows(stream: Path, config: RecipeConfig) -> np.ndarray:
    """The backbone's embeddings of every window of the stream (hop 0.1 s), cached beside it."""
    from wakebuilder.backbones import load_backbone

    cache = stream.with_name(f"windows-{config.backbone}.npy")
    if cache.is_file():
        return np.load(cache)
    backbone = load_backbone(config.backbone, window_s=config.embed_window_s, threads=1)
    windows = frame_windows(load_audio(stream), backbone.window_samples, hop_samples(rt.HOP_S))
    seq = np.concatenate([backbone.embed(np.ascontiguousarray(windows[i : i + 256]))[1].astype(np.float16)
                          for i in range(0, len(windows), 256)])
    np.save(cache, seq)
    return seq


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", action="append", required=True)
    p.add_argument("--seeds", type=lambda s: {int(x) for x in s.split(",")}, default=None)
    p.add_argument("--n", type=int, default=600)
    p.add_argument("--duration-s", type=float, default=1200.0)
    p.add_argument("--target", type=float, default=0.5, help="FA/h on the two streams together")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/rd"))
    args = p.parse_args()
    totals = {name: new_total() for name in ("recipe", "words stream", "frr<=0.2", "words stream, frr<=0.2")}
    grid = np.round(np.concatenate([np.arange(1, 100) / 100, 0.991 + 0.001 * np.arange(9)]), 4)
    for tag in args.tag:
        result = json.loads((rt.RESULTS / f"real_transfer_{tag}.json").read_text(encoding="utf-8"))
        config = RecipeConfig.from_dict(result["recipe"])
        stream = words_stream(config, args.workdir / f"words-stream-{config.backbone}", args.n, args.duration_s)
        seq = stream_windows(stream, config)
        hours = len(load_audio(stream)) / SAMPLE_RATE / 3600
        windows = rt.realdev_windows(config.embed_window_s, args.workdir, rt.REALDEV, config.backbone)
        for run in result["runs"]:
            if args.seeds is not None and run["seed"] not in args.seeds:
                continue
            onnx = Path(run["onnx"])
            head = onnx.with_name(f"{onnx.stem}.head.onnx")
            calibration = json.loads((onnx.parent.parent / "model" / "calibration.json").read_text(encoding="utf-8"))
            recipe_hours = float(calibration["stream_hours"])
            trace = rt.head_scores(head, {"seq": seq})
            counts = count_events_many([trace], grid, frame_s=rt.HOP_S, refractory_s=rt.REFRACTORY_S)
            # the recipe's stream adds its hours and, above its threshold, no false accept (it did not bind)
            fa_h = np.asarray(counts, dtype=np.float64) / (hours + recipe_hours)
            recipe_t = float(calibration["threshold"])
            words_t = fa_rule_threshold(fa_h, grid, args.target, floor=recipe_t, unbound=recipe_t)
            scores = rt.head_scores(head, windows)
            pos, fa, _ = rt.word_traces(scores, windows, run["word"])
            cells = []
            frr_t = rule_threshold(RULES["frr<=0.2"], calibration)
            for name, t in (("recipe", recipe_t), ("words stream", words_t), ("frr<=0.2", frr_t),
                            ("words stream, frr<=0.2", max(words_t, frr_t))):
                hits, events = tally(totals[name], pos, fa, t)
                cells.append(f"{name} {t:.3f}: {hits}/{len(pos)} {events} FA")
            print(f"{run['word']} s{run['seed']} (words stream peak {trace.max():.3f})  " + "; ".join(cells),
                  flush=True)
    for name, total in totals.items():
        print(f"{name}: {total_line(total)}")


if __name__ == "__main__":
    main()
