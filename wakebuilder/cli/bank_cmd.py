"""`wb bank`: the negative bank, phrase-independent negatives embedded once per backbone and window."""

from __future__ import annotations

import json

import click

from wakebuilder.cli.checks import FloatIn, InPath, IntIn, OutPath
from wakebuilder.cli.options import (
    RESUMES, WRITES_NOTHING, device_option, engines_option, handle_errors, json_option, report,
    seed_option, threads_option, voices_option,
)

backbone_option = click.option(
    "--backbone", default="ast", show_default=True,
    help="The backbone the bank is embedded with (as wb embed --backbone).",
)
window_option = click.option(
    "--window-s", type=FloatIn(0.5, 3.0), default=None,
    help="Seconds one embedding sees, as the phrase's store [default: the backbone's own].",
)
cache_option = click.option(
    "--cache-dir", type=InPath(file_okay=False), default=None,
    help="Cache folder [default: WB_CACHE_DIR, else the platform's, e.g. $XDG_CACHE_HOME/wakebuilder].",
)


@click.group()
def bank() -> None:
    """The negative bank: music, noise, many voices and words, embedded once for every wake word.

    Fit a phrase with its own store and the bank: wb fit --store STORE --store "$(wb bank path ...)".
    Bank rows that say the phrase (or a sound-alike) are left out of that fit and counted.
    """


@bank.command("build")
@click.argument("manifests", nargs=-1, required=True, type=InPath(exists=True, dir_okay=False))
@backbone_option
@window_option
@cache_option
@click.option("--batch-size", type=IntIn(1, 4096), default=16, show_default=True)
@click.option("--workers", type=IntIn(1, 256), default=2, show_default=True, help="Decoding threads.")
@device_option
@threads_option
@json_option
@handle_errors(on_interrupt=RESUMES)
def build(manifests: tuple[str, ...], backbone: str, window_s: float | None, cache_dir: str | None,
          batch_size: int, workers: int, device: str, threads: int, as_json: bool) -> None:
    """Embed the negatives of MANIFESTS into the bank (clips already there are skipped); prints its path."""
    from wakebuilder.bank.build import build_bank
    from wakebuilder.devices import set_threads

    set_threads(threads)
    summary = build_bank(list(manifests), backbone=backbone, window_s=window_s, cache=cache_dir, device=device,
                         batch_size=batch_size, workers=workers, threads=threads)
    click.echo(f"wb bank: {summary['embedded']} embedded, {summary['skipped_existing']} already in the bank, "
               f"{summary['rejected']} rejected; {summary['clips_in_store']} in the bank", err=True)
    report(summary["path"], summary, as_json)


@bank.command("path")
@backbone_option
@window_option
@cache_option
@handle_errors(on_interrupt=WRITES_NOTHING)
def path(backbone: str, window_s: float | None, cache_dir: str | None) -> None:
    """Print the bank's store path for a backbone and window (whether built or not)."""
    from wakebuilder.backbones import check_spec
    from wakebuilder.bank.location import bank_store_path

    check_spec(backbone, locate=False)  # loads no backbone: a bank outlives its uninstalled model
    click.echo(str(bank_store_path(backbone, window_s, cache=cache_dir)))


@bank.command("info")
@backbone_option
@window_option
@cache_option
@json_option
@handle_errors(on_interrupt=WRITES_NOTHING)
def info(backbone: str, window_s: float | None, cache_dir: str | None, as_json: bool) -> None:
    """Counts by kind, size and manifests of the bank."""
    from wakebuilder.backbones import check_spec
    from wakebuilder.bank.build import bank_info

    check_spec(backbone, locate=False)  # loads no backbone: a bank outlives its uninstalled model
    summary = bank_info(backbone, window_s, cache=cache_dir)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    click.echo("\n".join([
        f"bank        {summary['path']} ({summary['size_bytes'] / 1e6:.1f} MB)",
        f"backbone    {summary['backbone'].get('name')} window {summary['backbone'].get('window_s')} s",
        f"clips       {summary['clips']}  kinds {summary['kinds']}",
        f"groups      {summary['groups']}",
        f"manifests   {len(summary['manifests'])}",
        *(f"  {m}" for m in summary["manifests"]),
    ]))


@bank.command("reclaim")
@backbone_option
@window_option
@cache_option
@click.option("--dry-run", is_flag=True, help="Say what would be removed and about how many bytes; remove nothing.")
@json_option
@handle_errors(on_interrupt=lambda kwargs: WRITES_NOTHING if kwargs["dry_run"] else RESUMES)
def reclaim(backbone: str, window_s: float | None, cache_dir: str | None, dry_run: bool, as_json: bool) -> None:
    """Free the disk the bank keeps for nothing; prints its store's path.

    Removes the rows of the bank's retired clips (those of voices replaced), the lists of retired clips that name
    none left, the held-out streams' folders no recipe uses now (and the backbone's passes over them kept in the
    cache) and the bank's audio of settings none of whose clips it serves (a build killed before embedding them).
    Run it when no recipe runs: while one (or wb fit, wb calibrate) reads the bank it refuses, removing nothing.
    Models fitted on the bank before a reclaim can no longer be calibrated on it (wb calibrate says to fit again):
    fit them again.
    """
    from wakebuilder.backbones import check_spec
    from wakebuilder.bank.reclaim import reclaim_bank

    check_spec(backbone, locate=False)  # loads no backbone: a bank outlives its uninstalled model
    done = reclaim_bank(backbone, window_s, cache=cache_dir, dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for path in (*done.lists_removed, *done.folders_removed, *done.audio_removed, *done.passes_removed):
        click.echo(f"wb bank reclaim: {verb} {path}", err=True)
    click.echo(f"wb bank reclaim: {verb} {done.rows_removed} retired row(s), {len(done.lists_removed)} list(s) of "
               f"retired clips, {len(done.folders_removed)} held-out folder(s), {len(done.audio_removed)} "
               f"folder(s) of bank audio and {len(done.passes_removed)} cached stream pass(es): "
               f"{'about ' if dry_run else ''}{done.bytes_freed / 1e6:.1f} MB", err=True)
    report(done.store, done.to_dict(), as_json)


@bank.command("negatives")
@click.option("--out", "out_dir", required=True, type=OutPath(file_okay=False), help="Output folder.")
@click.option("--speech", type=IntIn(0, 1_000_000), default=1000, show_default=True,
              help="Generic TTS sentences, spread over every voice.")
@click.option("--words", type=IntIn(0, 1_000_000), default=1500, show_default=True,
              help="Isolated words spoken alone.")
@click.option("--stream-s", type=FloatIn(0.0, 360_000.0), default=600.0, show_default=True,
              help="Seconds of continuous stream cut into windows (0: none).")
@click.option("--chunk-s", type=FloatIn(0.5, 60.0), default=2.5, show_default=True,
              help="Window length of the stream chunks (the embedding window).")
@engines_option
@voices_option
@click.option("--nonspeech", type=IntIn(0, 1_000_000), default=0, show_default=True,
              help="Synthesized music and noise clips (babble of the --speech clips), no download.")
@click.option("--debian/--no-debian", default=False, show_default=True,
              help="Also Debian's game music and sound where apt works (skipped with a warning elsewhere).")
@click.option("--workers", type=IntIn(1, 256), default=2, show_default=True)
@seed_option
@handle_errors(on_interrupt=RESUMES)
def negatives(out_dir: str, speech: int, words: int, stream_s: float, chunk_s: float, engines: tuple[str, ...],
              voice_pattern: str | None, nonspeech: int, debian: bool, workers: int, seed: int) -> None:
    """Synthesize the bank's phrase-independent negatives; prints one manifest per line. A killed run resumes."""
    from wakebuilder.bank.negatives import BankNegativesConfig, make_bank_negatives
    from wakebuilder.data.tts import DEFAULT_ENGINES

    config = BankNegativesConfig(speech=speech, words=words, stream_s=stream_s, chunk_s=chunk_s,
                                 engines=engines or DEFAULT_ENGINES, voice_pattern=voice_pattern, seed=seed,
                                 workers=workers, nonspeech=nonspeech, debian=debian)
    for manifest in make_bank_negatives(config, out_dir=out_dir):
        click.echo(str(manifest))
