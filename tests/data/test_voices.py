"""Many voices: Debian's pico, rhvoice and mbrola engines, licences, Kokoro's voices file and blends,
and fetched voice packs (loaded from local files; fetching offline fails fast)."""

from __future__ import annotations

import json
import logging
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from wakebuilder.cli import main
from wakebuilder.data.synth import SynthConfig, synthesize_clips
from wakebuilder.data.synth_voices import _voices_by_engine, select_voices
from wakebuilder.data.tts import (
    DEFAULT_ENGINES,
    ENGINES,
    NON_COMMERCIAL_ENGINES,
    Voice,
    get_engine,
    is_non_commercial,
    voice_licence,
)
from wakebuilder.data.tts import fetch
from wakebuilder.data.tts.kokoro import KokoroEngine, draw_blends
from wakebuilder.data.tts.kokoro_files import load_voices, read_style_pack
from wakebuilder.errors import ConfigError, EngineUnavailableError
from tests.data.test_tts import _installed_or_skip

SHARED_VOICES = Path(__file__).resolve().parents[2].parent / "shared" / "voices" / "kokoro-v1.0-voices.npz"
DEBIAN_ENGINES = ("pico", "rhvoice", "mbrola")


def _shared_voices_or_skip() -> str:
    if not SHARED_VOICES.is_file():
        pytest.skip(f"Kokoro v1.0 voices not found at {SHARED_VOICES} (the shared/ folder beside the clone)")
    return str(SHARED_VOICES)


@pytest.mark.parametrize("name", DEBIAN_ENGINES)
def test_debian_engine_voices_speak_and_settings_change_the_clip(name: str) -> None:
    engine = _installed_or_skip(name)
    voices = engine.voices()
    by_speed = {}
    for voice in voices[:: max(1, len(voices) // 40)]:
        by_speed.setdefault(voice.name, voice)
    for voice in by_speed.values():  # every base voice speaks the phrase at 16 kHz
        audio = engine.synthesize("hey jarvis", voice)
        assert audio.dtype == np.float32 and 0.3 < audio.size / 16_000 < 3 and np.abs(audio).max() > 0.05, voice.key
    first = voices[0]
    rate_key = "rate" if "rate" in first.settings else "speed"
    slow, fast = (Voice(name, first.name, {**first.settings, rate_key: value})
                  for value in (min(v.settings[rate_key] for v in voices), max(v.settings[rate_key] for v in voices)))
    assert engine.synthesize("hey jarvis", slow).size > 1.2 * engine.synthesize("hey jarvis", fast).size
    assert all(voice_licence(engine, v) != "unknown" for v in by_speed)


@pytest.mark.parametrize("name", DEBIAN_ENGINES)
def test_missing_debian_engine_says_how_to_install(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib
    import shutil

    module = importlib.import_module(f"wakebuilder.data.tts.{name}")
    monkeypatch.setattr(shutil, "which", lambda binary: None)
    engine = getattr(module, ENGINES[name].split(":")[1])()
    assert not engine.available()
    assert "Debian" in engine.why_unavailable() and "bin/setup" in engine.why_unavailable()
    with pytest.raises(EngineUnavailableError, match="apt-get|Debian"):
        engine.synthesize("hey", Voice(name, "x", {}))


def test_missing_engine_is_skipped_and_synth_runs_with_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(get_engine("pico"), "available", lambda: False)
    with caplog.at_level(logging.WARNING):
        records = synthesize_clips(SynthConfig(texts=("hey jarvis",), n=3, engines=("pico", "espeak"), workers=1),
                                   out_dir=tmp_path)
    assert {r.source for r in records} == {"espeak"} and len(records) == 3
    assert "pico unavailable" in caplog.text and "libttspico-utils" in caplog.text


def test_non_commercial_voices_only_when_named() -> None:
    assert not set(DEFAULT_ENGINES) & set(NON_COMMERCIAL_ENGINES)
    assert is_non_commercial("CC-BY-NC-ND-4.0 (non-commercial)") and not is_non_commercial("LGPL-2.1+")
    _installed_or_skip("rhvoice")
    plain = _voices_by_engine(SynthConfig(texts=("hi",), n=1, engines=("rhvoice",)), None)
    assert {v.name for v in plain["rhvoice"]} <= {"alan", "bdl", "clb", "slt"}
    named = _voices_by_engine(SynthConfig(texts=("hi",), n=1, engines=("rhvoice",), voice_pattern="lyubov"), None)
    assert {v.name for v in named["rhvoice"]} == {"lyubov"}
    for engine in (get_engine(name) for name in DEFAULT_ENGINES):
        if engine.available():
            assert not any(is_non_commercial(voice_licence(engine, v.name)) for v in engine.voices()), engine.name


@pytest.mark.parametrize(("pattern", "non_commercial"), [
    ("pitch=100", set()), ("^rhvoice:", set()), ("rate=70$", set()),
    ("rhvoice:lyubov", {"lyubov"}), ("lyubov:pitch=100", {"lyubov"}), ("^(slt|evgeniy-eng)$", {"evgeniy-eng"}),
])
def test_a_pattern_names_non_commercial_voices_by_name_not_by_settings(pattern: str, non_commercial: set[str]) -> None:
    """``--voices`` names a non-commercial voice by its name; one choosing a pitch, a rate or the engine does not."""
    _installed_or_skip("rhvoice")
    found = _voices_by_engine(SynthConfig(texts=("hi",), n=1, engines=("rhvoice",), voice_pattern=pattern), None)
    names = {v.name for v in found["rhvoice"]}
    assert names and names - {"alan", "bdl", "clb", "slt"} == non_commercial


def test_blends_mix_two_or_three_voices_of_one_prefix_deterministically() -> None:
    names = [f"af_{k}" for k in range(11)] + [f"am_{k}" for k in range(9)] + ["bf_a", "bf_b", "ef_only"]
    blends = draw_blends(names, seed=0)
    assert blends == draw_blends(list(reversed(names)), seed=0) != draw_blends(names, seed=1)
    assert len(blends) == 2 * (11 + 9 + 2)  # two per voice of each prefix with at least two voices
    for name, parts in blends.items():
        prefix = name.split("_")[0]
        assert 2 <= len(parts) <= 3 and all(p.startswith(prefix + "_") for p in parts), (name, parts)
        assert abs(sum(parts.values()) - 1) <= 0.02 and min(parts.values()) > 0
    assert len({tuple(sorted(p.items())) for p in blends.values()}) == len(blends)


def test_kokoro_voices_file_and_prefix_selection() -> None:
    path = _shared_voices_or_skip()
    engine = KokoroEngine()
    if not engine.available():
        pytest.skip(engine.why_unavailable())
    engine.use_voices_file(path)
    voices = engine.voices()
    bases = {v.name for v in voices if "mix" not in v.name}
    assert len(bases) == 54 and {"af_heart", "bm_george", "zf_xiaobei"} <= bases
    english = select_voices(voices, "^[ab][fm]_")
    assert {v.name.split("_")[0] for v in english} == {"af", "am", "bf", "bm"}
    assert len({v.name for v in english if "mix" not in v.name}) == 28
    audio = engine.synthesize("hey jarvis", next(v for v in english if v.name == "bm_george"))
    assert 0.4 < audio.size / 16_000 < 2.5 and np.abs(audio).max() > 0.05
    with pytest.raises(EngineUnavailableError, match="--kokoro-voices"):
        load_voices(Path(path).parent / "README.md")


def test_kokoro_truncated_voices_file_is_a_clear_error(tmp_path: Path) -> None:
    whole = tmp_path / "whole.npz"
    np.savez(whole, af_a=np.zeros((510, 1, 256), np.float32), af_b=np.ones((510, 1, 256), np.float32))
    cut = tmp_path / "voices-v1.0.bin"  # a download that stopped half way
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(EngineUnavailableError, match=r"voices-v1\.0\.bin.*--kokoro-voices"):
        load_voices(cut)


def test_kokoro_voices_file_holding_one_npy_array_is_a_clear_error(tmp_path: Path) -> None:
    single = tmp_path / "af_heart.npy"  # one voice saved with np.save: an array, not an npz of named voices
    np.save(single, np.zeros((510, 1, 256), np.float32))
    with pytest.raises(EngineUnavailableError, match=r"af_heart\.npy.*--kokoro-voices"):
        load_voices(single)


def test_kokoro_voices_file_with_an_empty_voice_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "voices.npz"  # af_b has no style rows: every utterance would index row -1 of nothing
    np.savez(path, af_a=np.zeros((510, 1, 256), np.float32), af_b=np.zeros((0, 1, 256), np.float32))
    with pytest.raises(EngineUnavailableError, match=r"voices\.npz.*af_b"):
        load_voices(path)


def test_kokoro_synth_in_two_workers_with_a_voices_file(tmp_path: Path) -> None:
    path = _shared_voices_or_skip()
    if not KokoroEngine().available():
        pytest.skip(KokoroEngine().why_unavailable())
    config = SynthConfig(texts=("hey jarvis",), n=4, engines=("kokoro",), voice_pattern="^bm_", kokoro_voices=path,
                         workers=2)
    try:
        records = synthesize_clips(config, out_dir=tmp_path)
    finally:
        get_engine("kokoro").use_voices_file(None)  # type: ignore[attr-defined]
    assert len(records) == 4 and all(r.group.startswith("kokoro:bm_") for r in records)


def _torch_like_pack(path: Path, values: np.ndarray) -> None:
    """A zip laid out as torch.save writes one tensor (the pickle is never read)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("af_x/data.pkl", b"not read")
        archive.writestr("af_x/data/0", values.astype("<f4").tobytes())


def _hub_file(cache: Path, remote: fetch.RemoteFile) -> Path:
    folder = cache / f"models--{remote.repo.replace('/', '--')}" / "snapshots" / remote.revision
    return folder / remote.filename


def test_fetched_kokoro_voices_load_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("WB_KOKORO_VOICES", raising=False)
    rng = np.random.default_rng(0)
    tables = {}
    for remote in fetch.packs()["kokoro-en"][:3]:
        tables[Path(remote.filename).stem] = rng.standard_normal((510, 256)).astype(np.float32)
        _torch_like_pack(_hub_file(tmp_path / "hub", remote), tables[Path(remote.filename).stem])
    found = fetch.cached_kokoro_packs()
    assert set(found) == set(tables)
    for name, path in found.items():
        np.testing.assert_array_equal(read_style_pack(path), tables[name])
    engine = KokoroEngine()
    np.testing.assert_array_equal(engine._styles()["af_alloy"], tables["af_alloy"])
    bad = tmp_path / "bad.pt"
    _torch_like_pack(bad, np.zeros(100, np.float32))
    with pytest.raises(EngineUnavailableError, match="510 x 256"):
        read_style_pack(bad)


def test_a_damaged_fetched_kokoro_voice_says_how_to_fetch_it_again(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.delenv("WB_KOKORO_VOICES", raising=False)
    good, cut = fetch.packs()["kokoro-en"][:2]
    _torch_like_pack(_hub_file(tmp_path / "hub", good), np.zeros((510, 256), np.float32))
    _torch_like_pack(_hub_file(tmp_path / "hub", cut), np.zeros(1000, np.float32))  # a download cut short
    with pytest.raises(EngineUnavailableError, match=rf"{Path(cut.filename).name}.*wb voices fetch kokoro-en"):
        KokoroEngine()._styles()


def test_list_voices_lists_the_other_engines_when_one_cannot_read_its_voices(tmp_path: Path) -> None:
    cut = tmp_path / "voices.npz"  # --kokoro-voices FILE cut short: Kokoro's line says so, the others are listed
    cut.write_bytes(b"PK\x03\x04 cut short")
    if not KokoroEngine().available():
        pytest.skip(KokoroEngine().why_unavailable())
    try:
        result = CliRunner().invoke(main, ["synth", "--list-voices", "--kokoro-voices", str(cut)])
    finally:
        get_engine("kokoro").use_voices_file(None)  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    assert f"kokoro\tunavailable: {cut}: not a Kokoro voices file" in result.output
    assert "espeak:en-us\tvoice" in result.output


def test_fetched_piper_voice_gives_its_speakers_as_voices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wakebuilder.data.tts.piper import PiperEngine

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    model, config = (_hub_file(tmp_path / "hub", r) for r in fetch.packs()["en_US-libritts_r-medium"])
    model.parent.mkdir(parents=True)
    model.write_bytes(b"onnx")
    config.write_text(json.dumps({"num_speakers": 3, "speaker_id_map": {"p3922": 0, "p8699": 1, "p4535": 2}}))
    assert fetch.cached_piper_voices() == [model]
    engine = PiperEngine()
    voices = engine.voices(["en_US-libritts_r-medium"])
    assert {v.name for v in voices} == {f"en_US-libritts_r-medium#p{s}" for s in (3922, 8699, 4535)}
    assert {v.settings["speaker_id"] for v in voices} == {0, 1, 2}
    assert "CC-BY-4.0" in engine.licence(voices[0].name)


def test_fetch_checks_pinned_and_first_fetch_sha256(tmp_path: Path) -> None:
    good = tmp_path / "a.pt"
    good.write_bytes(b"voice")
    import hashlib

    digest = hashlib.sha256(b"voice").hexdigest()
    assert fetch.verify(fetch.RemoteFile("r/x", "a.pt", "rev", digest), good) == digest
    with pytest.raises(EngineUnavailableError, match="sha256"):
        fetch.verify(fetch.RemoteFile("r/x", "a.pt", "rev", "0" * 64), good)
    assert not good.exists()  # a file that fails its check is not left to be used
    first = tmp_path / "b.json"
    first.write_text("{}")
    unpinned = fetch.RemoteFile("r/x", "b.json", "rev", None)
    fetch.verify(unpinned, first)  # recorded
    fetch.verify(unpinned, first)  # matches the record
    first.write_text('{"changed": 1}')
    with pytest.raises(EngineUnavailableError, match="sha256"):
        fetch.verify(unpinned, first)


@pytest.mark.parametrize("text", ["", '{"r/x@rev/b.json": {"sha', "[]", '{"r/x@rev/b.json": "abc"}'])
def test_a_damaged_first_fetch_record_is_a_clear_error(tmp_path: Path, text: str) -> None:
    record = fetch._record_path()
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(text)
    first = tmp_path / "b.json"
    first.write_text("{}")
    with pytest.raises(EngineUnavailableError, match=r"first-fetch\.json.*remove it"):
        fetch.verify(fetch.RemoteFile("r/x", "b.json", "rev", None), first)


def test_concurrent_first_fetches_keep_every_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two fetches recording their first sha256 at once (reads interleaved): neither loses the other's record."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    real_read_text = Path.read_text

    def slow_read_text(self: Path, *args, **kwargs) -> str:
        text = real_read_text(self, *args, **kwargs)
        if self.name == "first-fetch.json":
            time.sleep(0.3)  # the other fetch reads meanwhile, unless a lock keeps it out
        return text

    monkeypatch.setattr(Path, "read_text", slow_read_text)
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path / "cache"))
    files = []
    for name in ("seed", "a", "b"):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps({"voice": name}))
    remotes = [fetch.RemoteFile("r/x", f.name, "rev", None) for f in files]
    fetch.verify(remotes[0], files[0])  # the record file exists, so each fetch below reads it
    start = threading.Barrier(2)

    def record(i: int) -> str:
        start.wait()
        return fetch.verify(remotes[i], files[i])

    with ThreadPoolExecutor(2) as pool:
        list(pool.map(record, (1, 2)))
    records = json.loads(real_read_text(fetch._record_path()))
    assert sorted(records) == sorted(f"r/x@rev/{f.name}" for f in files)


@pytest.mark.parametrize("how", ["HF_HUB_OFFLINE", "unreachable endpoint", "real host"])
def test_fetch_offline_fails_fast_saying_how_to_pass_local_files(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if how != "HF_HUB_OFFLINE":
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    if how == "unreachable endpoint":
        monkeypatch.setenv("HF_ENDPOINT", "http://10.255.255.1")  # a non-routable address: the connect hangs
    if how == "real host" and fetch._reachable("https://huggingface.co", 2.0):
        pytest.skip("huggingface.co is reachable here; this checks the offline path")
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["voices", "fetch", "kokoro-en"])
    assert time.perf_counter() - started < 3
    assert result.exit_code != 0
    lines = [line for line in result.output.splitlines() if line]
    assert len(lines) == 1 and lines[0].startswith("wb: error:") and "--kokoro-voices" in lines[0], result.output


def test_fetch_unknown_pack_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="kokoro-en"):
        fetch.fetch("nope")


def test_list_voices_shows_sixty_base_voices_with_licences() -> None:
    args = ["synth", "hey jarvis", "--list-voices"]
    if SHARED_VOICES.is_file():
        args += ["--kokoro-voices", str(SHARED_VOICES)]
    try:
        result = CliRunner().invoke(main, args)
    finally:
        get_engine("kokoro").use_voices_file(None)  # type: ignore[attr-defined]
    assert result.exit_code == 0, result.output
    voice_lines = [line.split("\t") for line in result.output.splitlines() if line.startswith("  ")]
    assert voice_lines and all(len(parts) == 4 and parts[3] not in ("", "unknown") for parts in voice_lines)
    bases = {parts[0].strip() for parts in voice_lines if parts[1] == "voice"}
    engines = ("kokoro", "flite", "piper", *DEBIAN_ENGINES)
    if SHARED_VOICES.is_file() and all(get_engine(n).available() for n in engines):
        assert len(bases) >= 60, sorted(bases)
    assert "non-commercial" in result.output or not get_engine("mbrola").available()


def test_kokoro_says_when_it_falls_back_to_its_bundled_voices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    from tests.data.test_tts import _kokoro_or_skip

    _kokoro_or_skip()
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))  # nothing fetched
    monkeypatch.delenv("WB_KOKORO_VOICES", raising=False)
    monkeypatch.setattr("wakebuilder.data.tts.kokoro._WARNED_BUNDLED", False)
    with caplog.at_level(logging.WARNING, logger="wakebuilder.data.tts.kokoro"):
        names = {voice.name for voice in KokoroEngine().voices()}
        KokoroEngine().voices()  # once a process, not once a call
    assert not any(name.startswith(("af_", "am_", "bf_", "bm_")) for name in names)
    warned = [r.getMessage() for r in caplog.records if "bundled" in r.getMessage()]
    assert len(warned) == 1 and "wb voices fetch kokoro-en" in warned[0] and "WB_KOKORO_VOICES" in warned[0]
    caplog.clear()
    monkeypatch.setenv("WB_KOKORO_VOICES", _shared_voices_or_skip())
    with caplog.at_level(logging.WARNING, logger="wakebuilder.data.tts.kokoro"):
        monkeypatch.setattr("wakebuilder.data.tts.kokoro._WARNED_BUNDLED", False)
        KokoroEngine().voices()
    assert not [r for r in caplog.records if "bundled" in r.getMessage()]


def test_a_rerun_with_another_voices_file_of_the_same_names_makes_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's voices were known by their names and settings only, so a rerun with WB_KOKORO_VOICES pointed at
    another file holding voices of the same names kept the clips made with the old file. The voice files' contents
    are now part of the identity a run records: the rerun makes its clips again; with the same file it keeps them."""
    from tests.data.test_tts import _kokoro_or_skip
    from wakebuilder.data.synth import keep_or_run_synth

    _kokoro_or_skip()
    rng = np.random.default_rng(0)
    files = []
    for k in range(2):  # the same two names, other styles
        files.append(tmp_path / f"voices-{k}.npz")
        np.savez(files[-1], **{name: rng.standard_normal((510, 1, 256)).astype(np.float32) * 0.1
                               for name in ("af_a", "af_b")})
    config = SynthConfig(texts=("hey",), n=1, engines=("kokoro",), voice_pattern="^af_a$", workers=1)
    out = tmp_path / "run"
    monkeypatch.setenv("WB_KOKORO_VOICES", str(files[0]))
    first = {r["id"] for r in map(json.loads, keep_or_run_synth(config, out_dir=out).read_text().splitlines())}
    kept = {p.name: p.stat().st_ino for p in (out / "clips").glob("*.wav")}
    keep_or_run_synth(config, out_dir=out)
    assert {p.name: p.stat().st_ino for p in (out / "clips").glob("*.wav")} == kept  # the same file: kept
    monkeypatch.setenv("WB_KOKORO_VOICES", str(files[1]))
    again = {r["id"] for r in map(json.loads, keep_or_run_synth(config, out_dir=out).read_text().splitlines())}
    assert again and not again & first  # made again with the other file's voices


def test_a_piper_voice_of_the_same_name_from_another_file_is_another_voice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--piper-voice (or WB_PIPER_VOICES) pointed at another file of the same voice name: the identity a run records
    of its voices changes with the file's contents (and not with a file of other voices)."""
    from wakebuilder.data.synth_voices import voice_identity

    engine = get_engine("piper")
    voices = {"piper": [Voice("piper", "en_x-voice", {"length_scale": 1.0})]}
    identities = []
    for k, contents in enumerate((b"one", b"two")):
        model = tmp_path / str(k) / "en_x-voice.onnx"
        model.parent.mkdir()
        model.write_bytes(contents)
        Path(f"{model}.json").write_text("{}", encoding="utf-8")
        monkeypatch.setitem(engine._paths, "en_x-voice", model)  # type: ignore[attr-defined]
        identities.append(voice_identity(voices))
    assert identities[0]["sha256"] == identities[1]["sha256"] and identities[0] != identities[1]
    assert "files" not in voice_identity({"espeak": [Voice("espeak", "en")]})


def test_the_non_commercial_voices_left_out_are_said_once_a_process(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """RHVoice's line that its non-commercial voices are left out was said by every synthesis step that found the
    voices (positives, each negatives pass, the bank's speech and words: several times a recipe run); it is now
    said once a process."""
    from wakebuilder.data import synth_voices

    monkeypatch.setattr(synth_voices, "_SAID_LEFT_OUT", set())
    engine = get_engine("rhvoice")
    voices = [Voice("rhvoice", name, {"rate": 100, "pitch": 100}) for name in ("slt", "lyubov", "evgeniy-eng")]
    with caplog.at_level(logging.INFO, logger="wakebuilder.data.synth_voices"):
        for _ in range(3):
            assert [voice.name for voice in synth_voices.commercial_voices(engine, voices)] == ["slt"]
    said = [record.getMessage() for record in caplog.records if "non-commercial licence" in record.getMessage()]
    assert len(said) == 1 and "evgeniy-eng, lyubov" in said[0] and "--voices" in said[0]


def test_kokoro_voices_file_of_other_style_width_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "voices.npz"  # 510 x 128 values reshape into 255 rows of 256: two half-styles glued, not a voice
    np.savez(path, af_a=np.zeros((510, 1, 256), np.float32), af_b=np.ones((510, 1, 128), np.float32))
    with pytest.raises(EngineUnavailableError, match=r"voices\.npz.*af_b.*\(510, 1, 128\)"):
        load_voices(path)


@pytest.mark.parametrize("kind", ["missing", "not-onnx", "other-onnx"])
def test_a_bad_kokoro_model_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    if not KokoroEngine().available():
        pytest.skip(KokoroEngine().why_unavailable())
    model = tmp_path / "kokoro.onnx"
    if kind == "not-onnx":
        model.write_text("not a model")
    elif kind == "other-onnx":  # a valid ONNX graph without Kokoro's inputs (tokens, style, speed)
        import onnx
        from onnx import TensorProto, helper

        graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), model)
    monkeypatch.setenv("WB_KOKORO_MODEL", str(model))
    with pytest.raises(EngineUnavailableError, match=r"kokoro\.onnx.*WB_KOKORO_MODEL"):
        KokoroEngine().voices()
