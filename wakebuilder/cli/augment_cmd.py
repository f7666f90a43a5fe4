"""`wb augment`."""

from __future__ import annotations

import click

from wakebuilder.cli.options import handle_errors, json_option, report, seed_option


def _range(text: str) -> tuple[float, float]:
    low, _, high = text.partition(",")
    return float(low), float(high or low)


@click.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--copies", type=click.IntRange(min=1), default=2, show_default=True, help="Copies per clip.")
@click.option("--noise", "noise_dir", type=click.Path(file_okay=False), help="Folder of background noise files.")
@click.option("--rir", "rir_dir", type=click.Path(file_okay=False), help="Folder of room impulse responses.")
@click.option("--snr-db", default="5,25", show_default=True, help="Noise SNR range MIN,MAX in dB.")
@click.option("--keep-originals", is_flag=True, help="List the original clips in the output manifest too.")
@seed_option
@json_option
@handle_errors
def augment(
    manifest: str, out_dir: str, copies: int, noise_dir: str | None, rir_dir: str | None, snr_db: str,
    keep_originals: bool, seed: int, as_json: bool,
) -> None:
    """Speed, pitch, gain, noise at SNR, reverb, shift and EQ copies of MANIFEST's clips."""
    from wakebuilder.data.augment.pipeline import run_augment
    from wakebuilder.data.augment.transforms import AugmentConfig
    from wakebuilder.errors import ConfigError

    try:
        snr = _range(snr_db)
    except ValueError as exc:
        raise ConfigError(f"--snr-db {snr_db!r}: expected MIN,MAX in dB") from exc
    config = AugmentConfig(copies=copies, seed=seed, snr_db=snr)
    path = run_augment(manifest, out_dir=out_dir, config=config, noise_dir=noise_dir, rir_dir=rir_dir,
                       keep_originals=keep_originals)
    report(path, {"manifest": str(path), **config.to_dict()}, as_json)
