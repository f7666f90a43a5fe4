"""Held-out generic speech made once in the cache; each phrase takes it without the sentences that say it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import wakebuilder.data.synth as synth
from wakebuilder.audio import write_wav
from wakebuilder.bank.heldout import HeldoutSpeechConfig, heldout_speech, without_phrase
from wakebuilder.manifest import ClipRecord, read_manifest, write_manifest


def forbid(monkeypatch: pytest.MonkeyPatch, module: object, name: str, said: str) -> None:
    """Make ``module.name`` fail with ``said``: the cache must not call it again."""

    def called(*args: object, **kwargs: object) -> None:
        raise AssertionError(said)

    monkeypatch.setattr(module, name, called)


def test_sentences_that_say_the_phrase_are_left_out(tmp_path: Path) -> None:
    source = tmp_path / "cache" / "speech"
    source.mkdir(parents=True)
    texts = ["turn on the light", "hey jarvis, play some music", "Jarvis is here", "a quiet evening"]
    records = []
    for i, text in enumerate(texts):
        write_wav(source / f"{i}.wav", np.zeros(1600, np.float32))
        records.append(ClipRecord(id=f"c{i}", path=f"{i}.wav", label=0, kind="speech_negative", group="g",
                                  duration_s=0.1, text=text))
    manifest = write_manifest(source / "manifest.jsonl", records)
    out, left_out = without_phrase(manifest, "hey jarvis", tmp_path / "phrase")
    kept = read_manifest(out)
    assert left_out == 1 and [r.text for r in kept] == ["turn on the light", "Jarvis is here", "a quiet evening"]
    assert all(Path(r.path).is_absolute() and Path(r.path).is_file() for r in kept)  # the cached audio, not a copy
    assert not list((tmp_path / "phrase").glob("*.wav"))
    assert [r.text for r in read_manifest(without_phrase(manifest, "jarvis", tmp_path / "j")[0])] == [
        "turn on the light", "a quiet evening"]


def test_made_once_then_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = HeldoutSpeechConfig(n=3, seed=1000, engines=("espeak",))
    first = heldout_speech(config, cache=tmp_path)
    assert len(read_manifest(first)) == 3 and first.is_relative_to(tmp_path / "heldout")

    forbid(monkeypatch, synth, "synthesize_clips", "synthesized again")
    assert heldout_speech(config, cache=tmp_path) == first
    with pytest.raises(AssertionError, match="synthesized again"):  # other settings: another folder
        heldout_speech(config.replace(seed=2000), cache=tmp_path)


def test_held_out_speech_of_an_earlier_release_is_kept_while_its_voices_are_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sentences a release spoke into heldout/<settings>/ (now <settings>-<voices>/) are not spoken again."""
    config = HeldoutSpeechConfig(n=3, seed=1000, engines=("espeak",))
    first = heldout_speech(config, cache=tmp_path)
    earlier = first.parent.with_name(first.parent.name.rsplit("-", 1)[0])
    first.parent.rename(earlier)
    forbid(monkeypatch, synth, "synthesize_clips", "synthesized again")
    assert heldout_speech(config, cache=tmp_path) == earlier / first.name


def test_a_held_out_stream_is_made_once_for_every_phrase(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import wakebuilder.data.stream as stream_module
    from wakebuilder.bank.heldout import HeldoutStreamConfig, heldout_stream
    from wakebuilder.categories import StreamSegments
    from wakebuilder.errors import ConfigError

    config = HeldoutStreamConfig(speech=3, nonspeech=8, clip_s=1.0, duration_s=12.0, seed=1000, engines=("espeak",))
    made = heldout_stream(config, cache=tmp_path)
    assert made.stream.is_file() and made.stream.is_relative_to(tmp_path / "heldout")
    assert made.speech == heldout_speech(HeldoutSpeechConfig(n=3, seed=1000, engines=("espeak",)), cache=tmp_path)
    nonspeech = read_manifest(made.nonspeech)
    assert len(nonspeech) == 8 and {r.params["category"] for r in nonspeech} == {"music", "noise"}
    segments = StreamSegments.read(made.stream)
    spoken = {r.text for r in read_manifest(made.speech)}
    assert segments is not None and spoken & set(segments.texts)  # the texts say which clips a phrase leaves out

    forbid(monkeypatch, stream_module, "build_negative_stream", "built again")
    assert heldout_stream(config, cache=tmp_path) == made
    with pytest.raises(AssertionError, match="built again"):  # another seed: another stream
        heldout_stream(config.replace(seed=2000), cache=tmp_path)
    with pytest.raises(ConfigError, match="babbles held-out speech"):
        heldout_stream(config.replace(speech=0), cache=tmp_path)


def test_a_held_out_stream_whose_segments_say_no_clip_ends_is_made_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cached stream made before its segments said where each clip's audio ends left out, for a phrase its clips
    say, the whole pause after each (and real false accepts there); it is made again once, with the ends."""
    import json

    import wakebuilder.data.stream as stream_module
    from wakebuilder.bank.heldout import COMPLETE_NAME, HeldoutStreamConfig, heldout_stream
    from wakebuilder.categories import segments_path

    config = HeldoutStreamConfig(speech=3, nonspeech=0, clip_s=1.0, duration_s=6.0, seed=1000, engines=("espeak",))
    made = heldout_stream(config, cache=tmp_path)
    complete, sidecar = made.stream.parent / COMPLETE_NAME, segments_path(made.stream)
    recorded, data = json.loads(complete.read_text()), json.loads(sidecar.read_text())
    complete.write_text(json.dumps({k: v for k, v in recorded.items() if k != "format"}))  # as it was written before
    sidecar.write_text(json.dumps({**data, "segments": [row[:4] for row in data["segments"]]}))
    assert heldout_stream(config, cache=tmp_path) == made
    assert json.loads(sidecar.read_text()) == data and json.loads(complete.read_text()) == recorded
    forbid(monkeypatch, stream_module, "build_negative_stream", "built again")
    assert heldout_stream(config, cache=tmp_path) == made


def test_held_out_speech_and_its_stream_are_made_again_with_other_voices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The held-out sentences and the calibration and report streams built of them were kept in the cache by their
    settings alone, so after the voices found here changed (wb voices fetch, WB_KOKORO_VOICES, an engine installed)
    every phrase was calibrated on the old voices' stream. Both are now made again with the voices found now, and
    kept while those are the same."""
    import wakebuilder.data.stream as stream_module
    from tests.data.test_synth import fewer_voices
    from wakebuilder.bank.heldout import HeldoutStreamConfig, heldout_stream

    config = HeldoutStreamConfig(speech=3, nonspeech=0, clip_s=1.0, duration_s=6.0, seed=1000, engines=("espeak",))
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        old = heldout_stream(config, cache=tmp_path)
    old_ids, old_stream = {r.id for r in read_manifest(old.speech)}, old.stream.read_bytes()
    new = heldout_stream(config, cache=tmp_path)
    assert new != old and {r.id for r in read_manifest(new.speech)} != old_ids  # spoken again, in new folders
    assert new.stream.read_bytes() != old_stream
    forbid(monkeypatch, synth, "synthesize_clips", "synthesized again")
    forbid(monkeypatch, stream_module, "build_negative_stream", "built again")
    assert heldout_stream(config, cache=tmp_path) == new


def test_a_held_out_stream_in_use_is_not_remade_under_its_reader(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Phrase B's recipe, once the voices changed, made the held-out sentences and the calibration and report streams
    again in place (the same files), while phrase A was calibrating on the stream or reporting on its clips: A read
    the new stream against the old segments (or the other way round, refused), or clips that were deleted. Each is
    now made into a new folder named by its content, and what A holds stays as it was."""
    from tests.data.test_synth import fewer_voices
    from wakebuilder.bank.heldout import HeldoutStreamConfig, heldout_stream
    from wakebuilder.categories import StreamSegments

    config = HeldoutStreamConfig(speech=3, nonspeech=2, clip_s=1.0, duration_s=6.0, seed=1000, engines=("espeak",))
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        old = heldout_stream(config, cache=tmp_path)  # phrase A's
    assert old.nonspeech is not None
    held = [old.stream, *old.stream.parent.glob("*.json"), old.speech, old.nonspeech]
    held += [Path(r.path) if Path(r.path).is_absolute() else m.parent / r.path
             for m in (old.speech, old.nonspeech) for r in read_manifest(m)]
    before = {p: p.read_bytes() for p in held}
    new = heldout_stream(config, cache=tmp_path)  # phrase B's, with the voices found now
    assert new.stream != old.stream and new.speech != old.speech and new.stream.read_bytes() != before[old.stream]
    assert {p: p.read_bytes() for p in held} == before
    assert StreamSegments.read(old.stream) is not None and StreamSegments.read(new.stream) is not None


def test_a_second_builder_waits_for_the_first(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Two phrases' recipes sharing the cache: the second waits for the bank's build lock, it does not fail."""
    import logging
    import threading
    import time

    from filelock import FileLock

    from wakebuilder.atomic import waiting_lock

    path = tmp_path / "build.lock"
    held = FileLock(str(path))
    held.acquire()
    entered: list[float] = []

    def second() -> None:
        with waiting_lock(path, "negative bank"):
            entered.append(time.monotonic())

    caplog.set_level(logging.INFO, logger="wakebuilder.atomic")
    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)
    assert not entered  # still waiting
    released = time.monotonic()
    held.release()
    thread.join(timeout=10)
    assert entered and entered[0] >= released and "waiting for it" in caplog.text


def test_the_bank_exclusion_reads_the_phrase_without_punctuation() -> None:
    from wakebuilder.bank.exclude import plain_text, says_phrase

    assert plain_text("Hey, Jarvis!  It's") == "hey jarvis it's"
    said, _ = says_phrase(["hey, jarvis: lights on", "a quiet evening"], "Hey Jarvis?", max_distance=0.0)
    assert said.tolist() == [True, False]


def test_a_held_out_stream_of_an_older_version_is_made_again_into_a_new_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A release that changed how the held-out streams or their music and noise are made calibrated every phrase on
    the stream an older release left in the cache. The stream's record holds the versions of those stages now: one
    of an older version is made again, into another folder (a phrase may be reading the old one), and kept after."""
    import wakebuilder.data.stream as stream_module
    from wakebuilder.bank.heldout import HeldoutStreamConfig, heldout_stream
    from wakebuilder.data.nonspeech import make

    config = HeldoutStreamConfig(speech=3, nonspeech=2, clip_s=1.0, duration_s=6.0, seed=1000, engines=("espeak",))
    old = heldout_stream(config, cache=tmp_path)
    old_stream = old.stream.read_bytes()
    for module in (make, stream_module):
        monkeypatch.setattr(module, "VERSION", module.VERSION + 1)
        new = heldout_stream(config, cache=tmp_path)
        assert new.stream != old.stream and new.speech == old.speech and old.stream.read_bytes() == old_stream
        with monkeypatch.context() as patch:
            forbid(patch, stream_module, "build_negative_stream", "built again")
            assert heldout_stream(config, cache=tmp_path) == new
        old = new


def test_held_out_speech_of_an_older_synthesis_is_spoken_again_into_a_new_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Held-out sentences spoken by an older synthesis were kept in the cache; they are spoken again, into another
    folder (a phrase may be reading the old one), and kept after."""
    config = HeldoutSpeechConfig(n=3, seed=1000, engines=("espeak",))
    first = heldout_speech(config, cache=tmp_path)
    written = first.read_bytes()
    monkeypatch.setattr(synth, "VERSION", synth.VERSION + 1)
    again = heldout_speech(config, cache=tmp_path)
    assert again != first and first.read_bytes() == written
    forbid(monkeypatch, synth, "synthesize_clips", "synthesized again")
    assert heldout_speech(config, cache=tmp_path) == again
