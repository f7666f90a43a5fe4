"""The AST backbone on the tiny random checkpoint: parity, windows, patch order, dtype, ONNX, errors."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import chirp, noise, tone
from wakebuilder.backbones import Backbone, backbone_from_identity, identity_window_samples, load_backbone
from wakebuilder.backbones.ast import ASTBackbone, tokens_to_sequence
from wakebuilder.backbones.ast_checkpoint import interpolate_time_positions, resize_model
from wakebuilder.errors import BackboneError, ConfigError

# ASTFeatureExtractor warns that its (and our) lowest Kaldi mel filter is empty: that is the reference.
pytestmark = pytest.mark.filterwarnings("ignore:At least one mel filter has all zero values")


def _batch(n_samples: int) -> np.ndarray:
    duration_s = n_samples / 16_000 + 0.01
    rows = [tone(440.0, duration_s), chirp(100.0, 6_000.0, duration_s), noise(duration_s, seed=3)]
    return np.stack([row[:n_samples] for row in rows]).astype(np.float32)


def _hf_reference(path: Path, clips: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """ASTFeatureExtractor + ASTModel, with the patch grid reshaped by hand."""
    from transformers import ASTFeatureExtractor, ASTModel

    extractor = ASTFeatureExtractor.from_pretrained(path)
    model = ASTModel.from_pretrained(path).eval()
    features = extractor(list(clips), sampling_rate=16_000, return_tensors="pt")["input_values"]
    with torch.inference_mode():
        out = model(features)
    hidden = out.last_hidden_state.numpy()
    n_time = (model.config.max_length - 16) // 10 + 1
    grid = hidden[:, 2:].reshape(len(clips), 12, n_time, -1)
    return out.pooler_output.numpy(), grid.mean(axis=1)


def test_loads_tiny_checkpoint_with_shapes_and_identity(tiny_ast_dir: Path) -> None:
    backbone = load_backbone(str(tiny_ast_dir))
    assert isinstance(backbone, ASTBackbone) and isinstance(backbone, Backbone)
    assert (backbone.window_samples, backbone.seq_len, backbone.dim) == (20_720, 12, 32)
    assert backbone._encoder.model.config._attn_implementation == "sdpa"
    identity = backbone.identity
    assert identity["spec"] == identity["checkpoint"] == str(tiny_ast_dir.resolve())
    assert len(identity["revision"]) == 64 and identity["window_s"] == 1.28 and identity["max_length"] == 128
    assert identity["fbank"]["mean"] == pytest.approx(-4.2677393) and identity["fbank"]["max_length"] == 128
    assert {"device", "dtype", "batch_size"}.isdisjoint(identity)
    assert backbone_from_identity(identity).identity == identity


def test_embeddings_match_transformers_pipeline(tiny_ast_dir: Path) -> None:
    backbone = ASTBackbone.load(str(tiny_ast_dir), dtype="fp32")
    clips = _batch(backbone.window_samples)
    pooled, sequence = backbone.embed(clips)
    want_pooled, want_sequence = _hf_reference(tiny_ast_dir, clips)
    assert pooled.dtype == sequence.dtype == np.float32
    assert sequence.shape == (3, 12, 32)
    assert np.abs(pooled - want_pooled).max() < 1e-4
    assert np.abs(sequence - want_sequence).max() < 1e-4
    alone_pooled, _ = backbone.embed(clips[1:2])
    assert np.abs(alone_pooled - pooled[1:2]).max() < 1e-5


def test_checkpoint_normalisation_is_used(tiny_ast_dir: Path, tmp_path: Path) -> None:
    from transformers import ASTFeatureExtractor

    custom = tmp_path / "custom"
    shutil.copytree(tiny_ast_dir, custom)
    ASTFeatureExtractor(max_length=128, mean=-6.845978, std=5.5654526).save_pretrained(custom)
    backbone = ASTBackbone.load(str(custom))
    assert backbone.identity["fbank"]["mean"] == pytest.approx(-6.845978)
    clips = _batch(backbone.window_samples)
    assert np.abs(backbone.embed(clips)[0] - _hf_reference(custom, clips)[0]).max() < 1e-4


def test_patch_tokens_are_frequency_major(tiny_ast_dir: Path) -> None:
    """Energy in time patch 3 / frequency patch 0 only moves token (f=0, t=3) of the conv output."""
    model = ASTBackbone.load(str(tiny_ast_dir))._encoder.model
    features = torch.zeros(1, 128, 128)
    features[0, 36:40, 0:6] = 5.0  # frames 36-39 lie only in time patch 3; mel bins 0-5 only in freq patch 0
    with torch.inference_mode():
        tokens = model.embeddings.patch_embeddings(features)
        baseline = model.embeddings.patch_embeddings(torch.zeros(1, 128, 128))
    padded = torch.cat([torch.zeros(1, 2, 32), tokens - baseline], dim=1)
    changed = padded[0, 2:].abs().sum(-1).reshape(12, 12) > 0
    assert changed.nonzero().tolist() == [[0, 3]]
    sequence = tokens_to_sequence(padded, 12, 12)
    assert (sequence[0].abs().sum(-1) > 0).nonzero().flatten().tolist() == [3]


def test_interpolation_at_original_length_is_exact(tiny_ast_dir: Path) -> None:
    backbone = ASTBackbone.load(str(tiny_ast_dir))
    model = backbone._encoder.model
    positions = model.embeddings.position_embeddings.detach()
    assert torch.equal(interpolate_time_positions(positions, 12, 12), positions)
    rebuilt = resize_model(model, 128)
    clips = torch.from_numpy(_batch(backbone.window_samples))
    with torch.inference_mode():
        features = backbone._encoder.fbank(clips)
        assert torch.equal(rebuilt(features).pooler_output, model(features).pooler_output)


def test_longer_window_interpolates_position_embeddings(tiny_ast_dir: Path) -> None:
    short = ASTBackbone.load(str(tiny_ast_dir))
    long = ASTBackbone.load(str(tiny_ast_dir), window_s=3.0)
    assert (long.max_length, long.seq_len, long.window_samples) == (300, 29, 400 + 160 * 299)
    original = short._encoder.model.embeddings.position_embeddings.detach()
    positions = long._encoder.model.embeddings.position_embeddings.detach()
    assert positions.shape == (1, 12 * 29 + 2, 32)
    grid = original[:, 2:].reshape(1, 12, 12, 32).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(12, 29), mode="bilinear", align_corners=False)
    assert torch.equal(positions[:, :2], original[:, :2])
    assert torch.allclose(positions[:, 2:], expected.permute(0, 2, 3, 1).reshape(1, 348, 32))
    assert torch.equal(positions[0, 2 : 2 + 29 : 28], original[0, 2 : 2 + 12 : 11])  # time ends stay put
    pooled, sequence = long.embed(_batch(long.window_samples))
    assert pooled.shape == (3, 32) and sequence.shape == (3, 29, 32) and np.isfinite(sequence).all()
    assert long.identity["window_s"] == 3.0 and long.identity["revision"] == short.identity["revision"]


def test_shorter_window_centre_crops(tiny_ast_dir: Path) -> None:
    full = ASTBackbone.load(str(tiny_ast_dir))._encoder.model.embeddings.position_embeddings.detach()
    short = ASTBackbone.load(str(tiny_ast_dir), window_s=1.0)
    assert (short.max_length, short.seq_len) == (100, 9)
    cropped = short._encoder.model.embeddings.position_embeddings.detach()
    assert torch.equal(cropped[0, 2:].reshape(12, 9, 32), full[0, 2:].reshape(12, 12, 32)[:, 2:11])


@pytest.mark.parametrize("window_s", [3.5, 0.1, 0.0])
def test_bad_windows_are_config_errors(tiny_ast_dir: Path, window_s: float) -> None:
    with pytest.raises(ConfigError, match="window"):
        ASTBackbone.load(str(tiny_ast_dir), window_s=window_s)


def test_bf16_on_cpu_stays_close_to_fp32(tiny_ast_dir: Path) -> None:
    """Stated tolerance: bf16 autocast moves layer-normed outputs by < 0.05 (cosine > 0.999)."""
    clips = _batch(20_720)
    fp32 = ASTBackbone.load(str(tiny_ast_dir), dtype="fp32").embed(clips)
    bf16_backbone = ASTBackbone.load(str(tiny_ast_dir), dtype="bf16")
    assert bf16_backbone.identity == ASTBackbone.load(str(tiny_ast_dir)).identity
    for want, got in zip(fp32, bf16_backbone.embed(clips)):
        assert got.dtype == np.float32 and np.abs(got - want).max() < 0.05
        flat_want, flat_got = want.reshape(len(clips), -1), got.reshape(len(clips), -1)
        norms = np.linalg.norm(flat_want, axis=1) * np.linalg.norm(flat_got, axis=1)
        cosine = (flat_want * flat_got).sum(1) / norms
        assert cosine.min() > 0.999


def test_waveform_module_exports_to_onnx(tiny_ast_dir: Path, tmp_path: Path) -> None:
    import onnxruntime as ort

    backbone = ASTBackbone.load(str(tiny_ast_dir))
    module = backbone.waveform_module()
    example = torch.from_numpy(_batch(backbone.window_samples)[:2])
    path = tmp_path / "ast.onnx"
    torch.onnx.export(
        module, (example,), str(path), input_names=["waveform"], output_names=["pooled", "sequence"],
        dynamic_shapes=({0: torch.export.Dim("batch")},), dynamo=True, external_data=False, verbose=False,
    )
    assert not (tmp_path / "ast.onnx.data").exists()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for rows in (1, 3):
        clips = _batch(backbone.window_samples)[:rows]
        pooled, sequence = session.run(None, {"waveform": clips})
        want_pooled, want_sequence = backbone.embed(clips)
        assert sequence.shape == (rows, 12, 32)
        assert np.abs(pooled - want_pooled).max() < 1e-4 and np.abs(sequence - want_sequence).max() < 1e-4


def test_hub_id_from_the_cache_records_its_commit(tiny_ast_dir: Path) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = Path(os.environ["HF_HOME"]) / "hub" / "models--wb-test--tiny-ast"
    shutil.copytree(tiny_ast_dir, repo / "snapshots" / commit, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(commit)
    backbone = ASTBackbone.load("wb-test/tiny-ast")
    assert backbone.identity["spec"] == backbone.identity["checkpoint"] == "wb-test/tiny-ast"
    assert backbone.identity["revision"] == commit
    clips = _batch(backbone.window_samples)
    assert np.array_equal(backbone.embed(clips)[0], ASTBackbone.load(str(tiny_ast_dir)).embed(clips)[0])


def test_unknown_hub_id_offline_fails_fast_with_the_fix() -> None:
    start = time.perf_counter()
    with pytest.raises(BackboneError) as caught:
        load_backbone("wb-test/no-such-ast")
    message = str(caught.value)
    assert time.perf_counter() - start < 5.0
    assert "wb-test/no-such-ast" in message and os.environ["HF_HOME"] in message
    assert "--backbone DIR" in message


def test_default_spec_names_the_speech_commands_checkpoint() -> None:
    with pytest.raises(BackboneError, match="MIT/ast-finetuned-speech-commands-v2"):
        ASTBackbone.load("ast")


def test_bad_inputs(tiny_ast_dir: Path, tmp_path: Path) -> None:
    backbone = ASTBackbone.load(str(tiny_ast_dir))
    with pytest.raises(BackboneError, match="20720"):
        backbone.embed(np.zeros((2, 16_000), dtype=np.float32))
    with pytest.raises(ConfigError, match="dtype"):
        ASTBackbone.load(str(tiny_ast_dir), dtype="fp16")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackboneError):
        ASTBackbone.load(str(tmp_path / "empty"))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[:1000])


def _torch_weights_cut_off(folder: Path) -> None:
    from safetensors.torch import load_file

    weights = folder / "model.safetensors"
    torch.save(load_file(weights), folder / "pytorch_model.bin")
    weights.unlink()
    _truncate(folder / "pytorch_model.bin")


@pytest.mark.parametrize(("damage", "named"), [
    (lambda folder: _truncate(folder / "model.safetensors"), "cut off or corrupt"),
    (_torch_weights_cut_off, "cut off or corrupt"),
    (lambda folder: (folder / "config.json").unlink(), "config.json"),
], ids=["safetensors-cut-off", "pytorch-bin-cut-off", "no-config"])
def test_a_damaged_checkpoint_folder_is_a_backbone_error(
    tiny_ast_dir: Path, tmp_path: Path, damage, named: str
) -> None:
    folder = tmp_path / "copy"
    shutil.copytree(tiny_ast_dir, folder)
    damage(folder)
    with pytest.raises(BackboneError, match=named) as raised:
        ASTBackbone.load(str(folder))
    assert str(folder) in str(raised.value)


def test_a_checkpoint_for_another_sample_rate_is_refused(tiny_ast_dir: Path, tmp_path: Path) -> None:
    # wb feeds every backbone 16 kHz audio; the fbank would otherwise place its mel filters for 22.05 kHz
    # (Nyquist 11025 Hz) over 16 kHz samples and embed every clip wrongly without a word
    import json

    folder = tmp_path / "copy"
    shutil.copytree(tiny_ast_dir, folder)
    preprocessor = folder / "preprocessor_config.json"
    preprocessor.write_text(json.dumps({**json.loads(preprocessor.read_text()), "sampling_rate": 22050}))
    with pytest.raises(BackboneError, match="22050 Hz.*16000 Hz"):
        ASTBackbone.load(str(folder))


def _no_weights(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make loading any AST weights fail, so a window read from the checkpoint's config alone is proven."""
    import transformers

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the window of an AST checkpoint must not load its weights")

    monkeypatch.setattr(transformers.ASTModel, "from_pretrained", refuse)


@pytest.mark.parametrize("max_length", [128, 64])
@pytest.mark.parametrize("window_s", [None, 1.0, 2.345])
def test_window_from_config_alone_matches_the_loaded_backbone(
    tiny_ast_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, max_length: int, window_s: float | None
) -> None:
    from transformers import ASTConfig, ASTFeatureExtractor, ASTModel

    from wakebuilder.backbones.ast import checkpoint_settings, native_window_s

    checkpoint = tiny_ast_dir
    if max_length != 128:  # a checkpoint of another native length (its extractor's max_length is overridden)
        checkpoint = tmp_path / f"ast-{max_length}"
        config = ASTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64,
                           max_length=max_length, num_mel_bins=128)
        ASTModel(config).save_pretrained(checkpoint)
        ASTFeatureExtractor(max_length=1024).save_pretrained(checkpoint)
    loaded = ASTBackbone.load(str(checkpoint), window_s=window_s, device="cpu")
    _no_weights(monkeypatch)
    settings = checkpoint_settings(str(checkpoint), window_s=window_s)
    assert settings == loaded.settings and settings.window_samples == loaded.window_samples
    assert identity_window_samples(loaded.identity) == loaded.window_samples  # a model's (its default refractory)
    if window_s is None:
        assert native_window_s(str(checkpoint)) == loaded.window_samples / loaded.sample_rate
