"""Every command answers --help; `wb --help` stays light (no torch import)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from wakebuilder.cli import COMMANDS, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_has_help(name: str) -> None:
    result = CliRunner().invoke(main, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_top_level_help_does_not_import_heavy_libraries() -> None:
    code = "import sys; from wakebuilder.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit: pass\n" \
        "heavy = [m for m in ('torch', 'numba', 'onnx', 'transformers') if m in sys.modules]\nprint('HEAVY', heavy)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out


def test_unknown_command_fails() -> None:
    result = CliRunner().invoke(main, ["nope"])
    assert result.exit_code != 0


@pytest.mark.parametrize(("error", "fix"), [
    (PermissionError(13, "Permission denied", "/data/out/manifest.jsonl"), "check its permissions"),
    (OSError(30, "Read-only file system", "/data/out"), "check its permissions"),
    (OSError(28, "No space left on device", "/data/out/clip.wav"), "free disk space"),
])
def test_file_system_errors_are_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, error: OSError,
                                         fix: str) -> None:
    """A read-only, full or forbidden folder gives `wb: error: PATH: reason; fix`, not a traceback."""
    import wakebuilder.data.validate as validate

    def refuse(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(validate, "validate_recordings", refuse)
    (tmp_path / "a.wav").write_bytes(b"")
    result = CliRunner().invoke(main, ["validate", str(tmp_path / "a.wav"), "--out", str(tmp_path / "v")])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
    line = result.output.strip()
    assert line.count("\n") == 0 and line.startswith(f"wb: error: {error.filename}: {error.strerror}; ")
    assert fix in line and "Traceback" not in result.output


def test_a_reader_that_leaves_early_stops_the_command_quietly() -> None:
    """`wb negatives PHRASE --list | head -1`: exit 141 as in a shell pipeline, no error and no traceback.

    The reader is gone before the command writes (its whole list fits a pipe's buffer, so a reader that
    left after one line could race the command's exit)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        process = subprocess.run([sys.executable, "-m", "wakebuilder.cli", "negatives", "hey jarvis", "--list"],
                                 stdout=write_end, stderr=subprocess.PIPE, timeout=120)
    finally:
        os.close(write_end)
    assert process.returncode == 141 and process.stderr.decode().strip() == "", process.stderr.decode()[-500:]


def test_the_stream_options_defaults_are_the_librarys() -> None:
    """The CLI spells out detect.STREAM_DEFAULTS (to keep `wb --help` light); they must not drift apart."""
    from wakebuilder.cli.options import STREAM_SETTINGS
    from wakebuilder.detect import STREAM_DEFAULTS

    assert {name: default for name, (_, _, default, _) in STREAM_SETTINGS.items()} == STREAM_DEFAULTS


# The audit of what each command keeps when Ctrl-C (or SIGTERM) stops it inside its work: the command line (paths
# under {tmp}; {file} and {dir} exist), the library call it is stopped in, and what a run again does.
# resumes: finished work is kept and a run again picks up from it (a journal, a cache, a store that skips clips);
# starts over: the result is written whole at the end (or the work is redone), so a run again does it all again;
# writes nothing: it reads and prints.
INTERRUPTS: list[tuple[str, str, str]] = [
    ("validate {file} --out {tmp}/o", "wakebuilder.data.validate:validate_recordings", "starts over"),
    ("synth hey --out {tmp}/o", "wakebuilder.data.synth:run_synth", "resumes"),
    ("synth --list-voices", "wakebuilder.data.synth_voices:describe_voices", "writes nothing"),
    ("voices fetch kokoro", "wakebuilder.data.tts.fetch:fetch", "resumes"),
    ("voices list", "wakebuilder.data.tts.fetch:packs", "writes nothing"),
    ("negatives hey --out {tmp}/o", "wakebuilder.data.negatives:make_negatives", "resumes"),
    ("negatives hey --list", "wakebuilder.data.phonetics:candidates", "writes nothing"),
    ("negatives --real {dir} --out {tmp}/o", "wakebuilder.data.realchunks:chunk_real_audio", "resumes"),
    ("negatives --debian --out {tmp}/o", "wakebuilder.data.debian:debian_negatives", "resumes"),
    ("negatives --nonspeech 3 --out {tmp}/o", "wakebuilder.data.nonspeech.make:make_nonspeech", "starts over"),
    ("augment {file} --out {tmp}/o", "wakebuilder.data.augment.pipeline:run_augment", "resumes"),
    ("stream {file} --out {tmp}/o.wav", "wakebuilder.data.stream:build_negative_stream", "starts over"),
    ("embed {file} --store {tmp}/s.zarr", "wakebuilder.embed_parts:embed_with_executor", "resumes"),
    ("store verify {dir}", "wakebuilder.store.verify:verify_store", "writes nothing"),
    ("store info {dir}", "wakebuilder.store:store_info", "writes nothing"),
    ("store merge {dir} {tmp}/o.zarr", "wakebuilder.store.merge:merge_store", "starts over"),
    ("store merge {dir}", "wakebuilder.store.merge:compact_store", "starts over"),
    ("bank build {file}", "wakebuilder.bank.build:build_bank", "resumes"),
    ("bank path", "wakebuilder.bank.location:bank_store_path", "writes nothing"),
    ("bank info", "wakebuilder.bank.build:bank_info", "writes nothing"),
    ("bank negatives --out {tmp}/o", "wakebuilder.bank.negatives:make_bank_negatives", "resumes"),
    ("bank reclaim", "wakebuilder.bank.reclaim:reclaim_bank", "resumes"),  # a run again finishes what it began
    ("bank reclaim --dry-run", "wakebuilder.bank.reclaim:reclaim_bank", "writes nothing"),
    ("fit --store {dir} --out {tmp}/m", "wakebuilder.train.fit:run_fit", "starts over"),
    ("calibrate --model {dir} --store {dir}", "wakebuilder.calibrate:calibrate_model", "starts over"),
    ("calibrate --model {dir} --store {dir} --stream {file} --cache-streams", "wakebuilder.calibrate:calibrate_model",
     "resumes"),  # each stream's backbone pass, once done, is kept in the cache
    ("ensemble --model {dir} --model {dir} --out {tmp}/e", "wakebuilder.ensemble:combine_models", "starts over"),
    ("ensemble --model {dir} --model {dir} --out {tmp}/e --stream {file}", "wakebuilder.ensemble:combine_models",
     "resumes"),  # the backbone's pass over a stream is kept in the cache
    ("export --model {dir} --out {tmp}/x", "wakebuilder.export:export_model", "starts over"),
    ("fuse --model {file} --model {file} --out {tmp}/f", "wakebuilder.fuse:fuse_detectors", "starts over"),
    ("detect {file} {file}", "wakebuilder.detect:load_detector", "writes nothing"),
    ("eval {file} {file}", "wakebuilder.evaluate:evaluate_models", "writes nothing"),
    ("quickstart hey --out {tmp}/r", "wakebuilder.recipe:run_recipe", "resumes"),
    ("web build {file} --out {tmp}/w", "wakebuilder.web.build:build_web_page", "starts over"),
    ("web serve {dir}", "wakebuilder.web.serve:page_server", "writes nothing"),
]


LINES = {
    "resumes": "wb: interrupted; finished work is kept, run again to resume",
    "starts over": "wb: interrupted before its result was written; run it again to start over",
    "writes nothing": "wb: interrupted; nothing was written",
}


def _leaf_commands(group: click.Group = main, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    ctx = click.Context(group)
    leaves: list[tuple[str, ...]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        is_group = isinstance(command, click.Group)
        leaves += _leaf_commands(command, (*prefix, name)) if is_group else [(*prefix, name)]
    return leaves


def test_every_command_is_in_the_interrupt_audit() -> None:
    """A new command says what Ctrl-C leaves (and is listed in INTERRUPTS with it)."""
    audited = {tuple(line.split()[:2]) if line.split()[0] in ("store", "bank", "voices", "web")
               else (line.split()[0],) for line, _, _ in INTERRUPTS}
    assert set(_leaf_commands()) == audited


@pytest.mark.parametrize(("line", "target", "kind"), INTERRUPTS, ids=[line.split(" {")[0] for line, _, _ in INTERRUPTS])
def test_the_interrupt_line_says_what_the_command_keeps(line: str, target: str, kind: str, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command said 'finished work is kept, run again to resume' on Ctrl-C, also those that keep nothing
    (wb fit, wb export, wb augment...) or write nothing (wb detect, wb eval). Each now says what it keeps."""
    import importlib

    (tmp_path / "f.jsonl").write_text("")
    (tmp_path / "d").mkdir()
    module, name = target.split(":")

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(importlib.import_module(module), name, interrupted)
    args = line.format(tmp=tmp_path, file=tmp_path / "f.jsonl", dir=tmp_path / "d").split()
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 130, result.output
    assert result.stderr.strip().splitlines()[-1] == LINES[kind]
