from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wakebuilder.data.phonetics import (
    PHONES, Lexicon, _distances, espeak_to_arpabet, phoneme_distance, phrase_pronunciations, word_neighbours,
    word_phonemes, word_pronunciations,
)
from wakebuilder.errors import EngineUnavailableError

phone_lists = st.lists(st.sampled_from(PHONES), min_size=1, max_size=7)


def test_distance_goldens() -> None:
    assert phoneme_distance(("HH", "EY"), ("HH", "EY")) == 0
    assert phoneme_distance(("HH", "EY"), ("HH", "AY")) == 0.5  # vowel for vowel
    assert phoneme_distance(("P", "AE", "T"), ("B", "AE", "T")) == 0.5  # stop for stop
    assert phoneme_distance(("S", "AE", "T"), ("M", "AE", "T")) == 1.0  # fricative for nasal
    assert phoneme_distance(("AE", "T"), ("T", "T")) == 1.0  # vowel for consonant
    assert phoneme_distance(("K", "AE", "T"), ("K", "AE", "T", "S")) == 1.0
    assert phoneme_distance((), ("K", "AE")) == 2.0


@settings(max_examples=60, deadline=None)
@given(a=phone_lists, rows=st.lists(phone_lists, min_size=1, max_size=5), length=st.integers(1, 7))
def test_vectorised_distance_matches_the_scalar_one(a: list[str], rows: list[list[str]], length: int) -> None:
    rows = [(r * length)[:length] for r in rows]
    codes = np.array([[PHONES.index(p) for p in r] for r in rows], dtype=np.int8)
    expected = [phoneme_distance(a, r) for r in rows]
    assert _distances(a, codes).tolist() == pytest.approx(expected)
    assert expected == pytest.approx([phoneme_distance(r, a) for r in rows])  # symmetric


def test_lexicon_search_equals_brute_force() -> None:
    rng = np.random.default_rng(0)
    names = ["".join("abcdefghij"[int(c)] for c in f"{i:04d}") for i in range(300)]  # alphabetic words only
    by_word = {name: [tuple(rng.choice(PHONES, size=int(rng.integers(1, 8))))] for name in names}
    target = ("HH", "EY", "JH", "AA")
    found = Lexicon(by_word).within([target], 2.0)
    brute = {w: phoneme_distance(target, p[0]) for w, p in by_word.items()}
    assert found == pytest.approx({w: d for w, d in brute.items() if d <= 2.0})


def test_neighbours_are_within_distance_and_exclude_homophones() -> None:
    found = dict(word_neighbours("their", max_distance=1.0, limit=5000))
    assert len(found) > 20 and all(0 < d <= 1.0 for d in found.values())
    assert "there" not in found and "they're" not in found  # homophones: distance 0
    assert "hair" in found and "share" in found
    target = word_pronunciations("their")
    for word, distance in found.items():
        recomputed = min(phoneme_distance(t, p) for t in target for p in word_pronunciations(word))
        assert recomputed == pytest.approx(distance)


def test_any_pronunciation_counts() -> None:
    prons = word_pronunciations("read")
    assert ("R", "IY", "D") in prons and ("R", "EH", "D") in prons
    assert "red" not in dict(word_neighbours("read", max_distance=1.0, limit=5000))  # sounds like one reading
    assert len(phrase_pronunciations("read the")) == len(prons) * len(word_pronunciations("the"))


def test_espeak_mapping() -> None:
    assert espeak_to_arpabet("h'eI dZ'A@vIs") == ("HH", "EY", "JH", "AA", "R", "V", "IH", "S")
    assert espeak_to_arpabet("k@mpj'u:t#3") == ("K", "AH", "M", "P", "Y", "UW", "T", "ER")
    assert espeak_to_arpabet("tS'3:tS") == ("CH", "ER", "CH")
    assert espeak_to_arpabet("T'IN") == ("TH", "IH", "NG")


def test_espeak_fallback_for_unknown_words() -> None:
    try:
        phones = word_phonemes("zorblaxian")
    except EngineUnavailableError as exc:
        pytest.skip(f"espeak-ng unavailable: {exc}")
    assert phones[:5] == ("Z", "AO", "R", "B", "L") and set(phones) <= set(PHONES)
