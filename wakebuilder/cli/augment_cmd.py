"""`wb augment`."""

from __future__ import annotations

import click

from wakebuilder.cli.options import handle_errors, json_option, overwrite_option, report, seed_option


def _parse(option: str, text: str, unit: str) -> tuple[float, float]:
    """``MIN,MAX`` (or one value) -> a float pair; a bad value names the option."""
    from wakebuilder.errors import ConfigError

    low, _, high = text.partition(",")
    try:
        return float(low), float(high or low)
    except ValueError as exc:
        raise ConfigError(f"{option} {text!r}: expected MIN,MAX in {unit}") from exc


@click.command()
@click.argument("manifest", type=click.Path(exists=True, dir_okay=False))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False), help="Output folder.")
@click.option("--copies", type=click.IntRange(min=1), default=2, show_default=True, help="Copies per clip.")
@click.option("--noise", "noise_dir", type=click.Path(file_okay=False), help="Folder of background noise files.")
@click.option("--rir", "rir_dir", type=click.Path(file_okay=False), help="Folder of room impulse responses.")
@click.option("--snr-db", default="5,25", show_default=True, help="Noise SNR range MIN,MAX in dB.")
@click.option("--speed", "speed_range", default="0.9,1.1", show_default=True,
              help="Speed (tempo and pitch) factor range MIN,MAX.")
@click.option("--speed-p", type=click.FloatRange(0, 1), default=0.5, show_default=True,
              help="Share of copies with a speed change.")
@click.option("--pitch", "pitch_range", default="-2,2", show_default=True,
              help="Pitch shift range MIN,MAX in semitones (duration kept; moves formants too, like another "
                   "speaker's vocal tract).")
@click.option("--pitch-p", type=click.FloatRange(0, 1), default=0.4, show_default=True,
              help="Share of copies with a pitch shift.")
@click.option("--formant", "formant_range", default="0.85,1.2", show_default=True,
              help="Formant (vocal-tract length) factor range MIN,MAX: moves the spectral envelope, keeps "
                   "the pitch. A copy with both sets its formants to this factor of the original's whatever "
                   "its --pitch, so pitch and vocal tract vary independently, as between speakers.")
@click.option("--formant-p", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Share of copies with a formant warp (0: off).")
@click.option("--window-s", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Centre each clip in this many seconds of silence before reverb, shift and noise, so noise fills "
                   "the pauses and a shift moves the word instead of cutting it (use wb embed's --window-s; 0: off).")
@click.option("--keep-originals", is_flag=True, help="List the original clips in the output manifest too.")
@seed_option
@overwrite_option
@json_option
@handle_errors
def augment(
    manifest: str, out_dir: str, copies: int, noise_dir: str | None, rir_dir: str | None, snr_db: str,
    speed_range: str, speed_p: float, pitch_range: str, pitch_p: float, formant_range: str, formant_p: float,
    window_s: float, keep_originals: bool,
    seed: int, overwrite: bool, as_json: bool,
) -> None:
    """Speed, pitch, formant, gain, noise at SNR, reverb, shift and EQ copies of MANIFEST's clips."""
    from wakebuilder.data.augment.pipeline import run_augment
    from wakebuilder.data.augment.transforms import AugmentConfig
    from wakebuilder.errors import ConfigError

    snr = _parse("--snr-db", snr_db, "dB")
    speed = _parse("--speed", speed_range, "factors")
    pitch = _parse("--pitch", pitch_range, "semitones")
    formant = _parse("--formant", formant_range, "factors")
    if speed[0] <= 0 or speed[0] > speed[1]:
        raise ConfigError(f"--speed {speed_range!r}: expected 0 < MIN <= MAX, e.g. 0.9,1.1")
    if pitch[0] > pitch[1] or max(abs(pitch[0]), abs(pitch[1])) > 12:
        raise ConfigError(f"--pitch {pitch_range!r}: expected MIN <= MAX within -12,12 semitones, e.g. -2,2")
    if not 0.5 <= formant[0] <= formant[1] <= 2.0:
        raise ConfigError(f"--formant {formant_range!r}: expected 0.5 <= MIN <= MAX <= 2, e.g. 0.85,1.2")
    config = AugmentConfig(copies=copies, seed=seed, snr_db=snr, speed_range=speed, speed_p=speed_p,
                           pitch_semitones=pitch, pitch_p=pitch_p, formant_range=formant, formant_p=formant_p,
                           window_s=window_s)
    path = run_augment(manifest, out_dir=out_dir, config=config, noise_dir=noise_dir, rir_dir=rir_dir,
                       keep_originals=keep_originals, overwrite=overwrite)
    report(path, {"manifest": str(path), **config.to_dict()}, as_json)
