"""``wb negatives PHRASE``: sound-alike hard negatives and generic TTS speech.

Hard negatives are the phrase's phonetic neighbours (``candidates``: dictionary
words and phrases a small phoneme distance away, partial and cut-off phrases,
the phrase's words with other words; never a homophone, never the phrase),
spoken by the same engines and voices as the positives. Generic speech negatives
(kind ``speech_negative``) make sure "synthetic voice" is no shortcut for
"wake word": without them every TTS clip a model sees would be a positive.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from pathlib import Path

from wakebuilder.config import StageConfig
from wakebuilder.data.phonetics import (
    closest, contains, lexicon, normalize, phoneme_distance, phrase_pronunciations, word_neighbours,
    word_phonemes,
)
from wakebuilder.data.synth import SynthConfig, synthesize_clips
from wakebuilder.data.tts import DEFAULT_ENGINES
from wakebuilder.data.wordlists import random_sentences
from wakebuilder.errors import ConfigError, EngineUnavailableError
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, write_manifest

log = logging.getLogger(__name__)
FILLERS = ("please", "the", "okay", "what", "stop", "and")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A hard-negative text, its phoneme distance to the phrase and why it was chosen."""

    text: str
    distance: float
    reason: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class NegativesConfig(StageConfig):
    """How many hard and generic negatives, how close, which voices."""

    phrase: str
    n: int = 2000
    speech: int = 1000
    max_distance: float = 2.0
    engines: tuple[str, ...] = DEFAULT_ENGINES
    seed: int = 0
    workers: int = 2
    voice_pattern: str | None = None


def says(text: str, phrase: str) -> bool:
    """Whether ``text`` contains the phrase, in words or in phonemes (under any pronunciation)."""
    words, wanted = normalize(text), normalize(phrase)
    if contains(words, wanted):
        return True
    targets = phrase_pronunciations(phrase)
    return any(contains(pron, target) for pron in phrase_pronunciations(text) for target in targets)


def candidates(phrase: str, *, max_distance: float = 2.0, per_word: int = 25) -> list[Candidate]:
    """Sound-alikes, partial phrases and the phrase's parts with other words, closest first.

    ``max_distance`` bounds the dictionary search for sound-alikes of the whole
    phrase and of each word. A candidate's distance is to the whole phrase.
    Homophones and anything containing the phrase (in words or phonemes, under
    any pronunciation) are left out.
    """
    words = normalize(phrase)
    if not words:
        raise ConfigError("wb negatives: the phrase is empty")
    targets = phrase_pronunciations(phrase)
    out: dict[str, Candidate] = {}

    def add(text: str, reason: str) -> None:
        if text in out or says(text, phrase):
            return
        prons = phrase_pronunciations(text)
        out[text] = Candidate(text, min(phoneme_distance(t, p) for t in targets for p in prons), reason)

    _add_partials(words, add)
    for word, _ in closest(lexicon().within(targets, max_distance), per_word):
        add(word, "sounds like the phrase")
    for index, word in enumerate(words):
        for neighbour, _ in word_neighbours(word, max_distance=max_distance, limit=per_word):
            add(" ".join([*words[:index], neighbour, *words[index + 1 :]]), f"neighbour of {word!r}")
            if len(words) > 1:
                add(neighbour, f"neighbour of {word!r} alone")
    for filler in FILLERS:
        for word in words:
            add(f"{word} {filler}", "part of the phrase with another word")
            add(f"{filler} {word}", "part of the phrase with another word")
    return sorted(out.values(), key=lambda c: (c.distance, c.text))


def _add_partials(words: list[str], add: Callable[[str, str], None]) -> None:
    """Words alone, word prefixes/suffixes, cut-off words (phoneme prefixes/suffixes realised as words)."""
    for index in range(len(words)):
        add(words[index], "part of the phrase")
        if index:
            add(" ".join(words[:index]), "prefix of the phrase")
            add(" ".join(words[index:]), "suffix of the phrase")
    by_pron = lexicon().by_pron
    for index, word in enumerate(words):
        phones = word_phonemes(word)
        for cut in range(1, len(phones)):
            for other in sorted(by_pron.get(phones[:cut], []))[:2]:
                add(" ".join([*words[:index], other]), "cut-off phrase")
            for other in sorted(by_pron.get(phones[cut:], []))[:2]:
                add(" ".join([other, *words[index + 1 :]]), "phrase without its start")
        last = index == len(words) - 1
        for cut in range(2, len(word)) if last else ():
            try:  # a letter stem ("hey jarv") has no dictionary entry: espeak-ng gives its phonemes
                add(" ".join([*words[:index], word[:cut]]), "cut-off phrase")
            except EngineUnavailableError as exc:
                log.info("cut-off stems left out: %s", exc)
                return


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


def make_negatives(config: NegativesConfig, *, out_dir: str | os.PathLike[str]) -> Path:
    """Synthesize hard and generic negatives into ``out_dir``; returns the manifest path."""
    if config.n < 0 or config.speech < 0 or config.n + config.speech == 0:
        raise ConfigError("wb negatives: -n and --speech must be >= 0, and not both 0")
    chosen = candidates(config.phrase, max_distance=config.max_distance)
    if not chosen:
        raise ConfigError(f"no candidates for {config.phrase!r} within distance {config.max_distance}")
    chosen = interleave_reasons(chosen)
    by_text = {c.text: c for c in chosen}
    records: list[ClipRecord] = []
    if config.n:
        hard = SynthConfig(
            texts=tuple(c.text for c in chosen), n=config.n, engines=config.engines, seed=config.seed,
            label=0, kind="hard_negative", variants=False, workers=config.workers,
            voice_pattern=config.voice_pattern,
        )
        records += [_with_candidate(r, by_text.get(r.text)) for r in synthesize_clips(hard, out_dir=out_dir)]
    if config.speech:
        sentences = random_sentences(config.speech, seed=config.seed)
        sentences = [s for s in sentences if not says(s, config.phrase)]
        speech = SynthConfig(
            texts=sentences, n=config.speech, engines=config.engines, seed=config.seed + 1, label=0,
            kind="speech_negative", variants=False, workers=config.workers,
            voice_pattern=config.voice_pattern,
        )
        seen = {r.id for r in records}
        records += [r for r in synthesize_clips(speech, out_dir=out_dir) if r.id not in seen]
    config.save(Path(out_dir) / "negatives_config.json")
    return write_manifest(Path(out_dir) / MANIFEST_NAME, records)
