"""Held-out generic speech and the recipe's calibration and report streams, made once for every phrase.

A phrase's threshold is calibrated on a stream of negatives that training never
saw, and its report measures false accepts on another. Their generic sentences,
music and noise do not depend on the phrase, so, like the bank, they are made
once in the cache (``<cache>/heldout/<settings fingerprint>/``): the sentences
(``heldout_speech``), and each stream with its held-out music and noise clips
(``heldout_stream``). Which voices speak them is not in their settings (it follows the
engines installed and the voice files found): the sentences are kept while the
voices found are those that spoke them, and a stream while its sentences are
the same. Other voices' sentences, and a stream of other sentences, are made into
new folders named by what they are made of (``<settings>-<voices>``,
``stream-<settings>-<content>``; both with the versions of the stages that make
them, ``stage_version``), never over the old ones: another phrase may be
calibrating on the old stream or reporting on its clips meanwhile, and reads a
stream, its segments and its clips as they were made together. The folder of each settings used last is named
in ``<settings>.current.json``; ``wb bank reclaim`` removes the others (``stale_folders``) while no reader
holds ``heldout/read.lock`` (``bank.reading``; a recipe holds it till its report). The backbone's pass over a
stream is kept in the cache too (``stream_cache``), so a later phrase scores it with its head alone; reclaim
removes those of the streams gone (``bank.stream_passes``). A
phrase takes the sentences as clips with those that say it left out
(``without_phrase``; ``data.negatives.says``: in letters or in phonemes, the
rule ``wb negatives --speech`` applies); in a stream, the clips that say it
are left out by their texts in the stream's segments (``categories.StreamSegments``).
The phrase's own sound-alikes are still made per phrase.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

from wakebuilder.atomic import atomic_write_json, read_json, waiting_lock
from wakebuilder.bank.location import cache_dir
from wakebuilder.bank.reading import reading
from wakebuilder.bank.used_last import mark_used, used_last
from wakebuilder.config import StageConfig
from wakebuilder.data.tts import DEFAULT_ENGINES
from wakebuilder.errors import ConfigError
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, read_manifest, resolve_clip_path, write_manifest
from wakebuilder.stage_version import versioned

log = logging.getLogger(__name__)
COMPLETE_NAME = "complete.json"
CURRENT_SUFFIX = ".current.json"  # <settings>.current.json: the folder of those settings used last
TRASH_DIR = ".reclaiming"  # where wb bank reclaim moves a folder before deleting it
FOLDER_NAME = re.compile(r"(?P<settings>(stream-)?[0-9a-f]{12})(-[0-9a-f]{12})?")
STREAM_FORMAT = 2
"""2: the stream's segments say where each clip's audio ends (``data.stream``); a stream of before is made again."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeldoutSpeechConfig(StageConfig):
    """``n`` generic sentences of ``seed`` spoken by the ``engines``' voices."""

    n: int
    seed: int
    engines: tuple[str, ...] = DEFAULT_ENGINES
    workers: int = 2


def heldout_speech(config: HeldoutSpeechConfig, *, cache: str | os.PathLike[str] | None = None) -> Path:
    """The manifest of ``config``'s sentences spoken by the voices found now, in the cache: synthesized by the first
    call, reused after; other voices speak them into another folder (see the module docstring)."""
    from wakebuilder.data.synth import SYNTH_CONFIG_NAME, VERSION, SynthConfig, keep_or_run_synth, run_identity
    from wakebuilder.data.synth_finished import finished_run
    from wakebuilder.data.synth_voices import find_voices, voice_identity
    from wakebuilder.data.wordlists import random_sentences
    from wakebuilder.fingerprint import fingerprint

    synth = SynthConfig(texts=tuple(random_sentences(config.n, seed=config.seed)), n=config.n, engines=config.engines,
                        seed=config.seed + 1, label=0, kind="speech_negative", variants=False, workers=config.workers)
    voices = find_voices(synth)
    identity = voice_identity(voices)
    settings = heldout_dir(cache) / fingerprint("heldout-speech", 1, config.to_dict())[:12]
    spoken = versioned(identity, {"synth": VERSION})  # a synthesis of another version speaks into another folder
    folder = settings.with_name(f"{settings.name}-{fingerprint('heldout-voices', 1, spoken)[:12]}")
    # one synthesizer at a time; no wb bank reclaim meanwhile
    with reading(settings.parent), waiting_lock(settings.with_name(settings.name + ".lock"), "held-out speech"):
        # made by a release that spoke it again in place; kept while its voices are found, never written again
        before = finished_run(run_identity(synth), voices=identity, out_dir=settings, config_name=SYNTH_CONFIG_NAME)
        made = before or keep_or_run_synth(synth, out_dir=folder, voices=voices)
        mark_used(settings.with_name(settings.name + CURRENT_SUFFIX), "folder", made.parent.name)
        return made


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeldoutStreamConfig(StageConfig):
    """``duration_s`` of continuous audio of seed ``seed``: ``speech`` generic sentences spoken by the
    ``engines``' voices, and ``nonspeech`` music and noise clips of ``clip_s`` (babble of those sentences)."""

    speech: int
    nonspeech: int
    clip_s: float
    duration_s: float
    seed: int
    engines: tuple[str, ...] = DEFAULT_ENGINES


@dataclasses.dataclass(frozen=True)
class HeldoutStream:
    """A cached stream: the WAV (``NAME.segments.json`` beside it) and the manifests of its clips."""

    stream: Path
    speech: Path
    nonspeech: Path | None


def heldout_stream(config: HeldoutStreamConfig, *, cache: str | os.PathLike[str] | None = None) -> HeldoutStream:
    """``config``'s stream in the cache: made by the first call (every phrase's), reused after."""
    from wakebuilder.data import stream as stream_stage
    from wakebuilder.data.nonspeech import make
    from wakebuilder.fingerprint import file_sha256, fingerprint

    if config.speech < 1:
        raise ConfigError("held-out stream: it is held-out speech, and its non-speech babbles held-out speech; "
                          "give held-out speech > 0")
    speech = heldout_speech(HeldoutSpeechConfig(n=config.speech, seed=config.seed, engines=config.engines), cache=cache)
    # the stream is of these sentences: made again, into another folder, when they were (spoken by other voices), as
    # a stream of other settings or made by another version of its stages would be; their manifest names each clip by
    # a hash of its audio
    recorded = {"config": config.to_dict(), "speech_sha256": file_sha256(str(speech)), "format": STREAM_FORMAT}
    recorded = versioned(recorded, {"nonspeech": make.VERSION, "stream": stream_stage.VERSION})
    settings = heldout_dir(cache) / f"stream-{fingerprint('heldout-stream', 1, config.to_dict())[:12]}"
    folder = settings.with_name(f"{settings.name}-{fingerprint('heldout-stream-content', 1, recorded)[:12]}")
    stream, nonspeech = folder / "stream.wav", folder / "nonspeech" / MANIFEST_NAME
    made = HeldoutStream(stream=stream, speech=speech, nonspeech=nonspeech if config.nonspeech else None)
    with reading(settings.parent), waiting_lock(settings.with_name(settings.name + ".lock"), "held-out stream"):
        complete = folder / COMPLETE_NAME
        if not (complete.is_file() and read_json(complete) == recorded and stream.is_file()):
            _make_stream(config, made)
            atomic_write_json(complete, recorded)
            log.info("held-out stream: %g s in %s", config.duration_s, stream)
        mark_used(settings.with_name(settings.name + CURRENT_SUFFIX), "folder", folder.name)
    return made


def heldout_dir(cache: str | os.PathLike[str] | None = None) -> Path:
    """The folder of the held-out speech and streams in the cache (its ``read.lock``: ``bank.reading``)."""
    return cache_dir(cache) / "heldout"


def stale_folders(cache: str | os.PathLike[str] | None = None) -> list[Path]:
    """The held-out folders no recipe uses now: of each settings, all but the one used last (its
    ``<settings>.current.json``; without one, the newest), and what a killed reclaim left (``TRASH_DIR``).

    Only for a caller that holds ``heldout/read.lock`` alone (``bank.reading.excluding_readers``).
    """
    root = heldout_dir(cache)
    groups: dict[str, list[Path]] = {}
    for path in sorted(root.iterdir()) if root.is_dir() else []:
        if path.is_dir() and not path.is_symlink() and (named := FOLDER_NAME.fullmatch(path.name)):
            groups.setdefault(named.group("settings"), []).append(path)
    stale = [root / TRASH_DIR] if (root / TRASH_DIR).exists() else []
    for settings, folders in groups.items():
        current = used_last(root / (settings + CURRENT_SUFFIX), "folder", folders)
        stale += [f for f in folders if f.name != current]
    return stale


def _make_stream(config: HeldoutStreamConfig, made: HeldoutStream) -> None:
    from wakebuilder.data.nonspeech.generators import GENERATORS
    from wakebuilder.data.nonspeech.make import NonspeechConfig, make_nonspeech
    from wakebuilder.data.stream import StreamConfig, build_negative_stream

    if made.nonspeech is not None:
        settings = NonspeechConfig(n=config.nonspeech, duration_s=config.clip_s, seed=config.seed,
                                   kinds=tuple(GENERATORS), babble_from=str(made.speech))
        make_nonspeech(settings, out_dir=made.nonspeech.parent, overwrite=True)
    sources = [str(p) for p in (made.speech, made.nonspeech) if p is not None]
    build_negative_stream(sources, out_path=made.stream,
                          config=StreamConfig(duration_s=config.duration_s, seed=config.seed), overwrite=True)


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
