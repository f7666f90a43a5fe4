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


def balanced_parts(rows: int, calls: int, most: int) -> list[slice]:
    """``rows`` cut into parts of at most ``most`` rows for ``calls`` onnxruntime calls at once: a multiple of
    ``calls`` parts (where there are rows enough), their sizes within one of each other, so no call waits on a
    short last part (50 windows on two calls of at most 16: 13, 13, 12, 12, not 16, 16, 16, 2, which kept one core
    idle for most of the second round). An ONNX backbone's output for a row does not depend on its part's other
    rows, so the cut changes no number."""
    if rows <= 0:
        return []
    calls, most = max(1, calls), max(1, most)
    count = min(rows, calls * -(-rows // (calls * most)))
    size, extra = divmod(rows, count)
    bounds = np.cumsum([0] + [size + (i < extra) for i in range(count)])
    return [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]

