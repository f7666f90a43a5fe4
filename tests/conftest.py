"""Shared fixtures: caches redirected to a temp dir, synthetic audio, a tiny random AST."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from wakebuilder import SAMPLE_RATE

# huggingface_hub reads these once, at import: set them before any test module imports transformers.
# Worker processes that import this module (spawned pools, Dask, subprocesses) inherit the parent's folder: they
# end without running atexit, so a folder of their own would be left behind.
if "WB_TEST_SESSION_CACHE" in os.environ:
    _SESSION_CACHE = Path(os.environ["WB_TEST_SESSION_CACHE"])
else:
    _SESSION_CACHE = Path(tempfile.mkdtemp(prefix="wb-test-cache-"))
    os.environ["WB_TEST_SESSION_CACHE"] = str(_SESSION_CACHE)
    atexit.register(shutil.rmtree, _SESSION_CACHE, ignore_errors=True)
os.environ["HF_HOME"] = str(_SESSION_CACHE / "hf")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["WB_CACHE_DIR"] = str(_SESSION_CACHE / "wb")
os.environ.setdefault("NUMBA_CACHE_DIR", str(_SESSION_CACHE / "numba"))


@pytest.fixture(autouse=True)
def _isolated_caches(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads or writes the user's caches or reaches the network."""
    cache = tmp_path_factory.getbasetemp() / "caches"
    monkeypatch.setenv("HF_HOME", str(cache / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("WB_CACHE_DIR", str(cache / "wb"))
    monkeypatch.setenv("MPLBACKEND", "Agg")


def tone(freq_hz: float, duration_s: float, *, amplitude: float = 0.5, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A sine tone, float32."""
    t = np.arange(int(duration_s * rate)) / rate
    return (amplitude * np.sin(2 * np.pi * freq_hz * t)).astype(np.float32)


def chirp(f0: float, f1: float, duration_s: float, *, amplitude: float = 0.5, rate: int = SAMPLE_RATE) -> np.ndarray:
    """A linear chirp from f0 to f1 Hz, float32."""
    t = np.arange(int(duration_s * rate)) / rate
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t * t / (2 * duration_s))
    return (amplitude * np.sin(phase)).astype(np.float32)


def noise(duration_s: float, *, amplitude: float = 0.1, seed: int = 0, rate: int = SAMPLE_RATE) -> np.ndarray:
    """White noise, float32."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(int(duration_s * rate))).astype(np.float32)


@pytest.fixture(scope="session")
def tiny_ast_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random AST checkpoint (with its feature extractor) saved to a temp dir."""
    import torch
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    torch.manual_seed(0)
    config = ASTConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_length=128,
        num_mel_bins=128,
    )
    model = ASTModel(config).eval()
    path = tmp_path_factory.mktemp("tiny-ast")
    model.save_pretrained(path)
    ASTFeatureExtractor(max_length=128).save_pretrained(path)
    return path
