"""`wb negatives`: sound-alike hard negatives, generic TTS speech, non-speech audio, or chunks of real audio."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from wakebuilder.cli.checks import FloatIn, InPath, IntIn, OutPath, ordered
from wakebuilder.cli.options import (
    RESUMES, STARTS_OVER, WRITES_NOTHING, engines_option, handle_errors, json_option, overwrite_option, report,
    seed_option, voices_option,
)


def _negatives_interrupt(params: dict[str, Any]) -> str:
    """Non-speech clips are written whole at the end; --list writes nothing; the others resume (sound-alikes and
    speech through their journal, --real and --debian through the chunk cache)."""
    if params["nonspeech"]:
        return STARTS_OVER
    if params["list_only"] and not (params["debian"] or params["real_dir"]):
        return WRITES_NOTHING
    return RESUMES


@click.command()
@click.argument("phrase", required=False)
@click.option("--out", "out_dir", type=OutPath(file_okay=False), help="Output folder (a cache with --real).")
@click.option("-n", "n", type=IntIn(0, 1_000_000), default=2000, show_default=True, help="Hard negatives.")
@click.option("--speech", type=IntIn(0, 1_000_000), default=1000, show_default=True,
              help="Generic TTS speech negatives (random words and sentences).")
@click.option("--words", type=IntIn(0, 1_000_000), default=0, show_default=True,
              help="Isolated-word TTS negatives (single words spoken alone).")
@click.option("--max-distance", type=FloatIn(0.5, 10.0), default=2.0, show_default=True,
              help="Largest phoneme edit distance of a sound-alike.")
@engines_option
@voices_option
@click.option("--list", "list_only", is_flag=True,
              help="Print the candidates with their distances and stop (with --json: as a JSON list).")
@click.option("--real", "real_dir", type=InPath(file_okay=False), help="Chunk the real audio under this folder.")
@click.option("--min-s", type=FloatIn(0.1, 60.0), default=1.0, show_default=True)
@click.option("--max-s", type=FloatIn(0.1, 60.0), default=3.0, show_default=True)
@click.option("--hop-s", type=FloatIn(0.1, 60.0), default=3.0, show_default=True)
@click.option("--workers", type=IntIn(1, 256), default=2, show_default=True)
@click.option("--nonspeech", type=IntIn(0, 1_000_000), default=0, show_default=True,
              help="Make this many non-speech clips (no PHRASE needed): noise, music, tones, chirps, clicks, hum, "
                   "room tone, babble.")
@click.option("--kinds", default="noise,music,tone,chirp,click,hum,room", show_default=True,
              help="Generators for --nonspeech, comma-separated (add babble for overlapped speech).")
@click.option("--duration-s", type=FloatIn(0.1, 60.0), default=2.5, show_default=True,
              help="Length of each --nonspeech clip.")
@click.option("--babble-from", type=InPath(exists=True, dir_okay=False),
              help="Speech manifest for babble (its label-0 clips); default: synthesize sentences with --engine.")
@click.option("--debian", is_flag=True, help="Fetch music and game sound from Debian's archive (apt-get) and chunk it.")
@click.option("--debian-package", "debian_packages", multiple=True,
              help="Only these packages with --debian [default: all known sources].")
@seed_option
@overwrite_option
@json_option
@handle_errors(on_interrupt=_negatives_interrupt)
def negatives(
    phrase: str | None, out_dir: str | None, n: int, speech: int, words: int, max_distance: float, engines: tuple[str, ...],
    voice_pattern: str | None, list_only: bool, real_dir: str | None, min_s: float, max_s: float, hop_s: float, workers: int,
    nonspeech: int, kinds: str, duration_s: float, babble_from: str | None, debian: bool, debian_packages: tuple[str, ...],
    seed: int, overwrite: bool, as_json: bool,
) -> None:
    """Hard negatives for PHRASE into --out; or non-speech clips (--nonspeech N); or real music and sound from
    Debian (--debian); or chunks of real audio (--real DIR)."""
    from wakebuilder.errors import ConfigError

    if (nonspeech or debian) and not out_dir:
        raise ConfigError("wb negatives --nonspeech/--debian needs --out DIR")
    if debian or real_dir:
        ordered(click.get_current_context(), "min_s", "max_s", min_s, max_s)
    if nonspeech:
        from wakebuilder.data.nonspeech.make import NonspeechConfig, make_nonspeech
        from wakebuilder.data.tts import DEFAULT_ENGINES

        config = NonspeechConfig(n=nonspeech, kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
                                 duration_s=duration_s, seed=seed, babble_from=babble_from,
                                 engines=engines or DEFAULT_ENGINES)
        manifest = make_nonspeech(config, out_dir=out_dir, overwrite=overwrite)
        report(manifest, {"manifest": str(manifest), **config.to_dict()}, as_json)
        return
    if debian:
        from wakebuilder.data.debian import debian_negatives
        from wakebuilder.data.realchunks import ChunkConfig

        chunk = ChunkConfig(min_s=min_s, max_s=max_s, hop_s=hop_s)
        manifest = debian_negatives(out_dir=out_dir, packages=debian_packages, chunk=chunk, overwrite=overwrite)
        report(manifest, {"manifest": str(manifest), "packages": list(debian_packages), **chunk.to_dict()}, as_json)
        return
    if real_dir:
        from wakebuilder.data.realchunks import ChunkConfig, chunk_real_audio

        if not out_dir:
            raise ConfigError("wb negatives --real needs --out CACHE")
        config = ChunkConfig(min_s=min_s, max_s=max_s, hop_s=hop_s)
        manifest = chunk_real_audio(real_dir, out_dir=out_dir, config=config, overwrite=overwrite)
        report(manifest, {"manifest": str(manifest), **config.to_dict()}, as_json)
        return
    if not phrase:
        raise ConfigError("wb negatives needs PHRASE (or --nonspeech N, --debian or --real DIR)")
    if list_only:
        from wakebuilder.data.phonetics import candidates

        found = candidates(phrase, max_distance=max_distance)
        if as_json:
            report(None, [dataclasses.asdict(c) for c in found], True)
            return
        for candidate in found:
            click.echo(f"{candidate.text}\t{candidate.distance:g}\t{candidate.reason}")
        return
    if not out_dir:
        raise ConfigError("wb negatives needs --out DIR")
    from wakebuilder.data.negatives import NegativesConfig, make_negatives
    from wakebuilder.data.tts import DEFAULT_ENGINES

    config = NegativesConfig(
        phrase=phrase, n=n, speech=speech, words=words, max_distance=max_distance, engines=engines or DEFAULT_ENGINES,
        seed=seed, workers=workers, voice_pattern=voice_pattern,
    )
    manifest = make_negatives(config, out_dir=out_dir, overwrite=overwrite)
    report(manifest, {"manifest": str(manifest), **config.to_dict()}, as_json)
