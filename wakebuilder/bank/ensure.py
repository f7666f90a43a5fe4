"""``ensure_bank``: the recipe's bank, built by the first phrase and reused by every later one.

The first call synthesizes the phrase-independent negatives
(``make_bank_negatives``: generic speech of every voice, isolated words,
training-stream windows), their augmented copies and any extra negative
manifests (music, noise, the user's real audio), all under the bank's folder,
and embeds them into the bank. A later call with the same settings finds the
audio marked complete and the clips stored, so it synthesizes and embeds
nothing; a new extra manifest is embedded alone. A phrase then synthesizes and
embeds only its positives and sound-alikes, and fits on its store plus the bank.
The audio is marked complete with the identity of the voices it was spoken by
(they follow the engines installed and the voice files found, not the settings)
and the versions of the stages that made it (``stage_version``). With other
voices found now its speech is made again; after a release that changed a
stage, what that stage made is. The clips it no longer holds are retired: kept
in the bank's store, which phrases read without a lock, but no longer served
(``bank.retired``). The settings it was built or reused with last are recorded (``bank.audio_folders``), so
``wb bank reclaim`` can tell the audio no recipe needs.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_json, read_json
from wakebuilder.bank.audio_folders import AUDIO_DIR, COMPLETE_NAME, REPLACED_NAME, mark_current
from wakebuilder.bank.build import bank_lock, grow_bank
from wakebuilder.bank.negatives import BankNegativesConfig, make_bank_negatives
from wakebuilder.bank.location import bank_dir, bank_store_path
from wakebuilder.manifest import read_manifest
from wakebuilder.stage_version import KEY, version_change

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class BankResult:
    """The bank's store, whether this call synthesized or embedded anything, and its seconds."""

    store: Path
    synthesized: bool
    embedded: int
    clips: int
    seconds: float


def bank_manifests(config: BankNegativesConfig, *, folder: Path, augment: Any = None) -> tuple[list[Path], bool]:
    """The bank's TTS manifests (and ``augment``'s copies of the clips) under ``folder``; made once.

    ``augment`` is an ``AugmentConfig`` (None: one copy with the default settings; copies 0: none).
    Returns the manifests and whether they were made now (False: found complete with the voices found now).
    """
    from wakebuilder.data.augment.pipeline import keep_or_run_augment

    settings, voices, versions = _settings(config, augment), bank_voices(config), stage_versions()
    complete = folder / COMPLETE_NAME
    recorded = read_json(complete) if complete.is_file() else {}
    if recorded.get("config") == settings and recorded.get("voices") == voices and recorded.get(KEY) == versions:
        return [folder / m for m in recorded["manifests"]], False
    if recorded.get("config") == settings:
        _note_replaced(folder, recorded, version_change(recorded, {KEY: versions}))
    made = make_bank_negatives(config, out_dir=folder)  # keeps the parts finished with these settings and voices
    manifests = list(made)
    if augment is None or augment.copies > 0:
        windows = config.stream_s > 0 and (config.speech or config.words)
        for manifest in made[:-1] if windows else made:  # stream windows (last) are not augmented
            manifests.append(keep_or_run_augment(manifest, out_dir=f"{manifest.parent}-aug",
                                                 config=_augment(config, augment)))
    atomic_write_json(complete, {"config": settings, "voices": voices, KEY: versions,
                                 "manifests": [str(Path(m).relative_to(folder)) for m in manifests]})
    return manifests, True


def stage_versions() -> dict[str, int]:
    """The versions of the stages whose output the bank's audio is (``stage_version``); each of its parts is kept by
    its own, so a bank made again for one changed stage makes again only what that stage made."""
    from wakebuilder.data import realchunks, stream, synth
    from wakebuilder.data.augment import pipeline
    from wakebuilder.data.nonspeech import make

    return {"augment": pipeline.VERSION, "nonspeech": make.VERSION, "real-chunks": realchunks.VERSION,
            "stream": stream.VERSION, "synth": synth.VERSION}


def bank_voices(config: BankNegativesConfig) -> dict[str, Any] | None:
    """The identity of the voices the bank's speech and words are spoken by here (``synth_voices.voice_identity``;
    None when it has neither): found, not synthesized, so checking a finished bank stays cheap.

    Raises:
        ConfigError: no voice of the engines matches ``config.voice_pattern``.
        EngineUnavailableError: none of the engines can run here.
    """
    from wakebuilder.data.synth import SynthConfig
    from wakebuilder.data.synth_voices import find_voices, voice_identity

    if not (config.speech or config.words):
        return None
    choice = SynthConfig(texts=(), n=0, engines=config.engines, voice_pattern=config.voice_pattern)
    return voice_identity(find_voices(choice))


def _note_replaced(folder: Path, recorded: dict[str, Any], older: str = "") -> None:
    """Before the bank finished in ``folder`` with other voices, or by another version (``older`` says which), is
    made again: record its clips (``REPLACED_NAME``, with any recorded before) and forget that it finished, so the
    clips it no longer holds are retired once the new clips are embedded (``_replaced_clips``), also after a kill."""
    ids = _clip_ids([folder / m for m in recorded.get("manifests", [])])
    replaced = folder / REPLACED_NAME
    if replaced.is_file():
        ids |= set(read_json(replaced))
    atomic_write_json(replaced, sorted(ids))
    (folder / COMPLETE_NAME).unlink()
    if older:
        log.info("negative bank %s: %s, made again", folder, older)
    else:
        log.info("negative bank %s: made with other voices than those found now (or before they were recorded); "
                 "its speech is made again", folder)


def _replaced_clips(folder: Path, *, store: Path) -> set[str]:
    """The clips ``_note_replaced`` recorded in ``folder``: ``build_bank`` retires from the bank's ``store``
    (``bank.retired``) those the bank no longer holds, once it embedded the new voices' clips. They stay in the
    store: another phrase's fit or calibration may be reading it.

    A compaction of the store by an earlier release, killed between its two renames, left no store for a moment:
    its swap is finished first, else the store would seem gone and the whole bank be embedded again."""
    from wakebuilder.store.merge import finish_swap

    finish_swap(store)
    replaced = folder / REPLACED_NAME
    return set(read_json(replaced)) if replaced.is_file() else set()


def settings_key(config: BankNegativesConfig, augment: Any = None) -> str:
    """The name of the folder of the bank's audio made with ``config`` and ``augment`` (``AUDIO_DIR``)."""
    from wakebuilder.fingerprint import fingerprint

    return fingerprint("bank", 1, _settings(config, augment))[:12]


def _clip_ids(manifests: Sequence[Path]) -> set[str]:
    """The ids of the clips of ``manifests`` (those still there)."""
    return {record.id for manifest in manifests if manifest.is_file() for record in read_manifest(manifest)}


def _augment(config: BankNegativesConfig, augment: Any) -> Any:
    from wakebuilder.data.augment.transforms import AugmentConfig

    return AugmentConfig(copies=1, seed=config.seed) if augment is None else augment


def _settings(config: BankNegativesConfig, augment: Any) -> dict[str, Any]:
    """What the bank's audio depends on (its folder's fingerprint): the negatives' and augment settings, and
    which Debian packages it chunks, so a release that adds packages extends an older bank with them.

    The negatives' ``workers`` is no part of it (its clips are the same whatever the number of workers): it is held
    at 2, the default every bank was keyed by before, so those are found in their folders still."""
    from wakebuilder.data.debian import SOURCES

    copies = augment is None or augment.copies > 0
    negatives = {**config.to_dict(), "workers": 2}
    settings = {"negatives": negatives, "augment": _augment(config, augment).to_dict() if copies else None}
    if config.debian:
        settings["debian_packages"] = sorted(source.package for source in SOURCES)
    return settings


def ensure_bank(
    config: BankNegativesConfig, *, backbone: str, window_s: float | None, augment: Any = None,
    extra_manifests: Sequence[str | os.PathLike[str]] = (), cache: str | os.PathLike[str] | None = None,
    device: str = "auto", threads: int = 0,
) -> BankResult:
    """Build the bank of ``backbone`` and ``window_s`` with ``config``'s negatives, or reuse it.

    ``augment`` (an ``AugmentConfig``) makes the augmented copies (None: one
    copy, default settings). The audio lives in ``<bank_dir>/audio/<settings
    fingerprint>/`` so banks of other settings never mix theirs; the
    embeddings grow in the one bank store.
    """
    from wakebuilder.backbones import check_spec

    check_spec(backbone)  # before a bank's worth of negatives is synthesized for it
    started = time.perf_counter()
    key = settings_key(config, augment)
    root = bank_dir(backbone, window_s, cache=cache)
    # two phrases at once: the second waits for the first's build (its store's writer lock would refuse it)
    with bank_lock(backbone, window_s, cache=cache):
        folder = root / AUDIO_DIR / key
        mark_current(root, key)  # before it is made: wb bank reclaim keeps a killed build's audio to resume from
        manifests, synthesized = bank_manifests(config, folder=folder, augment=augment)
        replaced = _replaced_clips(folder, store=bank_store_path(backbone, window_s, cache=cache))
        summary: dict[str, Any] = grow_bank([*manifests, *extra_manifests], backbone=backbone, window_s=window_s,
                                            cache=cache, device=device, threads=threads, progress=False,
                                            replaced=replaced)
        (folder / REPLACED_NAME).unlink(missing_ok=True)  # kept until they are retired: a killed build retires them
        served = int(summary["clips_in_store"]) - int(summary["retired"])
    seconds = time.perf_counter() - started
    log.info("bank %s: %s, %d clip(s) embedded, %d in the bank (%.0f s)", summary["path"],
             "built" if synthesized else "reused", summary["embedded"], served, seconds)
    return BankResult(Path(summary["path"]), synthesized, int(summary["embedded"]), served, seconds)
