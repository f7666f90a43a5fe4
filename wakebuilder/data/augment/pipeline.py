"""``wb augment``: K augmented copies of every clip of a manifest, each rebuildable from its row.

Clips go through in batches (load, draw, apply, write) on a few threads: the Numba kernels release
the GIL and every copy depends only on its own row, so the bytes do not depend on the thread count.
Each finished copy is appended to a journal; a killed or repeated run skips copies whose file
is still there with the id the journal expects. A different config (or noise/RIR files) in the
same folder is refused unless ``overwrite``; ``copies`` is left out of that check, so a run with
more copies extends an earlier one.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from wakebuilder import SAMPLE_RATE
from wakebuilder.atomic import atomic_write_json, read_json, writer_lock
from wakebuilder.audio import load_audio, quantize_pcm16, write_wav
from wakebuilder.data.augment.banks import Banks, NoiseBank, RirBank
from wakebuilder.data.augment.transforms import AugmentConfig, apply_chain, clip_rng, draw_chain
from wakebuilder.errors import BadAudioError, ConfigError
from wakebuilder.fingerprint import audio_id, fingerprint
from wakebuilder.manifest import (
    MANIFEST_NAME, ClipRecord, read_manifest, relative_clip_path, resolve_clip_path, write_manifest,
)

STAGE_VERSION = 2
STATE_NAME = "augment.json"
JOURNAL_NAME = "augment-journal.jsonl"


def run_augment(
    manifest: str | os.PathLike[str], *, out_dir: str | os.PathLike[str], config: AugmentConfig,
    noise_dir: str | os.PathLike[str] | None = None, rir_dir: str | os.PathLike[str] | None = None,
    keep_originals: bool = False, overwrite: bool = False, workers: int = 1, batch_size: int = 64,
    progress: bool = True,
) -> Path:
    """Write ``config.copies`` augmented copies of each clip, and ``out_dir/manifest.jsonl``."""
    from tqdm import tqdm

    out = Path(out_dir)
    if (out / MANIFEST_NAME).resolve() == Path(manifest).resolve():
        raise ConfigError(f"--out {out}: would overwrite the input manifest; choose another folder")
    parents = read_manifest(manifest)
    banks = Banks(NoiseBank.open(noise_dir), RirBank.open(rir_dir))
    with writer_lock(out / MANIFEST_NAME):
        done = _start(out, config, banks, overwrite=overwrite)
        rows: dict[str, list[ClipRecord]] = {}
        bar = tqdm(total=len(parents) * config.copies, desc="augment", unit="copy", disable=not progress)
        with open(out / JOURNAL_NAME, "a", encoding="utf-8") as journal, ThreadPoolExecutor(max(workers, 1)) as pool:
            for batch in _batches(parents, batch_size):
                for parent, (copies, new) in zip(batch, pool.map(
                        lambda p: augment_parent(manifest, p, out, config, banks, done), batch), strict=True):
                    rows[parent.id] = copies
                    journal.writelines(json.dumps(r.to_dict(), sort_keys=True) + "\n" for r in new)
                    bar.update(config.copies)
                journal.flush()
                os.fsync(journal.fileno())
        bar.close()
        records: dict[str, ClipRecord] = {}
        for parent in parents:
            if keep_originals:
                source = resolve_clip_path(manifest, parent)
                records.setdefault(parent.id, ClipRecord(**{**parent.to_dict(),
                                                            "path": relative_clip_path(out, source)}))
            for record in rows[parent.id]:
                records.setdefault(record.id, record)
        return write_manifest(out / MANIFEST_NAME, records.values())


def augment_parent(
    manifest: str | os.PathLike[str], parent: ClipRecord, out: Path, config: AugmentConfig, banks: Banks,
    done: dict[tuple[str, int], ClipRecord],
) -> tuple[list[ClipRecord], list[ClipRecord]]:
    """All copies of one clip: (every row, the rows made now rather than found from an earlier run)."""
    source = resolve_clip_path(manifest, parent)
    samples = None
    rows, new = [], []
    for copy in range(config.copies):
        previous = done.get((parent.id, copy))
        if previous is not None and _intact(out / previous.path, previous.id):
            rows.append(previous)
            continue
        samples = load_audio(source) if samples is None else samples
        chain = draw_chain(clip_rng(config.seed, parent.id, copy), config, banks, length=samples.size)
        audio = apply_chain(samples, chain, banks=banks)
        clip_id = audio_id(quantize_pcm16(audio))
        target = out / "clips" / f"{clip_id}.wav"
        if not _intact(target, clip_id):
            write_wav(target, audio)
        record = ClipRecord(
            id=clip_id, path=f"clips/{clip_id}.wav", label=parent.label, kind="augmented", group=parent.group,
            text=parent.text, duration_s=round(audio.size / SAMPLE_RATE, 4), parent_id=parent.id,
            params={"copy": copy, "seed": config.seed, "parent_kind": parent.kind, "chain": chain},
            source=str(source),
        )
        rows.append(record)
        new.append(record)
    return rows, new


def _intact(path: Path, clip_id: str) -> bool:
    """Whether ``path`` holds the clip ``clip_id`` (a file cut short by a kill does not)."""
    if not path.is_file():
        return False
    try:
        return audio_id(load_audio(path)) == clip_id
    except BadAudioError:  # damaged: the caller writes it again
        return False


def _start(out: Path, config: AugmentConfig, banks: Banks, *, overwrite: bool) -> dict[tuple[str, int], ClipRecord]:
    """Check or record the run's fingerprint; the journal's rows by (parent id, copy)."""
    semantic = {k: v for k, v in config.to_dict().items() if k != "copies"}
    key = fingerprint("augment", STAGE_VERSION, semantic, banks.identity())
    state_path = out / STATE_NAME
    if state_path.is_file() or (out / MANIFEST_NAME).is_file():
        previous = read_json(state_path).get("fingerprint") if state_path.is_file() else None
        if previous != key and not overwrite:
            raise ConfigError(f"--out {out}: holds a manifest made with another augment config (seed, ranges, "
                              "noise or RIR files); pass --overwrite or choose another folder")
        if previous != key and previous is not None:  # our own earlier run: its copies go
            shutil.rmtree(out / "clips", ignore_errors=True)
            (out / JOURNAL_NAME).unlink(missing_ok=True)
    atomic_write_json(state_path, {"fingerprint": key, "version": STAGE_VERSION, "config": config.to_dict(),
                                   "banks": banks.identity()})
    return _read_journal(out / JOURNAL_NAME)


def _read_journal(path: Path) -> dict[tuple[str, int], ClipRecord]:
    if not path.is_file():
        return {}
    done = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = ClipRecord.from_dict(json.loads(line), where=f"{path}:{number}")
        except json.JSONDecodeError:  # the last line of a killed run may be cut short: that copy is redone
            continue
        done[(record.parent_id or "", int(record.params["copy"]))] = record
    return done


def _batches(records: list[ClipRecord], size: int) -> Iterator[list[ClipRecord]]:
    for start in range(0, len(records), max(size, 1)):
        yield records[start : start + size]
