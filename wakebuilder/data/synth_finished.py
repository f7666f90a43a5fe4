"""What a finished ``wb synth`` run leaves beside its manifest, so that a caller that would make it again keeps it.

Once a run's manifest is written, its config and the identity of its voices are recorded beside it
(``record_finished``; ``forget_finished`` removes the record of the run a new one replaces, as it starts).
``finished_run`` finds a run that finished, for callers that would make it again (``wb bank negatives``, the
recipe), when its config and voices (``voices.json``, ``synth_journal.write_voices``) are this run's and every clip
it lists is in place; a run's ``RUN_OPTIONS`` (``workers``) are not compared, and one of an older version of the
stages that make its clips (``stage_version``) is not kept. A run with ``overwrite`` clears the clips of the run it
replaced (``prune_clips``). The journal of an unfinished run is ``synth_journal``'s.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_json, remove_path
from wakebuilder.config import StageConfig
from wakebuilder.data.synth_journal import VOICES_NAME, compared, read_object, voices_difference, write_voices
from wakebuilder.errors import ManifestError
from wakebuilder.manifest import MANIFEST_NAME, read_manifest
from wakebuilder.stage_version import version_change

log = logging.getLogger(__name__)


def forget_finished(out_dir: str | os.PathLike[str], *, config_name: str) -> None:
    """As a run that may replace a finished one in ``out_dir`` starts: remove that run's record beside its manifest
    (``config_name`` and ``VOICES_NAME``), so a kill before the new manifest is written leaves no record that
    ``finished_run`` would take for the old manifest's."""
    for name in (config_name, VOICES_NAME):
        remove_path(Path(out_dir) / name)


def record_finished(out_dir: str | os.PathLike[str], config: StageConfig | dict[str, Any], *,
                    voices: dict[str, Any], config_name: str) -> None:
    """Once a run's manifest is written: record beside it its voices and, last (``finished_run`` looks for it), its
    config (or the dict a run records, as ``synth_journal.recorded_run`` takes) in ``config_name``."""
    write_voices(out_dir, voices)
    atomic_write_json(Path(out_dir) / config_name, config if isinstance(config, dict) else config.to_dict())


def finished_run(config: StageConfig | dict[str, Any], *, voices: dict[str, Any] | None,
                 out_dir: str | os.PathLike[str], config_name: str) -> Path | None:
    """The manifest of a finished run of ``config`` in ``out_dir`` (its config, or the dict a run records, as
    ``synth_journal.recorded_run`` takes, recorded in ``config_name`` the same, and its voices, ``VOICES_NAME``, the
    same as ``voices``, the identity of the voices found here; None for a run that speaks none; every clip it lists
    in place), which a caller that would make it again may keep instead; None when none is (and the log says so
    when it was made by another version: ``stage_version``)."""
    out = Path(out_dir)
    manifest = out / MANIFEST_NAME
    if not manifest.is_file() or not (out / config_name).is_file():
        return None
    try:
        recorded = read_object(out / config_name, strict=True)
        wanted = config if isinstance(config, dict) else config.to_dict()
        records = read_manifest(manifest) if compared(recorded) == compared(wanted) else []
    except (OSError, ValueError, ManifestError) as exc:
        log.info("%s: not kept, made again (%s)", manifest, exc)
        return None
    if not records and (older := version_change(recorded, wanted)):
        log.info("%s: %s, made again", manifest, older)
        return None
    voices_change = "" if voices is None else voices_difference(read_object(out / VOICES_NAME), voices)
    if records and voices_change:
        log.info("%s: made again, with the voices found now (%s)", manifest, voices_change)
        return None
    if not records or not all((out / record.path).is_file() for record in records):
        return None
    log.info("%s: finished with these settings, kept", manifest)
    return manifest


def prune_clips(out_dir: str | os.PathLike[str], keep: set[str], *, what: str = "synth") -> int:
    """Delete the WAV files (and half-written temporaries) in ``out_dir/clips`` whose paths relative to ``out_dir``
    are not in ``keep``, so a replaced run leaves none of its clips behind; returns how many went. ``what``: the
    command its log lines name.

    Nothing else is touched: not sub-folders, not other files, not a ``clips`` that links to another folder.
    """
    clips = Path(out_dir) / "clips"
    if clips.is_symlink():
        log.warning("%s: %s links to another folder; clips of the replaced run there are left", what, clips)
        return 0
    if not clips.is_dir():
        return 0
    removed = 0
    for path in clips.iterdir():
        ours = path.name.endswith(".wav") or (path.name.startswith(".") and ".wav." in path.name
                                              and path.name.endswith(".tmp"))
        if ours and f"clips/{path.name}" not in keep and (path.is_symlink() or path.is_file()):
            path.unlink()
            removed += 1
    if removed:
        log.info("%s: removed %d clip file(s) of the replaced run from %s", what, removed, clips)
    return removed
