"""The recipe's steps that a run again keeps when they finished with the same settings and inputs.

A step's marker (``recipe_step.json`` in its output folder) is written last, atomically, once its output is: it
records what the output was made of (the step's settings and its input files' contents) and the output's bytes.
A run again with the same settings and inputs keeps the output while it is as written and every clip it lists is in
place; otherwise the marker goes before the step is made again, so a kill while remaking keeps nothing stale.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_json, read_json, remove_path
from wakebuilder.errors import WakebuilderError
from wakebuilder.fingerprint import file_sha256
from wakebuilder.manifest import read_manifest, resolve_clip_path

log = logging.getLogger(__name__)
STEP_NAME = "recipe_step.json"


def input_identity(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, str]]:
    """The identity of a step's input files: each one's path and the sha256 of its bytes (a manifest's clips are
    named by their audio's hash, so its bytes stand for them)."""
    return [{"path": str(path), "sha256": file_sha256(str(path))} for path in paths]


def kept_output(marker: Path, identity: dict[str, Any]) -> Path | None:
    """The output ``marker`` records for ``identity``, when it is as written and (a manifest) every clip it lists
    is in place; None otherwise."""
    if not marker.is_file():
        return None
    try:
        recorded = read_json(marker)
        if not isinstance(recorded, dict) or recorded.get("identity") != identity:
            return None
        output = marker.parent / recorded["output"]
        if not output.is_file() or file_sha256(str(output)) != recorded["sha256"]:
            return None
        if output.suffix == ".jsonl" and not all(resolve_clip_path(output, r).is_file() for r in read_manifest(output)):
            return None
    except (WakebuilderError, OSError, KeyError, TypeError) as exc:
        log.info("%s: not kept, made again (%s)", marker.parent, exc)
        return None
    return output


def keep_or_make(folder: Path, identity: dict[str, Any], make: Callable[[], Path]) -> Path:
    """The output a finished run of ``identity`` left in ``folder`` (``kept_output``), else ``make()``'s, with
    ``folder``'s marker written after it."""
    marker = folder / STEP_NAME
    kept = kept_output(marker, identity)
    if kept is not None:
        log.info("%s: finished with these settings and inputs, kept", kept)
        return kept
    remove_path(marker)
    made = make()
    atomic_write_json(marker, {"identity": identity, "output": os.path.relpath(made, folder),
                               "sha256": file_sha256(str(made))})
    return made
