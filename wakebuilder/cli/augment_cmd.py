"""`wb augment`."""

from __future__ import annotations

import click

from wakebuilder.cli.checks import FloatIn, InPath, IntIn, OutPath, RangePair
from wakebuilder.cli.options import (
    RESUMES, handle_errors, json_option, overwrite_option, report, seed_option,
)


@click.command()
@click.argument("manifest", type=InPath(exists=True, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=OutPath(file_okay=False), help="Output folder.")
@click.option("--copies", type=IntIn(1, 1000), default=2, show_default=True, help="Copies per clip.")
@click.option("--noise", "noise_dir", type=InPath(file_okay=False), help="Folder of background noise files.")
@click.option("--rir", "rir_dir", type=InPath(file_okay=False), help="Folder of room impulse responses.")
@click.option("--snr-db", type=RangePair("dB", -30, 80, example="5,25"), default="5,25", show_default=True,
              help="Noise SNR range MIN,MAX in dB.")
@click.option("--speed", "speed_range", type=RangePair("factors", 0.25, 4, example="0.9,1.1"), default="0.9,1.1",
              show_default=True, help="Speed (tempo and pitch) factor range MIN,MAX.")
@click.option("--speed-p", type=FloatIn(0, 1), default=0.5, show_default=True,
              help="Share of copies with a speed change.")
@click.option("--pitch", "pitch_range", type=RangePair("semitones", -12, 12, example="-2,2"), default="-2,2",
              show_default=True, help="Pitch shift range MIN,MAX in semitones (duration kept; moves formants too, like another "
                   "speaker's vocal tract).")
@click.option("--pitch-p", type=FloatIn(0, 1), default=0.4, show_default=True,
              help="Share of copies with a pitch shift.")
@click.option("--formant", "formant_range", type=RangePair("factors", 0.5, 2, example="0.85,1.2"),
              default="0.85,1.2", show_default=True, help="Formant (vocal-tract length) factor range MIN,MAX: moves the spectral envelope, keeps "
                   "the pitch. A copy with both sets its formants to this factor of the original's whatever "
                   "its --pitch, so pitch and vocal tract vary independently, as between speakers.")
@click.option("--formant-p", type=FloatIn(0, 1), default=0.0, show_default=True,
              help="Share of copies with a formant warp (0: off).")
@click.option("--window-s", type=FloatIn(0, 3.0), default=0.0, show_default=True,
              help="Centre each clip in this many seconds of silence before reverb, shift and noise, so noise fills "
                   "the pauses and a shift moves the word instead of cutting it (use wb embed's --window-s; 0: off).")
@click.option("--keep-originals", is_flag=True, help="List the original clips in the output manifest too.")
@click.option("--background", "background_kinds", default="",
              help="Mix in backgrounds made on the fly by these generators, comma-separated "
                   "(noise,music,tone,chirp,click,hum,room).")
@click.option("--background-manifest", "background_manifests", multiple=True, type=InPath(exists=True, dir_okay=False),
              help="Mix in backgrounds from this manifest's label-0 clips (e.g. wb negatives --nonspeech/--debian output).")
@click.option("--background-snr-db", type=RangePair("dB", -30, 80, example="0,20"), default="0,20", show_default=True,
              help="Background SNR range MIN,MAX in dB.")
@click.option("--background-p", type=FloatIn(0, 1), default=0.5, show_default=True,
              help="Share of copies with a background (when --background or --background-manifest is given).")
@seed_option
@overwrite_option
@json_option
@handle_errors(on_interrupt=RESUMES)
def augment(
    manifest: str, out_dir: str, copies: int, noise_dir: str | None, rir_dir: str | None,
    snr_db: tuple[float, float], speed_range: tuple[float, float], speed_p: float,
    pitch_range: tuple[float, float], pitch_p: float, formant_range: tuple[float, float], formant_p: float,
    window_s: float, keep_originals: bool, background_kinds: str, background_manifests: tuple[str, ...],
    background_snr_db: tuple[float, float], background_p: float, seed: int, overwrite: bool, as_json: bool,
) -> None:
    """Speed, pitch, formant, gain, noise at SNR, reverb, shift and EQ copies of MANIFEST's clips, optionally
    over music and noise backgrounds."""
    from wakebuilder.data.augment.pipeline import run_augment
    from wakebuilder.data.augment.transforms import AugmentConfig

    config = AugmentConfig(copies=copies, seed=seed, snr_db=snr_db, speed_range=speed_range, speed_p=speed_p,
                           pitch_semitones=pitch_range, pitch_p=pitch_p, formant_range=formant_range,
                           formant_p=formant_p, window_s=window_s)
    background = None
    kinds = tuple(k.strip() for k in background_kinds.split(",") if k.strip())
    if kinds or background_manifests:
        from wakebuilder.data.augment.background import BackgroundConfig

        background = BackgroundConfig(generators=kinds, manifests=background_manifests, p=background_p,
                                      snr_db=background_snr_db)
    path = run_augment(manifest, out_dir=out_dir, config=config, noise_dir=noise_dir, rir_dir=rir_dir,
                       keep_originals=keep_originals, background=background, overwrite=overwrite)
    summary = {"manifest": str(path), **config.to_dict()}
    if background is not None:
        summary["background"] = background.to_dict()
    report(path, summary, as_json)
