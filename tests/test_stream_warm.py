"""The held-out streams' backbone passes made ahead by a process of their own, at the lowest priority."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import pytest

from tests.model_helpers import planted_stream, tone_setup
from wakebuilder.audio import write_wav
from wakebuilder.backbones import backbone_from_identity
from wakebuilder.bank.location import cache_dir
from wakebuilder.calibrate import CalibrateConfig, model_stream_scores
from wakebuilder.modeldir import load_model
from wakebuilder.stream_cache import stream_key
from wakebuilder.stream_warm import start_warming


def test_the_passes_made_ahead_are_those_calibration_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = load_model(tone_setup()["model"])
    streams = [write_wav(tmp_path / f"s{i}.wav", planted_stream((2.0 + i,), 8.0)) for i in range(2)]
    warming = start_warming(streams, model.backbone, hop=1600, dtype="auto", log_path=tmp_path / "warm.log")
    assert warming.process.wait(120) == 0
    assert warming.process.pid != os.getpid()
    backbone = backbone_from_identity(model.backbone, device="cpu")
    for stream in streams:
        assert (cache_dir() / "stream-embeddings" / f"{stream_key(stream, backbone.identity, 1600)}.npy").is_file()
    plain = [model_stream_scores(s, model, backbone, 1.0, 0.0, config=CalibrateConfig())[0] for s in streams]

    def no_backbone(*args, **kwargs):
        raise AssertionError("the backbone ran again")

    monkeypatch.setattr(backbone, "embed", no_backbone)
    monkeypatch.setattr(backbone, "embed_hopped", no_backbone)
    for stream, expected in zip(streams, plain):
        cached, _ = model_stream_scores(stream, model, backbone, 1.0, 0.0, config=CalibrateConfig(cache_streams=True))
        np.testing.assert_allclose(cached, expected, atol=0.02)  # float16 sequences, as the stores keep them
    log = (tmp_path / "warm.log").read_text()
    assert log.count("windows into") == 2  # each pass made once, in the order given
    assert log.index(str(streams[0])) < log.index(str(streams[1]))


def test_the_process_runs_at_the_lowest_priority(tmp_path: Path) -> None:
    if not hasattr(os, "getpriority"):
        pytest.skip("no process priorities here")
    model = load_model(tone_setup()["model"])
    stream = write_wav(tmp_path / "s.wav", planted_stream((2.0,), 240.0))
    warming = start_warming([stream], model.backbone, hop=1600, dtype="auto", log_path=tmp_path / "warm.log")
    try:
        for _ in range(200):  # it lowers its own priority first thing, before it loads the backbone
            niceness = os.getpriority(os.PRIO_PROCESS, warming.process.pid)
            if niceness == 19 or warming.process.poll() is not None:
                break
            time.sleep(0.05)
        assert niceness == 19
    finally:
        warming.stop()


def test_stop_ends_the_process_and_leaves_no_pass(tmp_path: Path) -> None:
    model = load_model(tone_setup()["model"])
    stream = write_wav(tmp_path / "s.wav", planted_stream((2.0,), 240.0))
    warming = start_warming([stream], model.backbone, hop=1600, dtype="auto", log_path=tmp_path / "warm.log")
    warming.stop()
    assert warming.process.returncode != 0  # ended by it, not finished
    key = stream_key(stream, backbone_from_identity(model.backbone, device="cpu").identity, 1600)
    assert not (cache_dir() / "stream-embeddings" / f"{key}.npy").exists()


def test_a_failed_process_is_reported_with_its_log(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model = load_model(tone_setup()["model"])
    warming = start_warming([tmp_path / "missing.wav"], model.backbone, hop=1600, dtype="auto",
                            log_path=tmp_path / "warm.log")
    assert warming.process.wait(120) != 0
    with caplog.at_level(logging.WARNING, logger="wakebuilder.stream_warm"):
        warming.stop()
    assert "failed" in caplog.text and str(tmp_path / "warm.log") in caplog.text
    assert "missing.wav" in (tmp_path / "warm.log").read_text()
