"""``wb augment``: K augmented copies of every clip of a manifest, reproducible from the rows.

A run notes each finished copy in a journal (``augment.journal``), so a killed run resumes when run again with the
same settings and inputs, and a caller that would make finished copies again keeps them (``keep_or_run_augment``).
"""

from __future__ import annotations

import dataclasses
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.atomic import refuse_existing, remove_path, writer_lock
from wakebuilder.audio import AUDIO_EXTENSIONS, load_audio, quantize_pcm16, write_wav
from wakebuilder.categories import record_category
from wakebuilder.data.augment.background import (
    BackgroundBank, BackgroundConfig, apply_background, background_rng, draw_background,
)
from wakebuilder.data.augment.journal import Journal, bank_digest, finished_augment, run_identity, start_journal
from wakebuilder.data.augment.transforms import AugmentConfig, apply_chain, clip_key, draw_params
from wakebuilder.data.synth_finished import prune_clips
from wakebuilder.devices import cpu_threads
from wakebuilder.errors import ConfigError, ManifestError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, read_manifest, resolve_clip_path, write_manifest
from wakebuilder.stage_version import versioned

# Augmentation's version, in a run's identity (``journal.run_identity``): bump it when a release makes other copies
# for the same settings and inputs (a transform, the limiter, the background mix: ``stage_version``).
VERSION = 1


def load_bank(folder: str | os.PathLike[str] | None, what: str) -> tuple[list[str], list[np.ndarray]]:
    """Every audio file under ``folder`` (sorted names and samples); empty without a folder."""
    if folder is None:
        return [], []
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--{what} {root}: not a folder of audio files")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not paths:
        raise ConfigError(f"--{what} {root}: no audio files in it")
    return [p.relative_to(root).as_posix() for p in paths], [load_audio(p) for p in paths]


def augment_clip(
    samples: np.ndarray, record: ClipRecord, copy: int, config: AugmentConfig, banks: dict[str, list[np.ndarray]],
    names: dict[str, list[str]], background: tuple[BackgroundConfig, BackgroundBank] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """One augmented copy and the parameters that rebuild it.

    With ``background``, music or noise is added after the chain at an SNR against the clip as the chain
    left it (its own span, after every effect and the gain, as the chain's noise is measured); its
    parameters (key ``background``) come from a Generator of their own.
    """
    params = draw_params(clip_key(config.seed, record.id, copy), config,
                         noise_files=len(banks["noise"]), rir_files=len(banks["rir"]))
    audio, power = apply_chain(samples, params, banks=banks)
    if background is not None:
        settings, bank = background
        drawn = draw_background(background_rng(config.seed, record.id, copy), settings, files=len(bank.names))
        if drawn is not None:
            audio = apply_background(audio, drawn, bank, signal_power=power)
            if drawn["type"] == "file":
                drawn["file"] = bank.names[drawn["file_index"]]
            params["background"] = drawn
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
        params["limiter_gain"] = 0.99 / peak
    if params.get("noise", {}).get("file_index") is not None:
        params["noise"]["file"] = names["noise"][params["noise"]["file_index"]]
    if params.get("reverb", {}).get("rir_index") is not None:
        params["reverb"]["file"] = names["rir"][params["reverb"]["rir_index"]]
    return audio, params


@dataclasses.dataclass(frozen=True)
class _Plan:
    """What a run reads before it augments: the parents, the loaded banks and the run's identity."""

    manifest: str | os.PathLike[str]
    config: AugmentConfig
    parents: list[ClipRecord]
    banks: dict[str, list[np.ndarray]]
    names: dict[str, list[str]]
    background: tuple[BackgroundConfig, BackgroundBank] | None
    keep_originals: bool
    identity: dict[str, Any]


def _plan(manifest: str | os.PathLike[str], *, config: AugmentConfig, noise_dir: str | None, rir_dir: str | None,
          background: BackgroundConfig | None, keep_originals: bool) -> _Plan:
    """Check the settings, read the manifest and load the banks."""
    if config.copies < 1:
        raise ConfigError(f"--copies {config.copies}: must be at least 1")
    parents = read_manifest(manifest)
    if not parents:
        raise ManifestError(f"{manifest}: no clips; nothing to augment (pass a manifest with clips, such as "
                            "wb synth, wb validate or wb negatives writes)")
    noise_names, noise_bank = load_bank(noise_dir, "noise")
    rir_names, rir_bank = load_bank(rir_dir, "rir")
    banks, names = {"noise": noise_bank, "rir": rir_bank}, {"noise": noise_names, "rir": rir_names}
    digests = {kind: bank_digest(names[kind], banks[kind]) for kind in banks}
    backgrounds = None
    if background is not None:
        background.check()
        backgrounds = (background, BackgroundBank.load(background.manifests))
        digests["background"] = bank_digest(backgrounds[1].names, backgrounds[1].samples)
    identity = versioned(run_identity(manifest, config=config, background=background, banks=digests,
                                      keep_originals=keep_originals), {"augment": VERSION})
    return _Plan(manifest, config, parents, banks, names, backgrounds, keep_originals, identity)


def _copy_record(samples: np.ndarray, parent: ClipRecord, copy: int, plan: _Plan, *, out: Path,
                 source: Path) -> ClipRecord:
    """Make copy ``copy`` of ``parent``, write its clip (unless a killed run wrote it) and return its row."""
    audio, params = augment_clip(samples, parent, copy, plan.config, plan.banks, plan.names, plan.background)
    clip_id = audio_id(quantize_pcm16(audio))
    target = out / "clips" / f"{clip_id}.wav"
    if not target.exists():  # the same copy of another parent, or a killed run's copy it had not noted yet
        write_wav(target, audio)
    return ClipRecord(
        id=clip_id, path=f"clips/{clip_id}.wav", label=parent.label, kind="augmented", group=parent.group,
        text=parent.text, duration_s=round(audio.size / SAMPLE_RATE, 4), parent_id=parent.id,
        # a copy's kind is "augmented": it carries its parent's category
        params={"copy": copy, "seed": plan.config.seed, "parent_kind": parent.kind, "chain": params,
                "category": record_category(parent)},
        source=str(source),
    )


def _augment_all(plan: _Plan, *, out: Path, done: dict[int, ClipRecord], journal: Journal, progress: bool,
                 workers: int) -> list[ClipRecord]:
    """Every parent's rows in the manifest's order: the copies in ``done`` (job: row) taken, the others made."""
    from tqdm import tqdm

    copies = plan.config.copies

    def rows(item: tuple[int, ClipRecord]) -> list[ClipRecord]:
        index, parent = item
        source = resolve_clip_path(plan.manifest, parent)
        records = [ClipRecord(**{**parent.to_dict(), "path": str(source)})] if plan.keep_originals else []
        samples = None
        for copy, job in enumerate(range(index * copies, (index + 1) * copies)):
            record = done.get(job)
            if record is None:
                samples = load_audio(source) if samples is None else samples
                record = _copy_record(samples, parent, copy, plan, out=out, source=source)
                journal.record(job, record)
            records.append(record)
        return records

    records: list[ClipRecord] = []
    with ThreadPoolExecutor(workers or cpu_threads(), thread_name_prefix="wb-augment") as pool:
        made = pool.map(rows, enumerate(plan.parents))  # in the manifest's order
        for parent_rows in tqdm(made, total=len(plan.parents), desc="augment", unit="clip", disable=not progress):
            records += parent_rows
    return records


def _write_run(plan: _Plan, *, out: Path, overwrite: bool, progress: bool, workers: int) -> Path:
    """Augment (resuming a killed run of the same identity) and write ``out/manifest.jsonl``."""
    manifest = out / MANIFEST_NAME
    with writer_lock(manifest):  # a second run into the folder would write the same journal
        refuse_existing(manifest, overwrite=overwrite)
        done = start_journal(plan.identity, out_dir=out, overwrite=overwrite)
        journal = Journal(plan.identity, out_dir=out)
        try:
            records = _augment_all(plan, out=out, done=done, journal=journal, progress=progress, workers=workers)
        finally:
            journal.close()
        unique = list({r.id: r for r in records}.values())
        plan.config.save(out / "augment_config.json")
        if plan.background is not None:
            plan.background[0].save(out / "background_config.json")
        else:  # a replaced run's
            remove_path(out / "background_config.json")
        write_manifest(manifest, unique)
        if overwrite:  # the replaced run's clips, unlisted now, go too
            prune_clips(out, {record.path for record in unique}, what="augment")
        journal.finish(plan.identity, out_dir=out)
        return manifest


def run_augment(
    manifest: str | os.PathLike[str], *, out_dir: str | os.PathLike[str], config: AugmentConfig,
    noise_dir: str | None = None, rir_dir: str | None = None, keep_originals: bool = False, progress: bool = True,
    background: BackgroundConfig | None = None, overwrite: bool = False, workers: int = 0,
) -> Path:
    """Write ``config.copies`` augmented copies of each clip and ``out_dir/manifest.jsonl``.

    ``background`` mixes music and noise (generators and/or manifests' clips) into a share of the copies.
    ``workers`` threads augment clips at once (0: one per core; the Numba kernels, decoding and writing
    release the GIL); every copy depends only on its clip, copy and seed, so the output is the same.
    A killed run resumes when run again with the same settings and inputs: its finished copies are kept. With
    ``overwrite`` a killed run of other settings is replaced, and clips the new manifest does not list are deleted.

    Raises:
        ArtifactExistsError: the output manifest exists, or a killed run of other settings or inputs left copies,
            and ``overwrite`` is False.
        LockedError: another run is writing ``out_dir``.
        ManifestError: the manifest holds no clips.
        ConfigError: ``out_dir``'s manifest is the input, or its clips/ holds input clips.
    """
    plan = _plan(manifest, config=config, noise_dir=noise_dir, rir_dir=rir_dir, background=background,
                 keep_originals=keep_originals)
    _refuse_out_holding_inputs(plan, Path(out_dir))
    return _write_run(plan, out=Path(out_dir), overwrite=overwrite, progress=progress, workers=workers)


def _refuse_out_holding_inputs(plan: _Plan, out: Path) -> None:
    """Refuse an ``out`` whose manifest is the input, or whose ``clips/`` holds input clips (of the manifest or the
    background manifests): the run writes ``out/manifest.jsonl`` over the one it read, and a run replacing ``out``
    deletes the clips there its manifest does not list (``prune_clips``), the originals.

    Raises:
        ConfigError: naming ``--out``, the input and a free folder to choose instead.
    """
    instead = f"choose another --out, such as {out.parent / (out.name + '-augmented')}"
    if Path(plan.manifest).resolve() == (out / MANIFEST_NAME).resolve():
        raise ConfigError(f"--out {str(out)!r}: its {MANIFEST_NAME} is MANIFEST, which the copies' manifest would "
                          f"replace; {instead}")
    clips = (out / "clips").resolve()
    inputs = [plan.manifest, *(plan.background[0].manifests if plan.background is not None else ())]
    for manifest in inputs:
        records = plan.parents if manifest is plan.manifest else read_manifest(manifest)
        for record in records:
            if resolve_clip_path(manifest, record, allow_outside=True).resolve().parent == clips:
                raise ConfigError(f"--out {str(out)!r}: its clips/ holds {record.path} of {manifest} (replacing --out "
                                  f"would delete it); {instead}")


def keep_or_run_augment(
    manifest: str | os.PathLike[str], *, out_dir: str | os.PathLike[str], config: AugmentConfig,
    background: BackgroundConfig | None = None, progress: bool = True, workers: int = 0,
) -> Path:
    """The manifest of a run of these settings and inputs that finished in ``out_dir``, kept
    (``journal.finished_augment``), else ``run_augment`` with ``overwrite``: a killed run resumes, one of other
    settings or inputs is replaced. For callers that own ``out_dir`` and run again after a kill (the recipe)."""
    plan = _plan(manifest, config=config, noise_dir=None, rir_dir=None, background=background, keep_originals=False)
    out = Path(out_dir)
    return (finished_augment(plan.identity, out_dir=out)
            or _write_run(plan, out=out, overwrite=True, progress=progress, workers=workers))
