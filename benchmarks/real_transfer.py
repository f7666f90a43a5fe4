"""Real-speech recall: models trained only on synthetic speech, scored on real recordings (realdev).

For each word W the recipe runs from W's text alone in a work dir under /tmp, through ``.venv/bin/wb``
subprocesses: synth positives, sound-alike + generic speech negatives, augment, a held-out synthetic
stream (another seed) for calibration, training-stream windows, embed (speech-embedding), fit,
calibrate, export. realdev is never used for training, for picking training data or for the
calibrated threshold; it is only scored.

Scoring uses the exported ONNX and the streaming protocol of ``wb eval``/``wb detect`` (hop 0.1 s,
refractory 1 s, no smoothing). Every realdev file is padded with 1 s of silence on each side and
scanned on its own (the event counter is reset between files):
  * recall: share of ``positives/W/*.wav`` with at least one detection;
  * false accepts: detections over every file under ``negatives/`` plus the OTHER words' positives;
    FA/h divides by their unpadded duration (the silence padding is not counted as audio).
Reported at the calibrated threshold (chosen on synthetic data only), and separately at the
"oracle threshold, tuned on realdev": the lowest threshold with <= 1 false accept on the same
false-accept set. The oracle figure is optimistic and must not be quoted as a test result.

Usage: .venv/bin/python benchmarks/real_transfer.py [--quick] [--words happy,sheila] [--seeds 0,1,2]
       [--engines piper,flite,espeak] [--n-pos 600] [--n-hard 1500] [--n-speech 1000] [--tag NAME]
Writes benchmarks/results/real_transfer_<tag>.json (tag defaults to the engines, e.g. piper-flite).
To pin the library while the working tree changes, run with PYTHONPATH=<a `git archive` of a commit, with
its hash in a COMMIT file>; the wb subprocesses inherit it, and the JSON records which library ran.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

import wakebuilder
from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import load_audio
from wakebuilder.data.phonetics import candidates
from wakebuilder.data.tts import list_voices
from wakebuilder.detect import Detector, load_detector
from wakebuilder.streaming import count_events, frame_windows, hop_samples, score_waveform

ROOT = Path(__file__).resolve().parent.parent
WB = str(ROOT / ".venv" / "bin" / "wb")
RESULTS = Path(__file__).parent / "results"
REALDEV = Path("/work/shared/realdev")
WORDS = ("happy", "sheila", "forward", "marvin", "house", "visual")
QUICK_WORDS = ("happy", "sheila")
HOP_S, REFRACTORY_S, PAD_S = 0.1, 1.0, 1.0
ORACLE_MAX_FA = 1
# sha1[:8] of each word's sound-alike candidate list when the synthesis cache was first filled (library
# 6d88261..7971025); a later list gets its own cache key, so changed negatives are never read from the cache.
FIRST_CANDIDATES = {"happy": "8e2fca7b", "sheila": "612f384b", "forward": "97c9e1a9", "marvin": "738f2a0f",
                    "house": "cfbc0ad0", "visual": "3b3ccee4"}


@dataclass(frozen=True, kw_only=True)
class Recipe:
    """Training-recipe options; every one is a flag of this script."""

    engines: tuple[str, ...]
    neg_engines: tuple[str, ...]
    n_pos: int
    n_hard: int
    n_speech: int
    pos_copies: int
    neg_copies: int
    train_stream_s: float
    cal_stream_s: float
    objective: str
    target_fa_per_hour: float
    window_s: float
    n_words: int
    augment_args: tuple[str, ...]
    fit_args: tuple[str, ...]
    # a second wb augment pass (seed + 100) with these options, its copies added to the first pass's
    extra_augment_args: tuple[str, ...] = ()
    # a `wb negatives --real` manifest of real speech without any realdev word: its chunks and --neg-copies
    # augmented copies (seed) are added to the store as negatives
    real_negatives: str | None = None
    store_from: str | None = None  # another tag's stores and calibration streams (head-only experiments)
    threads: int = 0  # torch/onnxruntime threads of each wb command (0: their defaults)


THREADS = {"n": 0}  # set from --threads in main(); read by every wb subprocess


def wb(*args: str | Path) -> str:
    """Run one ``wb`` command; returns the artifact path it prints on stdout.

    With ``--threads N`` each command runs with ``OMP_NUM_THREADS=N`` (torch in calibrate and export), and
    embed and fit get ``--threads N``: two models at once on two cores with two threads each ran the head
    fit 4.6x slower per epoch than with one (26 vs 5.7 s, measured under load).
    """
    cmd = [WB, *map(str, args)]
    env = None
    if THREADS["n"]:
        env = {**os.environ, "OMP_NUM_THREADS": str(THREADS["n"])}
        if cmd[1] in ("embed", "fit"):
            cmd += ["--threads", str(THREADS["n"])]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done.stdout.strip().splitlines()[-1]


def engine_args(engines: tuple[str, ...]) -> list[str]:
    return [arg for engine in engines for arg in ("--engine", engine)]


def cached(out: Path, *args: str | Path) -> str:
    """``wb <args> --out out`` unless ``out`` already holds a manifest (synthesis is the slow stage; its
    outputs are shared by every experiment with the same word, seed, engines and counts)."""
    if (out / "manifest.jsonl").is_file():
        return str(out / "manifest.jsonl")
    return wb(*args, "--out", out)


def train_word(word: str, seed: int, recipe: Recipe, work: Path, data: Path) -> Path:
    """The recipe from the word's text alone -> exported ONNX path."""
    work.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(f"  [{word} s{seed}] {msg}", file=sys.stderr, flush=True)  # noqa: E731
    if recipe.store_from:
        source = work.parent.parent / recipe.store_from / work.name
        store, cal_stream = source / "store.zarr", source / "stream-calibrate.wav"
        if not (store.is_dir() and cal_stream.is_file()):
            raise FileNotFoundError(f"--store-from {recipe.store_from}: no store or calibration stream in {source}")
        log(f"reusing the store of {recipe.store_from}")
    else:
        store, cal_stream = prepare_store(word, seed, recipe, work, data, log)
    log("fit")
    model = wb("fit", "--store", store, "--out", work / "model", "--seed", seed, "--device", "cpu", "--overwrite",
               *recipe.fit_args)
    log("calibrate")
    wb("calibrate", "--model", model, "--store", store, "--stream", cal_stream, "--device", "cpu",
       "--objective", recipe.objective, "--target-fa-per-hour", recipe.target_fa_per_hour)
    export = wb("export", "--model", model, "--out", work / "export", "--name", word, "--overwrite")
    return Path(export) / f"{word}.onnx"


def prepare_store(word: str, seed: int, recipe: Recipe, work: Path, data: Path, log) -> tuple[str, str]:
    """Synth, negatives, augment, streams and embed -> (store path, calibration stream path)."""
    pos_eng, neg_eng = engine_args(recipe.engines), engine_args(recipe.neg_engines)
    log(f"synth {recipe.n_pos} positives ({','.join(recipe.engines)})")
    pos = cached(data / f"pos-{word}-s{seed}-{'-'.join(recipe.engines)}-{recipe.n_pos}-v{voices_digest(recipe.engines)}",
                 "synth", word, "-n", recipe.n_pos, "--seed", seed, *pos_eng)
    log(f"negatives {recipe.n_hard} hard + {recipe.n_speech} speech ({','.join(recipe.neg_engines)})")
    neg_key = f"{word}-{'-'.join(recipe.neg_engines)}-{recipe.n_hard}-{recipe.n_speech}-{recipe.n_words}"
    # The sound-alike list changes with the library: cache by what it holds (no suffix: the first list).
    digest = hashlib.sha1("\n".join(c.text for c in candidates(word)).encode()).hexdigest()[:8]
    suffix = "" if digest == FIRST_CANDIDATES.get(word) else f"-c{digest}"
    neg_key += suffix if recipe.n_hard else ""
    neg_voices = f"-v{voices_digest(recipe.neg_engines)}"
    suffix += neg_voices
    neg_key += neg_voices
    neg = cached(data / f"neg-{neg_key}-s{seed}", "negatives", word, "-n", recipe.n_hard,
                 "--speech", recipe.n_speech, "--words", recipe.n_words, "--seed", seed, *neg_eng)
    cal_neg = cached(data / f"cal-{word}-{'-'.join(recipe.neg_engines)}-s{seed + 1000}{suffix}", "negatives", word,
                     "-n", 200, "--speech", 400, "--words", 0, "--seed", seed + 1000, *neg_eng)
    log("augment")
    manifests = [pos, wb("augment", pos, "--out", work / "positives-aug", "--copies", recipe.pos_copies,
                         "--seed", seed, *recipe.augment_args),
                 neg, wb("augment", neg, "--out", work / "negatives-aug", "--copies", recipe.neg_copies,
                         "--seed", seed, *recipe.augment_args)]
    if recipe.extra_augment_args:
        manifests += [wb("augment", source, "--out", work / f"{name}-aug2", "--copies", copies, "--seed", seed + 100,
                         *recipe.extra_augment_args)
                      for name, source, copies in (("positives", pos, recipe.pos_copies),
                                                   ("negatives", neg, recipe.neg_copies))]
    if recipe.real_negatives:
        manifests += [recipe.real_negatives,
                      wb("augment", recipe.real_negatives, "--out", work / "real-negatives-aug", "--copies",
                         recipe.neg_copies, "--seed", seed, *recipe.augment_args)]
    log("streams")
    window = f"{recipe.window_s:g}"
    (work / "train-stream").mkdir(exist_ok=True)
    wb("stream", neg, "--out", work / "train-stream" / "negatives.wav", "--duration-s", recipe.train_stream_s,
       "--seed", seed)
    manifests.append(wb("negatives", "--real", work / "train-stream", "--out", work / "train-stream-chunks",
                        "--min-s", window, "--max-s", window, "--hop-s", 0.3, "--overwrite"))
    cal_stream = wb("stream", cal_neg, "--out", work / "stream-calibrate.wav", "--duration-s",
                    recipe.cal_stream_s, "--seed", seed)
    log("embed")
    store = wb("embed", *manifests, "--store", work / "store.zarr", "--backbone", "speech-embedding",
               "--window-s", window, "--device", "cpu")
    return store, cal_stream


@functools.lru_cache(maxsize=None)
def voices_digest(engines: tuple[str, ...]) -> str:
    """sha1[:8] of the engines' voice settings here: a changed voice list never reads another's cache.

    Computed once per engine list; ``main`` fills the cache before its worker threads start.
    """
    keys = "\n".join(voice.key for voice in list_voices(list(engines)))
    return hashlib.sha1(keys.encode()).hexdigest()[:8]


def realdev_files() -> dict[str, list[Path]]:
    """realdev wav files by label (a word, or ``negative``)."""
    files: dict[str, list[Path]] = {w: sorted((REALDEV / "positives" / w).glob("*.wav")) for w in WORDS}
    files["negative"] = sorted((REALDEV / "negatives").rglob("*.wav"))
    return files


def padded_audio(path: Path) -> tuple[np.ndarray, float]:
    """A realdev file with ``PAD_S`` of silence on each side, and its unpadded seconds (both scorings use it)."""
    audio = load_audio(path)
    pad = np.zeros(int(PAD_S * SAMPLE_RATE), dtype=np.float32)
    return np.concatenate([pad, audio, pad]), audio.shape[0] / SAMPLE_RATE


def padded_traces(detector: Detector, paths: list[Path]) -> tuple[list[np.ndarray], float]:
    """Score trace of each file padded with silence, and the files' unpadded total seconds.

    Each file is scored on its own with ``score_waveform``'s batches, exactly as ``wb eval`` and
    ``wb detect`` do.
    """
    traces, seconds = [], 0.0
    for path in paths:
        audio, duration = padded_audio(path)
        seconds += duration
        traces.append(score_waveform(audio, detector.scorer, window_samples=detector.window_samples,
                                     hop=hop_samples(HOP_S)))
    return traces, seconds


def realdev_windows(window_s: float, workdir: Path) -> dict[str, np.ndarray]:
    """Every realdev file's padded windows embedded once: ``seq`` (windows, T, 96), ``file_index`` per window,
    and per file its ``label`` and unpadded ``seconds``. Cached under ``workdir`` by window and backbone."""
    from wakebuilder.backbones.speech_embedding import SpeechEmbeddingBackbone

    backbone = SpeechEmbeddingBackbone(window_s=window_s, threads=1)
    files = realdev_files()
    order = [(label, path) for label in (*WORDS, "negative") for path in files[label]]
    key = hashlib.sha1(json.dumps([backbone.identity, [str(p) for _, p in order]]).encode()).hexdigest()[:10]
    cache = workdir / f"realdev-windows-{key}.npz"
    if cache.is_file():
        with np.load(cache) as data:
            return {k: data[k] for k in data.files}
    seqs, file_index, seconds = [], [], []
    for i, (_, path) in enumerate(order):
        audio, duration = padded_audio(path)
        seconds.append(duration)
        windows = frame_windows(audio, backbone.window_samples, hop_samples(HOP_S))
        seqs.append(backbone.embed(np.ascontiguousarray(windows))[1].astype(np.float16))
        file_index += [i] * windows.shape[0]
    out = {"seq": np.concatenate(seqs), "file_index": np.array(file_index),
           "label": np.array([lab for lab, _ in order]), "seconds": np.array(seconds)}
    workdir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **out)
    return out


def n_events(traces: list[np.ndarray], threshold: float) -> int:
    return sum(len(count_events(t, threshold, frame_s=HOP_S, refractory_s=REFRACTORY_S)) for t in traces)


def n_detected(traces: list[np.ndarray], threshold: float) -> int:
    """Files with at least one detection (any frame at or above the threshold fires)."""
    return sum(bool((t >= threshold).any()) for t in traces)


def oracle_threshold(fa_traces: list[np.ndarray], max_false_accepts: int = ORACLE_MAX_FA) -> float:
    """Lowest threshold at which the false-accept set gives <= ``max_false_accepts`` events.

    A frame fires at ``score >= threshold``, so the event count changes just above each frame value: the
    candidates are the values nudged up by one float32 step (and the lowest value itself). Taking the frame
    values themselves skipped the gap above the last frame to exclude and picked the next frame value up,
    which understated recall (sheila, seed 0: 9/17 at 0.896 instead of 13/17 at 0.612).
    """
    values = np.unique(np.concatenate(fa_traces).astype(np.float32))
    candidates = np.concatenate([values[:1], np.nextafter(values, np.float32(np.inf))]).astype(np.float64)
    lo, hi = 0, candidates.size - 1  # events fall (weakly) as the threshold rises: binary search
    while lo < hi:
        mid = (lo + hi) // 2
        if n_events(fa_traces, float(candidates[mid])) <= max_false_accepts:
            hi = mid
        else:
            lo = mid + 1
    return float(candidates[lo])


def operating_point(pos: list[np.ndarray], fa: list[np.ndarray], fa_seconds: float, threshold: float) -> dict:
    hits, events = n_detected(pos, threshold), n_events(fa, threshold)
    return {"threshold": threshold, "n_clips": len(pos), "detected": hits, "recall": hits / len(pos),
            "false_accepts": events, "fa_hours": fa_seconds / 3600, "fa_per_hour": events / (fa_seconds / 3600)}


def word_traces(scores: np.ndarray, windows: dict[str, np.ndarray], word: str
                ) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Per-window scores of ``realdev_windows`` -> the score traces of ``word``'s files, those of the false-accept
    set (every other file), and the false-accept set's unpadded seconds."""
    traces = np.split(scores, np.flatnonzero(np.diff(windows["file_index"])) + 1)
    is_word = windows["label"] == word
    pos = [t for t, hit in zip(traces, is_word) if hit]
    fa = [t for t, hit in zip(traces, is_word) if not hit]
    return pos, fa, float(windows["seconds"][~is_word].sum())


def head_scores(head_onnx: Path, windows: dict[str, np.ndarray]) -> np.ndarray:
    """The exported ``NAME.head.onnx`` (calibrated probability of an embedding sequence) on every window of
    ``realdev_windows``."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(head_onnx), options, providers=["CPUExecutionProvider"])
    seq = windows["seq"]
    return np.concatenate([session.run(None, {"sequence": seq[i : i + 512].astype(np.float32)})[0].reshape(-1)
                           for i in range(0, len(seq), 512)]).astype(np.float32)


def score_word(
    word: str, onnx: Path, files: dict[str, list[Path]], windows: dict[str, np.ndarray] | None = None
) -> dict:
    """Recall and false accepts on realdev at the calibrated and the oracle threshold.

    With ``windows`` (realdev embedded once) the exported head scores them; without, the exported end-to-end
    ONNX scores every file from its audio (the same numbers up to float error, about 30 times slower).
    """
    detector = load_detector(onnx)
    fa_paths = [p for label in (*WORDS, "negative") if label != word for p in files[label]]
    if windows is not None:
        pos, fa, fa_seconds = word_traces(head_scores(onnx.with_name(f"{onnx.stem}.head.onnx"), windows), windows, word)
    else:
        pos, _ = padded_traces(detector, files[word])
        fa, fa_seconds = padded_traces(detector, fa_paths)
    oracle = oracle_threshold(fa)
    return {"window_samples": detector.window_samples, "n_fa_files": len(fa_paths),
            "calibrated": operating_point(pos, fa, fa_seconds, detector.threshold),
            "oracle_tuned_on_realdev": operating_point(pos, fa, fa_seconds, oracle),
            "max_score_positives": [round(float(t.max()), 4) for t in pos]}


def pooled(runs: list[dict], key: str) -> dict:
    """Recall pooled over clips and FA/h pooled over hours of the given runs."""
    hits = sum(r[key]["detected"] for r in runs)
    clips = sum(r[key]["n_clips"] for r in runs)
    events = sum(r[key]["false_accepts"] for r in runs)
    hours = sum(r[key]["fa_hours"] for r in runs)
    return {"detected": hits, "n_clips": clips, "recall": hits / clips, "false_accepts": events,
            "fa_per_hour": events / hours}


def summarize(runs: list[dict], words: list[str], seeds: list[int]) -> dict:
    keys = ("calibrated", "oracle_tuned_on_realdev")
    per_seed = {str(s): {k: pooled([r for r in runs if r["seed"] == s], k) for k in keys} for s in seeds}
    per_word = {w: {k: {"recall_mean": float(np.mean([r[k]["recall"] for r in runs if r["word"] == w])),
                        "fa_per_hour_mean": float(np.mean([r[k]["fa_per_hour"] for r in runs if r["word"] == w]))}
                    for k in keys} for w in words}
    mean = {k: {"recall_mean": float(np.mean([per_seed[str(s)][k]["recall"] for s in seeds])),
                "recall_sd": float(np.std([per_seed[str(s)][k]["recall"] for s in seeds])),
                "fa_per_hour_mean": float(np.mean([per_seed[str(s)][k]["fa_per_hour"] for s in seeds]))}
            for k in keys}
    return {"pooled_per_seed": per_seed, "per_word_mean_over_seeds": per_word, "pooled_mean_over_seeds": mean}


def print_table(tag: str, runs: list[dict], summary: dict) -> None:
    print(f"\nreal_transfer [{tag}]   calibrated threshold (synthetic only) | oracle threshold, tuned on realdev")
    print(f"{'word':8} {'seed':>4} {'thr':>6} {'recall':>12} {'FA':>4} {'FA/h':>6} | {'thr':>6} {'recall':>12} "
          f"{'FA':>3} | {'wall s':>7}")
    for r in runs:
        c, o = r["calibrated"], r["oracle_tuned_on_realdev"]
        print(f"{r['word']:8} {r['seed']:>4} {c['threshold']:6.3f} {c['detected']:>3}/{c['n_clips']:<3}"
              f"{c['recall']:5.0%} {c['false_accepts']:>4} {c['fa_per_hour']:6.1f} | {o['threshold']:6.3f} "
              f"{o['detected']:>3}/{o['n_clips']:<3}{o['recall']:5.0%} {o['false_accepts']:>3} | "
              f"{r['train_wall_s']:7.0f}")
    for seed, row in summary["pooled_per_seed"].items():
        c, o = row["calibrated"], row["oracle_tuned_on_realdev"]
        print(f"{'pooled':8} {seed:>4} {'':6} {c['detected']:>3}/{c['n_clips']:<3}{c['recall']:5.0%} "
              f"{c['false_accepts']:>4} {c['fa_per_hour']:6.1f} | {'':6} {o['detected']:>3}/{o['n_clips']:<3}"
              f"{o['recall']:5.0%} {o['false_accepts']:>3} |")
    m = summary["pooled_mean_over_seeds"]
    print(f"mean over seeds: recall {m['calibrated']['recall_mean']:.1%} (sd {m['calibrated']['recall_sd']:.1%}), "
          f"FA/h {m['calibrated']['fa_per_hour_mean']:.1f}; oracle recall "
          f"{m['oracle_tuned_on_realdev']['recall_mean']:.1%}")


def library_identity() -> dict:
    """Where the imported wakebuilder lives and which commit it is (COMMIT file of a snapshot, else git)."""
    where = Path(wakebuilder.__file__).resolve().parent.parent
    marker = where / "COMMIT"
    if marker.is_file():
        return {"path": str(where), "commit": marker.read_text().strip(), "dirty": False}
    head = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(where), "status", "--porcelain", "wakebuilder"],
                           capture_output=True, text=True)
    return {"path": str(where), "commit": head.stdout.strip(), "dirty": bool(dirty.stdout.strip())}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    split = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    p.add_argument("--words", type=split, default=list(WORDS))
    p.add_argument("--seeds", type=lambda s: [int(x) for x in split(s)], default=[0, 1, 2])
    p.add_argument("--quick", action="store_true", help="words happy,sheila and seed 0 only")
    p.add_argument("--engines", type=split, default=["piper", "flite", "espeak"], help="TTS engines of positives")
    p.add_argument("--neg-engines", type=split, default=None, help="TTS engines of negatives [default: --engines]")
    p.add_argument("--n-pos", type=int, default=600)
    p.add_argument("--n-hard", type=int, default=1500)
    p.add_argument("--n-speech", type=int, default=1000)
    p.add_argument("--pos-copies", type=int, default=2)
    p.add_argument("--neg-copies", type=int, default=1)
    p.add_argument("--train-stream-s", type=float, default=600.0)
    p.add_argument("--cal-stream-s", type=float, default=600.0)
    p.add_argument("--objective", choices=["f1", "fa-per-hour"], default="f1")
    p.add_argument("--target-fa-per-hour", type=float, default=0.5)
    p.add_argument("--window-s", type=float, default=2.5, help="speech-embedding window (quickstart: 2.5)")
    p.add_argument("--words-neg", type=int, default=0, dest="n_words", help="isolated-word TTS negatives")
    p.add_argument("--augment-args", default="", help="extra wb augment options, space separated")
    p.add_argument("--extra-augment", default="",
                   help="a second wb augment pass with these options (space separated; --pos-copies and "
                        "--neg-copies copies, seed + 100) whose clips are added to the first pass's")
    p.add_argument("--real-negatives", type=Path, default=None,
                   help="a `wb negatives --real` manifest of real speech holding none of realdev's words: its "
                        "chunks and --neg-copies augmented copies are added to every store as negatives")
    p.add_argument("--fit-args", default="", help="extra wb fit options, space separated")
    p.add_argument("--threads", type=int, default=0,
                   help="threads of each wb command (embed, fit: --threads; all: OMP_NUM_THREADS) [0: defaults]")
    p.add_argument("--tag", default=None, help="names the results file [default: the engines joined by -]")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/real_transfer"))
    p.add_argument("--store-from", default=None,
                   help="reuse the stores and calibration streams of this tag's runs: only fit, calibrate and "
                        "export run (head experiments; the data options must match that tag's)")
    p.add_argument("--jobs", type=int, default=1,
                   help="(word, seed) models trained at once; wall times then include the contention")
    p.add_argument("--end-to-end", action="store_true",
                   help="score every realdev file through the exported end-to-end ONNX (slow) instead of the "
                        "exported head on realdev's windows embedded once")
    p.add_argument("--combine", type=split, default=None,
                   help="only merge these results files (tags, comma separated; same recipe) into --tag")
    p.add_argument("--rescore", action="store_true",
                   help="only score the exported models of results file --tag again (no training)")
    p.add_argument("--resume", action="store_true",
                   help="keep the runs of an existing results file with the same recipe and library")
    args = p.parse_args(argv)
    if args.quick:
        args.words, args.seeds = list(QUICK_WORDS), [0]
    unknown = set(args.words) - set(WORDS)
    if unknown:
        p.error(f"--words: not in realdev: {sorted(unknown)}")
    if args.real_negatives and not args.real_negatives.is_file():
        p.error(f"--real-negatives {args.real_negatives}: no such manifest (make one with wb negatives --real DIR)")
    args.tag = args.tag or "-".join(args.engines)
    return args


def rescore(tag: str, files: dict[str, list[Path]], workdir: Path) -> Path:
    """Score the exported models of an existing results file again with this script's scoring (after a fix
    to the scoring, say); training is not repeated. The file records which scoring commit rescored it."""
    out = RESULTS / f"real_transfer_{tag}.json"
    result = json.loads(out.read_text(encoding="utf-8"))
    windows = realdev_windows(result["recipe"]["window_s"], workdir)
    for run in result["runs"]:
        run.update(score_word(run["word"], Path(run["onnx"]), files, windows))
    result["summary"] = summarize(result["runs"], sorted({r["word"] for r in result["runs"]}, key=WORDS.index),
                                  sorted({r["seed"] for r in result["runs"]}))
    result["rescored_by"] = library_identity()["commit"]
    result["protocol"]["scoring"] = "NAME.head.onnx on cached windows"
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_table(tag, result["runs"], result["summary"])
    return out


def combine(tag: str, sources: list[str]) -> Path:
    """One results file ``tag`` from several of the same recipe (seeds run in separate sessions, say); each run
    keeps the name and library of the file it came from. Different recipes or a (word, seed) twice refuse."""
    results = [json.loads((RESULTS / f"real_transfer_{name}.json").read_text(encoding="utf-8")) for name in sources]
    if any(r["recipe"] != results[0]["recipe"] for r in results):
        raise SystemExit(f"--combine {','.join(sources)}: the files hold different recipes")
    runs = [{**run, "from_results": name, "library": r["library"]} for name, r in zip(sources, results)
            for run in r["runs"]]
    keys = [(run["word"], run["seed"]) for run in runs]
    if len(set(keys)) != len(keys):
        raise SystemExit(f"--combine {','.join(sources)}: a (word, seed) run appears twice")
    runs.sort(key=lambda run: (run["seed"], WORDS.index(run["word"])))
    words = sorted({run["word"] for run in runs}, key=WORDS.index)
    seeds = sorted({run["seed"] for run in runs})
    summary = summarize(runs, words, seeds)
    out = RESULTS / f"real_transfer_{tag}.json"
    out.write_text(json.dumps({"tag": tag, "combined_from": sources, "recipe": results[0]["recipe"], "words": words,
                               "seeds": seeds, "complete": len(runs) == len(words) * len(seeds),
                               "protocol": results[0]["protocol"], "runs": runs, "summary": summary}, indent=2)
                   + "\n", encoding="utf-8")
    print_table(tag, runs, summary)
    return out


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.combine:
        print(combine(args.tag, args.combine))
        return
    if args.rescore:
        print(rescore(args.tag, realdev_files(), args.workdir))
        return
    recipe = Recipe(engines=tuple(args.engines), neg_engines=tuple(args.neg_engines or args.engines),
                    n_pos=args.n_pos, n_hard=args.n_hard, n_speech=args.n_speech, pos_copies=args.pos_copies,
                    neg_copies=args.neg_copies, train_stream_s=args.train_stream_s,
                    cal_stream_s=args.cal_stream_s, objective=args.objective,
                    target_fa_per_hour=args.target_fa_per_hour, window_s=args.window_s, n_words=args.n_words,
                    augment_args=tuple(args.augment_args.split()), fit_args=tuple(args.fit_args.split()),
                    extra_augment_args=tuple(args.extra_augment.split()),
                    real_negatives=str(args.real_negatives.resolve()) if args.real_negatives else None,
                    store_from=args.store_from, threads=args.threads)
    THREADS["n"] = args.threads
    # realdev's windows embedded once (cached under --workdir); each model's exported head scores them
    windows = None if args.end_to_end else realdev_windows(recipe.window_s, args.workdir)
    for engines in {recipe.engines, recipe.neg_engines}:
        voices_digest(engines)  # one thread lists the voices (espeak-ng crashed when two initialised it at once)
    files = realdev_files()
    library = library_identity()
    out = RESULTS / f"real_transfer_{args.tag}.json"
    runs: list[dict] = []
    if args.resume and out.is_file():
        previous = json.loads(out.read_text(encoding="utf-8"))
        if previous["recipe"] == json.loads(json.dumps(asdict(recipe))) and previous["library"] == library:
            runs = [r for r in previous["runs"] if r["word"] in args.words and r["seed"] in args.seeds]
            print(f"resuming: {len(runs)} run(s) kept from {out}", file=sys.stderr)
        else:
            print(f"not resuming: {out} has another recipe or library", file=sys.stderr)
    done = {(r["word"], r["seed"]) for r in runs}
    todo = [(word, seed) for seed in args.seeds for word in args.words if (word, seed) not in done]
    lock = threading.Lock()

    def write() -> dict:
        ordered = sorted(runs, key=lambda r: (r["seed"], WORDS.index(r["word"])))
        summary = summarize(ordered, sorted({r["word"] for r in runs}, key=WORDS.index),
                            sorted({r["seed"] for r in runs}))
        result = {"tag": args.tag, "recipe": asdict(recipe), "words": args.words, "seeds": args.seeds,
                  "complete": len(runs) == len(args.words) * len(args.seeds), "jobs": args.jobs,
                  "protocol": {"hop_s": HOP_S, "refractory_s": REFRACTORY_S, "pad_s": PAD_S, "smooth": 1,
                               "oracle_max_false_accepts": ORACLE_MAX_FA,
                               "scoring": "end-to-end ONNX" if args.end_to_end else "NAME.head.onnx on cached windows",
                               "fa_set": "negatives/ + other words' positives, FA/h over unpadded hours"},
                  "library": library, "machine": {"platform": platform.platform(), "python": platform.python_version()},
                  "runs": ordered, "summary": summary}
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        tmp.replace(out)  # after every run: a partial file is complete up to its last run
        return result

    def one(word: str, seed: int) -> None:
        start = time.perf_counter()
        onnx = train_word(word, seed, recipe, args.workdir / args.tag / f"{word}-s{seed}", args.workdir / "data")
        trained = time.perf_counter()
        scores = score_word(word, onnx, files, windows)
        run = {"word": word, "seed": seed, "onnx": str(onnx), "train_wall_s": trained - start,
               "score_wall_s": time.perf_counter() - trained, **scores}
        print(f"  [{word} s{seed}] done: recall {scores['calibrated']['recall']:.0%} at "
              f"{scores['calibrated']['threshold']:.3f}, {run['train_wall_s']:.0f} s", file=sys.stderr)
        with lock:
            runs.append(run)
            write()

    with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
        for future in [pool.submit(one, word, seed) for word, seed in todo]:
            future.result()
    result = write()
    runs = result["runs"]
    print_table(args.tag, runs, result["summary"])
    print(out)


if __name__ == "__main__":
    main()
