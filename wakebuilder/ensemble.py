"""`wb ensemble`: one model from several calibrated models of a phrase.

Each member is a ``wb fit`` model directory calibrated by ``wb calibrate``, on the same backbone and head
shape: heads fitted on one store with other seeds (each its own validation split; the recipe's ``--heads``), or
on the phrase's data synthesized with other seeds (``--data-seeds``). The ensemble's probability is the mean of
the members' calibrated probabilities (``HeadEnsemble`` with ``combine="probability"``) behind the one backbone
pass they share.

Members may be of other head kinds (``wb fit --head network`` and ``--head centroids`` of one store): each takes the
same sequences, and the network members are of one shape (the ensemble's ``member_kinds`` says which member is
which). On word-embedding (research/REAL_TRANSFER.md, research/centroid_head.py) the network head found 186 of 234
real clips at one false accept per model, the centroids head 198-204 and their probability mean 204-206; at the
members' calibrated thresholds the pair found 192 for 18 false accepts against the network head's 177 for 19, in
one backbone pass where ``wb fuse`` of the two exports takes two.

Its threshold: members calibrated by the FA/h rule (the recipe's) and a calibration stream given, that rule on the
ensemble's own trace over the stream, not below the mean of the members' best per-clip F1 thresholds where theirs
had that floor. A mean of probabilities is less extreme than its members, so where the stream had set the members'
thresholds high (0.92-0.94 for "hey jarvis") their mean was too strict for it and found 0.71 of the held-out
positives. Otherwise the mean of the members' thresholds. Either is kept at or above the mean of the members'
``min_threshold`` (the floor of a backbone whose synthetic stream does not bound the threshold; the summary records
it): members calibrated alike keep their floor. A ``--threshold`` given is used as given, unfloored (the summary's
``min_threshold`` is then 0.0). Members calibrated by hand may not be: with the network head at the recipe's 0.8
and the centroids head unfloored (research/library_mixed.sh), the mean of their thresholds, each at or above its own
floor, found 192 of 234 real clips for 18 false accepts (research/REAL_TRANSFER.md, twenty-fifth and twenty-sixth
rounds), where the highest floor would have lifted it to 0.8. The recipe calibrates all its members alike (0.8 on
word-embedding, its centroids head included: 180 of 234, 5 false accepts end to end, twenty-seventh round). On
realdev (fourteenth and fifteenth rounds) three heads of one store cut the false accepts at the calibrated thresholds
from 40 to 9 over 18 models, and three data seeds from 40 to 3 over six words;
``wb fit --members`` (one split, logits averaged) did not help in the fifth round.

The result is an ordinary model directory: ``wb export``, ``wb detect`` and ``wb eval`` take it as they take
a fitted one. ``wb calibrate`` refuses it: its members were calibrated on their own stores.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from wakebuilder.atomic import atomic_directory, atomic_write_json
from wakebuilder.categories import refuse_repeated, refuse_repeated_streams
from wakebuilder.errors import ConfigError, ModelFileError, StoreMismatchError
from wakebuilder.fingerprint import canonical_json
from wakebuilder.modeldir import (
    CALIBRATION_NAME, LoadedModel, load_model, refuse_out_holding, save_model, short_repr,
)
from wakebuilder.stream_settings import STREAM_DEFAULTS, calibration_settings
from wakebuilder.values import finite_number

if TYPE_CHECKING:
    from wakebuilder.train.head import HeadConfig

log = logging.getLogger(__name__)
THRESHOLD_RULE = "mean of the members' calibrated thresholds"
STREAM_RULE_UNFLOORED = "fa-per-hour on the ensemble's stream trace"
STREAM_RULE = f"{STREAM_RULE_UNFLOORED}, not below the mean of the members' best-F1 thresholds"
FLOOR_KEYS = ("min_threshold",)


def combine_models(
    model_dirs: Sequence[str | os.PathLike[str]], out_dir: str | os.PathLike[str], *,
    streams: Sequence[str | os.PathLike[str]] = (), threshold: float | None = None, overwrite: bool = False,
    device: str = "auto", dtype: str = "auto",
) -> tuple[Path, dict[str, Any]]:
    """Write the ensemble of ``model_dirs`` to ``out_dir``; returns its path and its calibration summary.

    Args:
        model_dirs: two or more calibrated model directories of one phrase, backbone and head shape (heads of other
            kinds: of one input shape, the network heads of one shape).
        out_dir: the ensemble's model directory (``head.safetensors``, ``model.json``, ``calibration.json``).
        streams: continuous negative audio (``wb stream``; the members' calibration stream): the threshold is
            chosen on it when the members were calibrated by the FA/h rule, and the summary holds the
            ensemble's false accepts per hour at its threshold there, with their 95 % upper bound (what the
            stream's length can show). The members' stream settings must agree, their floors (``min_threshold``)
            need not: the threshold chosen, or without a stream the mean of the members' thresholds, is kept at or
            above the mean of their floors (``_mean_floor``), which the summary records as ``min_threshold``.
        threshold: instead of the rule's, used as given: not kept at or above the members' floors (as ``wb detect
            --threshold`` overrides a calibrated threshold; ``wb calibrate --min-threshold`` bounds only the
            thresholds it chooses), so the summary records ``min_threshold`` 0.0, no floor, as a calibration
            without ``--min-threshold`` does.
        overwrite: replace an existing ``out_dir``.
        device: where the backbone runs over ``streams``.
        dtype: the AST's compute precision over ``streams`` (``auto``: the one the members' model.json records for
            their stores, else the device's; ``calibrate.stream_precision``): the members' calibration's.

    Raises:
        ConfigError: fewer than two members, an uncalibrated member, an ensemble as a member, other phrases, an
            ``out_dir`` that is or holds a member or a stream, a stream given twice.
        StoreMismatchError: members of different backbones or head shapes, or heads of other kinds that take other
            sequences.
    """
    from wakebuilder.train.head import HeadEnsemble

    paths = [Path(p) for p in model_dirs]
    if len(paths) < 2:
        raise ConfigError(f"wb ensemble: give at least two models (--model), got {len(paths)}")
    refuse_repeated(paths, option="--model", fix="its members must be distinct models")
    refuse_repeated_streams(streams)
    refuse_out_holding(out_dir, [*(("--model", p) for p in paths), *(("--stream", s) for s in streams)])
    models = [load_model(p) for p in paths]
    _check_members(models)
    first = models[0]
    head = HeadEnsemble(_ensemble_config(models), members=[m.head for m in models])
    cals = [{k: float(m.calibration[k]) for k in ("threshold", "temperature", "bias")} for m in models]
    head.temperatures.copy_(torch.tensor([c["temperature"] for c in cals]))
    head.biases.copy_(torch.tensor([c["bias"] for c in cals]))
    members = [{"model": str(m.path.resolve()), "store_fingerprint": m.meta.get("store_fingerprint"),
                "fit_seed": (m.meta.get("fit") or {}).get("seed"), **c} for m, c in zip(models, cals)]
    meta = {"backbone": first.backbone, "wake_word": first.meta.get("wake_word"), "store_fingerprint": None,
            "fit": None, "ensemble": {"combine": "probability", "members": members}}
    split = {"train_groups": [], "val_groups": [], "members": [m.split for m in models]}
    if threshold is not None and not 0.0 < threshold < 1.0:
        raise ConfigError(f"wb ensemble --threshold {threshold}: must be between 0 and 1")
    given = threshold is not None
    target = Path(out_dir)
    with atomic_directory(target, overwrite=overwrite) as work:
        save_model(work, head, meta=meta, split=split)
        summary: dict[str, Any] = {
            "threshold": float(np.mean([c["threshold"] for c in cals])), "temperature": 1.0, "bias": 0.0,
            "objective": THRESHOLD_RULE, "members": members, "min_threshold": 0.0 if given else _mean_floor(models),
            "metrics": None, "fa_per_hour": None, "fa_per_hour_upper95": None, "stream_hours": 0.0, "frr_at_fa": {},
            "streams": [],
            "config": _shared_settings(models, tuple(STREAM_DEFAULTS)),  # how wb detect and wb web then score it
        }
        if given:
            summary |= {"threshold": float(threshold), "objective": "given"}
        else:
            summary |= _floored(summary["threshold"], summary["objective"], summary["min_threshold"])
        if streams:
            summary |= _on_streams(work, streams, models, summary["threshold"], choose=threshold is None,
                                   floor=summary["min_threshold"], device=device, dtype=dtype)
        summary["model"] = str(target)
        atomic_write_json(work / CALIBRATION_NAME, summary)
    log.info("ensemble of %d models: threshold %.4f (%s)%s", len(models), summary["threshold"], summary["objective"],
             f", {summary['fa_per_hour']:.2f} FA/h (95% upper bound {summary['fa_per_hour_upper95']:.2f}) on "
             f"{summary['stream_hours']:.2f} h of stream"
             if summary["fa_per_hour"] is not None else "")
    return target, summary


def _check_members(models: list[LoadedModel]) -> None:
    """Refuse members that are not calibrated single heads of one backbone, head shape and phrase (its casing and
    punctuation aside: wb fit records ``--wake-word`` as given, the positives' text plain). Heads of other kinds
    need only take the same sequences, the network heads among them being of one shape (``_check_kinds``)."""
    from wakebuilder.data.phonetics import plain_text

    first = models[0]
    for m in models:
        if m.calibration is None:
            raise ConfigError(f"{m.path}: not calibrated; run wb calibrate on it first (the ensemble averages "
                              "calibrated probabilities)")
        if m.meta.get("ensemble") or m.head.config.members != 1:
            raise ConfigError(f"{m.path}: already an ensemble; give its single-head members instead")
        if canonical_json(m.backbone) != canonical_json(first.backbone):
            raise StoreMismatchError(
                f"{m.path}: backbone {m.backbone.get('name')!r} (window {m.backbone.get('window_s')} s) differs "
                f"from {first.path}'s {first.backbone.get('name')!r} (window {first.backbone.get('window_s')} s); "
                "combine models of one backbone")
        if plain_text(m.meta.get("wake_word") or "") != plain_text(first.meta.get("wake_word") or ""):
            raise ConfigError(f"{m.path}: wake word {m.meta.get('wake_word')!r}, not {first.meta.get('wake_word')!r}; "
                              "combine models of one phrase")
    _check_kinds(models)


def _check_kinds(models: list[LoadedModel]) -> None:
    """Members of one kind: of one head shape (all settings, as before heads of other kinds combined). Of other
    kinds: each takes the same sequences (length and dimension), and the network heads are of one shape, the
    ensemble's config (a centroids head uses no shape setting)."""
    kinds = {m.head.config.kind for m in models}
    first = models[0]
    for m in models if len(kinds) > 1 else ():
        if _sequences(m) != _sequences(first):
            raise StoreMismatchError(
                f"{m.path}: its {m.head.config.kind} head takes sequences of {' x '.join(map(str, _sequences(m)))}, "
                f"{first.path}'s {first.head.config.kind} head {' x '.join(map(str, _sequences(first)))}; combine "
                "models fitted on one backbone's embeddings")
    alike = [m for m in models if m.head.config.kind == "network"] if len(kinds) > 1 else models
    for m in alike:
        if _shape(m) != _shape(alike[0]):
            raise StoreMismatchError(f"{m.path}: its head's shape differs from {alike[0].path}'s; combine models "
                                     "fitted with the same head settings")


def _sequences(model: LoadedModel) -> tuple[int, int]:
    return model.head.config.seq_len, model.head.config.input_dim


def _shape(model: LoadedModel) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(model.head.config).items() if k != "combine"}


def _ensemble_config(models: list[LoadedModel]) -> HeadConfig:
    """The ensemble's head config: its first network member's (else its first member's) shape, averaging calibrated
    probabilities, with ``member_kinds`` only when the members' kinds differ (one kind: the config written before
    heads of other kinds combined)."""
    configs = [m.head.config for m in models]
    kinds = tuple(c.kind for c in configs)
    base = next((c for c in configs if c.kind == "network"), configs[0])
    return base.replace(members=len(models), combine="probability", member_kinds=kinds if len(set(kinds)) > 1 else ())


def _on_streams(model_dir: Path, streams: Sequence[str | os.PathLike[str]], models: list[LoadedModel],
                threshold: float, *, choose: bool, floor: float, device: str, dtype: str) -> dict[str, Any]:
    """The ensemble on ``streams`` (the backbone's pass cached), scored as its members were calibrated: with
    ``choose`` and members calibrated by the FA/h rule, that rule's threshold, not below ``floor``, instead of
    ``threshold``; the false accepts per hour at the threshold (with their 95 % upper bound) and over the grid."""
    from wakebuilder import metrics
    from wakebuilder.calibrate import (
        CalibrateConfig, fa_rule_threshold, model_stream_traces, stream_fa_per_hour, stream_peak, stream_precision,
    )

    cals = [m.calibration or {} for m in models]
    saved = _shared_settings(models, ("target_fa_per_hour", "not_below_f1", *STREAM_DEFAULTS))  # not the floors
    dtype = stream_precision(models, dtype, device=device)  # auto: the members' fit's (the ensemble records none)
    try:  # members that record no refractory period: their window, as wb detect runs the ensemble
        config = CalibrateConfig(**saved, min_threshold=floor, device=device, dtype=dtype,
                                 cache_streams=True).resolved(models[0].window_samples)
    except ConfigError as exc:  # of the kind, out of range (a hop of 5 s): the files' settings, not an option's
        raise ModelFileError(f"{models[0].path / CALIBRATION_NAME}: its calibration settings are not usable "
                             f"({exc}); run wb calibrate on the members again, or pass --threshold") from None
    by_rule = choose and all(c.get("objective") == "fa-per-hour" and c.get("sweep") for c in cals)
    member_f1 = float(np.mean([_best_f1(m) for m in models])) if by_rule else None  # before the stream's pass
    traces, hours = model_stream_traces(streams, load_model(model_dir), 1.0, 0.0, config=config)
    grid = metrics.threshold_grid(stream_peak=stream_peak(traces))
    fa_h = stream_fa_per_hour(traces, hours, grid, config)
    out: dict[str, Any] = {"member_f1_threshold": None}
    if member_f1 is not None:
        floor = member_f1 if config.not_below_f1 else 0.0
        threshold = fa_rule_threshold(fa_h, grid, config.target_fa_per_hour, floor=floor, unbound=member_f1)
        rule = STREAM_RULE if config.not_below_f1 else STREAM_RULE_UNFLOORED
        out = _floored(threshold, rule, config.min_threshold) | {"member_f1_threshold": member_f1}
        threshold = out["threshold"]
    at = float(stream_fa_per_hour(traces, hours, np.array([threshold]), config)[0])
    return out | {
        "fa_per_hour": at, "fa_per_hour_upper95": metrics.fa_per_hour_upper_of_rate(at, hours),
        "stream_hours": hours, "streams": [str(Path(p).resolve()) for p in streams],
        "stream_sweep": [{"threshold": float(t), "fa_per_hour": float(f)} for t, f in zip(grid, fa_h)],
    }


def _shared_settings(models: list[LoadedModel], keys: Sequence[str]) -> dict[str, Any]:
    """The stream settings the members were calibrated with, which must agree: the ensemble is scored as they
    were."""
    settings = [calibration_settings(m, keys=keys) for m in models]
    for model, theirs in zip(models[1:], settings[1:]):
        for key in sorted(set(theirs) | set(settings[0])):
            if theirs.get(key) != settings[0].get(key):
                raise ConfigError(
                    f"{model.path}: calibrated with {key} {theirs.get(key)!r}, {models[0].path} with "
                    f"{settings[0].get(key)!r}; calibrate the members alike or pass --threshold")
    return settings[0]


def _mean_floor(models: list[LoadedModel]) -> float:
    """The ensemble's floor: the mean of its members' ``min_threshold``, theirs exactly when they agree (the float
    mean of three 0.8s is 0.8000000000000002)."""
    floors = [_min_threshold(calibration_settings(m, keys=FLOOR_KEYS)) for m in models]
    return floors[0] if len(set(floors)) == 1 else float(np.mean(floors))


def _min_threshold(settings: dict[str, Any]) -> float:
    """The floor a member was calibrated with (``wb calibrate --min-threshold``; 0.0 where older calibrations
    record none, so old models still combine)."""
    return float(settings.get("min_threshold", 0.0))


def _floored(threshold: float, objective: str, floor: float) -> dict[str, Any]:
    """``threshold`` and ``objective`` kept at or above the ensemble's floor, the objective saying so when it
    binds."""
    if threshold >= floor:
        return {"threshold": threshold, "objective": objective}
    return {"threshold": floor, "objective": f"{objective}, not below min_threshold {floor:g}"}


def _best_f1(model: LoadedModel) -> float:
    """A member's best per-clip F1 threshold, from the sweep its calibration saved."""
    from wakebuilder import metrics

    sweep = (model.calibration or {}).get("sweep")
    rows = [[row.get(k) for k in ("threshold", "f1")] if isinstance(row, dict) else [None]
            for row in (sweep if isinstance(sweep, list) else [])]
    if not rows or not all(finite_number(value) for row in rows for value in row):
        raise ModelFileError(f"{model.path / CALIBRATION_NAME}: sweep {short_repr(sweep)} is not rows of a threshold "
                             f"and an f1 (numbers) as wb calibrate writes; run wb calibrate on {model.path} again")
    table = np.asarray(rows, dtype=np.float64)
    return metrics.best_f1_threshold({"threshold": table[:, 0], "f1": table[:, 1]})
