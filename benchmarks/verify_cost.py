"""What verification costs: seconds of one core per proposal, and proposals an hour on real negative audio.

Times each recognizer's ``phrase_score`` (``wb detect --verify``'s check of one detector proposal: its encoder once
and its decoder once per spelling of the phrase) on the default span of a 1.5 s window (2.0 s of audio), one thread,
for a one-word and a two-word phrase, after one warm-up call: Whisper base, the default (every proposal costs it),
and Moonshine base, which the either rule asks first. The audio is deterministic synthetic speech-like noise; a
recognizer's cost barely depends on what it hears (a fixed number of decoder passes). The proposal rate is read from
research round 31's measurement when it is there (``research/results/asr_verifier_r31-word.json``: candidate events at
the default candidate threshold on realdev's negatives) and the cached realdev windows' seconds.

``report``: what a report's verification of many proposals costs with the default recognizer (``hears_all``, as
``wb eval`` and the quickstart's report verify held-out clips): espeak-ng saying "hey jarvis" in ``--clips`` voices,
each proposal heard (a) with every spelling scored, one at a time, as before; (b) with ``Verifier.hears``, which
stops at the first spelling that reaches the bar, one at a time; (c) the same with ``default_workers()`` at once.
The decisions of all three must agree.

Usage: .venv/bin/python benchmarks/verify_cost.py [--calls 20] [--clips 16]
Writes benchmarks/results/verify_cost.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

RESULTS = Path(__file__).parent / "results" / "verify_cost.json"


def speechlike(seconds: float, seed: int = 0) -> np.ndarray:
    """Noise shaped by a slow syllable-rate envelope, deterministic."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)
    return (0.1 * envelope * rng.standard_normal(t.size)).astype(np.float32)


def time_score(phrase: str, audio: np.ndarray, calls: int, recognizer: str) -> dict:
    from wakebuilder.verify import load_verifier

    verifier = load_verifier(phrase, threads=1, recognizers=[recognizer])
    verifier.score(audio)  # warm-up: session allocation
    start = time.perf_counter()
    for _ in range(calls):
        verifier.score(audio)
    seconds = (time.perf_counter() - start) / calls
    return {"recognizer": recognizer, "phrase": phrase, "spellings": len(verifier.texts),
            "seconds_per_proposal": round(seconds, 4)}


def spoken_clips(phrase: str, count: int, seconds: float) -> list[np.ndarray]:
    """espeak-ng saying ``phrase`` at ``count`` rates and pitches, centred in ``seconds`` of silence."""
    from wakebuilder.audio import fit_to_window
    from wakebuilder.data.tts import Voice
    from wakebuilder.data.tts.espeak import EspeakEngine

    engine, voices = EspeakEngine(), ("en-us", "en", "en-gb-x-rp", "en-029")
    return [fit_to_window(engine.synthesize(phrase, Voice("espeak", voices[k % len(voices)],
                                                          {"rate": 130 + 7 * k, "pitch": 30 + 5 * k})),
                          round(seconds * 16000)) for k in range(count)]


def time_report(phrase: str, clips: list[np.ndarray]) -> dict:
    """Seconds a proposal for the default recognizer: every spelling, one at a time; ``hears``; ``hears_all``."""
    from wakebuilder.verify import default_workers, load_verifier

    workers = default_workers()
    verifier = load_verifier(phrase, threads=1, workers=workers)
    verifier.score(clips[0])  # warm-up
    needed = verifier.needed(0.9)
    start = time.perf_counter()
    every = [verifier.score(clip) >= needed for clip in clips]
    every_s = time.perf_counter() - start
    start = time.perf_counter()
    early = [verifier.hears(clip, 0.9) for clip in clips]
    early_s = time.perf_counter() - start
    start = time.perf_counter()
    parallel = verifier.hears_all(clips.__getitem__, [0.9] * len(clips))
    parallel_s = time.perf_counter() - start
    if not every == early == parallel:
        raise SystemExit(f"the decisions differ: {every} {early} {parallel}")
    return {"phrase": phrase, "clips": len(clips), "heard": sum(every), "workers": workers,
            "seconds_per_proposal": {"every_spelling": round(every_s / len(clips), 4),
                                     "hears": round(early_s / len(clips), 4),
                                     "hears_all": round(parallel_s / len(clips), 4)},
            "speedup_over_every_spelling": round(every_s / parallel_s, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--clips", type=int, default=16)
    args = parser.parse_args()
    from wakebuilder.verify import CANDIDATE_THRESHOLD, DEFAULT_RECOGNIZERS, MARGIN_S, RECOGNIZERS, load_verifier

    audio = speechlike(1.5 + 2 * MARGIN_S)
    load_s = {}
    for name in RECOGNIZERS:  # each loaded (sha256 check, sessions) once a process
        start = time.perf_counter()
        load_verifier("forward", threads=1, recognizers=[name])
        load_s[name] = round(time.perf_counter() - start, 3)
    rows = [time_score(phrase, audio, args.calls, name) for name in RECOGNIZERS for phrase in ("forward", "hey jarvis")]
    report = time_report("hey jarvis", spoken_clips("hey jarvis", args.clips, audio.size / 16000))
    result = {"audio_s": audio.size / 16000, "threads": 1, "calls": args.calls, "load_s": load_s,
              "per_phrase": rows, "report": report, "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                              "load_average": os.getloadavg()}}
    measured = Path(__file__).resolve().parents[1] / "research" / "results" / "asr_verifier_r31-word.json"
    if measured.is_file():
        pooled = json.loads(measured.read_text())["pooled"]
        key = f"{CANDIDATE_THRESHOLD:g} a=0.0 c=-inf"
        if key in pooled and "negative_hours" in pooled[key]:
            row = pooled[key]
            per_hour = row["false_accepts"] / row["negative_hours"]
            result["proposals_per_hour_on_realdev_negatives"] = round(per_hour, 2)
            # the default (record's) recognizers on every proposal
            one_word = sum(row["seconds_per_proposal"] for row in rows
                           if row["phrase"] == "forward" and row["recognizer"] in DEFAULT_RECOGNIZERS)
            result["recognizer_seconds_per_hour"] = round(per_hour * one_word, 2)
    RESULTS.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
