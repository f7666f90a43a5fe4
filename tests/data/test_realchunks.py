from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import noise, tone
from wakebuilder.audio import load_audio, write_wav
from wakebuilder.data.realchunks import ChunkConfig, chunk_bounds, chunk_real_audio, voiced_regions
from wakebuilder.errors import ConfigError, StoreMismatchError
from wakebuilder.manifest import read_manifest, resolve_clip_path

RATE = 16_000


def _long_file(path: Path, freq: float = 300) -> np.ndarray:
    silence = np.zeros(RATE * 2, dtype=np.float32)
    speech = tone(freq, 7.0) + noise(7.0, amplitude=0.05)
    audio = np.concatenate([silence, speech, silence, tone(freq + 200, 0.4), silence])
    # (a different blip per file: identical audio in two files is one clip id, kept once)
    write_wav(path, audio)
    return load_audio(path)


@settings(max_examples=80, deadline=None)
@given(edges=st.lists(st.integers(0, 20 * RATE), min_size=0, max_size=10, unique=True),
       total_s=st.floats(1.0, 20.0), hop_s=st.sampled_from([0.5, 1.0, 3.0]))
def test_chunk_bounds_cover_regions_within_limits(edges: list[int], total_s: float, hop_s: float) -> None:
    total = int(total_s * RATE)
    edges = sorted(e for e in edges if e <= total)
    regions = [(a, b) for a, b in zip(edges[::2], edges[1::2]) if b > a]
    config = ChunkConfig(hop_s=hop_s)
    bounds = chunk_bounds(regions, total, config)
    covered = np.zeros(total, dtype=bool)
    for a, b in bounds:
        assert 0 <= a < b <= total and b - a <= 3 * RATE
        assert b - a >= RATE or total < RATE  # only a file shorter than --min-s gives a shorter chunk
        covered[a:b] = True
    assert all(covered[a:b].all() for a, b in regions)


def test_chunks_cover_non_silent_audio_skip_silence_and_keep_groups(tmp_path: Path) -> None:
    (tmp_path / "src" / "sub").mkdir(parents=True)
    audio = _long_file(tmp_path / "src" / "a.wav")
    other = _long_file(tmp_path / "src" / "sub" / "b.flac", freq=350)
    write_wav(tmp_path / "src" / "quiet.wav", np.zeros(RATE * 4, dtype=np.float32))
    regions = voiced_regions(audio, ChunkConfig())
    assert len(regions) == 2 and abs(regions[0][0] - 2 * RATE) < 0.05 * RATE  # tone burst and short blip
    manifest = chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "cache", config=ChunkConfig())
    records = read_manifest(manifest)
    assert {r.group for r in records} == {"a.wav", "sub/b.flac"}  # the silent file gives nothing
    assert all(r.kind == "real_negative" and r.label == 0 for r in records)
    sources = {"a.wav": audio, "sub/b.flac": other}
    for group, samples in sources.items():
        covered = np.zeros(samples.size, dtype=bool)
        for r in (r for r in records if r.group == group):
            a, b = round(r.params["start_s"] * RATE), round(r.params["end_s"] * RATE)
            assert r.source.endswith(group) and 0 <= a < b <= samples.size  # never crosses files
            np.testing.assert_allclose(load_audio(resolve_clip_path(manifest, r)), samples[a:b], atol=1e-4)
            covered[a:b] = True
        loud = np.abs(samples) > 0.01
        assert covered[loud].all()  # every non-silent sample is in a chunk
        assert not covered[: RATE].any() and not covered[-RATE:].any()  # silence skipped


def test_chunk_cache_resumes_and_refuses_other_settings(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    _long_file(tmp_path / "src" / "a.wav")
    _long_file(tmp_path / "src" / "b.wav", freq=400)
    cache = tmp_path / "cache"
    first = chunk_real_audio(tmp_path / "src", out_dir=cache, config=ChunkConfig())
    stamps = {p.name: p.stat().st_mtime_ns for p in (cache / "clips").iterdir()}
    again = chunk_real_audio(tmp_path / "src", out_dir=cache, config=ChunkConfig())
    assert first.read_bytes() == again.read_bytes()
    assert {p.name: p.stat().st_mtime_ns for p in (cache / "clips").iterdir()} == stamps  # nothing re-chunked
    _long_file(tmp_path / "src" / "a.wav", freq=600)  # changed content: that file again
    (tmp_path / "src" / "b.wav").unlink()  # removed file: its chunks leave the manifest
    manifest = chunk_real_audio(tmp_path / "src", out_dir=cache, config=ChunkConfig())
    groups = {r.group for r in read_manifest(manifest)}
    assert groups == {"a.wav"}
    with pytest.raises(StoreMismatchError, match="other settings"):
        chunk_real_audio(tmp_path / "src", out_dir=cache, config=ChunkConfig(max_s=2.0))
    redone = chunk_real_audio(tmp_path / "src", out_dir=cache, config=ChunkConfig(max_s=2.0), overwrite=True)
    assert all(r.duration_s <= 2.0 for r in read_manifest(redone))


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not a folder"):
        chunk_real_audio(tmp_path / "missing", out_dir=tmp_path / "c", config=ChunkConfig())
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no audio files"):
        chunk_real_audio(tmp_path / "empty", out_dir=tmp_path / "c", config=ChunkConfig())
    with pytest.raises(ConfigError, match="min_s"):
        chunk_real_audio(tmp_path / "empty", out_dir=tmp_path / "c", config=ChunkConfig(min_s=4.0))
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "broken.wav").write_bytes(b"RIFF not audio")
    _long_file(tmp_path / "src" / "good.wav")
    records = read_manifest(chunk_real_audio(tmp_path / "src", out_dir=tmp_path / "c", config=ChunkConfig()))
    assert {r.group for r in records} == {"good.wav"}  # a broken file is recorded and skipped
