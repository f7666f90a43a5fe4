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
from click.testing import CliRunner

from tests.conftest import noise, tone
from wakebuilder.audio import quantize_pcm16, write_wav
from wakebuilder.cli import main
from wakebuilder.embed import EmbedConfig, choose_window, embed_manifests
from wakebuilder.errors import StoreMismatchError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import ClipRecord, write_manifest
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


@pytest.mark.parametrize("store_name", ["s.zarr", "s.h5"])
def test_embed_speech_embedding_and_incremental(tmp_path: Path, store_name: str) -> None:
    first = make_manifest(tmp_path / "clips", 20)
    store_path = tmp_path / store_name
    summary = embed_manifests([first], store_path=store_path, config=SE, batch_size=8, progress=False)
    assert summary["embedded"] == 20 and summary["rejected"] == 0
    more = make_manifest(tmp_path / "clips", 10, start=20)
    again = embed_manifests([first, more], store_path=store_path, config=SE, batch_size=8, progress=False)
    assert again["embedded"] == 10 and again["skipped_existing"] == 20 and again["clips_in_store"] == 30
    with open_store(store_path) as store:
        arrays = store.load()
        assert arrays.sequence.shape == (30, 9, 96) and arrays.sequence.dtype == np.float16
        assert store.spec.backbone["name"] == "speech-embedding"
        assert sorted(arrays.group.tolist())[:2] == ["v0", "v0"]


def test_embed_with_tiny_ast_and_window_fit(tmp_path: Path, tiny_ast_dir: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 6, duration_s=1.7)
    config = EmbedConfig(backbone=str(tiny_ast_dir))
    summary = embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=config, batch_size=4, progress=False)
    assert summary["backbone"]["window_s"] == pytest.approx(1.7) and summary["cropped"] == 0
    with open_store(tmp_path / "s.zarr") as store:
        assert store.load().sequence.shape == (6, (170 - 16) // 10 + 1, 32)
    with pytest.raises(StoreMismatchError, match="--overwrite"):
        embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, progress=False)
    replaced = embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, overwrite=True, progress=False)
    assert replaced["embedded"] == 6


def test_window_fits_the_wake_word_clips() -> None:
    from wakebuilder.embed import window_durations

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

    def add(name: str, samples: np.ndarray | None, rate: int = 16_000, content: bytes | None = None) -> None:
        path = folder / name
        if content is not None:
            path.write_bytes(content)
        else:
            sf.write(path, samples, rate, subtype="FLOAT" if name.startswith("nan") else "PCM_16")
        rows.append({"id": f"id-{name}", "path": name, "label": 0, "kind": "real_negative", "group": name})

    add("empty.wav", None, content=b"")
    add("text.wav", None, content=b"not audio at all")
    add("nan.wav", np.array([0.0, np.nan] * 100, dtype=np.float32))
    add("changed.wav", tone(900, 1.0))  # id does not match its content
    rows.append({"id": "missing", "path": "gone.wav", "label": 0, "kind": "real_negative", "group": "g"})
    stereo = np.stack([tone(440, 1.0, rate=44_100), tone(440, 1.0, rate=44_100)], axis=1)
    sf.write(folder / "stereo.wav", stereo, 44_100)
    from wakebuilder.audio import load_audio
    rows.append({"id": audio_id(load_audio(folder / "stereo.wav")), "path": "stereo.wav", "label": 0,
                 "kind": "real_negative", "group": "s"})
    long = tone(300, 2.5)
    write_wav(folder / "long.wav", long)
    rows.append({"id": audio_id(quantize_pcm16(long)), "path": "long.wav", "label": 0, "kind": "real_negative",
                 "group": "l", "duration_s": 1.0})
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = embed_manifests([manifest], store_path=tmp_path / "s.zarr", config=SE, progress=False)
    assert summary["embedded"] == 5 and summary["rejected"] == 5 and summary["cropped"] == 1
    reasons = {json.loads(line)["id"]: json.loads(line)["reason"] for line in rejects_path(tmp_path / "s.zarr").open()}
    assert "empty" in reasons["id-empty.wav"] and "cannot decode" in reasons["id-text.wav"]
    assert "NaN" in reasons["id-nan.wav"] and "changed" in reasons["id-changed.wav"]
    assert "not found" in reasons["missing"]


KILL_RUN = [sys.executable, "-m", "wakebuilder.cli", "embed", "--backbone", "speech-embedding", "--batch-size", "4"]


def test_kill_9_and_resume_stores_every_clip_once(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 400, duration_s=0.5)
    command = [*KILL_RUN, str(manifest), "--store", str(tmp_path / "s.zarr")]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 60
    while time.time() < deadline:
        commit = tmp_path / "s.zarr" / "commit.json"
        if commit.exists() and json.loads(commit.read_text())["committed"] >= 40:
            break
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


def test_cli_embed_and_store_info(tmp_path: Path) -> None:
    manifest = make_manifest(tmp_path / "clips", 4)
    runner = CliRunner()
    store = tmp_path / "s.zarr"
    result = runner.invoke(main, ["embed", str(manifest), "--store", str(store), "--backbone", "speech-embedding"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip().endswith(str(store))
    info = runner.invoke(main, ["store", "info", str(store), "--json"])
    assert info.exit_code == 0 and json.loads(info.stdout)["clips"] == 4
    bad = runner.invoke(main, ["embed", str(manifest), "--store", str(store), "--backbone", str(tmp_path / "nope")])
    assert bad.exit_code != 0 and "wb: error:" in bad.output and len(bad.output.strip().splitlines()) == 1
