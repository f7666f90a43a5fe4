"""The backbone contract: a frozen pretrained model bundled with its identity.

A backbone maps fixed-length 16 kHz waveforms to a pooled embedding and a time
sequence of embeddings. Its ``identity`` (id, revision, window, front-end
settings, shapes) is part of every store's fingerprint, so stores made by
different backbones or windows never mix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Backbone(Protocol):
    """What ``wb embed``, ``wb calibrate``, ``wb detect`` and export rely on.

    Attributes:
        name: short name (``ast``, ``speech-embedding``).
        sample_rate: input rate in Hz (16,000).
        window_samples: the fixed number of samples one embedding sees.
        seq_len: time steps ``T`` of the sequence output.
        dim: embedding width ``D``.
        device: torch device string it runs on (``cpu`` for onnxruntime backbones).
    """

    name: str
    sample_rate: int
    window_samples: int
    seq_len: int
    dim: int
    device: str

    @property
    def identity(self) -> dict[str, Any]:
        """JSON-ready identity: id, revision, window, front-end settings, shapes."""
        ...

    def embed(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embed a batch.

        Args:
            waveforms: float32 ``(B, window_samples)`` at ``sample_rate``, in [-1, 1].

        Returns:
            ``pooled`` float32 ``(B, dim)`` and ``sequence`` float32 ``(B, seq_len, dim)``.
        """
        ...

    def end_to_end_onnx(self, head: Any, head_onnx: Path, out_path: Path, *, example: np.ndarray) -> Path:
        """Write one ONNX graph from waveforms ``(batch, window_samples)`` to the head's probability.

        Args:
            head: the calibrated head as a torch module (sequences -> probabilities).
            head_onnx: the same head already exported to ONNX.
            out_path: the file to write.
            example: waveforms to trace with, float32 ``(B, window_samples)``.
        """
        ...


def window_seconds(backbone: Backbone) -> float:
    """The backbone's window in seconds."""
    return backbone.window_samples / backbone.sample_rate
