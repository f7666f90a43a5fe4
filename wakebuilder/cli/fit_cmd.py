"""`wb fit`: train the wake-word head on a store's cached embeddings."""

from __future__ import annotations

import click

from wakebuilder.cli.checks import FloatIn, InPath, IntIn, OutPath
from wakebuilder.cli.options import (
    STARTS_OVER, device_option, handle_errors, json_option, overwrite_option, report, seed_option, stores_option,
    threads_option,
)
from wakebuilder.recipe_config import DEFAULT_CENTROIDS_SHRINKAGE
from wakebuilder.train.head_kinds import HEAD_KINDS


def _hidden(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise click.BadParameter(f"{value!r}: expected comma-separated layer sizes, e.g. 256,128") from exc
    if any(not 1 <= s <= 8192 for s in sizes):
        raise click.BadParameter(f"{value!r}: layer sizes must be in [1, 8192]")
    return sizes


@click.command()
@stores_option
@click.option(
    "--out", "out_dir", required=True, type=OutPath(file_okay=False), help="Model directory to write."
)
@click.option("--head", "head", type=click.Choice(HEAD_KINDS), default=HEAD_KINDS[0], show_default=True,
              help="network: the trained head (the options below shape it). centroids: no training, a closed form "
                   "for one-vector backbones (word-embedding): the cosine to the training positives' mean direction "
                   "minus that to the negatives'; the network's shape and training options are then unused.")
@click.option("--shrinkage", type=FloatIn(0.0, 1.0), default=0.0, show_default=True,
              help="Needs --head centroids. 0: the two centroids. 0 < A <= 1: instead the linear discriminant on the "
                   "same unit rows, its within-class covariance shrunk toward the identity by 1 - A (1: unshrunk). "
                   f"Research measured {DEFAULT_CENTROIDS_SHRINKAGE:g} on word-embedding, the recipe's (real clips "
                   "ranked better than by the centroids, alike from 0.05 to 0.5).")
@click.option("--width", type=IntIn(1, 4096), default=64, show_default=True, help="Projection width.")
@click.option("--hidden", default="256,128", show_default=True, callback=_hidden, help="MLP hidden sizes.")
@click.option("--dropout", type=FloatIn(0.0, 1.0, max_open=True), default=0.5, show_default=True)
@click.option("--input-dropout", type=FloatIn(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Training only: share of embedding values dropped.")
@click.option("--frame-dropout", type=FloatIn(0.0, 1.0, max_open=True), default=0.0, show_default=True,
              help="Training only: share of embedding time steps dropped whole.")
@click.option("--tcn/--no-tcn", default=True, show_default=True, help="Dilated temporal convolutions.")
@click.option("--tcn-layers", type=IntIn(1, 16), default=2, show_default=True)
@click.option("--se/--no-se", default=True, show_default=True, help="Squeeze-and-excitation.")
@click.option("--attention/--no-attention", default=True, show_default=True,
              help="Attention pooling (else mean).")
@click.option("--lr", type=FloatIn(min=0.0, min_open=True), default=8e-4, show_default=True,
              help="Peak learning rate of the one-cycle schedule.")
@click.option("--weight-decay", type=FloatIn(min=0.0), default=0.01, show_default=True)
@click.option("--batch-size", type=IntIn(2, 65536), default=256, show_default=True,
              help="Clips per training step (capped at the store's clip count).")
@click.option("--max-epochs", type=IntIn(1, 100_000), default=60, show_default=True)
@click.option("--patience", type=IntIn(1, 100_000), default=8, show_default=True,
              help="Epochs without validation-loss improvement before stopping.")
@click.option("--min-delta", type=FloatIn(min=0.0), default=0.001, show_default=True,
              help="Smallest validation-loss drop that counts as improvement.")
@click.option("--focal-alpha", type=FloatIn(0.0, 1.0), default=0.5, show_default=True,
              help="Focal-loss weight of the positive class.")
@click.option("--focal-gamma", type=FloatIn(min=0.0), default=2.0, show_default=True)
@click.option("--mixup-alpha", type=FloatIn(min=0.0), default=0.5, show_default=True,
              help="Mixup Beta(a, a) parameter; 0 disables mixup.")
@click.option("--val-fraction", type=FloatIn(0.0, 1.0, min_open=True, max_open=True), default=0.25,
              show_default=True, help="Share of groups held out for validation.")
@click.option("--keep-recordings-in-train", is_flag=True, default=False,
              help="Never hold out your own recordings.")
@click.option("--members", type=IntIn(1, 64), default=1, show_default=True,
              help="Heads trained with seeds SEED, SEED+1, ... on one split; the model averages their logits.")
@click.option("--init", "init", type=InPath(exists=True, file_okay=False), default=None,
              help="Fine-tune this model directory's head (same backbone only); its shape (width, "
                   "layers, dropout) is kept.")
@click.option("--wake-word", default=None, help="Wake word to record [default: most common positive text].")
@click.option("--stream", is_flag=True, default=False,
              help="Stream from the store instead of loading it into memory.")
@device_option
@threads_option
@seed_option
@overwrite_option
@json_option
@handle_errors(on_interrupt=STARTS_OVER)
def fit(
    stores: tuple[str, ...], out_dir: str, head: str, shrinkage: float, width: int, hidden: tuple[int, ...],
    dropout: float,
    input_dropout: float,
    frame_dropout: float, tcn: bool, tcn_layers: int,
    se: bool, attention: bool, lr: float, weight_decay: float, batch_size: int, max_epochs: int,
    patience: int, min_delta: float, focal_alpha: float, focal_gamma: float, mixup_alpha: float,
    val_fraction: float,
    keep_recordings_in_train: bool, members: int, init: str | None, wake_word: str | None, stream: bool, device: str,
    threads: int, seed: int, overwrite: bool, as_json: bool,
) -> None:
    """Train the head on the stores' embeddings and write MODEL_DIR (weights, model.json, split.json,
    metrics.jsonl, training_curves.png). No audio is read: all of it was embedded once by wb embed.
    """
    from wakebuilder.devices import set_threads
    from wakebuilder.train.fit import FitConfig, run_fit

    set_threads(threads)
    config = FitConfig(
        width=width, hidden=hidden, dropout=dropout, input_dropout=input_dropout, frame_dropout=frame_dropout,
        tcn=tcn, tcn_layers=tcn_layers, se=se,
        attention=attention,
        lr=lr, weight_decay=weight_decay, batch_size=batch_size, max_epochs=max_epochs, patience=patience,
        min_delta=min_delta, focal_alpha=focal_alpha, focal_gamma=focal_gamma, mixup_alpha=mixup_alpha,
        val_fraction=val_fraction,
        keep_recordings_in_train=keep_recordings_in_train, members=members, seed=seed, head=head,
        shrinkage=shrinkage,
    )
    path, result = run_fit(
        list(stores), out_dir, config, device=device, init=init, wake_word=wake_word, stream=stream,
        overwrite=overwrite,
    )
    report(path, {"path": str(path), **result.best, "best_epoch": result.best_epoch,
                  "epochs_run": len(result.history), "mode": result.mode,
                  "bank_rows_excluded": result.bank_excluded}, as_json)

