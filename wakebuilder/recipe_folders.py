"""Which folders are recipe runs, and the checks that keep a run's files and the user's apart.

A recipe run folder is one ``run_recipe`` saved its config into (``recipe_config.json``, the first
file it writes, before any data step): a run killed after that is recognised and resumed.
"""

from __future__ import annotations

import os
from pathlib import Path

from wakebuilder.errors import ConfigError

RUN_MARKER = "recipe_config.json"
FUSED_EXPORT = "export-fused"  # a run with ``fuse_with``: its two backbones' exports fused into one detector
REPORT = "report.json"  # the held-out report of the run's detector (a fused run's: of the fused one), as wb eval --json
WARM_LOG = "stream-passes.log"  # the log of the process that makes the held-out streams' passes ahead (stream_warm)


def backbone_folder(spec: str) -> str:
    """The folder of a fused run's second backbone ``spec`` under ``--out``: its name (``word-embedding``), or for an
    AST checkpoint (a hub id or directory) ``ast-`` and the bank's folder-safe name of it (``bank.location
    .backbone_slug``: a directory's name and a hash of its path), apart from the run's own folders."""
    from wakebuilder.backbones import ALIASES
    from wakebuilder.bank.location import backbone_slug

    return ALIASES.get(spec) or "ast-" + backbone_slug(spec)


def is_recipe_run(folder: Path) -> bool:
    """Whether ``folder`` is a recipe run's output folder (its config is there)."""
    return (folder / RUN_MARKER).is_file()


def recorded_backbone(out: Path) -> str | None:
    """The backbone an earlier run in ``out`` was made with (its ``recipe_config.json``), None where ``out`` is no run
    or its config names none: ``wb quickstart --out`` without ``--backbone`` resumes a run with it, not with today's
    default (speech-embedding's runs made before word-embedding became the default were otherwise embedded, fitted
    and exported again with word-embedding, replacing their model)."""
    from wakebuilder.atomic import read_json
    from wakebuilder.errors import WakebuilderError

    if not is_recipe_run(out):
        return None
    try:
        backbone = read_json(out / RUN_MARKER).get("backbone")
    except (WakebuilderError, AttributeError):  # a damaged config: the run's own check names it
        return None
    return backbone if isinstance(backbone, str) and backbone else None


def check_out_folder(out: Path) -> None:
    """Refuse an ``out`` that exists, is not empty and is not a recipe run.

    The recipe replaces ``model/``, ``export/`` and its data folders in ``out``: in a folder of the user's
    own they would be lost. A new or empty folder starts a run; an earlier run's folder resumes it.

    Raises:
        ConfigError: ``out`` is a folder holding files of something other than a recipe run.
    """
    if not out.is_dir() or is_recipe_run(out) or not any(out.iterdir()):
        return
    raise ConfigError(f"--out {out}: holds files but is not a recipe run (no {RUN_MARKER}), and the recipe would "
                      "replace its model/, export/ and data folders; give an empty or new folder, or an earlier "
                      "run's folder to resume it")


def check_real_folder(real_dir: Path, out: Path) -> None:
    """Refuse a ``--real`` folder that holds this run's folder ``out``, wakebuilder's cache or another recipe run.

    A run's folder holds synthesized and recorded positives of its phrase (often this run's phrase): chunked as
    real audio they would train the head that the phrase is a negative. The cache holds the bank's synthesized
    speech and the held-out streams the threshold and the report are measured on.

    Raises:
        ConfigError: ``real_dir`` holds ``out`` or the cache, or is or holds a recipe run folder (the first named).
    """
    from wakebuilder.bank.location import cache_dir

    cache = cache_dir()
    held = [(out, f"the run's folder {out}, whose clips (the positives among them)", "an --out outside it"),
            (cache, f"wakebuilder's cache {cache}, whose clips (the held-out streams among them)",
             "a WB_CACHE_DIR outside it")]
    for folder, what, fix in held:
        if Path(os.path.realpath(folder)).is_relative_to(os.path.realpath(real_dir)):
            raise ConfigError(f"--real {real_dir}: holds {what} would be chunked into negatives; give a folder of "
                              f"real audio only, or {fix}")
    runs = sorted(marker.parent for marker in real_dir.rglob(RUN_MARKER) if marker.is_file())
    if runs:
        more = f" (and {len(runs) - 1} more)" if len(runs) > 1 else ""
        raise ConfigError(f"--real {real_dir}: holds the recipe run {runs[0]}{more}, whose synthesized clips (the "
                          "positives among them) would be chunked into negatives; give a folder of real audio only, "
                          "or move the run out of it")
