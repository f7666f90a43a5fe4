"""Held-out generic speech for the recipe's calibration and report streams, synthesized once for every phrase.

A phrase's threshold is calibrated on a stream of negatives that training never
saw, and its report measures false accepts on another. Their generic sentences
do not depend on the phrase, so, like the bank, they are synthesized once in
the cache (``<cache>/heldout/<settings fingerprint>/``; never embedded: the
streams are scored end to end) and each phrase takes them with the sentences
that say it left out (``data.negatives.says``: in letters or in phonemes, the
rule ``wb negatives --speech`` applies). The phrase's own sound-alikes are
still made per phrase.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from pathlib import Path

from wakebuilder.atomic import atomic_write_json, read_json, waiting_lock
from wakebuilder.bank.location import cache_dir
from wakebuilder.config import StageConfig
from wakebuilder.data.tts import DEFAULT_ENGINES
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, read_manifest, resolve_clip_path, write_manifest

log = logging.getLogger(__name__)
COMPLETE_NAME = "complete.json"


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeldoutSpeechConfig(StageConfig):
    """``n`` generic sentences of ``seed`` spoken by the ``engines``' voices."""

    n: int
    seed: int
    engines: tuple[str, ...] = DEFAULT_ENGINES
    workers: int = 2


def heldout_speech(config: HeldoutSpeechConfig, *, cache: str | os.PathLike[str] | None = None) -> Path:
    """The manifest of ``config``'s sentences in the cache; synthesized by the first call, reused after."""
    from wakebuilder.fingerprint import fingerprint

    folder = cache_dir(cache) / "heldout" / fingerprint("heldout-speech", 1, config.to_dict())[:12]
    with waiting_lock(folder.with_name(folder.name + ".lock"), "held-out speech"):  # one synthesizer at a time
        return _made_once(config, folder)


def _made_once(config: HeldoutSpeechConfig, folder: Path) -> Path:
    from wakebuilder.data.synth import SynthConfig, synthesize_clips
    from wakebuilder.data.wordlists import random_sentences

    manifest, complete = folder / MANIFEST_NAME, folder / COMPLETE_NAME
    if complete.is_file() and read_json(complete).get("config") == config.to_dict() and manifest.is_file():
        return manifest
    synth = SynthConfig(texts=tuple(random_sentences(config.n, seed=config.seed)), n=config.n, engines=config.engines,
                        seed=config.seed + 1, label=0, kind="speech_negative", variants=False, workers=config.workers)
    records = synthesize_clips(synth, out_dir=folder)
    write_manifest(manifest, records)
    atomic_write_json(complete, {"config": config.to_dict()})
    log.info("held-out speech: %d clip(s) in %s", len(records), folder)
    return manifest


def without_phrase(manifest: str | os.PathLike[str], phrase: str, out_dir: str | os.PathLike[str]) -> tuple[Path, int]:
    """``manifest``'s clips whose text does not say ``phrase``, as a manifest in ``out_dir`` (absolute paths to
    the cached audio); returns it and how many clips were left out."""
    from wakebuilder.data.negatives import says

    source = Path(manifest)
    records = read_manifest(source)
    kept: list[ClipRecord] = []
    for record in records:
        if not says(record.text or "", phrase):
            path = resolve_clip_path(source, record)
            kept.append(dataclasses.replace(record, path=str(Path(path).resolve())))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    left_out = len(records) - len(kept)
    if left_out:
        log.info("held-out speech: left out %d sentence(s) that say %r", left_out, phrase)
    return write_manifest(out / MANIFEST_NAME, kept), left_out
