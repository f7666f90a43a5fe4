"""A batched, ONNX-exportable Kaldi log-mel filterbank matching transformers' ASTFeatureExtractor.

ASTFeatureExtractor computes, per clip (torchaudio ``kaldi.fbank`` or, without
torchaudio, its NumPy ``spectrogram`` path, which agree): 25 ms frames every
10 ms with snip edges, per-frame DC removal, pre-emphasis 0.97, a symmetric
Hann ("hanning") window, a 512-point power spectrum, 128 Kaldi mel filters
(20 Hz to Nyquist, triangular in mel space), ``log(max(mel, float32 eps))``,
zero padding or truncation to ``max_length`` frames, then
``(x - mean) / (2 * std)``. The waveform is used as given, in [-1, 1]: the
extractor's int16 rescaling line is commented out upstream.

Here every per-frame linear step (DC removal, pre-emphasis, window, real DFT)
is folded, in float64, into one ``(400, 2 * 257)`` matrix, so the front end is
a gather, two float32 matrix multiplies, a square, a clamp and a log: it runs
batched on any device and exports to ONNX (no complex tensors, no ``stft``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from wakebuilder.errors import ConfigError

AUDIOSET_MEAN = -4.2677393
AUDIOSET_STD = 4.5689974
FLOAT32_EPS = 1.192092955078125e-07


@dataclass(frozen=True, kw_only=True)
class FbankSettings:
    """Front-end settings; all of them enter the backbone identity.

    Attributes:
        sample_rate: input rate in Hz.
        num_mel_bins: mel filters.
        frame_length: samples per frame (25 ms).
        frame_shift: samples between frames (10 ms).
        fft_length: DFT size (frames are zero-padded to it).
        preemphasis: pre-emphasis coefficient.
        low_freq_hz: lowest mel filter edge; the highest is Nyquist.
        window: window name (symmetric Hann, as the extractor's ``hanning``).
        mel_floor: floor before the log.
        max_length: frames after padding or truncation.
        do_normalize: apply ``(x - mean) / (2 * std)``.
        mean: normalisation mean.
        std: normalisation standard deviation.
    """

    sample_rate: int = 16_000
    num_mel_bins: int = 128
    frame_length: int = 400
    frame_shift: int = 160
    fft_length: int = 512
    preemphasis: float = 0.97
    low_freq_hz: float = 20.0
    window: str = "hann"
    mel_floor: float = FLOAT32_EPS
    max_length: int = 1024
    do_normalize: bool = True
    mean: float = AUDIOSET_MEAN
    std: float = AUDIOSET_STD

    def __post_init__(self) -> None:
        if self.max_length < 1 or self.num_mel_bins < 1:
            raise ConfigError(
                f"fbank max_length={self.max_length}, num_mel_bins={self.num_mel_bins}: both must be >= 1"
            )
        if self.std <= 0:
            raise ConfigError(f"fbank std={self.std}: must be > 0; check the preprocessor_config.json")

    @classmethod
    def from_preprocessor(cls, config: dict[str, Any], *, max_length: int | None = None) -> FbankSettings:
        """Settings from an ASTFeatureExtractor ``preprocessor_config.json`` dict.

        Args:
            config: the parsed JSON (missing keys take the extractor's defaults).
            max_length: overrides the config's ``max_length`` (a longer or shorter window).
        """
        defaults = cls()
        if max_length is None:
            max_length = int(config.get("max_length", defaults.max_length))
        return cls(
            sample_rate=int(config.get("sampling_rate", defaults.sample_rate)),
            num_mel_bins=int(config.get("num_mel_bins", defaults.num_mel_bins)),
            max_length=max_length,
            do_normalize=bool(config.get("do_normalize", defaults.do_normalize)),
            mean=float(config.get("mean", defaults.mean)),
            std=float(config.get("std", defaults.std)),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (part of the backbone identity)."""
        return asdict(self)

    @property
    def window_samples(self) -> int:
        """Samples that give exactly ``max_length`` frames with snip edges."""
        return self.frame_length + self.frame_shift * (self.max_length - 1)


def kaldi_mel_filters(settings: FbankSettings) -> np.ndarray:
    """Kaldi mel filters ``(fft_length // 2 + 1, num_mel_bins)``, float64, as the extractor builds them."""
    n_bins = settings.fft_length // 2 + 1
    nyquist = settings.sample_rate / 2

    def mel(freq_hz: np.ndarray | float) -> np.ndarray:
        return 1127.0 * np.log(1.0 + np.asarray(freq_hz, dtype=np.float64) / 700.0)

    edges = np.linspace(mel(settings.low_freq_hz), mel(nyquist), settings.num_mel_bins + 2)
    bin_mels = mel(nyquist / (n_bins - 1) * np.arange(n_bins))
    slopes = edges[None, :] - bin_mels[:, None]
    down = -slopes[:, :-2] / np.diff(edges)[:-1]
    up = slopes[:, 2:] / np.diff(edges)[1:]
    return np.maximum(0.0, np.minimum(down, up))


def frame_transform(settings: FbankSettings) -> np.ndarray:
    """The per-frame linear map ``(frame_length, 2 * n_bins)``: DC removal, pre-emphasis, window, real DFT.

    A frame row vector ``x`` maps to ``[Re X, Im X]`` as ``x @ matrix``; built in float64.
    """
    n = settings.frame_length
    if settings.window != "hann":
        raise ConfigError(f"fbank window {settings.window!r}: only 'hann' (the extractor's) is supported")
    centre = np.eye(n) - np.full((n, n), 1.0 / n)
    emphasis = np.eye(n) - settings.preemphasis * np.eye(n, k=-1)
    emphasis[0, 0] = 1.0 - settings.preemphasis
    window = np.diag(np.hanning(n))
    k = np.arange(settings.fft_length // 2 + 1)
    angle = 2.0 * np.pi * np.outer(np.arange(n), k) / settings.fft_length
    dft = np.concatenate([np.cos(angle), -np.sin(angle)], axis=1)
    # Column-vector pipeline: window @ emphasis @ centre @ frame; transposed for row frames.
    return (window @ emphasis @ centre).T @ dft


class KaldiFbank(nn.Module):
    """Waveforms ``(B, N)`` float32 in [-1, 1] -> normalised log-mel ``(B, max_length, num_mel_bins)``.

    Computes in ``dtype``: float32 by default (run it outside any autocast region).
    Against the extractor's float64 NumPy path, float32 differs by at most about
    1e-3 (in mel bands some 150 dB below a full-scale tone's peak, where the
    float32 rounding of the DFT dominates) and usually by under 1e-4;
    ``dtype=torch.float64`` matches to about 1e-6.
    """

    def __init__(self, settings: FbankSettings, *, dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        self.settings = settings
        transform = torch.from_numpy(frame_transform(settings)).to(dtype)
        mel = torch.from_numpy(kaldi_mel_filters(settings)).to(dtype)
        self.register_buffer("transform", transform, persistent=False)
        self.register_buffer("mel", mel, persistent=False)
        self.n_bins = mel.shape[0]

    def forward(self, waveforms: torch.Tensor) -> torch.Tensor:
        """Compute the padded/truncated, normalised fbank of a batch."""
        s = self.settings
        n_samples = int(waveforms.shape[-1])
        if waveforms.dim() != 2 or n_samples < s.frame_length:
            raise ConfigError(
                f"fbank input of shape {tuple(waveforms.shape)}: "
                f"expected (batch, samples >= {s.frame_length})"
            )
        n_frames = min(1 + (n_samples - s.frame_length) // s.frame_shift, s.max_length)
        used = s.frame_length + s.frame_shift * (n_frames - 1)
        frames = waveforms[:, :used].to(self.transform.dtype).unfold(1, s.frame_length, s.frame_shift)
        spectrum = frames @ self.transform
        power = spectrum[..., : self.n_bins].square() + spectrum[..., self.n_bins :].square()
        logmel = torch.log(torch.clamp(power @ self.mel, min=s.mel_floor))
        if n_frames < s.max_length:
            logmel = nn.functional.pad(logmel, (0, 0, 0, s.max_length - n_frames))
        if s.do_normalize:
            logmel = (logmel - s.mean) / (s.std * 2.0)
        return logmel


def compute_fbank(waveforms: np.ndarray, settings: FbankSettings, *, device: str = "cpu") -> np.ndarray:
    """Batched fbank of float32 ``(B, N)`` waveforms as a float32 numpy array ``(B, max_length, mels)``."""
    module = KaldiFbank(settings).to(device)
    with torch.inference_mode():
        features = module(torch.as_tensor(np.ascontiguousarray(waveforms, dtype=np.float32), device=device))
    return features.cpu().numpy()
