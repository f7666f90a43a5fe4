"""The ``wb`` command line: a thin layer over the library.

Commands are imported lazily so ``wb --help`` does not import torch, numba or
onnx. Each command module defines one click command (or group).
"""

from __future__ import annotations

import importlib
import logging

import click

from wakebuilder import __version__

# command name -> "module:attribute"
COMMANDS: dict[str, str] = {
    "validate": "wakebuilder.cli.data_cmd:validate",
    "synth": "wakebuilder.cli.data_cmd:synth",
    "voices": "wakebuilder.cli.voices_cmd:voices",
    "negatives": "wakebuilder.cli.negatives_cmd:negatives",
    "augment": "wakebuilder.cli.augment_cmd:augment",
    "stream": "wakebuilder.cli.stream_cmd:stream",
    "embed": "wakebuilder.cli.embed_cmd:embed",
    "store": "wakebuilder.cli.embed_cmd:store",
    "bank": "wakebuilder.cli.bank_cmd:bank",
    "fit": "wakebuilder.cli.fit_cmd:fit",
    "calibrate": "wakebuilder.cli.model_cmd:calibrate",
    "ensemble": "wakebuilder.cli.model_cmd:ensemble",
    "export": "wakebuilder.cli.model_cmd:export",
    "fuse": "wakebuilder.cli.model_cmd:fuse",
    "detect": "wakebuilder.cli.model_cmd:detect",
    "eval": "wakebuilder.cli.model_cmd:evaluate",
    "quickstart": "wakebuilder.cli.recipe_cmd:quickstart",
    "web": "wakebuilder.cli.web_cmd:web",
}

_HELP = {
    "validate": "Check and convert your own recordings of the wake word.",
    "synth": "Synthesize positives of a phrase with TTS engines.",
    "voices": "Fetch voice packs (Kokoro, Piper) for wb synth; online once.",
    "negatives": "Hard negatives (sound-alikes), non-speech audio (noise, music), or chunks of real audio.",
    "augment": "Augmented copies of a manifest's clips (Numba kernels).",
    "stream": "Join negative clips into continuous audio for FA/h.",
    "embed": "One backbone pass over manifests into an embedding store.",
    "store": "Inspect an embedding store (info), check it for damage (verify), merge a store made of parts.",
    "bank": "The negative bank: phrase-independent negatives embedded once per backbone.",
    "fit": "Train the wake-word head on a store's cached embeddings.",
    "calibrate": "Choose the threshold; per-clip metrics and false accepts per hour.",
    "ensemble": "One model from calibrated models of a phrase (other head or data seeds), averaged.",
    "export": "Export .pt, .json, end-to-end .onnx and head .onnx.",
    "fuse": "One detector from exported detectors of a phrase (other backbones, windows): weighted mean.",
    "detect": "Streaming detection over audio files or raw PCM on stdin.",
    "eval": "Metrics of a model on a manifest and continuous negative audio.",
    "quickstart": "The whole recipe: phrase -> exported, evaluated detector.",
    "web": "A web page running exported models on the microphone; wb web serve DIR.",
}


class LazyGroup(click.Group):
    """A group whose commands are imported only when run or asked for help."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _HELP.get(name, "")) for name in COMMANDS]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "WB"})
@click.version_option(__version__, prog_name="wakebuilder")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
def main(verbose: int) -> None:
    """wakebuilder: custom wake-word detectors from a phrase and a few recordings.

    recordings -> validate -> synth / negatives -> augment -> embed -> fit ->
    calibrate -> export -> detect / eval. Every command reads artifacts by path,
    writes one artifact and prints its path (or a --json summary) on stdout.
    """
    _exit_on_sigterm()
    level = logging.WARNING - 10 * min(verbose, 2) if verbose else logging.INFO
    logging.basicConfig(level=level, format="wb: %(levelname)s: %(message)s", force=True)


def _exit_on_sigterm() -> None:
    """SIGTERM (``kill PID``, a service manager, a CI timeout) exits through Python as Ctrl-C does, so a command's
    cleanup runs: its worker processes are stopped, its locks released. SIGTERM's default kills the process
    outright and left the workers of wb synth or wb embed running."""
    import signal
    import threading

    if threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _terminated)


def _terminated(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum)

