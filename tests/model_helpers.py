"""Helpers for the calibrate/export/detect/eval tests: tiny model directories and stores."""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from wakebuilder.modeldir import save_model
from wakebuilder.train.head import HeadConfig, WakeHead

TINY_HEAD = {"width": 16, "tcn_layers": 1, "hidden": (16,), "dropout": 0.0}


def tiny_head(seq_len: int, dim: int, *, seed: int = 0, **overrides: Any) -> WakeHead:
    """A small random head in eval mode."""
    torch.manual_seed(seed)
    return WakeHead(HeadConfig(input_dim=dim, seq_len=seq_len, **(TINY_HEAD | overrides))).eval()


def make_model_dir(
    path: Path, head: WakeHead, backbone: dict[str, Any], *, store_fingerprint: str = "none",
    val_groups: list[str] | None = None, wake_word: str = "hey tone",
) -> Path:
    """A model directory as wb fit writes it."""
    split = {"seed": 0, "val_fraction": 0.2, "train_groups": ["train"], "val_groups": val_groups or ["val"]}
    meta = {"backbone": backbone, "store_fingerprint": store_fingerprint, "wake_word": wake_word, "fit": {}}
    return save_model(path, head, meta=meta, split=split)


def fit_linear_head(
    head: WakeHead, sequences: np.ndarray, labels: np.ndarray, *, steps: int = 150
) -> WakeHead:
    """Train a head quickly (full batch Adam) so it separates ``labels``."""
    x = torch.from_numpy(sequences.astype(np.float32))
    y = torch.from_numpy(labels.astype(np.float32))
    head.train()
    optim = torch.optim.Adam(head.parameters(), lr=1e-2)
    for _ in range(steps):
        optim.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(head(x), y)
        loss.backward()
        optim.step()
    return head.eval()


WAKE_CHIRP_S = 0.6


def wake_sound(amplitude: float = 0.5) -> np.ndarray:
    """The synthetic "wake word": a rising chirp 500 -> 1500 Hz of 0.6 s."""
    from tests.conftest import chirp

    return chirp(500, 1500, WAKE_CHIRP_S, amplitude=amplitude)


def tone_clips(window_samples: int, n: int, *, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Positives (the chirp at a random offset over faint noise); negatives (tones, partial chirps)."""
    rng = np.random.default_rng(seed)
    t = np.arange(window_samples) / 16000
    clips, labels = [], []
    sound = wake_sound()
    for i in range(n):
        base = (rng.uniform(0.002, 0.02) * rng.standard_normal(window_samples)).astype(np.float32)
        kind = i % 4
        if kind == 0 or kind == 1:
            start = int(rng.integers(0, window_samples - sound.size))
            base[start : start + sound.size] += sound * rng.uniform(0.6, 1.4)
        elif kind == 2:
            freq = rng.uniform(200, 3000)
            base += (rng.uniform(0.05, 0.5) * np.sin(2 * np.pi * freq * t)).astype(np.float32)
        else:
            cut = int(sound.size * rng.uniform(0.1, 0.4))  # a partial chirp at the window's edge
            base[:cut] += sound[-cut:] if rng.random() < 0.5 else 0
            base *= rng.uniform(1, 5)
        clips.append(np.clip(base, -1, 1))
        labels.append(1 if kind < 2 else 0)
    return np.stack(clips).astype(np.float32), np.asarray(labels, dtype=np.int64)


@functools.lru_cache(maxsize=1)
def tone_setup() -> dict[str, Any]:
    """Once per session: a store of chirp/noise clips (speech-embedding) and a head fit on its train group.

    Returns paths ``store``, ``model`` (uncalibrated) and ``calibrated`` (its copy with an identity
    calibration at threshold 0.5), the backbone ``identity`` and ``window_samples``.
    """
    root = Path(tempfile.mkdtemp(prefix="wb-tone-model-"))
    atexit.register(shutil.rmtree, root, True)
    model, backbone = tone_store_and_model(root)
    calibrated = copy_model(model, root / "calibrated" / "model")  # same name as the model
    (calibrated / "calibration.json").write_text(json.dumps({"threshold": 0.5, "temperature": 1.0, "bias": 0.0}))
    return {"root": root, "store": root / "store", "model": model, "calibrated": calibrated,
            "identity": backbone.identity,
            "window_samples": backbone.window_samples}


def tone_store_and_model(root: Path, *, window_s: float | None = None) -> tuple[Path, Any]:
    """A store ``root/store`` of chirp/noise clips (speech-embedding over ``window_s``, None: its own 1.5 s) and
    the uncalibrated model ``root/model`` fit on its train group; returns the model's path and the backbone."""
    from wakebuilder.backbones import load_backbone
    from wakebuilder.manifest import ClipRecord
    from wakebuilder.store import StoreSpec, open_store

    backbone = load_backbone("speech-embedding", window_s=window_s)
    x_train, y_train = tone_clips(backbone.window_samples, 160, seed=0)
    x_val, y_val = tone_clips(backbone.window_samples, 80, seed=1)
    pooled_t, seq_t = backbone.embed(x_train)
    pooled_v, seq_v = backbone.embed(x_val)
    spec = StoreSpec(backbone=backbone.identity, seq_len=backbone.seq_len, dim=backbone.dim)
    records = [
        ClipRecord(id=f"{group}{i:04d}", path=f"{group}{i}.wav", label=int(label),
                   kind="tts" if label else "noise", group=group, duration_s=1.5)
        for group, labels in (("train", y_train), ("val", y_val)) for i, label in enumerate(labels)
    ]
    with open_store(root / "store", "a", spec=spec) as store:
        store.append(records, np.concatenate([pooled_t, pooled_v]), np.concatenate([seq_t, seq_v]))
        fingerprint = store.fingerprint
    head = fit_linear_head(tiny_head(backbone.seq_len, backbone.dim), seq_t, y_train)
    return make_model_dir(root / "model", head, backbone.identity, store_fingerprint=fingerprint), backbone


def tone_model_with_window(path: Path, window_s: float, *, seed: int = 0) -> Path:
    """A calibrated (threshold 0.5) chirp detector over a speech-embedding window of ``window_s`` seconds."""
    from wakebuilder.backbones import load_backbone

    backbone = load_backbone("speech-embedding", window_s=window_s)
    clips, labels = tone_clips(backbone.window_samples, 120, seed=seed)
    _, sequences = backbone.embed(clips)
    head = fit_linear_head(tiny_head(backbone.seq_len, backbone.dim, seed=seed), sequences, labels)
    model = make_model_dir(path, head, backbone.identity)
    (model / "calibration.json").write_text(json.dumps({"threshold": 0.5, "temperature": 1.0, "bias": 0.0}))
    return model


def copy_model(model: Path, dest: Path) -> Path:
    """A private copy of a model directory (tests that write calibration.json)."""
    return Path(shutil.copytree(model, dest))


def planted_stream(times_s: tuple[float, ...], duration_s: float, *, seed: int = 3, level: float = 1.0) -> np.ndarray:
    """Faint noise with the wake chirp (scaled by ``level``) starting at each of ``times_s``."""
    from tests.conftest import noise

    audio = noise(duration_s, amplitude=0.01, seed=seed)
    sound = wake_sound() * level
    for t0 in times_s:
        start = int(t0 * 16000)
        audio[start : start + sound.size] += sound
    return audio


def spy_stream_precision(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The precisions the backbone is loaded at over the streams (the tone model's ONNX backbone takes any)."""
    import wakebuilder.backbones as backbones

    loaded, real = [], backbones.backbone_from_identity

    def spy(identity: dict, *, device: str = "auto", dtype: str = "auto") -> object:
        loaded.append(dtype)
        return real(identity, device=device, dtype=dtype)

    monkeypatch.setattr(backbones, "backbone_from_identity", spy)
    return loaded
