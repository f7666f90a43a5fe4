"""Streaming the speech-embedding model window after window, exactly: the reference of ``stream.js``.

The page scores the last window every hop. Consecutive windows share most of
their mel frames, and the embedding CNN (no padding along time) computes each
row of its intermediate maps from a fixed stretch of frames, so rows are kept
by their absolute start frame and only the new ones are computed:

* dB mel frames (``front``) depend on their 512 samples only;
* a stage-1 row starting at frame ``a`` sees frames ``[a, a + 22)`` and a stage-2
  row at ``b`` sees ``[b, b + 56)``; a window starting at frame ``f`` needs the
  stage-1 rows at ``f + 2i`` and the stage-2 rows at ``f + 4q``, so rows are
  shared between windows whose starts agree modulo 2 (stage 1) or 4 (stage 2);
* the window's last pooling, convolution and the head (``tail``) run per window.

The one thing that is not local is the dB floor: every value below the window's
loudest dB minus 80 is raised to it. A row computed under floor ``F_old`` is
reused under the window's floor ``F`` only if it is the same floor or no frame
it sees holds a value below either floor (then flooring changed nothing);
otherwise it and every later row are recomputed. So each window's score equals
the end-to-end model's up to float rounding, on digital silence too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder.errors import ConfigError, ExportParityError
from wakebuilder.web.pieces import STAGES, StreamPieces

PARITY_ATOL = 1e-4


def _valid(entry: tuple[np.ndarray, float, float], floor: float) -> bool:
    _, made_under, smallest = entry
    return made_under == floor or smallest >= max(made_under, floor)


class StreamingScorer:
    """Score window after window of one model, keeping the rows that later windows share.

    Args:
        pieces: the model's streaming pieces (:func:`wakebuilder.web.pieces.stream_pieces`).
        hop_samples: samples between consecutive windows; a multiple of the mel hop (160).
    """

    def __init__(self, pieces: StreamPieces, *, hop_samples: int, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.sessions = {
            stage: ort.InferenceSession(pieces.models[stage].SerializeToString(), options,
                                        providers=["CPUExecutionProvider"])
            for stage in STAGES
        }
        self.frame_len, self.frame_hop = pieces.receptive["front"], pieces.stride["front"]
        if hop_samples % self.frame_hop:
            raise ConfigError(f"hop of {hop_samples} samples: streaming needs a multiple of {self.frame_hop}")
        self.hop_frames = hop_samples // self.frame_hop
        self.db_range = np.float32(pieces.db_range)
        self.r1, self.s1 = pieces.receptive["stage1"], pieces.stride["stage1"]
        self.r2, self.s2 = pieces.receptive["stage2"], pieces.stride["stage2"]
        self.window_samples = pieces.window_samples
        self.frames = (self.window_samples - self.frame_len) // self.frame_hop + 1
        self.n1 = (self.frames - self.r1) // self.s1 + 1
        self.n2 = (self.n1 - self.r2) // self.s2 + 1
        self.mel: dict[int, tuple[np.ndarray, float, float]] = {}  # frame -> (dB row, min, max)
        self.rows1: dict[int, tuple[np.ndarray, float, float]] = {}  # start frame -> (row, floor, min seen)
        self.rows2: dict[int, tuple[np.ndarray, float, float]] = {}
        self.work = {"frames": 0, "rows1": 0, "rows2": 0}  # computed so far, to show the reuse

    def _run(self, stage: str, array: np.ndarray) -> np.ndarray:
        session = self.sessions[stage]
        return session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(array, np.float32)})[0]

    def _front(self, f: int, window: np.ndarray) -> None:
        first = next((t for t in range(f, f + self.frames) if t not in self.mel), None)
        if first is None:
            return
        begin = (first - f) * self.frame_hop
        end = (self.frames - 1) * self.frame_hop + self.frame_len
        db = self._run("front", window[None, begin:end])[0, 0]
        for i, row in enumerate(db):
            self.mel[first + i] = (row, float(row.min()), float(row.max()))
        self.work["frames"] += db.shape[0]

    def _smallest(self, start: int, span: int) -> float:
        return min(self.mel[t][1] for t in range(start, start + span))

    def _level(self, cache: dict, starts: np.ndarray, floor: float) -> int | None:
        """Index of the first start whose row is missing or invalid under ``floor``; None if all are valid."""
        return next((i for i, s in enumerate(starts) if s not in cache or not _valid(cache[s], floor)), None)

    def score(self, frame: int, window: np.ndarray) -> float:
        """Score the window of hop number ``frame`` (its samples ``window``)."""
        return float(self._run("tail", self.window_rows(frame, window)[None])[0])

    def window_rows(self, frame: int, window: np.ndarray) -> np.ndarray:
        """The window's stage-2 rows ``(n2, C, W)`` (the tail's input), reusing what earlier windows computed."""
        if window.shape != (self.window_samples,):
            raise ConfigError(f"window of {window.shape} samples; the model takes {self.window_samples}")
        f = frame * self.hop_frames
        self._front(f, window)
        floor = float(np.float32(np.float32(max(self.mel[t][2] for t in range(f, f + self.frames))) - self.db_range))
        starts1 = f + self.s1 * np.arange(self.n1)
        i0 = self._level(self.rows1, starts1, floor)
        if i0 is not None:
            frames = range(int(starts1[i0]), int(starts1[-1]) + self.r1)
            db = np.maximum(np.stack([self.mel[t][0] for t in frames]), np.float32(floor))
            rows = self._run("stage1", db[None, None])[0]
            for a, row in zip(starts1[i0:], rows, strict=True):
                self.rows1[int(a)] = (row, floor, self._smallest(int(a), self.r1))
            self.work["rows1"] += rows.shape[0]
        starts2 = f + self.s1 * self.s2 * np.arange(self.n2)
        q0 = self._level(self.rows2, starts2, floor)
        if q0 is not None:
            count = self.s2 * (self.n2 - 1 - q0) + self.r2
            below = np.stack([self.rows1[int(starts2[q0]) + self.s1 * i][0] for i in range(count)])
            rows = self._run("stage2", below[None])[0]
            span = self.s1 * (self.r2 - 1) + self.r1
            for b, row in zip(starts2[q0:], rows, strict=True):
                self.rows2[int(b)] = (row, floor, self._smallest(int(b), span))
            self.work["rows2"] += rows.shape[0]
        for cache in (self.mel, self.rows1, self.rows2):
            for key in [k for k in cache if k < f]:
                del cache[key]
        return np.stack([self.rows2[int(b)][0] for b in starts2])

    def whole_window_rows(self, window: np.ndarray) -> np.ndarray:
        """The same rows computed from the window alone, as the end-to-end model does (for checks)."""
        db = self._run("front", window[None])
        floored = np.maximum(db, np.float32(db.max()) - self.db_range)
        return self._run("stage2", self._run("stage1", floored))[0]


def stream_scores(pieces: StreamPieces, audio: np.ndarray, hop_samples: int) -> np.ndarray:
    """Every window's score of ``audio`` through the streaming path (windows as ``wb detect`` cuts them)."""
    from wakebuilder.streaming import frame_windows

    scorer = StreamingScorer(pieces, hop_samples=hop_samples)
    windows = frame_windows(np.asarray(audio, np.float32), pieces.window_samples, hop_samples)
    return np.array([scorer.score(i, w) for i, w in enumerate(windows)], dtype=np.float32)


def parity_audio(seconds: float = 4.0, seed: int = 0) -> np.ndarray:
    """Test audio for the streaming check: noise, a sweep, digital silence (the floor binds) and noise again."""
    rng = np.random.default_rng(seed)
    n = int(seconds * 16000)
    t = np.arange(n) / 16000
    audio = 0.05 * rng.standard_normal(n) + 0.3 * np.sin(2 * np.pi * (200 + 400 * t) * t)
    audio[n // 3 : n // 2] = 0.0
    return audio.astype(np.float32)


def check_stream_parity(onnx_path: Path, pieces: StreamPieces, hop_samples: int) -> float:
    """Largest difference between streamed and end-to-end scores on :func:`parity_audio`; raises past 1e-4."""
    from wakebuilder.detect import load_onnx_detector
    from wakebuilder.streaming import frame_windows

    audio = parity_audio()
    want = load_onnx_detector(onnx_path).scorer(frame_windows(audio, pieces.window_samples, hop_samples))
    diff = float(np.max(np.abs(stream_scores(pieces, audio, hop_samples) - want)))
    if not diff <= PARITY_ATOL:
        raise ExportParityError(
            f"{onnx_path}: the page's streaming pieces score up to {diff:.2e} away from the model "
            f"(allowed {PARITY_ATOL}); build the page with --no-stream and report this"
        )
    return diff


def streamable(pieces: Any, hop_samples: int) -> bool:
    """Whether the page can stream these pieces at this hop."""
    return pieces is not None and hop_samples % pieces.stride["front"] == 0
