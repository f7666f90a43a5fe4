from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from wakebuilder.cli import main
from wakebuilder.data.negatives import NegativesConfig, candidates, interleave_reasons, make_negatives, says
from wakebuilder.data.phonetics import contains, normalize, phoneme_distance, phrase_pronunciations
from wakebuilder.data.tts import get_engine
from wakebuilder.data.wordlists import random_sentences
from wakebuilder.errors import ConfigError
from wakebuilder.manifest import read_manifest

PHRASE = "hey jarvis"


def test_candidates_leave_out_homophones_and_the_phrase() -> None:
    found = candidates(PHRASE, max_distance=2.0)
    targets = phrase_pronunciations(PHRASE)
    texts = {c.text for c in found}
    assert len(found) > 50
    assert {"hey", "jarvis", "hey jar"} <= texts  # partial and cut-off phrases
    assert "hay jarvis" not in texts and PHRASE not in texts  # a homophone; the phrase itself
    for c in found:
        prons = phrase_pronunciations(c.text)
        assert not contains(normalize(c.text), normalize(PHRASE))
        assert not any(contains(p, t) for p in prons for t in targets)
        assert c.distance > 0
        assert min(phoneme_distance(t, p) for t in targets for p in prons) == pytest.approx(c.distance)
        if c.reason.startswith("neighbour of") and not c.reason.endswith("alone"):
            assert c.distance <= 2.0  # one word swapped for a neighbour within the bound
    reasons = {c.reason for c in found}
    assert {"part of the phrase", "cut-off phrase", "part of the phrase with another word"} <= reasons


def test_single_word_homophones_are_excluded() -> None:
    texts = {c.text for c in candidates("their", max_distance=1.0)}
    assert texts and not {"there", "they're", "their"} & texts
    with pytest.raises(ConfigError, match="empty"):
        candidates("  ")


def test_says() -> None:
    assert says("well hey jarvis there", PHRASE) and says("Hey, Jarvis!", PHRASE)
    assert says("hay jarvis", PHRASE)  # the same phonemes
    assert not says("hey marvin", PHRASE) and not says("jarvis", PHRASE)


def test_interleave_and_sentences() -> None:
    ordered = interleave_reasons(candidates(PHRASE))
    assert len({c.reason for c in ordered[:5]}) == 5  # a small -n still covers several kinds
    assert random_sentences(20, seed=3) == random_sentences(20, seed=3) != random_sentences(20, seed=4)


def test_make_negatives_is_reproducible(tmp_path: Path) -> None:
    if not get_engine("espeak").available():
        pytest.skip("espeak-ng unavailable")
    config = NegativesConfig(phrase=PHRASE, n=6, speech=4, engines=("espeak",), workers=1, seed=5)
    first = make_negatives(config, out_dir=tmp_path / "a")
    second = make_negatives(config, out_dir=tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    records = read_manifest(first)
    kinds = [r.kind for r in records]
    assert kinds.count("hard_negative") == 6 and kinds.count("speech_negative") == 4
    assert all(r.label == 0 and not says(r.text, PHRASE) and r.group.startswith("espeak:") for r in records)
    hard = [r for r in records if r.kind == "hard_negative"]
    assert all(r.params["reason"] and r.params["distance"] > 0 for r in hard)
    assert len({r.params["reason"] for r in hard}) >= 3


def test_cli(tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["negatives", "--help"]).exit_code == 0
    listed = runner.invoke(main, ["negatives", PHRASE, "--list"])
    rows = [line.split("\t") for line in listed.output.splitlines()]
    assert listed.exit_code == 0 and ["jarvis", "2", "part of the phrase"] in rows
    assert all(len(row) == 3 and float(row[1]) > 0 for row in rows)
    bad = runner.invoke(main, ["negatives", "--real", str(tmp_path / "nope"), "--out", str(tmp_path / "c")])
    assert bad.exit_code != 0 and "not a folder" in bad.output and len(bad.output.strip().splitlines()) == 1
    missing = runner.invoke(main, ["negatives", PHRASE])
    assert missing.exit_code != 0 and "--out" in missing.output
