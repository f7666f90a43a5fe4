"""`wb voices`: fetch voice packs from the Hugging Face Hub (for users online) and show what is cached."""

from __future__ import annotations

import click

from wakebuilder.cli.options import RESUMES, WRITES_NOTHING, handle_errors, json_option, report


@click.group()
def voices() -> None:
    """Voice packs for wb synth: Kokoro's English voices, Piper voices (online, once; then offline)."""


@voices.command("fetch")
@click.argument("names", nargs=-1, required=True)
@json_option
@handle_errors(on_interrupt=RESUMES)
def fetch(names: tuple[str, ...], as_json: bool) -> None:
    """Download voice packs NAMES (see 'wb voices list') into the Hugging Face cache, sha256-checked."""
    from pathlib import Path

    from wakebuilder.data.tts.fetch import fetch as fetch_pack

    fetched = {name: [str(path) for path in fetch_pack(name)] for name in names}
    for name, paths in fetched.items():
        click.echo(f"wb voices: {name}: {len(paths)} file(s) verified", err=True)
    folders = sorted({str(Path(p).parent) for paths in fetched.values() for p in paths})
    report("\n".join(folders), {"fetched": fetched}, as_json)


@voices.command("list")
@json_option
@handle_errors(on_interrupt=WRITES_NOTHING)
def list_packs(as_json: bool) -> None:
    """The voice packs 'wb voices fetch' knows, their licence and how many of their files are cached."""
    from wakebuilder.data.tts.fetch import LICENCES, cached_file, packs

    rows = {name: {"files": len(files), "cached": sum(cached_file(f) is not None for f in files),
                   "licence": LICENCES.get(name, "")} for name, files in packs().items()}
    if as_json:
        report(None, rows, True)
        return
    for name, row in rows.items():
        click.echo(f"{name}\t{row['cached']}/{row['files']} files cached\t{row['licence']}")
