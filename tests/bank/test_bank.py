"""The negative bank: where it lives, how it grows, and which of its rows a phrase leaves out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.conftest import noise, tone
from tests.store.test_union import IDENTITY, rows, write
from tests.test_embed import count_embedded
from tests.train.conftest import SMALL
from wakebuilder.audio import quantize_pcm16, write_wav
from wakebuilder.bank.build import build_bank
from wakebuilder.bank.negatives import BankNegativesConfig
from wakebuilder.bank.ensure import ensure_bank
from wakebuilder.bank.exclude import default_distance, says_phrase
from wakebuilder.bank.location import BANK_MARKER, bank_store_path, cache_dir, is_bank_store
from wakebuilder.bank.retired import open_served, retire
from wakebuilder.calibrate import calibrate_model
from wakebuilder.cli import main
from wakebuilder.errors import BackboneError, ConfigError, StoreMismatchError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, write_manifest
from wakebuilder.modeldir import load_model
from wakebuilder.store import open_store


def test_cache_folder_follows_xdg_and_is_overridable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WB_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr("sys.platform", "linux")
    assert cache_dir() == tmp_path / "xdg" / "wakebuilder"
    expected = tmp_path / "xdg/wakebuilder/banks/speech-embedding-2.5s/store.zarr"
    assert bank_store_path("speech-embedding", 2.5) == expected
    assert bank_store_path("MIT/ast-x", None).parent.name == "MIT--ast-x-native"
    monkeypatch.setenv("WB_CACHE_DIR", str(tmp_path / "wb"))
    assert cache_dir() == tmp_path / "wb"
    assert cache_dir(tmp_path / "mine") == tmp_path / "mine"
    result = CliRunner().invoke(main, ["bank", "path", "--backbone", "speech-embedding", "--window-s", "2.5"])
    assert result.stdout.strip() == str(tmp_path / "wb/banks/speech-embedding-2.5s/store.zarr")


def test_unknown_backbone_is_refused_before_the_bank_folder_is_made(tmp_path: Path) -> None:
    manifest = negatives_manifest(tmp_path / "clips", 2)
    cache = tmp_path / "c"
    with pytest.raises(BackboneError, match="nope.*unknown backbone"):
        build_bank([manifest], backbone="nope", cache=cache, progress=False)
    with pytest.raises(BackboneError, match="nope"):
        ensure_bank(BankNegativesConfig(speech=0, words=0, stream_s=0.0, engines=("espeak",), workers=1),
                    backbone="nope", window_s=None, cache=cache)
    for command in ("build", "path", "info"):
        args = ["bank", command, *([str(manifest)] if command == "build" else []), "--backbone", "nope",
                "--cache-dir", str(cache)]
        result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and isinstance(result.exception, SystemExit), (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("wb: error: --backbone 'nope'"), (command, result.output)
    assert not cache.exists()  # no bank folder, no bank.json


def test_bank_info_without_a_bank_says_to_build_the_bank(tmp_path: Path) -> None:
    """wb bank info with no bank told the user to `wb embed --store` into the cache's bank folder, which makes no bank
    (no marker, no manifests recorded); it now says what wb bank reclaim says: wb bank build, or check the options."""
    cache = tmp_path / "c"
    for made in ("nothing", "a marker without a store"):  # the second: a build that embedded no clip
        result = CliRunner().invoke(main, ["bank", "info", "--backbone", "speech-embedding", "--cache-dir", str(cache)])
        assert result.exit_code == 1 and result.stdout == "", (made, result.output)
        line = result.stderr.strip()
        assert line.count("\n") == 0 and "no negative bank here" in line and "wb bank build" in line, (made, line)
        assert "wb embed" not in line and "--cache-dir" in line, (made, line)
        store = bank_store_path("speech-embedding", None, cache=cache)
        store.parent.mkdir(parents=True, exist_ok=True)
        (store.parent / BANK_MARKER).write_text(json.dumps({"kind": "wakebuilder negative bank", "manifests": []}))


def test_a_word_embedding_bank_is_found_and_reclaimed_without_its_model(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """wb bank path, info and reclaim name a bank folder and read or shrink what is there: they load no backbone, so
    a word-embedding bank stays reachable (and its disk reclaimable) once EfficientWord-Net is uninstalled; building
    one is still refused at once."""
    from wakebuilder.backbones import word_embedding as we

    monkeypatch.delenv(we.MODEL_ENV, raising=False)
    monkeypatch.setattr(we.importlib.util, "find_spec", lambda name: None)
    cache = tmp_path / "c"
    path = CliRunner().invoke(main, ["bank", "path", "--backbone", "word-embedding", "--cache-dir", str(cache)])
    assert path.exit_code == 0, path.output
    assert path.stdout.strip() == str(bank_store_path("word-embedding", None, cache=cache))
    for command in ("info", "reclaim"):
        result = CliRunner().invoke(main, ["bank", command, "--backbone", "word-embedding", "--cache-dir", str(cache)])
        assert "EfficientWord-Net" not in result.output, (command, result.output)  # no bank there: another error
    build = CliRunner().invoke(main, ["bank", "build", str(negatives_manifest(tmp_path / "clips", 2)), "--backbone",
                                      "word-embedding", "--cache-dir", str(cache)])
    assert build.exit_code != 0 and "pip install --no-deps EfficientWord-Net" in build.output, build.output


def negatives_manifest(folder: Path, n: int, *, start: int = 0, label: int = 0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(start, start + n):
        samples = tone(150 + 41 * i, 1.0) + noise(1.0, amplitude=0.05, seed=100 + i)
        write_wav(folder / f"{i}.wav", samples)
        records.append(ClipRecord(id=audio_id(quantize_pcm16(samples)), path=f"{i}.wav", label=label,
                                  kind="noise", group=f"n{i % 3}", duration_s=1.0))
    return write_manifest(folder / f"manifest-{start}.jsonl", records)


def test_bank_grows_by_embedding_only_new_clips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = count_embedded(monkeypatch)
    first = negatives_manifest(tmp_path / "clips", 12)
    summary = build_bank([first], backbone="speech-embedding", window_s=2.0, cache=tmp_path / "c", progress=False)
    assert summary["embedded"] == 12 and sum(calls) == 12
    assert summary["path"] == str(tmp_path / "c/banks/speech-embedding-2s/store.zarr")
    assert is_bank_store(summary["path"])
    calls.clear()
    extra = negatives_manifest(tmp_path / "clips", 5, start=12)
    out = CliRunner().invoke(main, ["bank", "build", str(first), str(extra), "--backbone", "speech-embedding",
                                    "--window-s", "2", "--cache-dir", str(tmp_path / "c"), "--json"])
    assert out.exit_code == 0, out.output
    again = json.loads(out.stdout)
    assert sum(calls) == 5 and again["embedded"] == 5 and again["skipped_existing"] == 12
    assert again["clips_in_store"] == 17
    marker = json.loads((Path(summary["path"]).parent / BANK_MARKER).read_text())
    assert marker["manifests"] == [str(first.resolve()), str(extra.resolve())] and marker["clips"] == 17
    with open_store(summary["path"]) as store:
        assert store.spec.backbone["window_s"] == 2.0 and len(store) == 17
    info = CliRunner().invoke(main, ["bank", "info", "--backbone", "speech-embedding", "--window-s", "2",
                                     "--cache-dir", str(tmp_path / "c"), "--json"])
    assert info.exit_code == 0 and json.loads(info.stdout)["clips"] == 17
    with pytest.raises(ConfigError, match="label 1"):
        build_bank([negatives_manifest(tmp_path / "pos", 2, label=1)], backbone="speech-embedding",
                   window_s=2.0, cache=tmp_path / "c", progress=False)


@pytest.mark.parametrize("text", ["", "\n\n"])
def test_a_manifest_without_clips_is_refused_before_the_bank_is_made(tmp_path: Path, text: str) -> None:
    """wb bank build of a manifest with no rows wrote bank.json, then found nothing to embed and made no store: a
    broken bank that later commands tripped over. Now it is one line naming the manifest, before anything is
    written; beside a manifest with clips too (recorded as embedded, it would have embedded none)."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text(text)
    cache = tmp_path / "c"
    for manifests in ([empty], [negatives_manifest(tmp_path / "clips", 2), empty]):
        result = CliRunner().invoke(main, ["bank", "build", *map(str, manifests), "--backbone", "speech-embedding",
                                           "--window-s", "2", "--cache-dir", str(cache)])
        assert result.exit_code == 1 and result.stdout == "", result.output
        line = result.stderr.strip()
        assert line.count("\n") == 0 and line.startswith(f"wb: error: {empty}: no clips"), line
        assert not cache.exists()  # no bank folder, no bank.json


def test_cli_bank_build_changes_the_retired_clips_under_the_build_lock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``wb bank build`` rewrites retired.json as a recipe's ``ensure_bank`` does: holding the bank's build lock, so
    the two never race; a second holder (a recipe building the bank) makes it wait, not fail."""
    from filelock import FileLock, Timeout

    import wakebuilder.bank.build as build_module

    count_embedded(monkeypatch)
    lock = bank_store_path("speech-embedding", 2.0, cache=tmp_path / "c").parent / "build.lock"
    held: list[bool] = []

    def recording_retire(store: Path, **kwargs: object) -> None:
        probe = FileLock(str(lock))
        try:
            probe.acquire(timeout=0)
        except Timeout:
            held.append(True)
        else:
            probe.release()
            held.append(False)
        retire(store, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(build_module, "retire", recording_retire)
    manifest = negatives_manifest(tmp_path / "clips", 3)
    out = CliRunner().invoke(main, ["bank", "build", str(manifest), "--backbone", "speech-embedding",
                                    "--window-s", "2", "--cache-dir", str(tmp_path / "c")])
    assert out.exit_code == 0, out.output
    assert held == [True]


def test_says_phrase_in_letters_and_in_phonemes() -> None:
    texts = ["please hey wake now", "hay wake", "hey rake", "the weather is fine", "", "wake"]
    said, limit = says_phrase(texts, "hey wake")
    assert limit == default_distance(5) == 0.5
    assert said.tolist() == [True, True, True, False, False, False]
    assert says_phrase(["hey rake"], "hey wake", max_distance=0.0)[0].tolist() == [False]
    # "read" is R EH D and R IY D: a bank row saying "reed" says the wake word
    assert says_phrase(["please reed it", "red", "ride"], "read")[0].tolist() == [True, True, False]


@pytest.fixture(scope="module")
def phrase_and_bank(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    root = tmp_path_factory.mktemp("bank-fit")
    phrase = write(root / "phrase.zarr", [rows(200, seed=0, prefix="p")])
    bank_path = bank_store_path("test", 1.0, cache=root / "cache")
    bank_path.parent.mkdir(parents=True)
    (bank_path.parent / BANK_MARKER).write_text("{}")
    texts = ["music playing", "say hey wake please", "hay wake", "hey rake"] * 30
    records, sequence = rows(120, seed=1, prefix="b")
    records = [ClipRecord(id=r.id, path=r.path, label=0, kind="speech_negative", group=f"bank{i % 5}", text=t)
               for i, (r, t) in enumerate(zip(records, texts, strict=True))]
    write(bank_path, [(records, sequence)])
    # The phrase's own store holds the same sound-alike as a hard negative: it stays.
    hard = rows(10, seed=2, prefix="h")
    write(root / "hard.zarr", [([ClipRecord(id=r.id, path=r.path, label=0, kind="hard_negative", group="hard",
                                            text="hey rake") for r in hard[0]], hard[1])])
    result = CliRunner().invoke(main, [
        "fit", "--store", str(phrase), "--store", str(root / "hard.zarr"), "--store", str(bank_path),
        "--out", str(root / "model"), "--max-epochs", "2", "--width", "16", "--hidden", "16",
        "--tcn-layers", "1", "--batch-size", "32", "--json",
    ])
    assert result.exit_code == 0, result.output
    return {"root": root, "stores": [phrase, root / "hard.zarr", bank_path], "summary": json.loads(result.stdout)}


def test_bank_rows_saying_the_phrase_are_left_out_and_counted(phrase_and_bank: dict) -> None:
    summary, root = phrase_and_bank["summary"], phrase_and_bank["root"]
    assert summary["bank_rows_excluded"] == 90  # "say hey wake please", "hay wake", "hey rake": 30 each
    meta = load_model(root / "model").meta
    assert meta["wake_word"] == "hey wake"
    assert meta["bank_exclusion"]["excluded"] == 90 and "hay wake" in meta["bank_exclusion"]["examples"]
    assert [s["excluded"] for s in meta["stores"]] == [0, 0, 90]
    training = meta["training"]
    assert training["n_train"] + training["n_val"] == 200 + 10 + 30


def test_calibration_leaves_out_the_same_bank_rows(phrase_and_bank: dict) -> None:
    root, stores = phrase_and_bank["root"], phrase_and_bank["stores"]
    model = load_model(root / "model")
    val_groups = set(model.split["val_groups"])
    with open_store(stores[2]) as bank:
        arrays = bank.load(pooled=False, sequence=False)
        texts = [r.text for r in bank.records()]
    bank_val = sum(1 for g, t in zip(arrays.group, texts, strict=True) if g in val_groups and t == "music playing")
    left_out_val = sum(1 for g, t in zip(arrays.group, texts, strict=True) if g in val_groups and t != "music playing")
    assert left_out_val > 0  # else this test could not tell
    expected = 0
    for path in stores[:2]:
        with open_store(path) as store:
            expected += int(np.isin(store.load(pooled=False, sequence=False).group, list(val_groups)).sum())
    _, summary = calibrate_model(root / "model", stores)
    counts = summary["n_validation"]
    assert counts["positives"] + counts["negatives"] == expected + bank_val
    assert summary["objective"] == "f1"  # auto without a stream


def test_ensure_bank_builds_once_then_reuses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wakebuilder.bank.negatives import BankNegativesConfig
    from wakebuilder.bank.ensure import ensure_bank

    calls = count_embedded(monkeypatch)
    config = BankNegativesConfig(speech=4, words=4, stream_s=6.0, chunk_s=1.5, hop_s=1.0, engines=("espeak",),
                                 workers=1)
    first = ensure_bank(config, backbone="speech-embedding", window_s=None, cache=tmp_path / "c", device="cpu")
    assert first.synthesized and first.embedded == first.clips == sum(calls) > 16  # speech, words, copies, windows
    with open_store(first.store) as store:
        kinds = set(store.load(pooled=False, sequence=False).kind.tolist())
    assert {"speech_negative", "word_negative", "augmented", "real_negative"} <= kinds
    calls.clear()
    again = ensure_bank(config, backbone="speech-embedding", window_s=None, cache=tmp_path / "c", device="cpu")
    assert not again.synthesized and again.embedded == 0 and calls == [] and again.clips == first.clips
    extra = negatives_manifest(tmp_path / "music", 3)
    grown = ensure_bank(config, backbone="speech-embedding", window_s=None, cache=tmp_path / "c",
                        extra_manifests=[extra], device="cpu")
    assert not grown.synthesized and grown.embedded == 3 == sum(calls) and grown.clips == first.clips + 3


def test_bank_holds_nonspeech_and_an_old_bank_is_extended_with_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from wakebuilder.bank.negatives import BankNegativesConfig
    from wakebuilder.bank.ensure import ensure_bank
    from wakebuilder.categories import record_category
    from wakebuilder.data import debian
    from wakebuilder.manifest import read_manifest

    monkeypatch.setattr(debian, "apt_available", lambda: "apt-get not found")  # never the network in tests
    calls = count_embedded(monkeypatch)
    old = BankNegativesConfig(speech=4, words=0, stream_s=4.0, chunk_s=1.5, hop_s=1.0, engines=("espeak",), workers=1)
    first = ensure_bank(old, backbone="speech-embedding", window_s=None, cache=tmp_path / "c", device="cpu")
    calls.clear()
    new = old.replace(nonspeech=8, debian=True)
    with caplog.at_level("WARNING"):
        grown = ensure_bank(new, backbone="speech-embedding", window_s=None, cache=tmp_path / "c", device="cpu")
    assert "apt-get not found" in caplog.text  # no apt: a warning, and the bank is built without Debian's audio
    assert grown.synthesized and grown.store == first.store  # new settings: not reused as it was
    assert grown.embedded == sum(calls) == 16 and grown.clips == first.clips + 16  # 8 clips + 8 copies only
    (folder,) = [p for p in (first.store.parent / "audio").iterdir() if (p / "nonspeech").is_dir()]
    rows = read_manifest(folder / "nonspeech" / "manifest.jsonl")
    assert sorted(r.params["generator"] for r in rows) == sorted(new.nonspeech_kinds)  # babble of the bank's speech
    assert {record_category(r) for r in rows} == {"music", "noise"} and not (folder / "debian").exists()


def test_the_debian_packages_key_the_bank_audio(monkeypatch: pytest.MonkeyPatch) -> None:
    from wakebuilder.bank.negatives import BankNegativesConfig
    from wakebuilder.bank.ensure import _settings
    from wakebuilder.data import debian

    with_debian, without = BankNegativesConfig(debian=True), BankNegativesConfig(debian=False)
    before = [_settings(c, None) for c in (with_debian, without)]
    monkeypatch.setattr(debian, "SOURCES", (*debian.SOURCES, debian.DebianSource("x-sounds", (("*", "noise"),))))
    after = [_settings(c, None) for c in (with_debian, without)]
    # a release with another package: a bank with Debian's audio is made again (and extended), one without is kept
    assert after[0] != before[0] and "x-sounds" in after[0]["debian_packages"]
    assert after[1] == before[1] and "debian_packages" not in after[1]


def test_the_number_of_workers_keys_no_bank_audio() -> None:
    """The bank's audio folder was keyed by --workers too, though clips do not depend on it: a killed build run
    again with other workers began afresh in another folder. It is now the folder banks of the default 2 had."""
    from wakebuilder.bank.ensure import _settings
    from wakebuilder.data.augment.transforms import AugmentConfig
    from wakebuilder.fingerprint import fingerprint

    config = BankNegativesConfig(speech=4, words=4, engines=("espeak",))
    old = fingerprint("bank", 1, {"negatives": config.to_dict(), "augment": AugmentConfig(copies=1).to_dict()})
    for workers in (1, 2, 5):
        assert fingerprint("bank", 1, _settings(config.replace(workers=workers), None)) == old


def test_cli_bank_negatives_makes_nonspeech(tmp_path: Path) -> None:
    from wakebuilder.manifest import read_manifest

    args = ["bank", "negatives", "--out", str(tmp_path / "b"), "--speech", "0", "--words", "0", "--stream-s", "0",
            "--nonspeech", "7", "--chunk-s", "1.0"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    (manifest,) = result.stdout.split()
    rows = read_manifest(manifest)
    assert len(rows) == 7 and "babble" not in {r.params["generator"] for r in rows}  # no speech to babble


def test_bank_negatives_resume_after_an_interrupt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed wb bank negatives made all its speech and words again when run again. It now keeps the parts that
    finished (their clips are not made again), resumes the part it was in, and ends with the manifests and clips
    of an uninterrupted run."""
    from tests.data.test_synth import stop_in_pass
    from wakebuilder.bank.negatives import make_bank_negatives
    from wakebuilder.data import synth

    config = BankNegativesConfig(speech=4, words=4, stream_s=0.0, engines=("espeak",), workers=1)
    one = make_bank_negatives(config, out_dir=tmp_path / "one")
    with monkeypatch.context() as patch:
        stop_in_pass(patch, synth, "word_negative")
        with pytest.raises(RuntimeError, match="interrupted"):
            make_bank_negatives(config, out_dir=tmp_path / "two")
    speech = {p.name: p.stat().st_ino for p in (tmp_path / "two" / "speech" / "clips").glob("*.wav")}
    assert len(speech) == 4 and 0 < len(list((tmp_path / "two" / "words" / "clips").glob("*.wav"))) < 4
    two = make_bank_negatives(config, out_dir=tmp_path / "two")
    assert [m.relative_to(tmp_path / "two") for m in two] == [m.relative_to(tmp_path / "one") for m in one]
    for a, b in zip(one, two):
        assert a.read_bytes() == b.read_bytes()
        assert {p.name: p.read_bytes() for p in (a.parent / "clips").iterdir()} == \
            {p.name: p.read_bytes() for p in (b.parent / "clips").iterdir()}
    assert {p.name: p.stat().st_ino for p in (tmp_path / "two" / "speech" / "clips").glob("*.wav")} == speech


def test_bank_negatives_keep_the_nonspeech_part_a_run_finished(tmp_path: Path) -> None:
    """The non-speech part a (killed) wb bank negatives finished is kept by a run again with the same config, its
    clips not made again (found by the config make_nonspeech records, nonspeech.make.CONFIG_NAME)."""
    from wakebuilder.bank.negatives import make_bank_negatives

    config = BankNegativesConfig(speech=0, words=0, stream_s=0.0, nonspeech=3, chunk_s=1.0)
    (manifest,) = make_bank_negatives(config, out_dir=tmp_path)
    made = {p.name: p.stat().st_ino for p in (manifest.parent / "clips").glob("*.wav")}
    assert len(made) == 3 and make_bank_negatives(config, out_dir=tmp_path) == [manifest]
    assert {p.name: p.stat().st_ino for p in (manifest.parent / "clips").glob("*.wav")} == made


def test_bank_babble_is_made_again_when_its_speech_is(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wb bank negatives run again after the voices changed made its speech again but kept the babble built from
    the old speech, so the bank mixed the old voices' babble with the new voices' speech. Babble is now made
    again with the speech it overlaps, and kept when that speech was."""
    from tests.data.test_synth import fewer_voices
    from wakebuilder.bank.negatives import make_bank_negatives
    from wakebuilder.manifest import read_manifest

    config = BankNegativesConfig(speech=4, words=0, stream_s=0.0, nonspeech=2, nonspeech_kinds=("babble",),
                                 chunk_s=1.0, engines=("espeak",), workers=1)
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        old_speech, _ = make_bank_negatives(config, out_dir=tmp_path)
    old = {r.id for r in read_manifest(old_speech)}
    speech, babble = make_bank_negatives(config, out_dir=tmp_path)
    new = {r.id for r in read_manifest(speech)}
    assert new != old  # the speech was made again with the voices found now
    used = {clip for row in read_manifest(babble) for clip in row.params["talker_clips"]}
    assert used and used <= new
    made = {p.name: p.stat().st_ino for p in (babble.parent / "clips").glob("*.wav")}
    assert make_bank_negatives(config, out_dir=tmp_path) == [speech, babble]  # the same speech: babble kept
    assert {p.name: p.stat().st_ino for p in (babble.parent / "clips").glob("*.wav")} == made


def _bank_of_fewer_voices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A tiny espeak bank (4 sentences, 2 noises, no copies) made with fewer voices than are found here: its config,
    ``ensure_bank``'s other arguments, and what ``ensure_bank`` returned."""
    from tests.data.test_synth import fewer_voices
    from wakebuilder.data.augment.transforms import AugmentConfig

    config = BankNegativesConfig(speech=4, words=0, stream_s=0.0, nonspeech=2, nonspeech_kinds=("noise",),
                                 chunk_s=1.0, engines=("espeak",), workers=1)
    where = {"backbone": "speech-embedding", "window_s": None, "augment": AugmentConfig(copies=0),
             "cache": tmp_path / "c", "device": "cpu"}
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        return config, where, ensure_bank(config, **where)


def test_the_bank_is_made_again_with_other_voices_and_kept_with_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bank finished with some voices was reused as it was once the voices found here changed (wb voices fetch,
    WB_KOKORO_VOICES, an engine installed): its complete.json held the settings only. Its speech is now made again
    with the voices found now, the old speech's rows leave the bank (retired; its other rows are kept, not embedded
    again); with the same voices nothing is made or written again, and with the old voices back their rows are
    served again (stored, not embedded again)."""
    from tests.data.test_synth import fewer_voices
    from wakebuilder.manifest import read_manifest

    config, where, old = _bank_of_fewer_voices(tmp_path, monkeypatch)
    (folder,) = (old.store.parent / "audio").iterdir()
    speech, noises = folder / "speech" / "manifest.jsonl", folder / "nonspeech" / "manifest.jsonl"
    old_speech, noise_ids = {r.id for r in read_manifest(speech)}, {r.id for r in read_manifest(noises)}
    calls = count_embedded(monkeypatch)
    new = ensure_bank(config, **where)
    new_speech = {r.id for r in read_manifest(speech)}
    assert new.synthesized and new_speech != old_speech  # spoken again by the voices found now
    with open_served([new.store]) as (store, _):  # the old voices' speech is retired (kept in the store), the noise not
        assert set(store.load(pooled=False, sequence=False).id) == new_speech | noise_ids
    assert new.embedded == sum(calls) == len(new_speech - old_speech) and new.clips == len(new_speech | noise_ids)
    calls.clear()
    kept = (folder / "complete.json", speech, *(folder / "speech" / "clips").iterdir())
    written = {p: p.stat().st_mtime_ns for p in kept}
    again = ensure_bank(config, **where)
    assert not again.synthesized and again.embedded == 0 and calls == [] and again.clips == new.clips
    assert {p: p.stat().st_mtime_ns for p in written} == written
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        back = ensure_bank(config, **where)
    assert back.synthesized and back.embedded == 0 and back.clips == len(old_speech | noise_ids)
    with open_served([back.store]) as (store, _):
        assert set(store.load(pooled=False, sequence=False).id) == old_speech | noise_ids


def test_a_reader_keeps_its_bank_rows_while_another_phrase_replaces_the_voices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Phrase B's ensure_bank, once the voices changed (a Piper voice fetched), rewrote the bank's store in place
    without the old voices' clips and deleted the old store, while phrase A was fitting or calibrating on it: A
    failed mid-fit or read a half-swapped store. The store is now append-only: the replaced clips are retired
    (retired.json beside it), so a reader that opened the bank before reads the same rows after, and a reader
    that opens it after leaves the replaced clips out."""
    from wakebuilder.bank.exclude import open_for_phrase
    from wakebuilder.manifest import read_manifest

    config, where, old = _bank_of_fewer_voices(tmp_path, monkeypatch)
    with open_for_phrase([old.store], "hey nova") as (reader, _):
        before = reader.load()
        new = ensure_bank(config, **where)  # phrase B, with the voices found now
        after = reader.load()
        assert after.id.tolist() == before.id.tolist()
        np.testing.assert_array_equal(after.sequence, before.sequence)
    (folder,) = (old.store.parent / "audio").iterdir()
    served = {r.id for name in ("speech", "nonspeech") for r in read_manifest(folder / name / "manifest.jsonl")}
    assert set(before.id) != served and new.clips == len(served)
    with open_for_phrase([new.store], "hey nova") as (reader, _):
        assert set(reader.load(pooled=False, sequence=False).id) == served  # the replaced voices' clips left out


def test_the_replaced_voices_clips_are_served_until_the_new_voices_clips_are_embedded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once the voices changed, ensure_bank retired the old voices' clips before it spent minutes embedding the new
    voices' clips: another phrase's recipe that opened the bank meanwhile fitted on a bank with the old voices gone
    and the new ones mostly missing. The old clips are now served until the new ones are stored, then retired in
    one step; killed while embedding, the next run still retires them."""
    import wakebuilder.embed
    from wakebuilder.bank.ensure import REPLACED_NAME
    from wakebuilder.manifest import read_manifest

    config, where, old = _bank_of_fewer_voices(tmp_path, monkeypatch)
    (folder,) = (old.store.parent / "audio").iterdir()
    speech = folder / "speech" / "manifest.jsonl"
    old_speech = {r.id for r in read_manifest(speech)}
    embed, seen = wakebuilder.embed.embed_manifests, []

    def embed_and_look(*args, **kwargs):
        if len(seen) == 0:
            seen.append(served_ids(old.store))
            raise KeyboardInterrupt  # the first run is killed while it embeds
        seen.append(served_ids(old.store))
        summary = embed(*args, **kwargs)
        seen.append(served_ids(old.store))
        return summary

    monkeypatch.setattr(wakebuilder.embed, "embed_manifests", embed_and_look)
    with pytest.raises(KeyboardInterrupt):
        ensure_bank(config, **where)
    assert (folder / REPLACED_NAME).is_file()
    new = ensure_bank(config, **where)
    new_speech = {r.id for r in read_manifest(speech)}
    assert all(old_speech <= ids for ids in seen)  # a reader opening the bank while it is embedded: still served
    assert new_speech <= seen[-1]  # ... also once the new voices' clips are stored
    assert served_ids(new.store).isdisjoint(old_speech - new_speech) and not (folder / REPLACED_NAME).exists()


def served_ids(store: Path) -> set[str]:
    with open_served([store]) as (union, _):
        return set(union.load(pooled=False, sequence=False).id)


@pytest.mark.parametrize("retired_before", [False, True])
def test_calibration_reads_the_bank_as_the_fit_read_it(tmp_path: Path, retired_before: bool) -> None:
    """Another phrase's recipe grew the shared bank (its clips of the voices found now) and retired clips between
    this phrase's fit and its calibration: the calibration refused the bank ('fit on ... (120 rows), given ...
    (150 rows)'), failing the recipe. It now reads the bank as the fit read it: the rows it held then, less the
    clips retired then (the fit records which), so it calibrates as it would have without the other phrase."""

    phrase = write(tmp_path / "phrase.zarr", [rows(200, seed=0, prefix="p")])
    bank = bank_store_path("test", 1.0, cache=tmp_path / "cache")
    records = write_bank(bank, 90, seed=1, prefix="b")
    if retired_before:  # an earlier change of voices: left out of the fit
        retire(bank, add=[r.id for r in records[:10]])
    fit_small(tmp_path / "model", phrase, bank)
    _, before = calibrate_model(tmp_path / "model", [phrase, bank])
    write_bank(bank, 30, seed=2, prefix="n")  # the other phrase: new voices' clips in, old ones retired
    retire(bank, add=[r.id for r in records[10:40]], serve=[r.id for r in records[:10]])
    _, after = calibrate_model(tmp_path / "model", [phrase, bank])
    assert after["n_validation"] == before["n_validation"]
    assert (after["temperature"], after["threshold"]) == (before["temperature"], before["threshold"])


def write_bank(bank: Path, n: int, *, seed: int, prefix: str) -> list[ClipRecord]:
    """Append ``n`` negative clips to the bank store ``bank`` (made with its marker when new); their records."""
    bank.parent.mkdir(parents=True, exist_ok=True)
    (bank.parent / BANK_MARKER).write_text("{}")
    records, sequence = rows(n, seed=seed, prefix=prefix)
    records = [ClipRecord(id=r.id, path=r.path, label=0, kind="speech_negative", group=f"bank{i % 5}",
                          text="music playing") for i, r in enumerate(records)]
    write(bank, [(records, sequence)])
    return records


def fit_small(model: Path, *stores: Path) -> None:
    result = CliRunner().invoke(main, [
        "fit", *[a for s in stores for a in ("--store", str(s))], "--out", str(model), "--max-epochs", "2",
        "--width", "16", "--hidden", "16", "--tcn-layers", "1", "--batch-size", "32", "--json"])
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("more", [0, 30])
def test_calibration_refuses_a_bank_rebuilt_since_the_fit(tmp_path: Path, more: int) -> None:
    """The fit recorded only the bank's path and rows, so a bank made again from scratch at the same path (its cache
    deleted) with as many rows or more was read as its first rows: other clips, without a word. The fit now records
    a sha256 of the ids of the rows it read, and calibration refuses a bank whose rows differ, saying to refit;
    a model.json written before (no such hash) is read as it was."""
    phrase = write(tmp_path / "phrase.zarr", [rows(200, seed=0, prefix="p")])
    bank, model = bank_store_path("test", 1.0, cache=tmp_path / "cache"), tmp_path / "model"
    write_bank(bank, 90, seed=1, prefix="b")
    fit_small(model, phrase, bank)
    fitted = load_model(model).meta["stores"]
    assert all(len(d["ids_sha256"]) == 64 for d in fitted) and fitted[0]["ids_sha256"] != fitted[1]["ids_sha256"]
    _, before = calibrate_model(model, [phrase, bank])  # the bank as it was: calibrated
    write_bank(bank, 10, seed=2, prefix="n")  # ... and grown since (another phrase's recipe): still
    assert calibrate_model(model, [phrase, bank])[1]["threshold"] == before["threshold"]
    shutil.rmtree(bank.parent.parent)  # the cache deleted, the bank made again: other clips, as many rows or more
    write_bank(bank, 90 + more, seed=3, prefix="r")
    with pytest.raises(StoreMismatchError) as refused:
        calibrate_model(model, [phrase, bank])
    message = str(refused.value)
    assert str(bank) in message and "wb fit" in message and "\n" not in message
    result = CliRunner().invoke(main, ["calibrate", "--model", str(model), "--store", str(phrase),
                                       "--store", str(bank)])
    assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1, result.output
    assert str(bank) in result.stderr and "wb fit" in result.stderr
    meta = json.loads((model / "model.json").read_text())  # written before the fit recorded the hash
    for d in meta["stores"]:
        del d["ids_sha256"]
    (model / "model.json").write_text(json.dumps(meta))
    _, old = calibrate_model(model, [phrase, bank])  # as before: the bank's first 90 rows
    assert old["n_validation"] == before["n_validation"]


def test_calibration_hashes_the_banks_fitted_rows_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Calibrating on the bank hashed the ids of the rows the fit read twice, reading its id column for each: once to
    check them (``retired.check_rows``) and once to describe the stores (``StoreUnion.describe``). Once now, the
    check's hash passed along; the rows, the check and the calibration are as before."""
    import wakebuilder.bank.retired as retired
    import wakebuilder.store.union as union

    phrase = write(tmp_path / "phrase.zarr", [rows(200, seed=0, prefix="p")])
    bank, model = bank_store_path("test", 1.0, cache=tmp_path / "cache"), tmp_path / "model"
    write_bank(bank, 90, seed=1, prefix="b")
    fit_small(model, phrase, bank)
    _, before = calibrate_model(model, [phrase, bank])
    write_bank(bank, 10, seed=2, prefix="n")  # grown since the fit: its first 90 rows are hashed
    digest, hashed = union.rows_digest, []

    def counted(store, n):
        hashed.append((Path(store.path).name, n))
        return digest(store, n)

    monkeypatch.setattr(union, "rows_digest", counted)
    monkeypatch.setattr(retired, "rows_digest", counted, raising=False)
    _, after = calibrate_model(model, [phrase, bank])
    assert sorted(hashed) == sorted([(bank.name, 90), ("phrase.zarr", 200)])
    assert (after["n_validation"], after["threshold"]) == (before["n_validation"], before["threshold"])


def test_a_bank_made_by_an_older_version_is_made_again_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The bank's complete.json held its settings and voices only, so a release that changed how its audio is made
    (its augmented copies, say) reused an older release's bank for every phrase. It now records the versions of the
    stages that made it: a bank recorded without them, or with a lower one, is made again once, saying why, and of
    its parts only those of the stage that changed are made again (each is kept by its own identity)."""
    import logging

    import wakebuilder.data.augment.pipeline as pipeline
    import wakebuilder.data.synth as synth
    from wakebuilder.bank.ensure import COMPLETE_NAME
    from wakebuilder.data.augment.transforms import AugmentConfig
    from wakebuilder.stage_version import KEY

    config = BankNegativesConfig(speech=3, words=0, stream_s=0.0, engines=("espeak",), workers=1)
    where = {"backbone": "speech-embedding", "window_s": None, "augment": AugmentConfig(copies=1),
             "cache": tmp_path / "c", "device": "cpu"}
    first = ensure_bank(config, **where)
    (folder,) = (first.store.parent / "audio").iterdir()
    complete = folder / COMPLETE_NAME
    recorded = json.loads(complete.read_text())
    assert recorded[KEY]["augment"] == pipeline.VERSION and recorded[KEY]["synth"] == synth.VERSION
    calls: dict[str, int] = {"synth": 0, "augment": 0}
    for module, name, key in ((synth, "synthesize_clips", "synth"), (pipeline, "augment_clip", "augment")):
        def counted(*args: object, _real: object = getattr(module, name), _key: str = key, **kwargs: object) -> object:
            calls[_key] += 1
            return _real(*args, **kwargs)  # type: ignore[operator]

        monkeypatch.setattr(module, name, counted)
    complete.write_text(json.dumps({k: v for k, v in recorded.items() if k != KEY}))  # as written before
    with caplog.at_level(logging.INFO, logger="wakebuilder"):
        again = ensure_bank(config, **where)
    assert again.synthesized and "made by an older version of augment" in caplog.text
    assert calls == {"synth": 0, "augment": 0} and again.embedded == 0  # its parts carry their versions: kept
    assert json.loads(complete.read_text()) == recorded
    monkeypatch.setattr(pipeline, "VERSION", pipeline.VERSION + 1)  # a release that changed the copies
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wakebuilder"):
        bumped = ensure_bank(config, **where)
    assert bumped.synthesized and calls == {"synth": 0, "augment": 3}
    assert caplog.text.count("made by an older version of augment, made again") == 2  # the bank, its copies
    reused = ensure_bank(config, **where)
    assert not reused.synthesized and calls == {"synth": 0, "augment": 3} and reused.clips == first.clips


def _manifest(path: Path, durations_s: list[float]) -> str:
    """A manifest of wake-word clips of ``durations_s`` (never decoded: only their durations are read)."""
    records = [ClipRecord(id=f"clip{i}", path=f"{i}.wav", label=1, kind="tts", group="g", duration_s=d)
               for i, d in enumerate(durations_s)]
    write_manifest(path, records)
    return str(path)


def test_ast_windows_are_read_without_loading_the_weights(
    tmp_path: Path, tiny_ast_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bank's native window and the recipe's store window came from loading the whole checkpoint (350 MB for the
    real one); they are read from its config, and equal what loading it gives (a wider window for longer clips)."""
    from tests.backbones.test_ast import _no_weights
    from wakebuilder.backbones import load_backbone
    from wakebuilder.bank.build import native_window
    from wakebuilder.embed import EmbedConfig, load_for_store
    from wakebuilder.recipe import RecipeConfig
    from wakebuilder.recipe_precision import store_window

    spec = str(tiny_ast_dir)
    native = load_backbone(spec, device="cpu")
    config = RecipeConfig.preset("tiny", backbone=spec)
    manifests = {d: [_manifest(tmp_path / f"{d}.jsonl", [0.5, d])] for d in (1.0, 2.345)}
    loaded = {d: load_for_store(EmbedConfig(backbone=spec), [0.5, d], "cpu").identity["window_s"] for d in manifests}
    assert loaded == {1.0: 1.28, 2.345: 2.35}
    _no_weights(monkeypatch)
    assert native_window(spec, None) == native.identity["window_s"]
    assert native_window(spec, 2.0) == 2.0
    assert {d: store_window(config, m) for d, m in manifests.items()} == loaded
    assert store_window(config.replace(window_s=1.234), manifests[1.0]) == 1.23


def test_an_ast_bank_built_without_a_window_is_embedded_at_the_phrase_stores(
    tmp_path: Path, tiny_ast_dir: Path
) -> None:
    """``wb bank build`` without --window-s embedded an AST bank at ``window_samples / 16000`` of the checkpoint's
    128 frames (1.295 s), which the AST read back as 130 frames (1.3 s), while a phrase's store by default records
    128 (1.28 s): wb fit and wb calibrate refused the bank with every phrase's store. It now embeds at the window
    the phrase's stores get by default, so the two are read as one."""
    from wakebuilder.embed import EmbedConfig, embed_manifests

    spec = str(tiny_ast_dir)
    bank = build_bank([negatives_manifest(tmp_path / "neg", 2)], backbone=spec, cache=tmp_path / "c",
                      device="cpu", progress=False)
    assert Path(bank["path"]).parent.name.endswith("-native")
    phrase = embed_manifests([negatives_manifest(tmp_path / "pos", 2, start=5, label=1)],
                             store_path=tmp_path / "phrase.zarr", config=EmbedConfig(backbone=spec), device="cpu",
                             progress=False)
    assert bank["backbone"] == phrase.backbone and bank["backbone"]["max_length"] == 128
    with open_served([tmp_path / "phrase.zarr", Path(bank["path"])]) as (union, _):
        assert len(union) == 4  # read as one: not refused


def test_an_ast_bank_of_the_old_native_window_is_refused_not_grown(tmp_path: Path, tiny_ast_dir: Path) -> None:
    """A bank an older wakebuilder built without --window-s holds AST rows of 130 frames in the same folder; growing
    it at the phrase stores' 128 is refused in one line that names the folder and how to build it again, and
    nothing is written to it."""
    from wakebuilder.embed import EmbedConfig, embed_manifests

    spec, cache = str(tiny_ast_dir), tmp_path / "c"
    store = bank_store_path(spec, None, cache=cache)
    embed_manifests([negatives_manifest(tmp_path / "neg", 2)], store_path=store,
                    config=EmbedConfig(backbone=spec, window_s=1.295), device="cpu", progress=False)
    (store.parent / BANK_MARKER).write_text(json.dumps({"manifests": []}))
    before = sorted((p.relative_to(store.parent), p.stat().st_mtime_ns) for p in store.parent.rglob("*"))
    with pytest.raises(StoreMismatchError) as refused:
        build_bank([negatives_manifest(tmp_path / "more", 2, start=3)], backbone=spec, cache=cache, device="cpu",
                   progress=False)
    message = str(refused.value)
    assert "\n" not in message and str(store.parent) in message and "wb bank build" in message
    assert "1.3 s" in message and "1.28 s" in message
    after = sorted((p.relative_to(store.parent), p.stat().st_mtime_ns) for p in store.parent.rglob("*")
                   if p.name != "build.lock")
    assert after == [entry for entry in before if entry[0].name != "build.lock"]
