"""`wb calibrate`, `wb ensemble`, `wb export`, `wb fuse`, `wb detect` and `wb eval`: from a fitted model to a usable
detector."""

from __future__ import annotations

import json
from typing import Any

import click

from wakebuilder.cli.checks import FloatIn, InPath, IntIn, OutPath
from wakebuilder.cli.options import (
    RESUMES, STARTS_OVER, WRITES_NOTHING, device_option, handle_errors, json_option, overwrite_option, report,
    stores_option, stream_setting_options, threshold_option, verify_options, verify_settings,
)

model_dir_option = click.option(
    "--model", "model_dir", required=True, type=click.Path(path_type=str),
    help="Model directory from wb fit.",
)


def _calibrate_interrupt(params: dict[str, Any]) -> str:
    """With --cache-streams each stream's finished backbone pass is kept in the cache; else all is done again."""
    return RESUMES if params["cache_streams"] and params["streams"] else STARTS_OVER


def _ensemble_interrupt(params: dict[str, Any]) -> str:
    """The backbone's finished pass over each --stream is kept in the cache; else all is done again."""
    return RESUMES if params["streams"] else STARTS_OVER


@click.command()
@model_dir_option
@stores_option
@click.option("--stream", "streams", multiple=True, type=InPath(dir_okay=False),
              help="Continuous negative audio for FA/h (repeatable; see wb stream).")
@click.option("--objective", type=click.Choice(["auto", "f1", "fa-per-hour"]), default="auto", show_default=True,
              help="fa-per-hour: lowest threshold meeting the target on the --stream audio; f1: best per-clip "
              "F1 (seed rule); auto: fa-per-hour when a --stream is given, else f1.")
@click.option("--target-fa-per-hour", type=FloatIn(0.0, 3600.0), default=0.5, show_default=True)
@click.option("--not-below-f1", is_flag=True,
              help="FA/h rule: never below the best per-clip F1 threshold (a synthetic stream only raises it).")
@click.option("--min-threshold", type=FloatIn(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Never choose a threshold below this, whatever the objective: for a backbone whose synthetic "
              "stream does not bound the threshold (the recipe's word-embedding: 0.8).")
@click.option("--cache-streams", is_flag=True,
              help="Keep the backbone's pass over each --stream in the cache: calibrating another head on the same "
              "stream then runs only the head (about 50 MB per 10 minutes for speech-embedding).")
@stream_setting_options(as_calibrated=False)
@device_option
@json_option
@handle_errors(on_interrupt=_calibrate_interrupt)
def calibrate(model_dir: str, stores: tuple[str, ...], streams: tuple[str, ...], objective: str, target_fa_per_hour: float,
              not_below_f1: bool, min_threshold: float, cache_streams: bool, hop_s: float, refractory_s: float | None,
              smooth: int, device: str, as_json: bool) -> None:
    """Fit the score calibration and choose the threshold on the model's validation groups.

    Several --store are read as one (the stores the model was fit on). Writes MODEL/calibration.json
    and plots, prints the target table on stderr.
    """
    from wakebuilder.calibrate import CalibrateConfig, calibrate_model, format_report

    config = CalibrateConfig(objective=objective, target_fa_per_hour=target_fa_per_hour, not_below_f1=not_below_f1,
                             min_threshold=min_threshold, hop_s=hop_s, refractory_s=refractory_s, smooth=smooth,
                             device=device, cache_streams=cache_streams)
    path, summary = calibrate_model(model_dir, list(stores), streams=streams, config=config)
    click.echo(format_report(summary), err=True)
    keys = ("threshold", "temperature", "bias", "metrics", "fa_per_hour", "fa_per_hour_upper95", "frr_at_fa",
            "stream_hours")
    report(path, {"path": str(path), **{k: summary[k] for k in keys}}, as_json)


@click.command()
@model_dir_option
@click.option("--out", "out_dir", required=True, type=OutPath(file_okay=False), help="Export directory.")
@click.option("--name", default=None, help="Base name of the files (default: from the wake word).")
@click.option("--verify", is_flag=True, default=False,
              help="NAME.json asks wb detect and wb eval to check each detection with a speech recognizer (Whisper "
              "base), an event counting when it hears the wake word (their --verify; --no-verify turns it off).")
@overwrite_option
@json_option
@handle_errors(on_interrupt=STARTS_OVER)
def export(model_dir: str, out_dir: str, name: str | None, verify: bool, overwrite: bool, as_json: bool) -> None:
    """Export NAME.pt, NAME.json, end-to-end NAME.onnx and NAME.head.onnx, checked with onnxruntime."""
    from wakebuilder.export import export_model

    result = export_model(model_dir, out_dir, name=name, overwrite=overwrite, verify=verify)
    report(result.out, result.to_dict(), as_json)


@click.command()
@click.option("--model", "models", required=True, multiple=True, type=click.Path(path_type=str),
              help="An exported NAME.onnx (NAME.json beside it) of the phrase (repeat: two or more; other backbones "
              "and windows welcome).")
@click.option("--out", "out_dir", required=True, type=OutPath(file_okay=False), help="The fused detector's directory.")
@click.option("--name", default=None, help="Base name of the files (default: from the wake word).")
@click.option("--weight", "weights", multiple=True, type=float,
              help="A member's weight, once per --model in their order [default: all 1].")
@threshold_option
@overwrite_option
@json_option
@handle_errors(on_interrupt=STARTS_OVER)
def fuse(models: tuple[str, ...], out_dir: str, name: str | None, weights: tuple[float, ...],
         threshold: float | None, overwrite: bool, as_json: bool) -> None:
    """Fuse exported detectors of one phrase (other backbones and windows) into one NAME.onnx and NAME.json.

    Its window is the longest member's; each member scores the centred slice of it that is its own window,
    and the probability is the weighted mean of theirs. Its threshold: the weighted mean of the members'
    calibrated thresholds, or --threshold. Prints the NAME.onnx path.
    """
    from wakebuilder.fuse import fuse_detectors

    result = fuse_detectors(models, out_dir, name=name, weights=weights, threshold=threshold, overwrite=overwrite)
    report(result.files["onnx"], result.to_dict(), as_json)


@click.command()
@click.option("--model", "models", required=True, multiple=True, type=click.Path(path_type=str),
              help="A calibrated model directory (repeat: two or more of one phrase, e.g. recipe runs with other "
              "--seed values).")
@click.option("--out", "out_dir", required=True, type=OutPath(file_okay=False), help="The ensemble's model directory.")
@click.option("--stream", "streams", multiple=True, type=InPath(dir_okay=False),
              help="Continuous negative audio, e.g. the members' calibration stream: the threshold is chosen on it "
              "by the members' FA/h rule, and the ensemble's FA/h reported (repeatable).")
@threshold_option
@overwrite_option
@device_option
@json_option
@handle_errors(on_interrupt=_ensemble_interrupt)
def ensemble(models: tuple[str, ...], out_dir: str, streams: tuple[str, ...], threshold: float | None,
             overwrite: bool, device: str, as_json: bool) -> None:
    """Average calibrated models of one phrase (other head or data seeds) into one model directory.

    The members may be of other head kinds (wb fit --head network and --head centroids on one backbone's
    embeddings). Its probability is the mean of the members' calibrated probabilities behind one backbone pass. Its
    threshold: with --stream and members calibrated by the FA/h rule, that rule on the ensemble's scores
    over the stream (not below the mean of the members' best-F1 thresholds); else the mean of the members'
    thresholds; either not below the mean of the members' --min-threshold. Or --threshold, used as given (no floor).
    wb export, detect and eval take it like any model.
    """
    from wakebuilder.ensemble import combine_models

    path, summary = combine_models(models, out_dir, streams=streams, threshold=threshold, overwrite=overwrite,
                                   device=device)
    keys = ("threshold", "objective", "fa_per_hour", "fa_per_hour_upper95", "stream_hours")
    report(path, {"path": str(path), "members": len(summary["members"]), **{k: summary[k] for k in keys}}, as_json)


@click.command()
@click.argument("model", type=click.Path(path_type=str))
@click.argument("audio", nargs=-1, type=click.Path(path_type=str))
@threshold_option
@stream_setting_options(as_calibrated=True)
@click.option("--stdin-raw", is_flag=True, help="Read raw 16 kHz int16 little-endian PCM from stdin.")
@click.option("--threads", type=IntIn(0, 256), default=0, show_default=True,
              help="onnxruntime threads (0: its default).")
@device_option
@verify_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per detection.")
@handle_errors(on_interrupt=WRITES_NOTHING)
def detect(model: str, audio: tuple[str, ...], threshold: float | None, hop_s: float | None, smooth: int | None,
           refractory_s: float | None, stdin_raw: bool, threads: int, device: str, verify: bool | None,
           verify_threshold: float | None, verify_model: str | None, phrase: str | None, as_json: bool) -> None:
    """Detect the wake word in AUDIO files ("-" or --stdin-raw: raw PCM on stdin) with MODEL.

    MODEL is an exported NAME.onnx (NAME.json beside it) or a model directory.
    Prints one line per detection: file, time (s, window centre of the peak), score.
    """
    from wakebuilder.detect import DetectConfig, detect_file, detect_stream, format_event, load_detector
    from wakebuilder.errors import ConfigError

    sources = list(audio) + (["-"] if stdin_raw and "-" not in audio else [])
    if not sources:
        raise ConfigError("wb detect: give AUDIO files, or - / --stdin-raw for raw PCM on stdin")
    config = DetectConfig(threshold=threshold, hop_s=hop_s, smooth=smooth, refractory_s=refractory_s)
    settings = verify_settings(verify, verify_threshold, verify_model, phrase)
    detector = load_detector(model, device=device, threads=threads)
    verifier = settings.for_detector(detector)
    for source in sources:
        events = (detect_stream(detector, None, config, verifier=verifier) if source == "-"
                  else detect_file(detector, source, config, verifier=verifier))
        for event in events:
            click.echo(format_event(source, event, as_json=as_json))


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=str))
@click.option("--model", "models", multiple=True, type=click.Path(path_type=str),
              help="Model to compare (repeatable); without it the first PATH is the model.")
@click.option("--category", "categories", multiple=True, metavar="NAME=PATH",
              help="Negative audio of a category (a file, or a folder of files), e.g. music=negatives/music; "
              "repeatable. Other audio is categorised by its path (music, noise, speech in a name). A file given "
              "more than once is evaluated once, by its --category name; one given in two categories is refused.")
@threshold_option
@stream_setting_options(as_calibrated=True)
@device_option
@verify_options
@json_option
@handle_errors(on_interrupt=WRITES_NOTHING)
def evaluate(paths: tuple[str, ...], models: tuple[str, ...], categories: tuple[str, ...], threshold: float | None,
             hop_s: float | None, smooth: int | None, refractory_s: float | None, device: str, verify: bool | None,
             verify_threshold: float | None, verify_model: str | None, phrase: str | None, as_json: bool) -> None:
    """Metrics of MODEL on labelled MANIFESTs (.jsonl) and FA/h on continuous negative AUDIO.

    Usage: wb eval MODEL [MANIFEST|AUDIO...], or wb eval --model A --model B [MANIFEST|AUDIO...].
    FA/h is reported in all and for speech, music and noise audio (see --category), with its 95 %
    upper bound (FA/h<=95%: 0 false accepts in 25 minutes bound it only below 7.2 an hour); a
    manifest's negatives are counted per category of their rows in --json (clip_categories).
    """
    from wakebuilder.errors import ConfigError
    from wakebuilder.evaluate import EvalConfig, evaluate_models, format_comparison

    if not models and not paths:
        raise ConfigError("wb eval: give a model (.onnx or model directory), or --model")
    model_list, inputs = (list(models), list(paths)) if models else ([paths[0]], list(paths[1:]))
    config = EvalConfig(threshold=threshold, hop_s=hop_s, smooth=smooth, refractory_s=refractory_s)
    results = evaluate_models(model_list, inputs, config=config, device=device, categories=categories,
                              verify=verify_settings(verify, verify_threshold, verify_model, phrase))
    if as_json:
        click.echo(json.dumps(results, sort_keys=True))
    else:
        click.echo(format_comparison(results))
