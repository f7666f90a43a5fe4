"""Options shared by several commands, defined once, and the error-to-exit wrapper."""

from __future__ import annotations

import contextlib
import functools
import json
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from wakebuilder.cli.checks import IntIn, OutPath, fail
from wakebuilder.errors import WakebuilderError

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
    help="CPU threads: torch's (0: its default), or speech-embedding's onnxruntime calls at once (0: one per core).",
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
    help="Only voices whose key or name matches this regular expression (see wb synth --list-voices), e.g. "
         "'^[ab][fm]_' for Kokoro's native English voices; it also names non-commercial voices.",
)
seed_option = click.option("--seed", type=IntIn(0, 2**32 - 1), default=0, show_default=True, help="Random seed.")
json_option = click.option(
    "--json", "as_json", is_flag=True, default=False, help="Print a JSON summary instead of the path.",
)


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


def handle_errors(func: F) -> F:
    """Turn library errors into one line on stderr and the error's exit code."""

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
            click.echo("wb: interrupted; finished work is kept, run again to resume", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]
