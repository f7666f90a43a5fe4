"""What an unfinished ``wb synth`` run has made, so that running it again resumes it.

Each synthesis worker appends a line per finished job (its manifest row, or null for a silent clip) to its own
``part-<k>.jsonl`` in ``<out>/synth.incomplete``, after the clip's file is in place; the folder also holds the
run's config and the identity of its voices (``voices.json``: which voices a run speaks with is not in its config,
it follows the engines installed and the voice files found). A run with the same config and voices takes the
finished jobs from there, one with another config or other voices is refused unless ``overwrite``. The folder
goes once the manifest is written (what a finished run leaves beside it is ``synth_finished``'s). ``wb negatives``
keeps one such journal per synthesis pass, in folders of its own (the ``folder`` arguments). A run's
``RUN_OPTIONS`` (``workers``) are recorded, not compared: its clips do not depend on them, so a killed run resumes
with another number of workers. A caller's config may hold the versions of the stages that make its clips
(``stage_version``): a run of an older version is then not resumed.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from wakebuilder.atomic import atomic_write_json, remove_path
from wakebuilder.config import StageConfig
from wakebuilder.errors import ArtifactExistsError
from wakebuilder.stage_version import version_change

log = logging.getLogger(__name__)
JOURNAL_NAME = "synth.incomplete"
CONFIG_NAME = "config.json"
VOICES_NAME = "voices.json"  # the identity of a run's voices, in its journal and beside its manifest
RUN_OPTIONS = ("workers",)  # how a run goes, not what it makes: left out where runs are compared (``compared``)


def journal_dir(out_dir: str | os.PathLike[str]) -> Path:
    """The folder in ``out_dir`` that records an unfinished run."""
    return Path(out_dir) / JOURNAL_NAME


def compared(recorded: dict[str, Any]) -> dict[str, Any]:
    """``recorded`` (a run's config or identity) without its ``RUN_OPTIONS``: what its clips depend on."""
    return {key: value for key, value in recorded.items() if key not in RUN_OPTIONS}


def _differences(recorded: dict[str, Any], wanted: dict[str, Any]) -> str:
    keys = sorted(k for k in recorded.keys() | wanted.keys() if recorded.get(k) != wanted.get(k))
    return "; ".join(f"{k}: {recorded.get(k)!r} there, {wanted.get(k)!r} now" for k in keys)


def voices_difference(recorded: dict[str, Any], wanted: dict[str, Any]) -> str:
    """'' for the same voices, else how they differ (per engine the number of voice settings, there and now)."""
    if recorded == wanted:
        return ""

    def counts(identity: dict[str, Any]) -> str:
        settings = identity.get("settings")
        return ", ".join(f"{e} {n}" for e, n in sorted(settings.items())) if isinstance(settings, dict) else ""

    there, now = counts(recorded) or "not recorded", counts(wanted)
    change = f"other ones, {now} now" if there == now else f"{there} there, {now} now"
    return (f"voices: {change} (voice settings per engine; they follow the engines installed and the voice files "
            "found: --kokoro-voices, WB_KOKORO_VOICES, WB_PIPER_VOICES, wb voices fetch)")


def read_object(path: Path, *, strict: bool = False) -> dict[str, Any]:
    """The JSON object in ``path``; {} when it is not an object, and when it is missing or unreadable unless
    ``strict`` (then the OSError or ValueError is raised, for a caller that says why)."""
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        if strict:
            raise
        return {}
    return recorded if isinstance(recorded, dict) else {}


def recorded_run(config: StageConfig | dict[str, Any], *, voices: dict[str, Any], folder: Path,
                 out_dir: str | os.PathLike[str], overwrite: bool, started: bool, command: str = "wb synth") -> bool:
    """Whether the journal ``folder`` records an unfinished run of ``config`` with ``voices`` (the identity of the
    voices found here, ``synth_voices.voice_identity``). One of another config or other voices is removed when it had
    made nothing yet (``started`` False) or with ``overwrite``. ``config`` may be the dict a run recorded
    (``wb augment``'s run identity).

    Raises:
        ArtifactExistsError: the journal is of another config or other voices, that run made clips, and
            ``overwrite`` is False.
    """
    if not folder.is_dir():
        return False
    recorded = compared(read_object(folder / CONFIG_NAME))
    wanted = compared(config if isinstance(config, dict) else config.to_dict())
    voices_change = voices_difference(read_object(folder / VOICES_NAME), voices)
    if recorded == wanted and not voices_change:
        return True
    if started and not overwrite:
        if older := version_change(recorded, wanted):  # no settings finish it: its clips are of other code
            raise ArtifactExistsError(f"{out_dir}: holds the clips of an unfinished {command} run {older}; pass "
                                      "--overwrite to start afresh")
        config_change = _differences(recorded, wanted) if recorded else "its config is unreadable"
        differences = "; ".join(change for change in (config_change, voices_change) if change)
        raise ArtifactExistsError(
            f"{out_dir}: holds the clips of an unfinished {command} run with other settings ({differences}); "
            "run it again with its settings to finish it, or pass --overwrite to start afresh"
        )
    if started and (older := version_change(recorded, wanted)):
        log.info("%s: an unfinished run %s, started again", out_dir, older)
    remove_path(folder)
    return False


def start_journal(config: StageConfig, *, voices: dict[str, Any], out_dir: str | os.PathLike[str], overwrite: bool,
                  folder: Path | None = None) -> dict[int, Any]:
    """The finished jobs (index: row, or None for a silent clip) of an unfinished run of ``config`` with ``voices``
    (``synth_voices.voice_identity``) into ``out_dir`` whose clip files are still there; an unfinished run of another
    config or other voices is forgotten with ``overwrite``. ``folder`` is the journal (default
    ``journal_dir(out_dir)``).

    Raises:
        ArtifactExistsError: an unfinished run with another config or other voices made clips there and
            ``overwrite`` is False.
    """
    folder = journal_dir(out_dir) if folder is None else folder
    finished = finished_jobs(folder)
    if not recorded_run(config, voices=voices, folder=folder, out_dir=out_dir, overwrite=overwrite,
                        started=bool(finished)):
        return {}
    done = {i: row for i, row in finished.items() if row is None or (Path(out_dir) / row["path"]).is_file()}
    log.info("synth: resuming the unfinished run in %s: %d of its jobs are done", out_dir, len(done))
    return done


def open_journal(config: StageConfig | dict[str, Any], *, voices: dict[str, Any], folder: Path) -> None:
    """Make the journal ``folder`` of a run of ``config`` (or the dict a run records, as ``recorded_run`` takes)
    with ``voices`` (as synthesis starts, not before: a run that fails on its options leaves nothing that a
    corrected command would have to --overwrite)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / CONFIG_NAME).is_file():
        write_voices(folder, voices)
        atomic_write_json(folder / CONFIG_NAME, config if isinstance(config, dict) else config.to_dict())


def write_voices(folder: str | os.PathLike[str], voices: dict[str, Any]) -> Path:
    """Record the identity of a run's voices (``synth_voices.voice_identity``) in ``folder``: its journal, or beside its
    manifest for ``synth_finished.finished_run``."""
    return atomic_write_json(Path(folder) / VOICES_NAME, voices)


def finished_jobs(folder: Path) -> dict[int, Any]:
    """Every job the journal in ``folder`` records as done; a line cut short by a kill is left out."""
    done: dict[int, Any] = {}
    for part in sorted(folder.glob("part-*.jsonl")):
        for line in part.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:  # the line a kill cut short: its job is made again
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("index"), int):
                continue
            row = entry.get("row")
            if row is None or isinstance(row, dict) and isinstance(row.get("path"), str):
                done[entry["index"]] = row
    return done


def part_path(folder: Path, part: int) -> Path:
    """The file of worker ``part`` in the journal ``folder``."""
    return folder / f"part-{part}.jsonl"


def open_part(path: str | os.PathLike[str]) -> IO[str]:
    """A worker's journal file, opened for appending (after a line a kill cut short, on a line of its own)."""
    path = Path(path)
    cut_short = False
    if path.is_file() and path.stat().st_size > 0:
        with open(path, "rb") as existing:
            existing.seek(-1, os.SEEK_END)
            cut_short = existing.read(1) != b"\n"
    handle = open(path, "a", encoding="utf-8")  # noqa: SIM115 - the worker closes it
    if cut_short:
        handle.write("\n")
    return handle


def record_job(handle: IO[str], index: int, row: dict[str, Any] | None) -> None:
    """Note job ``index`` as done (``row`` None: its clip came out silent) once its clip file is in place."""
    handle.write(json.dumps({"index": index, "row": row}, sort_keys=True) + "\n")
    handle.flush()


def end_journal(out_dir: str | os.PathLike[str], *, folder: Path | None = None) -> None:
    """Remove the journal (``folder``, default ``journal_dir(out_dir)``) once the run's manifest is written."""
    remove_path(journal_dir(out_dir) if folder is None else folder)

