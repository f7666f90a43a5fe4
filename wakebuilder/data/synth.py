"""``wb synth``: TTS clips of one or more texts across many voices, reproducible from a seed.

The jobs (index, text, voice) are planned from the config's seed (``synth_plan``): voices shared out evenly across
engines, then over each engine's speakers in turn; texts get punctuation, casing and pause variants.
Engines with their own noise (Piper) draw it from the job's (seed, index) through
``reseed``; espeak-ng, which keeps state between utterances, is loaded afresh for
each clip. So a clip does not depend on the clips made before it, nor on how the
jobs are shared out over the workers (each a freshly spawned process, ``synth_pool``): the same
seed gives identical files whatever ``workers``, and synthesis uses every core.
Workers note each finished job in a journal (``synth_journal``), so a killed run
resumes without making its finished clips again.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections import Counter
from pathlib import Path
from collections.abc import Sequence
from typing import Any

import numpy as np

from wakebuilder.atomic import refuse_existing, writer_lock
from wakebuilder.audio import quantize_pcm16, write_wav
from wakebuilder.data.synth_finished import finished_run, forget_finished, prune_clips, record_finished
from wakebuilder.data.synth_journal import (
    end_journal, journal_dir, open_journal, open_part, part_path, record_job, start_journal,
)
from wakebuilder.data.synth_plan import SynthConfig, plan_jobs, speaker_order, text_variants
from wakebuilder.data.synth_pool import run_in_processes
from wakebuilder.data.synth_voices import find_voices, voice_identity
from wakebuilder.data.tts import DEFAULT_ENGINES, Voice, get_engine, json_ready
from wakebuilder.errors import ConfigError, EngineUnavailableError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, write_manifest
from wakebuilder.stage_version import versioned

log = logging.getLogger(__name__)
MIN_AUDIBLE_PEAK = 0.01
SYNTH_CONFIG_NAME = "synth_config.json"  # a finished run's config, beside its manifest
# Synthesis's version, in the identity of a run kept or resumed (``run_identity``): bump it when a release makes
# other clips for the same settings and voices (``stage_version``).
VERSION = 1
# planning and voices live beside this module; callers import them from here too
__all__ = [
    "MIN_AUDIBLE_PEAK", "SYNTH_CONFIG_NAME", "SynthConfig", "find_voices", "keep_or_run_synth", "plan_jobs",
    "run_identity", "run_synth", "speaker_order", "synthesize_clips", "text_variants", "voice_identity",
]


def run_identity(config: SynthConfig) -> dict[str, Any]:
    """What a run's clips depend on besides its voices, as its journal and a finished run record it: ``config``
    and this version of synthesis (``VERSION``), so a run of an older version is neither resumed nor kept."""
    return versioned(config.to_dict(), {"synth": VERSION})


Job = tuple[int, str, dict[str, Any]]
Partition = tuple[list[Job], str, dict[str, Any], list[str], str | None, str | None, dict[int, Any]]


def _make_clip(index: int, text: str, voice: Voice, *, out_dir: str, meta: dict[str, Any]) -> dict | None:
    """Job ``index``: synthesize, write the clip and return its row; None when it came out silent."""
    engine = get_engine(voice.engine)
    if hasattr(engine, "reseed"):  # the clip's noise from its job alone, not from the jobs before it
        engine.reseed((meta["seed"], index))
    samples = engine.synthesize(text, voice)
    if samples.size == 0 or float(np.max(np.abs(samples))) < MIN_AUDIBLE_PEAK:
        return None
    samples = samples * (0.5 / float(np.max(np.abs(samples))))  # peak-normalise to -6 dBFS
    clip_id = audio_id(quantize_pcm16(samples))
    write_wav(Path(out_dir) / "clips" / f"{clip_id}.wav", samples)
    return {
        "index": index, "id": clip_id, "path": f"clips/{clip_id}.wav", "text": text, "group": voice.key,
        "duration_s": round(samples.size / 16_000, 4),
        "params": {"voice": voice.to_dict(), "text": text, **meta},
        "source": voice.engine,
    }


def _synthesize_partition(args: Partition) -> list[dict]:
    """A partition's jobs in order; a job done by an earlier, killed run (in ``done``) is taken from there."""
    jobs, out_dir, meta, piper_voices, kokoro_voices, journal, done = args
    rows = []
    for name in piper_voices:
        get_engine("piper").add_voice(name)  # type: ignore[attr-defined]
    if kokoro_voices and any(voice["engine"] == "kokoro" for _, _, voice in jobs):
        get_engine("kokoro").use_voices_file(kokoro_voices)  # type: ignore[attr-defined]
    with open_part(journal) if journal else contextlib.nullcontext() as handle:
        for index, text, voice_dict in jobs:
            voice = Voice(voice_dict["engine"], voice_dict["name"], voice_dict["settings"])
            if index in done:
                row = done[index]
            else:
                row = _make_clip(index, text, voice, out_dir=out_dir, meta=meta)
                if handle is not None:
                    record_job(handle, index, row)
            if row is not None:
                rows.append(row)
    return rows


def _run_partitions(
    config: SynthConfig, jobs: list[Job], out_dir: str | os.PathLike[str], done: dict[int, Any] | None,
    journal: Path | None, voices: dict[str, Any],
) -> list[dict]:
    """Each fixed partition of the jobs, in order, in a freshly spawned process; rows in job order. With ``done``
    (the finished jobs of a killed run; None: keep no journal) each worker notes the jobs it finishes in the
    ``journal`` folder (default ``out_dir/synth.incomplete``), which records the ``voices`` (``voice_identity``)."""
    workers = max(1, min(config.workers, len(jobs)))
    meta, piper = {"seed": config.seed}, list(config.piper_voices)
    journal = journal_dir(out_dir) if journal is None else journal
    if done is not None:
        open_journal(run_identity(config), voices=voices, folder=journal)
    shares = [jobs[k::workers] for k in range(workers)]
    parts: list[Partition] = [
        (share, str(out_dir), meta, piper, config.kokoro_voices, None if done is None else str(part_path(journal, k)),
         {i: done[i] for i, _, _ in share if i in done} if done else {})
        for k, share in enumerate(shares)
    ]
    Path(out_dir, "clips").mkdir(parents=True, exist_ok=True)
    results = run_in_processes(_synthesize_partition, parts, clips=Path(out_dir) / "clips")
    return sorted((row for part in results for row in part), key=lambda r: r["index"])


def synthesize_clips(
    config: SynthConfig | Sequence[str],
    *,
    out_dir: str | os.PathLike[str],
    n: int | None = None,
    engines: Sequence[str] | Sequence[Voice] | None = None,
    seed: int = 0,
    label: int = 1,
    kind: str = "tts",
    finished: dict[int, Any] | None = None,
    journal: str | os.PathLike[str] | None = None,
    voices: dict[str, list[Voice]] | None = None,
) -> list[ClipRecord]:
    """Synthesize clips under ``out_dir/clips``; returns their records in job order.

    Takes a SynthConfig, or texts plus ``n``, ``engines`` (engine names, or the
    Voice settings to use), ``seed``, ``label`` and ``kind``. With ``finished`` (the jobs a killed run finished,
    from ``synth_journal.start_journal``) the run keeps a journal (the folder ``journal``, by default
    ``out_dir/synth.incomplete``) and resumes from those jobs. ``voices``: those ``find_voices`` found for the
    config (the ones its journal was checked against), found here when None.
    """
    chosen: list[Voice] | None = None
    if not isinstance(config, SynthConfig):
        if isinstance(config, str):
            config = (config,)
        chosen = [v for v in engines or () if isinstance(v, Voice)] or None
        names = tuple(engines or DEFAULT_ENGINES)
        if chosen:
            names = tuple(dict.fromkeys(v.engine for v in chosen))
        config = SynthConfig(texts=tuple(config), n=n or 0, engines=names, seed=seed, label=label, kind=kind)
    if config.n < 1:
        raise ConfigError(f"-n {config.n}: need at least one clip")
    if not config.texts or not all(t.strip() for t in config.texts):
        raise ConfigError("synth: need a non-empty phrase")
    voices = find_voices(config, chosen) if voices is None else voices
    jobs = [(i, text, voice.to_dict()) for i, text, voice in plan_jobs(config, voices)]
    rows = _run_partitions(config, jobs, out_dir, finished, None if journal is None else Path(journal),
                           voice_identity(voices))
    skipped = len(jobs) - len(rows)
    if skipped:
        log.warning("%d synthesized clip(s) were silent and skipped", skipped)
    records, seen, duplicates = [], set(), Counter()
    for row in rows:
        if row["id"] in seen:
            duplicates[row["source"]] += 1
            continue
        seen.add(row["id"])
        records.append(ClipRecord(
            id=row["id"], path=row["path"], label=config.label, kind=config.kind, group=row["group"],
            text=row["text"], duration_s=row["duration_s"], params=json_ready(row["params"]),
            source=row["source"],
        ))
    if duplicates:
        log.warning("synth: %d of %d clips repeated an earlier clip exactly and were dropped (%s); a deterministic "
                    "engine has one clip per voice setting and text", sum(duplicates.values()), len(rows),
                    ", ".join(f"{engine} {count}" for engine, count in sorted(duplicates.items())))
    if not records:
        raise EngineUnavailableError(f"synth: every clip of {config.texts[0]!r} came out silent")
    return records


def run_synth(config: SynthConfig, *, out_dir: str | os.PathLike[str], overwrite: bool = False,
              voices: dict[str, list[Voice]] | None = None) -> Path:
    """Synthesize and write ``out_dir/manifest.jsonl``; returns the manifest path. ``voices``: those
    ``find_voices`` found for ``config`` (found here when None).

    A run that was killed resumes when run again with the same config and voices: its finished clips are kept.
    With ``overwrite`` the clip files in ``out_dir/clips`` that the new manifest does not list are deleted. The
    config and the identity of the voices (``voice_identity``) are recorded beside the manifest, after it (a record
    of a run replaced goes as this one starts), so a kill leaves no manifest marked as of other voices or settings.

    Raises:
        ArtifactExistsError: the manifest exists, or a killed run of another config or other voices left clips,
            and ``overwrite`` is False.
        LockedError: another run is writing ``out_dir``.
    """
    manifest = Path(out_dir) / MANIFEST_NAME
    with writer_lock(manifest):  # a second run into the folder would replace this one's manifest at its end
        refuse_existing(manifest, overwrite=overwrite)
        voices = find_voices(config) if voices is None else voices
        identity = voice_identity(voices)
        finished = start_journal(run_identity(config), voices=identity, out_dir=out_dir, overwrite=overwrite)
        forget_finished(out_dir, config_name=SYNTH_CONFIG_NAME)  # its manifest is about to be replaced
        records = synthesize_clips(config, out_dir=out_dir, finished=finished, voices=voices)
        write_manifest(manifest, records)
        if overwrite:  # the replaced run's clips, unlisted now, go too
            prune_clips(out_dir, {record.path for record in records})
        record_finished(out_dir, run_identity(config), voices=identity, config_name=SYNTH_CONFIG_NAME)
        end_journal(out_dir)
        return manifest


def keep_or_run_synth(config: SynthConfig, *, out_dir: str | os.PathLike[str],
                      voices: dict[str, list[Voice]] | None = None) -> Path:
    """The manifest of a run of ``config`` with the voices found here that finished in ``out_dir``, kept
    (``synth_finished.finished_run``), else ``run_synth`` with ``overwrite``: a killed run resumes, one of other
    settings or voices is replaced. For callers that own ``out_dir`` and run again after a kill (recipe, bank).
    ``voices``: those ``find_voices`` found for ``config``, when the caller has them."""
    voices = find_voices(config) if voices is None else voices  # once: their warnings are said once
    return (finished_run(run_identity(config), voices=voice_identity(voices), out_dir=out_dir,
                         config_name=SYNTH_CONFIG_NAME)
            or run_synth(config, out_dir=out_dir, overwrite=True, voices=voices))
