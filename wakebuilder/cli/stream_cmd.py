"""`wb stream`: join held-out negative clips into continuous audio for FA/h."""

from __future__ import annotations

import click

from wakebuilder.cli.checks import FloatIn, InPath, OutPath, ordered
from wakebuilder.cli.options import (
    STARTS_OVER, handle_errors, json_option, overwrite_option, report, seed_option,
)


@click.command()
@click.argument("manifests", nargs=-1, required=True, type=InPath(exists=True, dir_okay=False))
@click.option("--out", "out_path", required=True, type=OutPath(dir_okay=False), help="Output WAV file.")
@click.option("--duration-s", type=FloatIn(1.0, 86_400.0), default=600.0, show_default=True)
@click.option("--gap-min-s", type=FloatIn(0.0, 60.0), default=0.2, show_default=True)
@click.option("--gap-max-s", type=FloatIn(0.0, 60.0), default=1.5, show_default=True)
@click.option("--noise-dbfs", type=FloatIn(-150.0, 0.0), default=-60.0, show_default=True, help="Noise floor RMS level.")
@seed_option
@overwrite_option
@json_option
@handle_errors(on_interrupt=STARTS_OVER)
def stream(
    manifests: tuple[str, ...], out_path: str, duration_s: float, gap_min_s: float, gap_max_s: float,
    noise_dbfs: float, seed: int, overwrite: bool, as_json: bool,
) -> None:
    """Join the negative clips of MANIFESTS into one long WAV (for false accepts per hour).

    Use clips the model never trained on (another seed, other voices), or better,
    real recordings of your room, TV or radio.
    """
    from wakebuilder.data.stream import StreamConfig, build_negative_stream

    ordered(click.get_current_context(), "gap_min_s", "gap_max_s", gap_min_s, gap_max_s)
    config = StreamConfig(
        duration_s=duration_s, gap_min_s=gap_min_s, gap_max_s=gap_max_s, noise_dbfs=noise_dbfs, seed=seed
    )
    path = build_negative_stream(list(manifests), out_path=out_path, config=config, overwrite=overwrite)
    report(path, {"path": str(path), "duration_s": duration_s, **config.to_dict()}, as_json)
