"""Head experiments on realdev: several fit configs x head seeds on the stores real_transfer.py left behind.

``real_transfer.py`` trains each word's model from its text alone and keeps the work dir
(``<workdir>/<tag>/<word>-s<seed>/store.zarr``). This script refits heads on those stores in-process
(``fit_head``, every ``FitConfig`` field settable) and scores them on realdev without re-running the
backbone per model: realdev's sliding windows (each file padded with 1 s of silence, hop 0.1 s, as in
``real_transfer.py``) are embedded once and cached. The scores are the head's raw logits, so only
threshold-free figures are reported: recall at the lowest threshold with at most K false accepts on the
false-accept set (K = 0, 1, 3; tuned on realdev, optimistic, for comparing configs only), and the share of
false-accept files each positive outscores (AUC over files, per word). realdev is only scored, never trained
on. Heads are compared by means over words and head seeds; the synthesized data stays that of one seed.

``--drop-positives PREFIX`` leaves out the positive clips whose voice (their group, e.g. ``piper:en_US-joe-medium:...``
or ``flite:kal:...``; augmented copies follow their parent) starts with PREFIX, to measure what each voice adds.
``--store PATTERN`` takes stores from elsewhere (``{word}`` and ``{seed}`` filled in) instead of ``--tag``.
``--extra-store PATTERN`` (repeatable; ``{word}`` and ``{seed}`` filled in) adds another store's rows to each word's,
in memory: clips embedded once for every word (real negatives, say) or a word's clips from another engine.
``--bank PATH`` adds a negative bank as ``wb fit --store <word's> --store <bank>`` does: read as one with the
bank's rows that say the word left out. ``--recipe-fit`` starts every config from the fit settings in the
store's ``recipe_config.json`` (the recipe's head) instead of ``FitConfig()``. ``--drop ARM`` (repeatable) leaves
out a class of training rows to measure what it adds: ``background-positives`` (positives mixed over music or
noise), ``nonspeech`` (negatives of music, noise and other sound), ``kokoro`` / ``kokoro-positives`` /
``kokoro-negatives``, ``soundalikes-half`` (the second half of the sound-alikes in store order and their copies:
every candidate text keeps half its voices, as ``n_hard`` at half would), ``soundalikes-within:D`` (the
sound-alikes at most D from the phrase by ``phonetics.candidates``' distance, and their copies),
``positives-half:ENGINE,ENGINE`` (the second half of each of those engines' positive clips in store order, and
their copies: with an ``--extra-store`` of another engine's positives, a shift of the positives' share at the same
count), ``only:ENGINE,ENGINE`` (speech rows of other engines; non-speech rows stay).
``--ensemble`` also scores, per word and config, the average of its head seeds' Platt-calibrated probabilities (each
head's mapping fitted on its own validation rows, as ``wb calibrate`` does; every head seed has its own split):
an ensemble of heads of one store, against ``real_ensemble.py``'s ensembles of models of other data seeds. Each
head's calibrated probabilities on realdev's windows are kept in ``<workdir>/ensemble-scores/<name>/<word>-d<data
seed>-h<head seed>.npy`` (float16) for ensembles across runs (``ensemble_scores.py``).
Besides the figures over every false-accept file, each head gets them with speech alone in the false-accept
set (``*_speech``), and the music and noise false accepts at the speech-only one-false-accept threshold.

Usage: .venv/bin/python research/real_heads.py --tag base --config default --config 'in5fr2={"input_dropout": 0.5,
       "frame_dropout": 0.2}' [--words happy,sheila] [--head-seeds 0,1,2] [--drop-positives piper] [--name NAME]
Writes research/results/real_heads_<name>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402

from wakebuilder.scoring import head_logits  # noqa: E402

KS = (0, 1, 3)


def load_store(path: Path):
    """The store's arrays with leak-proof groups, as ``wb fit`` builds them."""
    from wakebuilder.store import open_store
    from wakebuilder.train.fit import training_arrays

    with open_store(path, "r") as store:
        return training_arrays(store)


def concatenate(first, *others):
    """Several stores' training arrays as one (every field that the first has, row after row)."""
    fields = [f.name for f in dataclasses.fields(first) if getattr(first, f.name) is not None]
    missing = [f for f in fields for o in others if getattr(o, f) is None]
    if missing:
        raise ValueError(f"--extra-store: a store lacks the field(s) {sorted(set(missing))}")
    return dataclasses.replace(first, **{f: np.concatenate([np.asarray(getattr(a, f)) for a in (first, *others)])
                                         for f in fields})


def drop_positives(arrays, prefix: str):
    """``arrays`` without the positive rows whose group (voice) starts with ``prefix``."""
    keep = ~((np.asarray(arrays.label) == 1) & np.char.startswith(np.asarray(arrays.group).astype(str), prefix))
    if keep.all():
        raise ValueError(f"--drop-positives {prefix!r}: no positive clip has a group starting with it")
    return dataclasses.replace(arrays, **{f.name: getattr(arrays, f.name)[keep] for f in dataclasses.fields(arrays)
                                          if getattr(arrays, f.name) is not None})


def _engine(record) -> str:
    return str(record.group).split(":")[0]


def _is_nonspeech(record) -> bool:
    from wakebuilder.categories import record_category

    return record_category(record) in ("music", "noise")


def _has_background(record) -> bool:
    return "background" in ((record.params or {}).get("chain") or {})


def drop_mask(records: list, arm: str) -> np.ndarray:
    """True for the rows ``--drop arm`` leaves out (see the module docstring)."""
    pos = np.array([r.label == 1 for r in records])
    if arm == "background-positives":
        return pos & np.array([_has_background(r) for r in records])
    if arm == "nonspeech":
        return ~pos & np.array([_is_nonspeech(r) for r in records])
    if arm in ("kokoro", "kokoro-positives", "kokoro-negatives"):
        kokoro = np.array([_engine(r) == "kokoro" for r in records])
        return kokoro & (pos if arm == "kokoro-positives" else ~pos if arm == "kokoro-negatives" else True)
    if arm == "soundalikes-half":  # as n_hard at half: every candidate text stays, with half its voices
        hard = [r.id for r in records if r.kind == "hard_negative"]
        return _with_copies(records, set(hard[len(hard) // 2:]))
    if arm.startswith("soundalikes-within:"):  # the sound-alikes this close to the phrase (cmudict), and copies
        limit = float(arm.split(":", 1)[1])
        return _with_copies(records, {r.id for r in records if r.kind == "hard_negative"
                                      and float((r.params or {}).get("distance", 99)) <= limit})
    if arm.startswith("positives-half:"):
        gone = set()
        for engine in arm[len("positives-half:"):].split(","):
            clips = [r.id for r in records if r.label == 1 and r.kind != "augmented" and _engine(r) == engine]
            if not clips:
                raise SystemExit(f"--drop {arm!r}: no positive clip of {engine!r}")
            gone.update(clips[len(clips) // 2:])
        return _with_copies(records, gone)
    if arm.startswith("only:"):
        engines = set(arm[len("only:"):].split(","))
        speech = np.array([not _is_nonspeech(r) and r.kind != "real_negative" for r in records])
        return speech & np.array([_engine(r) not in engines for r in records])
    raise SystemExit(f"--drop {arm!r}: not one of background-positives, nonspeech, kokoro, kokoro-positives, "
                     "kokoro-negatives, soundalikes-half, soundalikes-within:D, positives-half:ENGINE,..., "
                     "only:ENGINE,...")


def _with_copies(records: list, gone: set[str]) -> np.ndarray:
    """True for the rows whose id is in ``gone`` and for their augmented copies."""
    return np.array([r.id in gone or (r.kind == "augmented" and r.parent_id in gone) for r in records])


def load_with_bank(store: Path, bank: Path, word: str, drops: list[str], extras: tuple[Path, ...] = ()):
    """The word's store and the bank as ``wb fit`` reads them (the bank's rows that say ``word`` left out),
    less the rows of each ``--drop`` arm; also the count left out per reason."""
    from wakebuilder.bank.exclude import open_for_phrase
    from wakebuilder.train.fit import training_arrays

    with open_for_phrase([store, bank, *extras], word) as (union, exclusion):
        arrays = training_arrays(union)
        records = {r.id: r for r in union.records()}
    ordered = [records[str(i)] for i in arrays.id]
    dropped = {"bank_excluded": exclusion.count}
    keep = np.ones(len(ordered), dtype=bool)
    for arm in drops:
        mask = drop_mask(ordered, arm)
        dropped[arm] = int((mask & keep).sum())
        keep &= ~mask
    arrays = dataclasses.replace(arrays, **{f.name: getattr(arrays, f.name)[keep] for f in dataclasses.fields(arrays)
                                            if getattr(arrays, f.name) is not None})
    return arrays, dropped


def categories_of(windows: dict[str, np.ndarray], word: str, realdev: Path) -> list[str]:
    """The category (speech, music, noise) of each of ``word``'s false-accept files, in ``word_traces`` order."""
    files = rt.realdev_files(realdev)
    order = [(label, path) for label in (*rt.WORDS, "negative") for path in files[label]]
    if len(order) != len(windows["label"]):
        raise SystemExit("the cached realdev windows do not match --realdev's files")
    return [rt.category(path) for label, path in order if label != word]


def score_head(head, word: str, windows: dict[str, np.ndarray], categories: list[str] | None = None) -> dict:
    """Threshold-free realdev figures of one head for ``word`` (see the module docstring)."""
    return score_scores(head_logits(head, windows["seq"].astype(np.float32)).astype(np.float32), word, windows,
                        categories)


def calibrated_scores(result, arrays, windows: dict[str, np.ndarray]) -> np.ndarray:
    """A fitted head's Platt-calibrated probability on every realdev window, the mapping fitted on its validation rows."""
    from wakebuilder.calibrate import fit_platt
    from wakebuilder.scoring import apply_platt

    _, val = result.split.masks(arrays.group)
    temperature, bias = fit_platt(head_logits(result.head, np.asarray(arrays.sequence[val], dtype=np.float32)),
                                  np.asarray(arrays.label)[val])
    return apply_platt(head_logits(result.head, windows["seq"].astype(np.float32)), temperature, bias)


def score_scores(scores: np.ndarray, word: str, windows: dict[str, np.ndarray], categories: list[str] | None = None
                 ) -> dict:
    """Threshold-free realdev figures of per-window scores (a head's logits, or an ensemble's probabilities)."""
    pos, fa, _ = rt.word_traces(scores, windows, word)
    out = {"n_clips": len(pos)}
    for k in KS:
        out[f"recall_at_{k}fa"] = rt.n_detected(pos, rt.oracle_threshold(fa, max_false_accepts=k))
    fa_max = np.array([t.max() for t in fa])
    out["auc"] = float(np.mean([(fa_max < t.max()).mean() for t in pos]))
    if categories is not None:
        speech = [t for t, c in zip(fa, categories, strict=True) if c == "speech"]
        for k in KS:
            out[f"recall_at_{k}fa_speech"] = rt.n_detected(pos, rt.oracle_threshold(speech, max_false_accepts=k))
        threshold = rt.oracle_threshold(speech, max_false_accepts=1)
        for name in ("music", "noise"):
            out[f"{name}_fa_at_1fa_speech"] = rt.n_events([t for t, c in zip(fa, categories) if c == name], threshold)
        speech_max = np.array([t.max() for t in speech])
        out["auc_speech"] = float(np.mean([(speech_max < t.max()).mean() for t in pos]))
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tag", action="append", default=[],
                   help="real_transfer tag whose stores to use (repeatable: the first holding a word's store wins)")
    p.add_argument("--store", default=None, help="store path pattern with {word} and {seed}, instead of --tag")
    p.add_argument("--extra-store", action="append", default=[], metavar="PATTERN",
                   help="add this store's rows to each word's ({word} and {seed} filled in; repeatable)")
    p.add_argument("--bank", type=Path, default=None,
                   help="a negative bank's store, read with the word's as wb fit does")
    p.add_argument("--recipe-fit", action="store_true",
                   help="start each config from the fit settings in the store's recipe_config.json")
    p.add_argument("--drop", action="append", default=[], metavar="ARM", help="leave out a class of rows (repeatable)")
    p.add_argument("--drop-positives", default=None, metavar="PREFIX",
                   help="leave out positives whose voice group starts with PREFIX (e.g. piper, flite:kal)")
    p.add_argument("--config", action="append", required=True,
                   help="NAME or NAME=JSON of FitConfig fields ('default' is FitConfig())")
    p.add_argument("--words", type=lambda s: s.split(","), default=list(rt.WORDS))
    p.add_argument("--data-seed", type=int, default=0, help="which synthesized data (the store of <word>-s<seed>)")
    p.add_argument("--head-seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--window-s", type=float, default=2.5)
    p.add_argument("--backbone", default="speech-embedding",
                   help="the stores' backbone, which embeds realdev's windows [default: %(default)s]")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/real_transfer"))
    p.add_argument("--realdev", type=Path, default=rt.REALDEV, help="the realdev recordings [default: %(default)s]")
    p.add_argument("--ensemble", action="store_true",
                   help="also score each word's and config's head seeds averaged (calibrated probabilities)")
    p.add_argument("--name", default=None, help="results file name [default: the config names joined by +]")
    args = p.parse_args(argv)
    import torch

    from wakebuilder.train.fit import FitConfig, fit_head

    torch.set_num_threads(1)
    configs = {}
    for spec in args.config:
        name, _, fields = spec.partition("=")
        configs[name] = json.loads(fields) if fields else {}
    windows = rt.realdev_windows(args.window_s, args.workdir, args.realdev, args.backbone)
    if not args.tag and not args.store:
        p.error("give --tag or --store")
    stores = {}
    for word in args.words:
        found = [args.workdir / t / f"{word}-s{args.data_seed}" / "store.zarr" for t in args.tag]
        found += [Path(args.store.format(word=word, seed=args.data_seed))] if args.store else []
        found = [s for s in found if s.is_dir()]
        if not found:
            p.error(f"no store for {word} seed {args.data_seed} under tags {args.tag} or --store {args.store}")
        stores[word] = found[0]
    runs = []
    for word, store in stores.items():
        dropped = {}
        if args.bank is not None:
            extras = tuple(Path(pattern.format(word=word, seed=args.data_seed)) for pattern in args.extra_store)
            arrays, dropped = load_with_bank(store, args.bank, word, args.drop, extras)
            print(f"{word}: {len(arrays.label)} rows; left out {dropped}", file=sys.stderr, flush=True)
        elif args.drop:
            p.error("--drop needs --bank")
        else:
            arrays = load_store(store)
        base = {}
        if args.recipe_fit:
            recipe = json.loads((store.parent / "recipe_config.json").read_text())["fit"]
            valid = {f.name for f in dataclasses.fields(FitConfig)}
            base = {k: (tuple(v) if isinstance(v, list) else v) for k, v in recipe.items() if k in valid}
        cats = categories_of(windows, word, args.realdev)
        if args.extra_store and args.bank is None:
            arrays = concatenate(arrays, *(load_store(Path(pattern.format(word=word, seed=args.data_seed)))
                                           for pattern in args.extra_store))
        if args.drop_positives:
            arrays = drop_positives(arrays, args.drop_positives)
        for name, fields in configs.items():
            members = []
            for seed in args.head_seeds:
                start = time.perf_counter()
                fields = {k: (tuple(v) if isinstance(v, list) else v) for k, v in fields.items()}
                result = fit_head(arrays, FitConfig(**{**base, **fields, "seed": seed}), device="cpu")
                run = {"config": name, "word": word, "head_seed": seed, "store": str(store), "dropped": dropped,
                       "fit_s": round(time.perf_counter() - start, 1), "epochs": len(result.history),
                       **score_head(result.head, word, windows, cats)}
                runs.append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
                if args.ensemble:
                    members.append(calibrated_scores(result, arrays, windows))
                    kept = args.workdir / "ensemble-scores" / (args.name or name) / f"{word}-d{args.data_seed}-h{seed}.npy"
                    kept.parent.mkdir(parents=True, exist_ok=True)
                    np.save(kept, members[-1].astype(np.float16))
            if args.ensemble:
                run = {"config": f"{name}:ensemble", "word": word, "head_seeds": args.head_seeds, "store": str(store),
                       **score_scores(np.mean(members, axis=0), word, windows, cats)}
                runs.append(run)
                print(json.dumps(run), file=sys.stderr, flush=True)
    summary = {}
    for name in [*configs, *(f"{c}:ensemble" for c in configs if args.ensemble)]:
        rows = [r for r in runs if r["config"] == name]
        n_seeds = 1 if name.endswith(":ensemble") else len(args.head_seeds)
        summary[name] = {"fields": configs[name.removesuffix(":ensemble")], "n_clips": sum(r["n_clips"] for r in rows) // n_seeds,
                         **{f"recall_at_{k}fa_mean": sum(r[f"recall_at_{k}fa"] for r in rows) / n_seeds for k in KS},
                         "auc_mean": float(np.mean([r["auc"] for r in rows]))}
        if rows and "auc_speech" in rows[0]:
            summary[name].update({f"recall_at_{k}fa_speech_mean": sum(r[f"recall_at_{k}fa_speech"] for r in rows)
                                  / n_seeds for k in KS})
            summary[name]["auc_speech_mean"] = float(np.mean([r["auc_speech"] for r in rows]))
            for cat in ("music", "noise"):
                summary[name][f"{cat}_fa_at_1fa_speech_mean"] = (
                    sum(r[f"{cat}_fa_at_1fa_speech"] for r in rows) / n_seeds)
    print(f"\nreal_heads: {', '.join(args.words)}; data seed {args.data_seed}; head seeds {args.head_seeds} "
          "(recall pooled over words, mean over head seeds; thresholds tuned on realdev)")
    print(f"{'config':16} {'clips':>5} " + " ".join(f"{'<=' + str(k) + ' FA':>8}" for k in KS) + f" {'AUC':>7}")
    for name, s in summary.items():
        print(f"{name:16} {s['n_clips']:>5} " + " ".join(f"{s[f'recall_at_{k}fa_mean']:8.1f}" for k in KS)
              + f" {s['auc_mean']:7.4f}")
        if "auc_speech_mean" in s:
            print(f"{'  speech only':16} {'':>5} " + " ".join(f"{s[f'recall_at_{k}fa_speech_mean']:8.1f}" for k in KS)
                  + f" {s['auc_speech_mean']:7.4f}  music/noise FA at its 1-FA threshold: "
                  f"{s['music_fa_at_1fa_speech_mean']:.1f}/{s['noise_fa_at_1fa_speech_mean']:.1f}")
    out = rt.RESULTS / f"real_heads_{args.name or '+'.join(configs)}.json"
    out.write_text(json.dumps({"tags": args.tag, "store": args.store, "extra_stores": args.extra_store,
                               "drop_positives": args.drop_positives,
                               "bank": str(args.bank) if args.bank else None, "drop": args.drop,
                               "recipe_fit": args.recipe_fit,
                               "words": args.words, "data_seed": args.data_seed,
                               "head_seeds": args.head_seeds, "window_s": args.window_s, "backbone": args.backbone,
                               "library": rt.library_identity(), "summary": summary, "runs": runs}, indent=2) + "\n")
    print(out)


if __name__ == "__main__":
    main()
