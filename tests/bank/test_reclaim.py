"""wb bank reclaim: the bank's retired rows, its stale lists and old held-out folders removed, readers held off."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from filelock import FileLock

import wakebuilder.bank.ensure as ensure
import wakebuilder.data.stream as stream_module
import wakebuilder.data.synth as synth
from tests.bank.test_bank import fit_small, write_bank
from tests.bank.test_heldout import forbid
from tests.conftest import noise
from tests.data.test_synth import fewer_voices
from tests.store.test_union import rows, write
from wakebuilder.audio import write_wav
from wakebuilder.backbones import load_backbone
from wakebuilder.bank.audio_folders import CURRENT_NAME, REPLACED_NAME
from wakebuilder.bank.negatives import BankNegativesConfig
from wakebuilder.bank.ensure import ensure_bank, settings_key
from wakebuilder.bank.heldout import HeldoutStream, HeldoutStreamConfig, heldout_dir, heldout_stream
from wakebuilder.bank.location import BANK_MARKER, bank_store_path
from wakebuilder.bank.reading import reading
from wakebuilder.bank.reclaim import reclaim_bank
from wakebuilder.bank.retired import RETIRED_NAME, VERSIONS_DIR, open_served, retire, retired_digest
from wakebuilder.calibrate import calibrate_model
from wakebuilder.cli import main
from wakebuilder.data.augment.transforms import AugmentConfig
from wakebuilder.errors import StoreMismatchError
from wakebuilder.manifest import ClipRecord, write_manifest
from wakebuilder.store import open_store
from wakebuilder.store.embedding_store import EmbeddingStore
from wakebuilder.stream_cache import RECORD_SUFFIX, stream_key, stream_sequences

BANK = {"backbone": "speech-embedding", "window_s": 2.0}
STREAM = HeldoutStreamConfig(speech=3, nonspeech=2, clip_s=1.0, duration_s=6.0, seed=1000, engines=("espeak",))


def bank_with_retired_rows(cache: Path) -> tuple[Path, list[str]]:
    """A bank of 90 clips, b10..b19 retired now, b0..b9 retired before (served again): its store and ids."""
    bank = bank_store_path(BANK["backbone"], BANK["window_s"], cache=cache)
    ids = [r.id for r in write_bank(bank, 90, seed=1, prefix="b")]
    retire(bank, add=ids[:10])
    retire(bank, add=ids[10:20], serve=ids[:10])
    return bank, ids


def streams_of_two_voices(cache: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[HeldoutStream, HeldoutStream]:
    """The held-out stream spoken by the voices found before (fewer) and by those found now."""
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        old = heldout_stream(STREAM, cache=cache)
    return old, heldout_stream(STREAM, cache=cache)


def served(bank: Path) -> tuple[list[str], np.ndarray]:
    with open_served([bank]) as (union, _):
        arrays = union.load()
    return arrays.id.tolist(), arrays.sequence


def tree_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def files(folder: Path) -> dict[Path, tuple[int, int]]:
    """Every file under ``folder`` but the (empty) lock files readers make, with its size and time."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")
            if p.is_file() and p.suffix != ".lock"}


def test_reclaim_removes_the_retired_rows_and_old_held_out_folders(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The bank's store only grows and old voices' held-out streams stay in their folders, so the cache grew
    without bound. reclaim removes the retired rows (the bank serves the same clips, in the same order), the lists
    of retired clips that name none left, and the held-out folders no recipe uses now, and frees their bytes."""
    cache = tmp_path / "cache"
    bank, ids = bank_with_retired_rows(cache)
    old, new = streams_of_two_voices(cache, monkeypatch)
    before, size = served(bank), tree_bytes(cache)
    first_list = bank.parent / VERSIONS_DIR / f"{retired_digest(ids[:10])}.json"

    done = reclaim_bank(cache=cache, **BANK)
    assert done.rows_removed == 10 and not done.dry_run
    assert set(done.folders_removed) == {old.stream.parent, old.speech.parent}
    assert set(done.lists_removed) == {bank.parent / RETIRED_NAME,
                                       bank.parent / VERSIONS_DIR / f"{retired_digest(ids[10:20])}.json"}
    assert first_list.is_file()  # it names b0..b9, still in the store
    with open_store(bank) as store:
        assert len(store) == 80 and store.ids() == set(ids) - set(ids[10:20])
    after = served(bank)
    assert after[0] == before[0] and np.array_equal(after[1], before[1])
    assert not old.stream.parent.exists() and not old.speech.parent.exists()
    assert done.bytes_freed > 0 and tree_bytes(cache) == size - done.bytes_freed
    forbid(monkeypatch, synth, "synthesize_clips", "synthesized again")
    forbid(monkeypatch, stream_module, "build_negative_stream", "built again")
    assert heldout_stream(STREAM, cache=cache) == new  # the current stream, kept
    again = reclaim_bank(cache=cache, **BANK)
    assert (again.rows_removed, again.lists_removed, again.folders_removed, again.bytes_freed) == (0, (), (), 0)


def test_reclaim_keeps_the_held_out_folders_used_last(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Voices found before, then others, then the first again (a voice file removed): the first voices' stream is
    the one recipes use, though not the newest folder; reclaim keeps it and removes the other."""
    cache = tmp_path / "cache"
    bank_with_retired_rows(cache)
    old, new = streams_of_two_voices(cache, monkeypatch)
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        assert heldout_stream(STREAM, cache=cache) == old
    done = reclaim_bank(cache=cache, **BANK)
    assert set(done.folders_removed) == {new.stream.parent, new.speech.parent}
    assert old.stream.is_file() and old.speech.is_file()


def test_reclaim_refuses_while_a_reader_holds_the_lock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A recipe (wb fit, wb calibrate) reading the bank or its held-out streams: reclaim would remove rows or
    folders under it, so it refuses in one line and removes nothing."""
    cache = tmp_path / "cache"
    bank, _ = bank_with_retired_rows(cache)
    streams_of_two_voices(cache, monkeypatch)
    snapshot = files(cache)
    args = ["bank", "reclaim", "--backbone", BANK["backbone"], "--window-s", "2", "--cache-dir", str(cache)]
    for reader in (lambda: open_served([bank]), lambda: reading(heldout_dir(cache))):
        with reader():
            result = CliRunner().invoke(main, args)
        assert result.exit_code != 0 and len(result.stderr.strip().splitlines()) == 1, result.output
        assert "a recipe" in result.stderr and "again when none runs" in result.stderr
        assert files(cache) == snapshot
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0 and result.stdout.strip() == str(bank), result.output


@pytest.mark.parametrize("killed", ["while merging", "between the swap's renames", "while deleting folders"])
def test_a_killed_reclaim_leaves_a_usable_bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, killed: str) -> None:
    """Killed at any point, the bank serves the same clips and the current held-out stream is whole; reclaim run
    again finishes."""
    cache = tmp_path / "cache"
    bank, ids = bank_with_retired_rows(cache)
    old, new = streams_of_two_voices(cache, monkeypatch)
    before = served(bank)
    with monkeypatch.context() as patch:
        kill(patch, killed)
        with pytest.raises(KeyboardInterrupt):
            reclaim_bank(cache=cache, **BANK)
    left = {"while merging": (bank.parent / RETIRED_NAME).is_file() and old.stream.is_file(),
            "between the swap's renames": not bank.exists(),
            "while deleting folders": (heldout_dir(cache) / ".reclaiming").is_dir() and not old.stream.exists()}
    assert left[killed]  # killed where it says
    after = served(bank)  # a swap cut off is finished by the reader
    assert after[0] == before[0] and np.array_equal(after[1], before[1])
    with monkeypatch.context() as patch:
        forbid(patch, synth, "synthesize_clips", "synthesized again")
        forbid(patch, stream_module, "build_negative_stream", "built again")
        assert heldout_stream(STREAM, cache=cache) == new
    reclaim_bank(cache=cache, **BANK)
    with open_store(bank) as store:
        assert store.ids() == set(ids) - set(ids[10:20])
    assert not old.stream.parent.exists() and not old.speech.parent.exists() and new.stream.is_file()
    assert sorted(p.name for p in bank.parent.iterdir() if p.name.startswith("store.zarr")) == ["store.zarr",
                                                                                                 "store.zarr.lock"]
    assert not any(p.name.startswith(".") for p in heldout_dir(cache).iterdir())


def kill(patch: pytest.MonkeyPatch, where: str) -> None:
    """Make reclaim fail (as Ctrl-C would) at ``where``."""
    if where == "while merging":
        append = EmbeddingStore.append

        def append_then_stop(self: EmbeddingStore, *args: object, **kwargs: object) -> None:
            append(self, *args, **kwargs)
            raise KeyboardInterrupt

        patch.setattr(EmbeddingStore, "append", append_then_stop)
    elif where == "between the swap's renames":
        replace = os.replace

        def stop_at_the_second(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
            if str(src).endswith(".merging") and Path(dst).name == "store.zarr":
                raise KeyboardInterrupt
            replace(src, dst)

        patch.setattr(os, "replace", stop_at_the_second)
    else:
        rmtree = shutil.rmtree

        def stop_in_the_trash(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
            if Path(path).name == ".reclaiming":
                next(Path(path).rglob("*.wav")).unlink()  # part of it deleted
                raise KeyboardInterrupt
            rmtree(path, *args, **kwargs)

        patch.setattr(shutil, "rmtree", stop_in_the_trash)


def test_dry_run_changes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    bank, _ = bank_with_retired_rows(cache)
    old, _ = streams_of_two_voices(cache, monkeypatch)
    snapshot = files(cache)
    args = ["bank", "reclaim", "--backbone", BANK["backbone"], "--window-s", "2", "--cache-dir", str(cache)]
    result = CliRunner().invoke(main, [*args, "--dry-run", "--json"])
    assert result.exit_code == 0, result.output
    dry = json.loads(result.stdout)
    assert files(cache) == snapshot
    assert dry["dry_run"] and dry["rows_removed"] == 10 and dry["store"] == str(bank)
    assert set(dry["folders_removed"]) == {str(old.stream.parent), str(old.speech.parent)}
    result = CliRunner().invoke(main, [*args, "--dry-run"])
    assert result.stdout.strip() == str(bank) and "would remove 10 retired row(s)" in result.stderr
    assert str(old.stream.parent) in result.stderr and " MB" in result.stderr and files(cache) == snapshot
    done = json.loads(CliRunner().invoke(main, [*args, "--json"]).stdout)
    assert not done["dry_run"] and (done["rows_removed"], done["folders_removed"]) == (10, dry["folders_removed"])
    assert abs(dry["bytes_freed"] - done["bytes_freed"]) <= 0.2 * done["bytes_freed"]  # about


def test_a_model_fitted_before_reclaim_is_refused_by_calibration(tmp_path: Path) -> None:
    """Its bank rows are others now (those retired are gone): calibration says to fit it again, as --help warns."""
    cache = tmp_path / "cache"
    bank, _ = bank_with_retired_rows(cache)
    phrase = write(tmp_path / "phrase.zarr", [rows(200, seed=0, prefix="p")])
    fit_small(tmp_path / "model", phrase, bank)
    calibrate_model(tmp_path / "model", [phrase, bank])
    reclaim_bank(cache=cache, **BANK)
    with pytest.raises(StoreMismatchError, match="wb fit"):
        calibrate_model(tmp_path / "model", [phrase, bank])
    help_text = " ".join(CliRunner().invoke(main, ["bank", "reclaim", "--help"]).output.split())
    assert "can no longer be calibrated" in help_text and "fit them again" in help_text


def tiny_bank(speech: int) -> BankNegativesConfig:
    """The settings of a bank of ``speech`` espeak sentences and nothing else."""
    return BankNegativesConfig(speech=speech, words=0, stream_s=0.0, chunk_s=1.0, engines=("espeak",), workers=1)


def test_reclaim_removes_the_bank_audio_of_no_clip_served(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The bank's audio stays in audio/<settings>/ for good, also that of a build killed before its clips were
    embedded whose settings no recipe builds with again. reclaim removes the audio none of whose clips the bank
    serves, but that of the settings used last (a killed build resumes from it); the audio of other settings whose
    clips the bank serves is kept (another recipe builds with them, and would speak its bank again)."""
    cache = tmp_path / "cache"
    where = {"backbone": "speech-embedding", "window_s": None, "augment": AugmentConfig(copies=0), "cache": cache,
             "device": "cpu"}
    audio = bank_store_path("speech-embedding", None, cache=cache).parent / "audio"
    other, killed, last = (audio / settings_key(tiny_bank(n), where["augment"]) for n in (2, 3, 4))
    ensure_bank(tiny_bank(2), **where)  # another recipe's settings
    with monkeypatch.context() as patch:
        patch.setattr(ensure, "grow_bank", interrupted)
        with pytest.raises(KeyboardInterrupt):
            ensure_bank(tiny_bank(3), **where)
    assert (killed / "complete.json").is_file()
    assert json.loads((audio.parent / CURRENT_NAME).read_text()) == {"key": killed.name}
    assert reclaim_bank("speech-embedding", None, cache=cache, dry_run=True).audio_removed == ()  # used last
    ensure_bank(tiny_bank(4), **where)
    size = tree_bytes(cache)
    dry = reclaim_bank("speech-embedding", None, cache=cache, dry_run=True)
    assert dry.audio_removed == (killed,) and killed.is_dir()
    done = reclaim_bank("speech-embedding", None, cache=cache)
    assert done.audio_removed == (killed,) and not killed.exists() and other.is_dir() and last.is_dir()
    assert done.bytes_freed == dry.bytes_freed == size - tree_bytes(cache) > 0
    assert not (audio / ".reclaiming").exists()
    forbid(monkeypatch, synth, "synthesize_clips", "synthesized again")
    assert not any(ensure_bank(tiny_bank(n), **where).synthesized for n in (2, 4))
    assert reclaim_bank("speech-embedding", None, cache=cache).audio_removed == ()


def interrupted(*args: object, **kwargs: object) -> None:
    raise KeyboardInterrupt  # killed as it embeds


def audio_folder(bank: Path, key: str, records: list[ClipRecord], *, record: str = "complete",
                 listed: bool = True) -> Path:
    """The bank's audio of ``key`` holding ``records`` (their manifest, with the folder's ``record`` of them:
    complete.json, or replaced.json as a build killed as it replaced their voices leaves), and ``listed`` in the
    bank's marker as embedded."""
    folder = bank.parent / "audio" / key
    manifest = write_manifest(folder / "speech" / "manifest.jsonl", records)
    for clip in records:
        (folder / "speech" / clip.path).write_bytes(b"RIFF" + bytes(1000))
    if record == "complete":
        (folder / "complete.json").write_text(json.dumps({"manifests": ["speech/manifest.jsonl"]}))
    else:
        (folder / REPLACED_NAME).write_text(json.dumps([r.id for r in records]))
    if listed:
        marker = json.loads((bank.parent / BANK_MARKER).read_text())
        marker["manifests"] = [*marker.get("manifests", []), str(manifest.resolve())]
        (bank.parent / BANK_MARKER).write_text(json.dumps(marker))
    return folder


def test_reclaim_keeps_the_bank_audio_it_cannot_tell_is_unused(tmp_path: Path) -> None:
    """Audio of retired clips only (their rows removed now) goes, and the bank's marker no longer lists its
    manifest; kept: audio whose replaced.json names clips still served (a build killed as it replaced their voices),
    audio of served clips no other audio holds though the marker does not list it (a build killed as it recorded
    them), audio whose records are not JSON, and without a record of the settings used last, the newest."""
    cache = tmp_path / "cache"
    bank, ids = bank_with_retired_rows(cache)
    records = {r.id: r for r in write_bank(tmp_path / "elsewhere" / "store.zarr", 90, seed=1, prefix="b")}
    retired = audio_folder(bank, "a" * 12, [records[i] for i in ids[10:20]])
    replacing = audio_folder(bank, "b" * 12, [records[i] for i in ids[20:30]], record="replaced")
    unreadable = audio_folder(bank, "c" * 12, [records[i] for i in ids[10:12]])
    (unreadable / "complete.json").write_text("{not json")
    unlisted = audio_folder(bank, "e" * 12, [records[i] for i in ids[30:32]], listed=False)
    newest = audio_folder(bank, "d" * 12, [records[i] for i in ids[12:14]])
    os.utime(newest, ns=(2**62, 2**62))
    size = tree_bytes(cache)
    dry = reclaim_bank(cache=cache, **BANK, dry_run=True)
    done = reclaim_bank(cache=cache, **BANK)
    assert dry.audio_removed == done.audio_removed == (retired,) and done.rows_removed == 10
    assert not retired.exists() and all(f.is_dir() for f in (replacing, unreadable, unlisted, newest))
    listed = json.loads((bank.parent / BANK_MARKER).read_text())["manifests"]
    assert [Path(m).parent.parent.name for m in listed] == ["b" * 12, "c" * 12, "d" * 12]
    freed = size - tree_bytes(cache)  # the rows, the lists, the audio and the marker's line of its manifest
    assert done.bytes_freed > tree_bytes(replacing) and 0 < freed - done.bytes_freed < 200
    assert reclaim_bank(cache=cache, **BANK).audio_removed == ()


def test_a_reclaim_killed_while_deleting_bank_audio_leaves_it_to_the_next(tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The audio is moved aside before it is deleted: killed meanwhile, no settings' folder is left half deleted
    (a build would take it for whole), and the next reclaim deletes what was moved aside."""
    cache = tmp_path / "cache"
    bank, ids = bank_with_retired_rows(cache)
    records = {r.id: r for r in write_bank(tmp_path / "elsewhere" / "store.zarr", 90, seed=1, prefix="b")}
    retired = audio_folder(bank, "a" * 12, [records[i] for i in ids[10:20]])
    kept = audio_folder(bank, "b" * 12, [records[i] for i in ids[20:30]])
    before, trash = served(bank), bank.parent / "audio" / ".reclaiming"
    with monkeypatch.context() as patch:
        kill(patch, "while deleting folders")
        with pytest.raises(KeyboardInterrupt):
            reclaim_bank(cache=cache, **BANK)
    assert trash.is_dir() and not retired.exists() and len(list(kept.rglob("*.wav"))) == 10
    after = served(bank)
    assert after[0] == before[0] and np.array_equal(after[1], before[1])
    done = reclaim_bank(cache=cache, **BANK)
    assert done.audio_removed == (trash,) and done.bytes_freed > 0 and not trash.exists() and kept.is_dir()


def cached_pass(cache: Path, stream: Path, hop: int) -> Path:
    """The backbone's pass over ``stream`` at ``hop`` kept in the cache (as calibration keeps it): its file."""
    backbone = load_backbone("speech-embedding")
    stream_sequences(stream, backbone, hop=hop, cache=cache)
    return cache / "stream-embeddings" / f"{stream_key(stream, backbone.identity, hop)}.npy"


def test_reclaim_removes_the_cached_passes_of_the_held_out_streams_gone(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The backbone's passes over the held-out streams stayed in <cache>/stream-embeddings/ once their streams
    were removed. reclaim removes the passes whose every stream was a held-out stream now gone; kept: the current
    stream's, those over files of the user's (wb calibrate --cache-streams; one deleted since), one over the old
    stream's bytes that was read from a file of the user's too, and one of before passes recorded their streams
    (whose, unknown)."""
    cache = tmp_path / "cache"
    bank_with_retired_rows(cache)
    old, new = streams_of_two_voices(cache, monkeypatch)
    mine = write_wav(tmp_path / "mine.wav", noise(4.0, amplitude=0.1, seed=3))
    copy = tmp_path / "copy-of-old.wav"
    shutil.copyfile(old.stream, copy)
    dead = cached_pass(cache, old.stream, 1600)
    kept = [cached_pass(cache, new.stream, 1600), cached_pass(cache, mine, 1600), cached_pass(cache, old.stream, 3200)]
    assert cached_pass(cache, copy, 3200) == kept[-1]  # the same bytes: the same pass, the user's file recorded
    kept.append(cached_pass(cache, old.stream, 4800))
    kept[-1].with_suffix(RECORD_SUFFIX).unlink()  # made before passes recorded their streams
    deleted = write_wav(tmp_path / "deleted.wav", noise(4.0, amplitude=0.1, seed=4))
    kept.append(cached_pass(cache, deleted, 1600))
    deleted.unlink()  # the user's file, gone: no held-out stream, so not reclaim's to judge
    size = tree_bytes(cache)
    dry = reclaim_bank(cache=cache, **BANK, dry_run=True)
    assert dry.passes_removed == (dead,) and dead.is_file()
    done = reclaim_bank(cache=cache, **BANK)
    assert done.passes_removed == (dead,) and done.folders_removed == dry.folders_removed
    assert not dead.exists() and not dead.with_suffix(RECORD_SUFFIX).exists() and all(p.is_file() for p in kept)
    assert done.bytes_freed == size - tree_bytes(cache) and dead.parent.is_dir()
    assert not (dead.parent / ".reclaiming").exists()
    assert reclaim_bank(cache=cache, **BANK).passes_removed == ()
    result = CliRunner().invoke(main, ["bank", "reclaim", "--backbone", BANK["backbone"], "--window-s", "2",
                                       "--cache-dir", str(cache), "--json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["stream_passes_removed"] == [], result.output


def test_a_pass_in_use_or_of_bytes_a_held_out_stream_kept_has_is_kept(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A stream made again into another folder with the same bytes (a stage's version changed, not its output):
    the pass over the old folder's copy still serves the new one, so it is kept when that folder goes. A pass being
    read or made (its lock held) is kept till the next reclaim, and one killed while deleting is finished then."""
    cache = tmp_path / "cache"
    bank_with_retired_rows(cache)
    old, new = streams_of_two_voices(cache, monkeypatch)
    again = new.stream.parent.with_name(new.stream.parent.name[:-12] + "0" * 12)  # same settings, older folder
    again.mkdir()
    shutil.copyfile(new.stream, again / "stream.wav")
    same_bytes, dead = cached_pass(cache, again / "stream.wav", 800), cached_pass(cache, old.stream, 1600)
    with FileLock(str(dead.with_suffix(".lock"))):  # wb calibrate --cache-streams reading it
        done = reclaim_bank(cache=cache, **BANK)
    assert again in done.folders_removed and not again.exists() and same_bytes.is_file()
    assert done.passes_removed == () and dead.is_file()
    trash = dead.parent / ".reclaiming"
    with monkeypatch.context() as patch:
        rmtree = shutil.rmtree

        def stop_in_the_trash(path: str | os.PathLike[str], *args: object, **kwargs: object) -> None:
            if Path(path) == trash:
                (trash / dead.name).unlink()  # part of it deleted
                raise KeyboardInterrupt
            rmtree(path, *args, **kwargs)

        patch.setattr(shutil, "rmtree", stop_in_the_trash)
        with pytest.raises(KeyboardInterrupt):
            reclaim_bank(cache=cache, **BANK)
    assert trash.is_dir() and not dead.with_suffix(RECORD_SUFFIX).exists() and not dead.exists()
    finished = reclaim_bank(cache=cache, **BANK)
    assert finished.passes_removed == (trash,) and finished.bytes_freed > 0 and not trash.exists()
    assert same_bytes.is_file()
