"""`wb validate` and `wb synth`."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from wakebuilder.cli.checks import InPath, IntIn, OutPath
from wakebuilder.cli.options import (
    RESUMES, STARTS_OVER, WRITES_NOTHING, engines_option, handle_errors, json_option, overwrite_option, report,
    seed_option, voices_option,
)


@click.command()
@click.argument("recordings", nargs=-1, required=True, type=InPath(dir_okay=False))
@click.option("--out", "out_dir", required=True, type=OutPath(file_okay=False), help="Output folder.")
@click.option("--speaker", default=None, help="One group for all recordings (default: one per recording).")
@click.option("--text", default="", help="The phrase spoken, recorded in the manifest.")
@click.option("--overwrite", is_flag=True, default=False,
              help="Start --out's manifest afresh instead of adding to it.")
@json_option
@handle_errors(on_interrupt=STARTS_OVER)
def validate(
    recordings: tuple[str, ...], out_dir: str, speaker: str | None, text: str, overwrite: bool, as_json: bool
) -> None:
    """Check RECORDINGS (WAV, MP3, FLAC, OGG; 0.5-3.0 s, audible, not clipped) and convert them.

    An existing --out folder is added to: its manifest keeps its rows and gains the new
    recordings (a recording already there, same audio, is listed once). --overwrite replaces it.
    A recording below 16 kHz is kept with a warning (in --json: narrowband), as it has no highs.
    """
    from wakebuilder.data.validate import ValidateConfig, narrowband, validate_recordings

    manifest, rejects = validate_recordings(
        list(recordings), out_dir=out_dir, config=ValidateConfig(speaker=speaker, text=text),
        overwrite=overwrite,
    )
    for reject in rejects:
        click.echo(f"wb validate: rejected {reject.reason}", err=True)
    report(manifest, {"manifest": str(manifest), "rejected": [dataclasses.asdict(r) for r in rejects],
                      "narrowband": narrowband(manifest, list(recordings))}, as_json)


def _synth_interrupt(params: dict[str, Any]) -> str:
    """--list-voices writes nothing; a synthesis resumes (``synth_journal``)."""
    return WRITES_NOTHING if params["list_voices"] else RESUMES


@click.command()
@click.argument("phrase", required=False)
@click.option("--out", "out_dir", type=OutPath(file_okay=False), help="Output folder.")
@click.option("-n", "n", type=IntIn(1, 1_000_000), default=500, show_default=True, help="Clips to make.")
@engines_option
@click.option("--piper-voice", "piper_voices", multiple=True, type=InPath(exists=True, dir_okay=False),
              help="A Piper voice .onnx (with its .onnx.json beside it).")
@voices_option
@click.option("--kokoro-voices", "kokoro_voices", envvar="WB_KOKORO_VOICES", default=None,
              type=InPath(exists=True, dir_okay=False),
              help="Kokoro voices file (.npz of (510, 1, 256) styles, e.g. voices-v1.0.bin) [env WB_KOKORO_VOICES; "
                   "default: voices fetched by 'wb voices fetch kokoro-en', else the bundled five].")
@click.option("--label", type=IntIn(0, 1), default=1, show_default=True)
@click.option("--kind", default="tts", show_default=True, help="Manifest kind of the clips.")
@click.option("--workers", type=IntIn(1, 256), default=2, show_default=True)
@click.option("--list-voices", is_flag=True,
              help="List usable voices per engine and why others are missing (with --json: as one JSON object).")
@seed_option
@overwrite_option
@json_option
@handle_errors(on_interrupt=_synth_interrupt)
def synth(
    phrase: str | None, out_dir: str | None, n: int, engines: tuple[str, ...], piper_voices: tuple[str, ...],
    voice_pattern: str | None, kokoro_voices: str | None, label: int, kind: str, workers: int, list_voices: bool,
    seed: int, overwrite: bool, as_json: bool,
) -> None:
    """Synthesize N clips of PHRASE across many voices into --out."""
    from wakebuilder.data.synth import SynthConfig, run_synth
    from wakebuilder.data.synth_voices import describe_voices, voice_table
    from wakebuilder.data.tts import DEFAULT_ENGINES
    from wakebuilder.errors import ConfigError

    if list_voices and as_json:
        report(None, voice_table(piper_voices=piper_voices, kokoro_voices=kokoro_voices), True)
        return
    if list_voices:
        click.echo("\n".join(describe_voices(piper_voices=piper_voices, kokoro_voices=kokoro_voices)))
        return
    if not phrase or not out_dir:
        raise ConfigError("wb synth needs PHRASE and --out DIR (or --list-voices)")
    config = SynthConfig(
        texts=(phrase,), n=n, engines=engines or DEFAULT_ENGINES, piper_voices=piper_voices, seed=seed,
        label=label, kind=kind, workers=workers, voice_pattern=voice_pattern, kokoro_voices=kokoro_voices,
    )
    manifest = run_synth(config, out_dir=out_dir, overwrite=overwrite)
    report(manifest, {"manifest": str(manifest), **config.to_dict()}, as_json)
