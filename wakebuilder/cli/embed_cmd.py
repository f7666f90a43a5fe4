"""`wb embed` and `wb store info`."""

from __future__ import annotations

import json

import click

from wakebuilder.cli.checks import FloatIn, InPath, IntIn
from wakebuilder.cli.options import (
    RESUMES, STARTS_OVER, WRITES_NOTHING, device_option, handle_errors, json_option, overwrite_option, report,
    store_option, threads_option,
)


@click.command()
@click.argument("manifests", nargs=-1, required=True, type=InPath(exists=True, dir_okay=False))
@store_option
@click.option("--backbone", default="ast", show_default=True,
              help="ast, speech-embedding, word-embedding, an HF hub id of an AST checkpoint, or a local directory.")
@click.option("--window-s", type=FloatIn(0.5, 3.0), default=None,
              help="Seconds one embedding sees [default: an existing store's, if the wake-word clips fit it, "
              "else the backbone's; AST widens it to fit the wake-word clips].")
@click.option("--dtype", type=click.Choice(["auto", "fp32", "bf16"]), default="auto", show_default=True,
              help="AST compute precision (auto: an existing store's, else bf16 on CUDA, fp32 on CPU; a store "
              "refuses another).")
@click.option("--batch-size", type=IntIn(1, 4096), default=16, show_default=True,
              help="Clips per backbone call (the ONNX backbones make --threads calls at once).")
@click.option("--workers", type=IntIn(1, 256), default=2, show_default=True, help="Decoding threads.")
@click.option("--executor", default="local", show_default=True,
              help="local (this process), processes:N (N processes here), or a Dask scheduler address "
              "tcp://HOST:PORT; all but local write a store made of parts, one per shard of clips.")
@click.option("--shard-clips", type=IntIn(1, 10_000_000), default=None,
              help="Clips per task (and part) when sharding [default: 256].")
@device_option
@threads_option
@overwrite_option
@json_option
@handle_errors(on_interrupt=RESUMES)
def embed(
    manifests: tuple[str, ...], store: str, backbone: str, window_s: float | None, dtype: str,
    batch_size: int, workers: int, executor: str, shard_clips: int | None, device: str, threads: int,
    overwrite: bool, as_json: bool,
) -> None:
    """Embed every clip of MANIFESTS into the store (skipping clips already there).

    Unusable clips are listed with their reason in STORE.rejects.jsonl. --threads sets torch's CPU
    threads for AST, and for the ONNX backbones the onnxruntime calls at once (default one per core).
    STORE may be an fsspec URL (memory://, s3://...); such stores, and any --executor but local, are
    written in parts.
    """
    from wakebuilder.devices import set_threads
    from wakebuilder.embed import EmbedConfig
    from wakebuilder.embed_parts import SHARD_CLIPS, ShardedRun, ShardedSummary, embed_with_executor

    set_threads(threads)
    config = EmbedConfig(backbone=backbone, window_s=window_s, dtype=dtype)
    run = ShardedRun(executor=executor, shard_clips=shard_clips or SHARD_CLIPS, device=device,
                     batch_size=batch_size, workers=workers, threads=threads, overwrite=overwrite)
    summary = embed_with_executor(list(manifests), store_path=store, config=config, run=run,
                                  shard=shard_clips is not None)
    click.echo(
        f"wb embed: {summary.embedded} embedded, {summary.skipped_existing} already stored, "
        f"{summary.rejected} rejected, {summary.cropped} cropped, {summary.silent} silent; "
        f"{summary.clips_in_store} in store"
        + (f" ({summary.parts} parts; {summary.tasks} tasks on {len(summary.workers_used)} worker(s))"
           if isinstance(summary, ShardedSummary) else ""),
        err=True,
    )
    report(store, summary.to_dict(), as_json)


@click.group()
def store() -> None:
    """Inspect or verify an embedding store, or merge a store made of parts."""


@store.command("verify")
@click.argument("path", type=InPath(exists=True))
@json_option
@handle_errors(on_interrupt=WRITES_NOTHING)
def verify(path: str, as_json: bool) -> None:
    """Read every committed chunk of the store at PATH and list damaged rows (exit 1 if any).

    Checks each chunk is present and passes its checksum, embeddings are finite and rows parse.
    """
    from wakebuilder.errors import StoreError
    from wakebuilder.store.verify import format_rows, verify_store

    result = verify_store(path)
    if as_json:
        click.echo(json.dumps(result, sort_keys=True))
    else:
        for problem in result["problems"]:
            start, stop = problem["rows"]
            click.echo(f"{path}\t{problem['field']}\trows {start}:{stop}\t{problem['reason']}")
        if result["checksums"] is None:
            click.echo(f"wb store verify: {path} predates chunk checksums; a flipped byte may go unseen "
                       "(rebuild it with wb embed --overwrite to add them)", err=True)
        if result["ok"]:
            click.echo(f"{path}: {result['clips']} clips, no damage found")
    if not result["ok"]:
        raise StoreError(
            f"{path}: {len(result['damaged_rows'])} of {result['clips']} rows damaged "
            f"(rows {format_rows(result['damaged_rows'])}); rebuild the store with wb embed --overwrite, "
            "or re-embed after removing it"
        )


@store.command("info")
@click.argument("path")
@json_option
@handle_errors(on_interrupt=WRITES_NOTHING)
def info(path: str, as_json: bool) -> None:
    """Counts by label, kind and group, shapes, backbone and size of the store at PATH."""
    from wakebuilder.store import store_info

    summary = store_info(path)
    if as_json:
        click.echo(json.dumps(summary, sort_keys=True))
        return
    backbone = summary["backbone"]
    lines = [
        f"store       {summary['path']} ({summary['backend']}, {summary['parts']} part(s), "
        f"{summary['size_bytes'] / 1e6:.1f} MB)",
        f"backbone    {backbone.get('name')} {backbone.get('checkpoint', '')} rev {backbone.get('revision')} "
        f"window {backbone.get('window_s')} s",
        f"clips       {summary['clips']}  labels {summary['labels']}  rejects {summary['rejects']}",
        f"kinds       {summary['kinds']}",
        f"groups      {summary['groups']} (top: {summary['top_groups']})",
        f"shapes      pooled {summary['pooled_shape']}  sequence {summary['sequence_shape']}  "
        f"{summary['dtype']}" + (f" (computed in {summary['compute_dtype']})" if summary["compute_dtype"] else ""),
        f"fingerprint {summary['fingerprint']}",
    ]
    click.echo("\n".join(lines))


@store.command("merge")
@click.argument("path")
@click.argument("out", required=False)
@overwrite_option
@json_option
@handle_errors(on_interrupt=STARTS_OVER)
def merge(path: str, out: str | None, overwrite: bool, as_json: bool) -> None:
    """Copy the store made of parts at PATH into a single-part store at OUT (or in place, without OUT).

    OUT may end in .h5 for HDF5, or be a URL. In place, the merged store is built beside PATH and
    swapped in; a merge killed during the swap finishes when run again.
    """
    from wakebuilder.store.merge import compact_store, merge_store

    summary = merge_store(path, out, overwrite=overwrite) if out else compact_store(path)
    click.echo(f"wb store merge: {summary['clips']} clips from {summary['parts_merged']} part(s)", err=True)
    report(summary["store"], summary, as_json)
