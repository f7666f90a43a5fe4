"""What an unfinished ``wb augment`` run has made, so that running it again resumes it, and what a finished one is.

A run notes each finished copy (its manifest row, as job ``parent * copies + copy``) in ``<out>/augment.incomplete``
once the copy's file is in place, in the journal ``wb synth`` keeps (``synth_journal``). The folder also holds the
run's identity (``run_identity``: the augment and background settings, the input manifest's path and content, the
noise, impulse-response and background clips; the pipeline adds augment's version, ``stage_version``). A run with
the same identity takes the finished copies from there; one with another is refused unless ``overwrite``, so copies
of two settings never mix. Once the manifest is written the identity goes beside it (``RUN_NAME``, last), and the
journal goes: ``finished_augment`` tells a caller that would make the copies again (the recipe) that they are done.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.atomic import atomic_write_json, remove_path
from wakebuilder.data.augment.background import BackgroundConfig
from wakebuilder.data.augment.params import AugmentConfig
from wakebuilder.data.synth_finished import finished_run
from wakebuilder.data.synth_journal import (
    CONFIG_NAME, end_journal, finished_jobs, open_part, part_path, record_job, recorded_run,
)
from wakebuilder.fingerprint import audio_id, file_sha256
from wakebuilder.manifest import ClipRecord

log = logging.getLogger(__name__)
JOURNAL_NAME = "augment.incomplete"
RUN_NAME = "augment_run.json"  # a finished run's identity, beside its manifest


def bank_digest(names: list[str] | tuple[str, ...], samples: list[np.ndarray] | tuple[np.ndarray, ...]) -> str:
    """One hash of a bank of loaded clips: their names and audio, in order."""
    digest = hashlib.sha256()
    for name, clip in zip(names, samples, strict=True):
        digest.update(f"{name}\0{audio_id(clip)}\n".encode())
    return digest.hexdigest()


def run_identity(manifest: str | os.PathLike[str], *, config: AugmentConfig, background: BackgroundConfig | None,
                 banks: dict[str, str], keep_originals: bool) -> dict[str, Any]:
    """What a run's copies and rows depend on: ``config``, ``background``, the input manifest (its resolved path,
    which the rows record, and its bytes; its clips' ids are their audio's hashes), ``banks`` (``bank_digest`` of
    the noise, impulse-response and background clips, by name) and ``keep_originals``."""
    source = Path(manifest).resolve()
    return {**config.to_dict(), "background": None if background is None else background.to_dict(),
            "manifest": str(source), "manifest_sha256": file_sha256(str(source)), "banks": dict(sorted(banks.items())),
            "keep_originals": keep_originals}


def start_journal(identity: dict[str, Any], *, out_dir: Path, overwrite: bool) -> dict[int, ClipRecord]:
    """The copies (job: row) that an unfinished run of ``identity`` into ``out_dir`` finished, whose files are still
    there; the journal of a run with another identity is removed when that run made nothing, or with ``overwrite``.
    A finished run's identity beside its manifest goes (it is written again, last, once the new manifest is).

    Raises:
        ArtifactExistsError: an unfinished run of another identity made copies there and ``overwrite`` is False.
    """
    remove_path(out_dir / RUN_NAME)  # a finished run's record goes first: its manifest is about to be replaced
    folder = out_dir / JOURNAL_NAME
    finished = finished_jobs(folder)
    if not recorded_run(identity, voices={}, folder=folder, out_dir=out_dir, overwrite=overwrite,
                        started=bool(finished), command="wb augment"):
        return {}
    done = {job: ClipRecord.from_dict(row) for job, row in finished.items()
            if row is not None and (out_dir / row["path"]).is_file()}
    log.info("augment: resuming the unfinished run in %s: %d of its copies are done", out_dir, len(done))
    return done


class Journal:
    """The journal of a run as it goes: one file, written by the run's threads in turn."""

    def __init__(self, identity: dict[str, Any], *, out_dir: Path) -> None:
        self.folder = out_dir / JOURNAL_NAME
        self.folder.mkdir(parents=True, exist_ok=True)
        if not (self.folder / CONFIG_NAME).is_file():
            atomic_write_json(self.folder / CONFIG_NAME, identity)
        self._handle = open_part(part_path(self.folder, 0))
        self._lock = threading.Lock()

    def record(self, job: int, record: ClipRecord) -> None:
        """Note copy ``job`` as done, once its clip file is in place."""
        with self._lock:
            record_job(self._handle, job, record.to_dict())

    def close(self) -> None:
        """Close the journal's file (it stays, for a run again, until ``finish``)."""
        self._handle.close()

    def finish(self, identity: dict[str, Any], *, out_dir: Path) -> None:
        """After the manifest: record ``identity`` beside it (last) and remove the journal."""
        atomic_write_json(out_dir / RUN_NAME, identity)
        end_journal(out_dir, folder=self.folder)


def finished_augment(identity: dict[str, Any], *, out_dir: str | os.PathLike[str]) -> Path | None:
    """The manifest of a run of ``identity`` that finished in ``out_dir`` with every clip it lists in place, which a
    caller that would make it again may keep; None when there is none (``synth_finished.finished_run``'s rule, with
    ``RUN_NAME`` for the recorded identity and no voices)."""
    return finished_run(identity, voices=None, out_dir=out_dir, config_name=RUN_NAME)


__all__ = ["JOURNAL_NAME", "RUN_NAME", "Journal", "bank_digest", "finished_augment", "run_identity", "start_journal"]
