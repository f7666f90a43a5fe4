from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import noise, tone
from wakebuilder.audio import load_audio, quantize_pcm16, write_wav
from wakebuilder.backbones.speech_embedding import SpeechEmbeddingBackbone, sequence_length
from wakebuilder.embed import EmbedConfig, embed_manifests
from wakebuilder.embed_settings import choose_window, window_durations
from wakebuilder.errors import BadAudioError, LockedError, StoreError, StoreMismatchError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, read_manifest, write_manifest
from wakebuilder.store import open_store, rejects_path

SE = EmbedConfig(backbone="speech-embedding")


def make_manifest(folder: Path, n: int, *, start: int = 0, duration_s: float = 1.0) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    records = []
    for i in range(start, start + n):
        samples = tone(200 + 37 * i, duration_s) + noise(duration_s, amplitude=0.05, seed=i)
        write_wav(folder / f"{i}.wav", samples)
        records.append(ClipRecord(
            id=audio_id(quantize_pcm16(samples)), path=f"{i}.wav", label=i % 2, kind="tts",
            group=f"v{i % 4}", text="hey", duration_s=duration_s,
        ))
    return write_manifest(folder / f"manifest-{start}.jsonl", records)


def count_embedded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record the batch size of every speech-embedding ``embed`` call."""
    calls: list[int] = []
    original = SpeechEmbeddingBackbone.embed

    def counting(self: SpeechEmbeddingBackbone, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        calls.append(waveforms.shape[0])
        return original(self, waveforms)

    monkeypatch.setattr(SpeechEmbeddingBackbone, "embed", counting)
    return calls


@pytest.mark.parametrize("store_name", ["s.zarr", "s.h5"])
def test_embed_speech_embedding_and_incremental(
    tmp_path: Path, store_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_embedded(monkeypatch)
    first = make_manifest(tmp_path / "clips", 20)
    store_path = tmp_path / store_name
    summary = embed_manifests([first], store_path=store_path, config=SE, batch_size=8, threads=1, progress=False)
    assert summary.embedded == 20 and summary.rejected == 0 and calls == [8, 8, 4]
    calls.clear()
    more = make_manifest(tmp_path / "clips", 10, start=20)
    again = embed_manifests([first, more, more], store_path=store_path, config=SE, batch_size=4, threads=2,
                            progress=False)
    assert calls == [8, 2] and again.embedded == 10  # two calls of 4 at once, then one of 2
    assert again.skipped_existing == 20 and again.clips_in_store == 30
    with open_store(store_path) as store:
        arrays = store.load()
        assert arrays.sequence.shape == (30, 9, 96) and arrays.sequence.dtype == np.float16
        assert arrays.pooled.shape == (30, 96) and store.spec.backbone["name"] == "speech-embedding"
        assert sorted(arrays.group.tolist())[:2] == ["v0", "v0"]
        assert [r.id for r in store.records()] == [r.id for r in read_manifest(first) + read_manifest(more)]
    padded = np.zeros(24_000, np.float32)  # a 1 s clip sits centred in the 1.5 s window
    padded[4_000:20_000] = load_audio(tmp_path / "clips" / "0.wav")
    expected = SpeechEmbeddingBackbone().embed(padded[None])[1][0]
    assert np.abs(arrays.sequence[0].astype(np.float32) - expected).max() < 1e-2 * np.abs(expected).max()
    calls.clear()
    nothing = embed_manifests([first], store_path=store_path, config=SE, progress=False)
    assert nothing.embedded == 0 and calls == []


def test_speech_embedding_keeps_its_window_and_crops(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 3, duration_s=2.0)
    summary = embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, progress=False)
    assert summary.backbone["window_s"] == 1.5 and summary.cropped == 3
    wide = EmbedConfig(backbone="speech-embedding", window_s=2.0)
    widened = embed_manifests([manifest], store_path=tmp_path / "w.zarr", config=wide, progress=False)
    assert widened.backbone["seq_len"] == sequence_length(32_000) == 16 and widened.cropped == 0


def test_second_writer_gets_a_clear_error(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 2)
    embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, progress=False)
    held = open_store(tmp_path / "s.zarr", "a")
    with held, pytest.raises(LockedError, match="another wakebuilder process"):
        embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, progress=False)


@pytest.mark.parametrize("store_name", ["s.zarr", "s.h5"])
def test_embed_with_tiny_ast_and_window_fit(tmp_path: Path, tiny_ast_dir: Path, store_name: str) -> None:
    manifest = make_manifest(tmp_path / "clips", 6, duration_s=1.7)
    config = EmbedConfig(backbone=str(tiny_ast_dir))
    path = tmp_path / store_name
    summary = embed_manifests([manifest], store_path=path, config=config, batch_size=4, progress=False)
    assert summary.backbone["window_s"] == pytest.approx(1.7) and summary.cropped == 0
    with open_store(path) as store:
        assert store.load().sequence.shape == (6, (170 - 16) // 10 + 1, 32)
    with pytest.raises(StoreMismatchError, match="--overwrite"):
        embed_manifests([manifest], store_path=path, config=SE, progress=False)
    with open_store(path) as store:
        assert len(store) == 6 and store.spec.backbone["window_s"] == pytest.approx(1.7)
    replaced = embed_manifests([manifest], store_path=path, config=SE, overwrite=True, progress=False)
    assert replaced.embedded == 6



@pytest.mark.parametrize("store_name", ["s.zarr", "s.h5"])
def test_wb_embed_adds_clips_at_the_window_the_store_was_widened_to(
    tmp_path: Path, tiny_ast_dir: Path, store_name: str
) -> None:
    """A store whose AST window was widened to fit its first clips (1.7 s) refused every later wb embed of
    shorter clips (this run's own window, 1.28 s, is another embedding), and its advice, --overwrite, would
    have thrown the store away; the clips are now embedded at the store's window. Clips longer than it still
    need another window: that is refused as before."""
    from click.testing import CliRunner

    from wakebuilder.cli import main

    store = tmp_path / store_name
    first = make_manifest(tmp_path / "first", 4, duration_s=1.7)
    more = make_manifest(tmp_path / "more", 2, start=10, duration_s=1.0)
    runner = CliRunner()
    for manifest in (first, more):
        result = runner.invoke(main, ["embed", str(manifest), "--store", str(store), "--backbone", str(tiny_ast_dir),
                                      "--json"])
        assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["embedded"] == 2 and summary["clips_in_store"] == 6
    assert summary["backbone"]["window_s"] == pytest.approx(1.7)
    longer = make_manifest(tmp_path / "longer", 2, start=20, duration_s=2.2)
    result = runner.invoke(main, ["embed", str(longer), "--store", str(store), "--backbone", str(tiny_ast_dir)])
    assert result.exit_code != 0 and "window_s: store 1.7, this run 2.2" in result.output

def test_window_fits_the_wake_word_clips() -> None:
    rows = [ClipRecord(id=str(i), path="a.wav", label=label, kind="tts", group="g", duration_s=d)
            for i, (label, d) in enumerate([(1, 1.2), (0, 2.9), (1, 1.4)])]
    assert window_durations(rows) == [1.2, 1.4]
    assert window_durations(rows[1:2]) == [2.9]


def test_choose_window() -> None:
    assert choose_window(1.28, [0.8, 1.2]) is None
    assert choose_window(1.28, [0.8, 2.345]) == 2.35
    assert choose_window(1.28, [5.0]) == 3.0


def test_bad_inputs_are_rejected_with_reasons(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    manifest = make_manifest(folder, 3)
    rows = [json.loads(line) for line in manifest.read_text().splitlines()]

    def add(name: str, *, content: bytes | None = None, samples: np.ndarray | None = None, rate: int = 16_000,
            subtype: str = "PCM_16", real_id: bool = False) -> None:
        if content is not None:
            (folder / name).write_bytes(content)
        else:
            sf.write(folder / name, samples, rate, subtype=subtype)
        clip_id = audio_id(load_audio(folder / name)) if real_id else f"id-{name}"
        rows.append({"id": clip_id, "path": name, "label": 0, "kind": "real_negative", "group": name})

    add("empty.wav", content=b"")
    add("text.wav", content=b"not audio at all, just text\n" * 20)
    add("truncated.wav", content=(folder / "0.wav").read_bytes()[:30])
    add("nan.wav", samples=np.array([0.0, np.nan] * 800, dtype=np.float32), subtype="FLOAT")
    add("changed.wav", samples=tone(900, 1.0))  # its id does not match its content
    rows.append({"id": "missing", "path": "gone.wav", "label": 0, "kind": "real_negative", "group": "g"})
    stereo = np.stack([tone(440, 1.0, rate=44_100)] * 2, axis=1)
    add("stereo44k.wav", samples=stereo, rate=44_100, real_id=True)
    add("narrow8k.wav", samples=tone(440, 1.0, rate=8_000), rate=8_000, real_id=True)
    add("silence.wav", samples=np.zeros(16_000, np.float32), real_id=True)
    add("long.wav", samples=tone(300, 2.5), real_id=True)
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))

    summary = embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, progress=False)
    assert summary.embedded == 7 and summary.rejected == 6
    assert summary.cropped == 1 and summary.silent == 1
    lines = rejects_path(tmp_path / "s.zarr").read_text().splitlines()
    reasons = {json.loads(line)["id"]: json.loads(line)["reason"] for line in lines}
    assert "empty file" in reasons["id-empty.wav"] and "cannot decode" in reasons["id-text.wav"]
    assert "cannot decode" in reasons["id-truncated.wav"] and "NaN" in reasons["id-nan.wav"]
    assert "audio changed since the manifest was written" in reasons["id-changed.wav"]
    assert "not found" in reasons["missing"] and len(reasons) == 6
    again = embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, progress=False)
    assert again.embedded == 0 and again.rejected == 6 and again.skipped_existing == 7
    (folder / "manifest-0.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, progress=False)
    assert not rejects_path(tmp_path / "s.zarr").exists()


def test_a_run_whose_every_clip_is_rejected_fails_naming_the_rejects(tmp_path: Path) -> None:
    folder = tmp_path / "clips"
    folder.mkdir()
    (folder / "bad.wav").write_bytes(b"not audio at all\n" * 20)
    manifest = write_manifest(folder / "bad.jsonl", [ClipRecord(id="bad", path="bad.wav", label=0,
                                                                kind="real_negative", group="g")])
    store = tmp_path / "s.zarr"
    with pytest.raises(BadAudioError, match=f"none of the 1 clip.*{rejects_path(store)}"):
        embed_manifests([manifest], store_path=store, config=SE, progress=False)
    assert "cannot decode" in rejects_path(store).read_text()
    good = make_manifest(folder, 2)  # a store of other clips gains nothing from it either
    embed_manifests([good], store_path=store, config=SE, progress=False)
    with pytest.raises(BadAudioError, match=f"^{manifest}: none of the 1 clip"):
        embed_manifests([manifest], store_path=store, config=SE, progress=False)
    summary = embed_manifests([good, manifest], store_path=store, config=SE, progress=False)
    assert summary.rejected == 1 and summary.skipped_existing == 2  # a resumed run: some clips are usable


KILL_RUN = [sys.executable, "-m", "wakebuilder.cli", "embed", "--backbone", "speech-embedding",
            "--batch-size", "4"]


def committed_rows(path: Path) -> int:
    """Rows a reader sees now (0 while the store does not exist yet)."""
    try:
        with open_store(path) as store:
            return len(store)
    except StoreError:
        return 0


@pytest.mark.slow
def test_kill_9_and_resume_stores_every_clip_once(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 400, duration_s=0.5)
    command = [*KILL_RUN, str(manifest), "--store", str(tmp_path / "s.zarr")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 60
    while time.time() < deadline and committed_rows(tmp_path / "s.zarr") < 40:
        time.sleep(0.05)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    with open_store(tmp_path / "s.zarr") as store:
        partial = len(store)
    assert 40 <= partial < 400
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    with open_store(tmp_path / "s.zarr") as store:
        ids = store.load(pooled=False, sequence=False).id.tolist()
    assert len(ids) == 400 and len(set(ids)) == 400


def _sequences(path: Path, ids: set[str]) -> np.ndarray:
    with open_store(path) as store:
        arrays = store.load(pooled=False)
        rows = [i for i, clip_id in enumerate(arrays.id.tolist()) if clip_id in ids]
        return arrays.sequence[rows]


@pytest.mark.parametrize("store_name", ["s.zarr", "s.h5"])
def test_a_store_keeps_the_precision_it_was_begun_at(tmp_path: Path, tiny_ast_dir: Path, store_name: str) -> None:
    """A store begun in bf16 (AST on a GPU, --dtype auto) and resumed on a CPU (auto: fp32) mixed rows of both
    precisions without a word; the precision is now recorded when the store is created, a run that did not choose
    one adopts it, and an explicit other one is refused in one line naming both and the fix."""
    first = make_manifest(tmp_path / "first", 3)
    more = make_manifest(tmp_path / "more", 3, start=10)
    more_ids = {r.id for r in read_manifest(more)}
    path = tmp_path / store_name
    bf16 = EmbedConfig(backbone=str(tiny_ast_dir), dtype="bf16")  # what auto chooses on a GPU
    embed_manifests([first], store_path=path, config=bf16, progress=False)
    with open_store(path) as store:
        assert store.attrs["compute_dtype"] == "bf16" and store.spec.compute_dtype == "bf16"
    resumed = embed_manifests([more], store_path=path, config=EmbedConfig(backbone=str(tiny_ast_dir)),
                              progress=False)
    assert resumed.embedded == 3 and resumed.compute_dtype == "bf16"
    for dtype in ("bf16", "fp32"):
        embed_manifests([more], store_path=tmp_path / f"{dtype}.zarr", progress=False,
                        config=EmbedConfig(backbone=str(tiny_ast_dir), dtype=dtype))
    got = _sequences(path, more_ids)
    assert np.array_equal(got, _sequences(tmp_path / "bf16.zarr", more_ids))
    assert not np.array_equal(got, _sequences(tmp_path / "fp32.zarr", more_ids))  # the test can tell them apart
    clash = make_manifest(tmp_path / "clash", 2, start=20)
    fp32 = EmbedConfig(backbone=str(tiny_ast_dir), dtype="fp32")
    with pytest.raises(StoreMismatchError) as refused:
        embed_manifests([clash], store_path=path, config=fp32, progress=False)
    message = str(refused.value)
    assert "\n" not in message and str(path) in message and "bf16" in message and "fp32" in message
    assert "--dtype bf16" in message
    with open_store(path) as store:
        assert len(store) == 6 and store.attrs["compute_dtype"] == "bf16"
    assert embed_manifests([clash], store_path=path, config=fp32, overwrite=True, progress=False).embedded == 2
    with open_store(path) as store:
        assert len(store) == 2 and store.attrs["compute_dtype"] == "fp32"


def test_a_store_made_before_precision_was_recorded_still_takes_clips(tmp_path: Path, tiny_ast_dir: Path) -> None:
    """A store without ``compute_dtype`` (made before it was recorded) is of unknown precision: appended to at any,
    as before, and left unrecorded (its rows may already be of both)."""
    path = tmp_path / "old.zarr"
    embed_manifests([make_manifest(tmp_path / "a", 2)], store_path=path, progress=False,
                    config=EmbedConfig(backbone=str(tiny_ast_dir), dtype="bf16"))
    meta = json.loads((path / "zarr.json").read_text())
    del meta["attributes"]["compute_dtype"]
    (path / "zarr.json").write_text(json.dumps(meta))
    summary = embed_manifests([make_manifest(tmp_path / "b", 2, start=5)], store_path=path, progress=False,
                              config=EmbedConfig(backbone=str(tiny_ast_dir), dtype="fp32"))
    assert summary.embedded == 2 and summary.clips_in_store == 4
    with open_store(path) as store:
        assert "compute_dtype" not in store.attrs and store.spec.compute_dtype is None
