"""The Audio Spectrogram Transformer backbone: fbank + frozen ASTModel, batched, any window up to 3 s.

``ASTBackbone.load("ast")`` loads MIT/ast-finetuned-speech-commands-v2 (128
frames, 1.28 s) from a local directory or the HF cache. A different window
rebuilds the model with ``max_length = round(window_s * 100)`` frames
(``wakebuilder.backbones.ast_checkpoint`` finds, loads and resizes the
checkpoint); this module checks the front end against it and runs the
forward pass.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from wakebuilder import SAMPLE_RATE
from wakebuilder.backbones.ast_checkpoint import N_SPECIAL_TOKENS, load_checkpoint, load_config, resize_model
from wakebuilder.backbones.fbank import FbankSettings, KaldiFbank
from wakebuilder.devices import resolve_device
from wakebuilder.errors import BackboneError, ConfigError

MAX_WINDOW_S = 3.0
DTYPES = ("auto", "fp32", "bf16")


def tokens_to_sequence(hidden: torch.Tensor, n_freq: int, n_time: int) -> torch.Tensor:
    """Patch tokens ``(B, 2 + F*T, D)`` -> time sequence ``(B, T, D)``, averaged over frequency.

    ASTPatchEmbeddings runs its conv on ``(B, 1, freq, time)`` and flattens
    ``(F, T)``, so token ``2 + f * T + t`` is frequency patch ``f`` at time patch ``t``.
    """
    patches = hidden[:, N_SPECIAL_TOKENS:]
    return patches.reshape(hidden.shape[0], n_freq, n_time, hidden.shape[-1]).mean(dim=1)


class ASTWaveformEncoder(nn.Module):
    """Waveform ``(B, window_samples)`` -> ``(pooled (B, D), sequence (B, T, D))``: fbank then AST."""

    def __init__(self, fbank: KaldiFbank, model: nn.Module, n_freq: int, n_time: int) -> None:
        super().__init__()
        self.fbank = fbank
        self.model = model
        self.n_freq = n_freq
        self.n_time = n_time

    def encode(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised fbank ``(B, frames, mels)`` -> ``(pooled, sequence)``."""
        out = self.model(input_values=features)
        return out.pooler_output, tokens_to_sequence(out.last_hidden_state, self.n_freq, self.n_time)

    def forward(self, waveforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Embed raw waveforms (float32, [-1, 1])."""
        return self.encode(self.fbank(waveforms))


def resolve_dtype(dtype: str, device: str) -> str:
    """``fp32`` or ``bf16``: ``auto`` is bf16 on CUDA, fp32 elsewhere."""
    if dtype not in DTYPES:
        raise ConfigError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    if dtype == "auto":
        return "bf16" if device.startswith("cuda") else "fp32"
    return dtype


def _max_length_for(window_s: float | None, native: int) -> int:
    if window_s is None:
        return native
    if not 0 < window_s <= MAX_WINDOW_S:
        raise ConfigError(f"--window-s {window_s}: the AST backbone takes (0, {MAX_WINDOW_S}] seconds")
    max_length = round(window_s * 100)
    if max_length < 16:
        raise ConfigError(f"--window-s {window_s}: AST needs at least 0.16 s (one 16-frame patch)")
    return max_length


def window_settings(checkpoint: str, preprocessor: dict[str, Any], config: Any, window_s: float | None
                    ) -> FbankSettings:
    """The checkpoint's front end for ``window_s`` (None: its own ``max_length`` frames), from its model ``config``
    and ``preprocessor`` config; the one rule ``ASTBackbone.load`` and ``checkpoint_settings`` both follow.

    Raises:
        BackboneError: a sample rate or mel count that does not fit.
        ConfigError: a bad window.
    """
    max_length = _max_length_for(window_s, int(config.max_length))
    settings = FbankSettings.from_preprocessor(preprocessor, max_length=max_length)
    if settings.sample_rate != SAMPLE_RATE:  # wb decodes every clip to 16 kHz
        raise BackboneError(
            f"{checkpoint}: its feature extractor takes {settings.sample_rate} Hz audio and wakebuilder "
            f"feeds {SAMPLE_RATE} Hz; choose a checkpoint trained on {SAMPLE_RATE} Hz audio"
        )
    if settings.num_mel_bins != config.num_mel_bins:
        raise BackboneError(
            f"{checkpoint}: preprocessor has {settings.num_mel_bins} mel bins, the model {config.num_mel_bins}"
        )
    return settings


def checkpoint_settings(spec: str = "ast", *, window_s: float | None = None) -> FbankSettings:
    """The front end (so the window: ``window_samples``) ``ASTBackbone.load(spec, window_s=window_s)`` gets, read
    from the checkpoint's config files alone: a caller that needs only the window does not load the weights.

    Raises:
        BackboneError: the checkpoint is not available or not an AST.
        ConfigError: a bad window.
    """
    checkpoint, config, preprocessor = load_config(spec)
    return window_settings(checkpoint, preprocessor, config, window_s)


def frames_window_s(max_length: int) -> float:
    """The ``window_s`` of ``max_length`` 10 ms frames that an AST's identity records (``_max_length_for``'s
    inverse)."""
    return max_length / 100


def native_window_s(spec: str = "ast") -> float:
    """Seconds of audio an AST checkpoint's own ``max_length`` frames take (``window_samples / sample_rate`` of
    ``ASTBackbone.load(spec)``), read without loading its weights: what a clip must fit in. Not a ``window_s`` to
    load it at: 128 frames take 1.295 s, which loads 130 (``identity_window_s`` is that window)."""
    return checkpoint_settings(spec).window_samples / SAMPLE_RATE


def identity_window_s(spec: str = "ast", *, window_s: float | None = None) -> float:
    """The ``window_s`` the identity of ``ASTBackbone.load(spec, window_s=window_s)`` records, read without loading
    its weights: the window a store of it is fingerprinted at, and which loads the same ``max_length`` again."""
    return frames_window_s(checkpoint_settings(spec, window_s=window_s).max_length)


class ASTBackbone:
    """A frozen AST model with its Kaldi fbank front end (see ``wakebuilder.backbones.base.Backbone``)."""

    name = "ast"
    sample_rate = SAMPLE_RATE

    def __init__(
        self,
        *,
        spec: str,
        checkpoint: str,
        revision: str,
        model: nn.Module,
        settings: FbankSettings,
        device: str,
        dtype: str,
    ) -> None:
        self.spec, self.checkpoint, self.revision = spec, checkpoint, revision
        self.settings, self.device, self.dtype = settings, device, dtype
        model.requires_grad_(False).eval()
        n_freq, n_time = model.embeddings.get_shape(model.config)
        self.max_length = settings.max_length
        self.window_samples = settings.window_samples
        self.seq_len, self.dim, self.n_freq = n_time, int(model.config.hidden_size), n_freq
        self._encoder = ASTWaveformEncoder(KaldiFbank(settings), model, n_freq, n_time).to(device).eval()

    @classmethod
    def load(
        cls, spec: str = "ast", *, window_s: float | None = None, device: str = "auto", dtype: str = "auto"
    ) -> ASTBackbone:
        """Load ``ast`` (the default checkpoint), a hub id (HF cache or download) or a local directory.

        Raises:
            BackboneError: the weights are not available, or the checkpoint is not an AST.
            ConfigError: bad window, device or dtype.
        """
        device = resolve_device(device)
        compute = resolve_dtype(dtype, device)
        spec, checkpoint, revision, model, preprocessor = load_checkpoint(spec)
        settings = window_settings(checkpoint, preprocessor, model.config, window_s)
        if settings.max_length != model.config.max_length:
            model = resize_model(model, settings.max_length)
        return cls(
            spec=spec,
            checkpoint=checkpoint,
            revision=revision,
            model=model,
            settings=settings,
            device=device,
            dtype=compute,
        )

    @property
    def identity(self) -> dict[str, Any]:
        """Checkpoint, revision, window, front end and shapes; no device, batch size or compute dtype."""
        return {
            "name": self.name,
            "spec": self.spec,
            "checkpoint": self.checkpoint,
            "revision": self.revision,
            "window_s": frames_window_s(self.max_length),
            "max_length": self.max_length,
            "fbank": self.settings.to_dict(),
            "seq_len": self.seq_len,
            "dim": self.dim,
            "sample_rate": self.sample_rate,
        }

    def embed(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embed float32 ``(B, window_samples)`` waveforms in [-1, 1] -> float32 ``(pooled, sequence)``."""
        if waveforms.ndim != 2 or waveforms.shape[1] != self.window_samples:
            raise BackboneError(
                f"AST embed got shape {waveforms.shape}; expected (batch, {self.window_samples}) samples "
                f"(fit clips with wakebuilder.audio.fit_to_window)"
            )
        batch = torch.from_numpy(np.ascontiguousarray(waveforms, dtype=np.float32)).to(self.device)
        device_type = torch.device(self.device).type
        with torch.inference_mode():
            features = self._encoder.fbank(batch)
            with torch.autocast(device_type, dtype=torch.bfloat16, enabled=self.dtype == "bf16"):
                pooled, sequence = self._encoder.encode(features)
        return pooled.float().cpu().numpy(), sequence.float().cpu().numpy()

    def waveform_module(self) -> nn.Module:
        """A CPU fp32 copy of fbank + AST mapping waveforms ``(B, window_samples)`` to ``(pooled, sequence)``.

        A copy, so moving or exporting it never disturbs this backbone; ONNX-exportable.
        """
        import copy

        return copy.deepcopy(self._encoder).to("cpu").eval()

    def end_to_end_onnx(self, head: nn.Module, head_onnx: Path, out_path: Path, *, example: np.ndarray) -> Path:
        """One ONNX graph waveform -> probability: fbank + AST traced together with ``head`` (a torch module)."""
        from wakebuilder.backbones.onnx_compose import WaveformDetector, torch_to_onnx

        detector = WaveformDetector(self.waveform_module(), head)
        return torch_to_onnx(detector, torch.from_numpy(example), out_path, input_name="waveform")
