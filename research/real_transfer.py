"""Real-speech recall: models trained only on synthetic speech, scored on real recordings (realdev).

For each word W the library's recipe (``wakebuilder.recipe.run_recipe``, the code behind ``wb quickstart``,
with its quick preset unless a flag changes a setting) runs from W's text alone in a work dir under
``--workdir``: synth positives, negatives, augment, training-stream windows, a held-out synthetic stream
(another seed) for calibration, embed (speech-embedding), fit, calibrate, export. realdev is never used for
training, for picking training data or for the calibrated threshold; it is only scored. The results file
records the recipe config that ran (``recipe``).

Scoring uses the exported ONNX and the streaming protocol of ``wb eval``/``wb detect`` (hop 0.1 s,
refractory 1 s, no smoothing). Every realdev file is padded with 1 s of silence on each side and
scanned on its own (the event counter is reset between files):
  * recall: share of ``positives/W/*.wav`` with at least one detection;
  * false accepts: detections over every file under ``negatives/`` plus the OTHER words' positives;
    FA/h divides by their unpadded duration (the silence padding is not counted as audio).
Reported at the calibrated threshold (chosen on synthetic data only), and separately at the
"oracle threshold, tuned on realdev": the lowest threshold with <= 1 false accept on the same
false-accept set. The oracle figure is optimistic and must not be quoted as a test result.

Usage: .venv/bin/python research/real_transfer.py [--quick] [--words happy,sheila] [--seeds 0,1,2]
       [--realdev DIR] [--engines piper,flite] [--n-pos 600] [--augment formant_p=0.5] [--fit members=3] [--tag NAME]
Writes research/results/real_transfer_<tag>.json (tag defaults to the engines, e.g. piper-flite).
To pin the library while the working tree changes, run with PYTHONPATH=<a `git archive` of a commit, with
its hash in a COMMIT file>; the JSON records which library ran.
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
from pathlib import Path

import numpy as np
import yaml

import wakebuilder
import wakebuilder.recipe as recipe
from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import load_audio
from wakebuilder.bank.location import bank_store_path
from wakebuilder.config import StageConfig
from wakebuilder.detect import Detector, load_detector
from wakebuilder.recipe import RecipeConfig
from wakebuilder.streaming import count_events, frame_windows, hop_samples, score_waveform

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).parent / "results"
REALDEV = ROOT.parent / "shared" / "realdev"  # the default of --realdev
KOKORO_VOICES = ROOT.parent / "shared" / "voices" / "kokoro-v1.0-voices.npz"  # Kokoro's 54 voices, when unset
WORDS = ("happy", "sheila", "forward", "marvin", "house", "visual")
QUICK_WORDS = ("happy", "sheila")
HOP_S, REFRACTORY_S, PAD_S = 0.1, 1.0, 1.0
ORACLE_MAX_FA = 1
# RecipeConfig fields a flag of the same name changes (unset: the recipe's default)
OVERRIDES = ("engines", "neg_engines", "shared_engines", "n_pos", "n_hard", "n_speech", "n_words", "pos_copies",
             "neg_copies", "train_stream_s", "stream_s", "objective", "target_fa_per_hour", "window_s")


def recipe_config(args: argparse.Namespace, word: str = "<word>") -> RecipeConfig:
    """The library's recipe (``wb quickstart``'s quick preset) for ``word``, changed only where a flag says so."""
    given = {name: getattr(args, name) for name in OVERRIDES if getattr(args, name) is not None}
    augment = RecipeConfig().augment.replace(**parse_settings(args.augment, RecipeConfig().augment))
    fit = RecipeConfig().fit.replace(**parse_settings(args.fit, RecipeConfig().fit))
    return RecipeConfig.preset("quick", phrase=word, backbone=args.backbone, augment=augment, fit=fit,
                               report=not args.no_report, **given)


def parse_settings(pairs: list[str], base: StageConfig) -> dict:
    """``KEY=VALUE`` pairs (VALUE read as YAML: ``0.5``, ``[0.8, 1.2]``, ``true``) checked against ``base``'s fields."""
    changes = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"{pair!r}: expected KEY=VALUE")
        changes[key] = yaml.safe_load(value)
    return {k: getattr(type(base).from_dict({**base.to_dict(), **changes}), k) for k in changes}


def train_word(word: str, seed: int, args: argparse.Namespace, work: Path) -> Path:
    """The library's recipe from the word's text alone -> exported ONNX path."""
    config = recipe_config(args, word).replace(seed=seed)
    extra = [str(args.real_negatives)] if args.real_negatives else []
    if not args.store_from:
        return recipe.run_recipe(config, out_dir=work, extra_negatives=extra, device="cpu", threads=args.threads).onnx
    source = work.parent.parent / args.store_from / work.name
    from recalibrate_runs import run_calibration_stream

    store, cal_stream = source / "store.zarr", run_calibration_stream(config, source)
    if not (store.is_dir() and cal_stream.is_file()):
        raise FileNotFoundError(f"--store-from {args.store_from}: no store or calibration stream in {source}")
    data = recipe.RecipeData(train_manifests=[], negatives=source / "negatives" / "manifest.jsonl",
                             heldout_positives=None, heldout_negatives=None, calibration_stream=cal_stream,
                             report_stream=None)
    work.mkdir(parents=True, exist_ok=True)
    bank = bank_store_path(config.backbone, config.embed_window_s) if config.bank else None  # the recipe fits with it
    return recipe.train_and_export(config.replace(report=False), work, store, data, device="cpu", bank=bank).onnx


def kokoro_voices(args: argparse.Namespace) -> str | None:
    """The Kokoro voices the recipe's synthesis will load, set in ``WB_KOKORO_VOICES`` for it (None: no Kokoro).

    ``WB_KOKORO_VOICES`` when set, else the shared copy of Kokoro v1.0's 54 voices (the protocol since the twelfth
    round), else fetched English voices. The five bundled voices only with ``--kokoro-bundled``: the nineteenth
    round ran on them unawares, which a user with the English voices does not.
    """
    from wakebuilder.data.tts.fetch import cached_kokoro_packs

    if "kokoro" not in recipe_config(args).engines:
        return None
    if args.kokoro_bundled:
        os.environ.pop("WB_KOKORO_VOICES", None)
        return "bundled"
    if not os.environ.get("WB_KOKORO_VOICES") and KOKORO_VOICES.is_file():
        os.environ["WB_KOKORO_VOICES"] = str(KOKORO_VOICES)
    if os.environ.get("WB_KOKORO_VOICES"):
        return os.environ["WB_KOKORO_VOICES"]
    if cached_kokoro_packs():
        return "fetched kokoro-en"
    raise SystemExit(f"Kokoro would speak with its five bundled voices: set WB_KOKORO_VOICES (e.g. {KOKORO_VOICES}) "
                     "or fetch kokoro-en, or pass --kokoro-bundled to measure them on purpose")


def realdev_files(realdev: Path = REALDEV) -> dict[str, list[Path]]:
    """realdev wav files by label (a word, or ``negative``)."""
    if not (realdev / "positives").is_dir():
        raise SystemExit(f"--realdev {realdev}: no positives/ folder there (the realdev recordings)")
    files: dict[str, list[Path]] = {w: sorted((realdev / "positives" / w).glob("*.wav")) for w in WORDS}
    files["negative"] = sorted(p for p in (realdev / "negatives").rglob("*") if p.suffix in (".wav", ".flac"))
    return files


def category(path: Path) -> str:
    """A false-accept file's category: ``music`` (negatives/music_*), ``noise`` (negatives/noise_*), else ``speech``."""
    folder = path.parent.name
    return "music" if folder.startswith("music") else "noise" if folder.startswith("noise") else "speech"


@functools.cache
def file_seconds(path: Path) -> float:
    """A realdev file's unpadded seconds (what FA/h divides by)."""
    import soundfile

    info = soundfile.info(str(path))
    return info.frames / info.samplerate


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


def realdev_windows(window_s: float | None, workdir: Path, realdev: Path = REALDEV,
                    backbone_spec: str = "speech-embedding") -> dict[str, np.ndarray]:
    """Every realdev file's padded windows embedded once: ``seq`` (windows, T, D), ``file_index`` per window,
    and per file its ``label`` and unpadded ``seconds``. Cached under ``workdir`` by window and backbone
    (an ONNX backbone: speech-embedding or word-embedding)."""
    from wakebuilder.backbones import load_backbone

    backbone = load_backbone(backbone_spec, window_s=window_s, threads=1)
    files = realdev_files(realdev)
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


def operating_point(pos: list[np.ndarray], fa: list[np.ndarray], fa_seconds: float, threshold: float,
                    categories: list[str] | None = None, seconds: list[float] | None = None) -> dict:
    """Recall and false accepts at ``threshold``; with each false-accept file's category and seconds, also
    the false accepts and FA/h of each category (speech, music, noise)."""
    hits, events = n_detected(pos, threshold), n_events(fa, threshold)
    point = {"threshold": threshold, "n_clips": len(pos), "detected": hits, "recall": hits / len(pos),
             "false_accepts": events, "fa_hours": fa_seconds / 3600, "fa_per_hour": events / (fa_seconds / 3600)}
    if categories is not None and seconds is not None:
        point["by_category"] = {}
        for name in sorted(set(categories)):
            rows = [i for i, c in enumerate(categories) if c == name]
            count, hours = n_events([fa[i] for i in rows], threshold), sum(seconds[i] for i in rows) / 3600
            point["by_category"][name] = {"false_accepts": count, "hours": hours, "fa_per_hour": count / hours}
    return point


def word_traces(scores: np.ndarray, windows: dict[str, np.ndarray], word: str
                ) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Per-window scores of ``realdev_windows`` -> the score traces of ``word``'s files, those of the false-accept
    set (every other file), and the false-accept set's unpadded seconds."""
    traces = np.split(scores, np.flatnonzero(np.diff(windows["file_index"])) + 1)
    is_word = windows["label"] == word
    pos = [t for t, hit in zip(traces, is_word) if hit]
    fa = [t for t, hit in zip(traces, is_word) if not hit]
    return pos, fa, float(windows["seconds"][~is_word].sum())


def export_arguments(parser: argparse.ArgumentParser, *, window_s: float | None = 1.5) -> None:
    """The options of a script that scores exported models on realdev's cached windows: ``--pattern`` (an export's
    ``.onnx`` path with ``{word}`` and ``{seed}``), ``--backbone``, ``--window-s``, ``--workdir``, ``--data-seeds``."""
    parser.add_argument("--pattern", required=True, help="an export's .onnx path with {word} and {seed}")
    parser.add_argument("--backbone", default="word-embedding")
    parser.add_argument("--window-s", type=float, default=window_s)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/rd"))
    parser.add_argument("--data-seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])


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
    categories = [category(p) for p in fa_paths]
    seconds = [file_seconds(p) for p in fa_paths]
    return {"window_samples": detector.window_samples, "n_fa_files": len(fa_paths),
            "calibrated": operating_point(pos, fa, fa_seconds, detector.threshold, categories, seconds),
            "oracle_tuned_on_realdev": operating_point(pos, fa, fa_seconds, oracle, categories, seconds),
            # the same oracle with speech alone in the false-accept set: what results before music and noise
            # joined realdev's scoring (the *.wav glob missed their FLAC files) measured
            "oracle_speech_only": operating_point(
                pos, fa, fa_seconds, oracle_threshold([t for t, c in zip(fa, categories) if c == "speech"]),
                categories, seconds),
            "max_score_positives": [round(float(t.max()), 4) for t in pos]}


def pooled(runs: list[dict], key: str) -> dict:
    """Recall pooled over clips and FA/h pooled over hours of the given runs."""
    hits = sum(r[key]["detected"] for r in runs)
    clips = sum(r[key]["n_clips"] for r in runs)
    events = sum(r[key]["false_accepts"] for r in runs)
    hours = sum(r[key]["fa_hours"] for r in runs)
    out = {"detected": hits, "n_clips": clips, "recall": hits / clips, "false_accepts": events,
           "fa_per_hour": events / hours}
    if runs and all("by_category" in r[key] for r in runs):  # FA/h of speech, music and noise over the runs' hours
        names = sorted({c for r in runs for c in r[key]["by_category"]})
        out["by_category"] = {}
        for name in names:
            count = sum(r[key]["by_category"].get(name, {}).get("false_accepts", 0) for r in runs)
            total = sum(r[key]["by_category"].get(name, {}).get("hours", 0.0) for r in runs)
            out["by_category"][name] = {"false_accepts": count, "hours": total, "fa_per_hour": count / total}
    return out


def summarize(runs: list[dict], words: list[str], seeds: list[int]) -> dict:
    keys = tuple(k for k in ("calibrated", "oracle_tuned_on_realdev", "oracle_speech_only") if k in runs[0])
    per_seed = {str(s): {k: pooled([r for r in runs if r["seed"] == s], k) for k in keys} for s in seeds}
    per_word = {w: {k: {"recall_mean": float(np.mean([r[k]["recall"] for r in runs if r["word"] == w])),
                        "fa_per_hour_mean": float(np.mean([r[k]["fa_per_hour"] for r in runs if r["word"] == w]))}
                    for k in keys} for w in words}
    everything = {k: pooled(runs, k) for k in keys}  # every model's clips and hours pooled (all words and seeds)
    mean = {k: {"recall_mean": float(np.mean([per_seed[str(s)][k]["recall"] for s in seeds])),
                "recall_sd": float(np.std([per_seed[str(s)][k]["recall"] for s in seeds])),
                "fa_per_hour_mean": float(np.mean([per_seed[str(s)][k]["fa_per_hour"] for s in seeds]))}
            for k in keys}
    return {"pooled_per_seed": per_seed, "per_word_mean_over_seeds": per_word, "pooled_mean_over_seeds": mean,
            "pooled_all_runs": everything}


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
    for key in summary["pooled_all_runs"]:
        cats = summary["pooled_all_runs"][key].get("by_category")
        if cats:
            print(f"FA/h by category, {key}, pooled over every model: " + ", ".join(
                f"{n} {c['fa_per_hour']:.2f} ({c['false_accepts']} in {c['hours']:.2f} h)" for n, c in cats.items()))
    m = summary["pooled_mean_over_seeds"]
    print(f"mean over seeds: recall {m['calibrated']['recall_mean']:.1%} (sd {m['calibrated']['recall_sd']:.1%}), "
          f"FA/h {m['calibrated']['fa_per_hour_mean']:.1f}; oracle recall "
          f"{m['oracle_tuned_on_realdev']['recall_mean']:.1%}"
          + (f"; oracle on speech alone {m['oracle_speech_only']['recall_mean']:.1%}" if "oracle_speech_only" in m
             else ""))


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
    p.add_argument("--realdev", type=Path, default=REALDEV, help="the realdev recordings [default: %(default)s]")
    # Recipe settings: unset, the library recipe's quick preset decides (RecipeConfig); the results file records
    # the config that ran.
    p.add_argument("--engines", type=lambda s: tuple(split(s)), default=None, help="TTS engines")
    p.add_argument("--neg-engines", type=lambda s: tuple(split(s)), default=None,
                   help="TTS engines of negatives [default: --engines]")
    p.add_argument("--shared-engines", type=lambda s: tuple(split(s)), default=None,
                   help="TTS engines of the bank's and the held-out generic speech [default: the recipe's]")
    for name, kind in (("n_pos", int), ("n_hard", int), ("n_speech", int), ("n_words", int), ("pos_copies", int),
                       ("neg_copies", int), ("train_stream_s", float), ("stream_s", float),
                       ("target_fa_per_hour", float), ("window_s", float)):
        p.add_argument(f"--{name.replace('_', '-')}", type=kind, default=None)
    p.add_argument("--objective", choices=["f1", "fa-per-hour"], default=None)
    p.add_argument("--backbone", default="word-embedding",
                   help="the recipe's backbone (the quickstart's default): word-embedding or speech-embedding "
                   "[default: %(default)s]")
    p.add_argument("--augment", action="append", default=[], metavar="KEY=VALUE",
                   help="an AugmentConfig setting of the recipe (repeatable), e.g. formant_p=0.5")
    p.add_argument("--fit", action="append", default=[], metavar="KEY=VALUE",
                   help="a FitConfig setting of the recipe (repeatable), e.g. members=3")
    p.add_argument("--no-report", action="store_true", help="skip the recipe's synthetic held-out report")
    p.add_argument("--real-negatives", type=Path, default=None,
                   help="a `wb negatives --real` manifest of real speech holding none of realdev's words: its "
                        "chunks and --neg-copies augmented copies are added to every store as negatives")
    p.add_argument("--threads", type=int, default=0, help="torch and onnxruntime threads [0: their defaults]")
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
    p.add_argument("--kokoro-bundled", action="store_true",
                   help="let Kokoro speak with its five bundled voices (default: WB_KOKORO_VOICES, else the shared "
                        "54 voices beside the repository, else fetched ones; refused when none is found)")
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
    args.tag = args.tag or "-".join(recipe_config(args).engines)
    return args


def rescore(tag: str, files: dict[str, list[Path]], workdir: Path, realdev: Path = REALDEV) -> Path:
    """Score the exported models of an existing results file again with this script's scoring (after a fix
    to the scoring, say); training is not repeated. The file records which scoring commit rescored it."""
    out = RESULTS / f"real_transfer_{tag}.json"
    result = json.loads(out.read_text(encoding="utf-8"))
    config = RecipeConfig.from_dict(result["recipe"])
    windows = realdev_windows(config.embed_window_s, workdir, realdev, config.backbone)
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
        print(rescore(args.tag, realdev_files(args.realdev), args.workdir, args.realdev))
        return
    config = recipe_config(args)
    recorded = config.to_dict()
    voices = kokoro_voices(args) if not args.store_from else None  # before any synthesis worker starts
    # realdev's windows embedded once (cached under --workdir); each model's exported head scores them
    windows = None if args.end_to_end else realdev_windows(config.embed_window_s, args.workdir, args.realdev,
                                                           args.backbone)
    files = realdev_files(args.realdev)
    library = library_identity()
    out = RESULTS / f"real_transfer_{args.tag}.json"
    runs: list[dict] = []
    if args.resume and out.is_file():
        previous = json.loads(out.read_text(encoding="utf-8"))
        if previous["recipe"] == recorded and previous["library"] == library:
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
        result = {"tag": args.tag, "recipe": recorded, "realdev": str(args.realdev),
                  "real_negatives": str(args.real_negatives) if args.real_negatives else None,
                  "store_from": args.store_from, "kokoro_voices": voices, "words": args.words, "seeds": args.seeds,
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
        onnx = train_word(word, seed, args, args.workdir / args.tag / f"{word}-s{seed}")
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
