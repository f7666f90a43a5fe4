"""`wb quickstart`: the whole recipe from a phrase to an exported, evaluated detector."""

from __future__ import annotations

import json
from pathlib import Path

import click

from wakebuilder.cli.checks import FloatIn, InPath, IntIn, OutPath
from wakebuilder.cli.options import (
    ENGINE_NAMES, RESUMES, device_option, handle_errors, json_option, seed_option, threads_option,
)
from wakebuilder.recipe_config import DEFAULT_CENTROIDS_SHRINKAGE, RecipeConfig


def _engines(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    engines = tuple(e.strip() for e in value.split(",") if e.strip())
    unknown = [e for e in engines if e not in ENGINE_NAMES]
    if unknown or not engines:
        raise click.BadParameter(f"{value!r}: expected a comma-separated list of {', '.join(ENGINE_NAMES)}")
    return engines


@click.command()
@click.argument("phrase", default="hey jarvis")
@click.option("--recordings", "--recording", "recordings", multiple=True, type=InPath(exists=True, dir_okay=False),
              help="Your own recording of the phrase (repeatable).")
@click.option("--backbone", default=None,
              help="word-embedding (EfficientWord-Net, offline once installed: bin/setup does), speech-embedding "
                   "(shipped, offline) or ast (or an AST checkpoint id or directory). On real speech word-embedding "
                   "found 77 % of clips with 5 false accepts in 18 models, speech-embedding 72 % with 23 "
                   "[default: word-embedding; tiny: speech-embedding].")
@click.option("--fuse-with", default=None,
              help="A second backbone trained on the same data (in --out/<backbone>/) and fused with the first "
                   "(wb fuse, in --out/export-fused/): speech-embedding with word-embedding kept 18 of 18 real-speech "
                   "models within one false accept at speech-embedding's recall; costs the second's embedding and fit.")
@click.option("--size", type=click.Choice(["tiny", "quick", "full"]), default="quick", show_default=True,
              help="quick: minutes on a laptop; full: the seed recipe's counts; tiny: a smoke test.")
@click.option("--engines", default=",".join(RecipeConfig.engines), show_default=True, callback=_engines,
              help="TTS engines of positives and negatives (missing ones, or Kokoro with a WB_KOKORO_VOICES it "
                   "cannot use, are skipped with a warning).")
@click.option("--real", "real_dir", type=InPath(exists=True, file_okay=False),
              help="Real audio without the phrase (your room, TV, radio), chunked into negatives.")
@click.option("--out", "out_dir", type=OutPath(file_okay=False), default=None,
              help="Output folder: new, empty, or an earlier run's to resume [default: runs/<phrase>-<backbone>].")
@click.option("--bank/--no-bank", default=True, show_default=True,
              help="Fit with the negative bank (phrase-independent negatives embedded once in the cache).")
@click.option("--objective", type=click.Choice(["fa-per-hour", "f1"]), default="fa-per-hour", show_default=True,
              help="Threshold: the target false accepts per hour on the calibration stream, or best per-clip F1.")
@click.option("--target-fa-per-hour", type=FloatIn(0.0, 3600.0, min_open=True), default=0.5, show_default=True,
              help="False accepts per hour allowed on the calibration stream (--objective fa-per-hour).")
@click.option("--heads", type=IntIn(1, 16), default=None,
              help="Heads fitted on the phrase's store with other seeds (splits), each calibrated, averaged into one "
              "model: fewer false accepts on real speech; each costs a fit and a calibration [default: 3; tiny: 1].")
@click.option("--centroids/--no-centroids", default=None,
              help="A closed-form centroids head (wb fit --head centroids --shrinkage "
              f"{DEFAULT_CENTROIDS_SHRINKAGE:g}) fitted beside the heads and averaged with them: on real speech "
              "word-embedding's found 183 of 234 clips with 6 false accepts against 177 with 19 [default: on for "
              "word-embedding, off for the others; given, it applies to both backbones of --fuse-with].")
@click.option("--data-seeds", type=IntIn(1, 16), default=None,
              help="The phrase's data synthesized with --seed, --seed+1, ..., each with its heads, all averaged (with "
              "--fuse-with each backbone's, then fused); each costs the phrase's synthesis, embedding and fit again "
              "[default: 1].")
@click.option("--verify/--no-verify", default=None,
              help="The export asks wb detect and wb eval to check each detection with speech recognizers (wb export "
              "--verify), and the report verifies: on real speech 217 of 234 clips with every model within one false "
              "accept, against 180 [default: on; tiny: off].")
@seed_option
@device_option
@threads_option
@json_option
@handle_errors(on_interrupt=RESUMES)
def quickstart(
    phrase: str, recordings: tuple[str, ...], backbone: str | None, fuse_with: str | None, size: str,
    engines: tuple[str, ...], real_dir: str | None, out_dir: str | None, bank: bool, objective: str,
    target_fa_per_hour: float, centroids: bool | None, data_seeds: int | None, heads: int | None,
    verify: bool | None, seed: int, device: str, threads: int, as_json: bool,
) -> None:
    """From PHRASE (and optional recordings) to a calibrated, exported detector, offline.

    Synthesizes positives and negatives, augments, embeds, fits, calibrates, exports and reports
    metrics on held-out data (stderr). Prints the exported ONNX's path; every artifact lies in --out.
    """
    from wakebuilder.evaluate import format_comparison
    from wakebuilder.recipe import run_recipe
    from wakebuilder.recipe_folders import recorded_backbone

    if backbone is None and out_dir is not None and (backbone := recorded_backbone(Path(out_dir))) is not None:
        click.echo(f"wb: --out {out_dir}: an earlier run's folder, resumed with its backbone {backbone} (pass "
                   "--backbone to change it)", err=True)
    given = (("backbone", backbone), ("data_seeds", data_seeds), ("heads", heads), ("verify", verify))
    config = RecipeConfig.preset(size, phrase=phrase, fuse_with=fuse_with, engines=engines, seed=seed, bank=bank,
                                 objective=objective, target_fa_per_hour=target_fa_per_hour, centroids=centroids,
                                 **{k: v for k, v in given if v is not None})
    out = out_dir or f"runs/{config.slug}-{config.backbone}"
    result = run_recipe(config, out_dir=out, recordings=recordings, real_dir=real_dir, device=device, threads=threads)
    if result.report is not None and not as_json:
        click.echo(format_comparison([result.report]), err=True)
    if as_json:
        click.echo(json.dumps({"onnx": str(result.onnx), "model": str(result.model_dir), "store": str(result.store),
                               "bank": str(result.bank) if result.bank else None,
                               "members": [str(m) for m in result.members],
                               "fused": [str(m) for m in result.fused],
                               "threshold": result.threshold, "report": result.report, "seconds": result.seconds,
                               "config": config.to_dict()}, sort_keys=True))
    else:
        click.echo(str(result.onnx))
