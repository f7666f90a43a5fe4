"""What a negative is: speech, music or noise, so false accepts can be counted per category.

A wake word that never fires on speech can still fire on music (the
quickstart's "alexa" made most of its real false accepts on orchestral music
and household noise), so ``wb eval`` reports false accepts per hour for each.
A manifest row's category is its ``params["category"]`` when set (an augmented
copy records its parent's), else follows its ``kind``; an audio file's is given
(``--category music=PATH``) or read from its path (a folder or file name
containing ``music``, ``noise`` or ``speech``).
A stream built by ``wb stream`` (or the recipe) mixes categories: its
``NAME.segments.json`` says which clip plays when, and each false accept counts
for the category of the clip it falls in (``StreamSegments``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from wakebuilder.errors import ConfigError
from wakebuilder.fingerprint import file_sha256
from wakebuilder.manifest import ClipRecord

CATEGORIES = ("speech", "music", "noise")
OTHER = "other"
SPEECH_KINDS = frozenset({"recording", "tts", "hard_negative", "speech_negative", "word_negative"})
_WORDS = {"music": "music", "song": "music", "noise": "noise", "ambien": "noise", "room": "noise",
          "speech": "speech", "speak": "speech", "talk": "speech"}
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".opus", ".m4a", ".aiff", ".aif")


def from_path(path: str | Path) -> str:
    """The category a path names (its file or any folder above it), else ``other``."""
    for part in reversed(Path(path).parts):
        for word, category in _WORDS.items():
            if re.search(word, part.lower()):
                return category
    return OTHER


def record_category(record: ClipRecord) -> str:
    """A manifest row's category: ``params["category"]`` (``other`` included: an augmented copy records its
    parent's, and its source path must not override it), else its kind, else its path or source."""
    given = record.params.get("category") if isinstance(record.params, dict) else None
    if given in (*CATEGORIES, OTHER):
        return str(given)
    if record.kind in CATEGORIES:
        return record.kind
    if record.kind in SPEECH_KINDS:
        return "speech"
    category = from_path(record.path)
    return category if category != OTHER else from_path(record.source) if record.source else OTHER


def parse_category(value: str) -> tuple[str, list[Path]]:
    """``NAME=PATH`` -> the category and the audio files at PATH (a file, or a folder searched recursively).

    Raises:
        ConfigError: no ``=``, an empty name, a missing path or a folder without audio.
    """
    name, sep, target = value.partition("=")
    if not sep or not name.strip() or not target:
        raise ConfigError(f"--category {value!r}: expected NAME=PATH, e.g. music=negatives/music")
    path = Path(target)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
        if not files:
            raise ConfigError(f"--category {value!r}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) under {path}")
        return name.strip(), files
    if not path.is_file():
        raise ConfigError(f"--category {value!r}: {path}: file not found")
    return name.strip(), [path]


def stream_categories(streams: Sequence[str], given: Sequence[str] = ()) -> list[tuple[str, str]]:
    """``(path, category)`` of every stream file once: the plain ones by their path, then the ``NAME=PATH`` ones.

    A file given more than once (a path twice, a path and a ``--category`` folder holding it) is evaluated once,
    so its false accepts and hours count once: by its ``--category`` name where it has one (a name read from its
    path is only a guess), else by its path.

    Raises:
        ConfigError: a ``NAME=PATH`` as ``parse_category`` refuses it, or a file given in two categories by name.
    """
    out: dict[object, tuple[str, str]] = {}
    named: dict[object, str] = {}
    for stream in streams:
        out.setdefault(file_key(stream), (stream, from_path(stream)))
    for value in given:
        name, files = parse_category(value)
        for file in files:
            key = file_key(file)
            if named.setdefault(key, name) != name:
                raise ConfigError(f"{file}: given in two categories ({named[key]} and {name}); give it in one "
                                  "--category, so its false accepts and hours count once")
            out[key] = (out[key][0] if key in out else str(file), name)
    return list(out.values())


def file_key(path: str | Path) -> object:
    """What names one file however it is spelled (``a/../b.wav``, a symlink, a hard link): its device and inode,
    else (not there) its real path."""
    try:
        stat = os.stat(path)
    except OSError:
        return os.path.realpath(path)
    return stat.st_dev, stat.st_ino


def refuse_repeated(paths: Sequence[str | os.PathLike[str]], *, option: str, fix: str) -> None:
    """Raise when two of ``paths`` name one file (``file_key``: another spelling, a symlink, a hard link).

    Raises:
        ConfigError: naming ``option`` with both spellings, and ``fix``.
    """
    first: dict[object, str | os.PathLike[str]] = {}
    for path in paths:
        key = file_key(path)
        if key in first:
            raise ConfigError(f"{option} {path}: given twice (as {option} {first[key]}), {fix}")
        first[key] = path


def refuse_repeated_streams(streams: Sequence[str | os.PathLike[str]]) -> None:
    """``refuse_repeated`` for ``--stream``: a stream scored twice counts its hours twice, so its FA/h 95 % upper
    bound claims twice the audio heard."""
    refuse_repeated(streams, option="--stream", fix="which would count its hours twice; pass each stream once")


def segments_path(stream: str | Path) -> Path:
    """``NAME.segments.json`` beside the stream ``NAME.wav`` (written by ``data.stream``)."""
    path = Path(stream)
    return path.with_name(f"{path.stem}.segments.json")


class StreamSegments:
    """The categories of a mixed stream over time, from its ``NAME.segments.json`` (``data.stream``).

    Segment ``i`` runs from its clip's start to the next clip's (the pause after it included); its clip's
    audio ends at ``ends[i]`` (the next start for a sidecar that does not say: streams made before it did).
    With ``without(phrase)``, the segments whose clip says the phrase (by their texts) are left out: a stream
    shared by every wake word holds sentences that say some of them, and those are no false accepts. Nor
    is a detection by a window that overlaps such a clip (timed at its centre, it may lie half a window
    before or after the clip's audio): it hears the wake word (``left_out_spans``).
    """

    def __init__(self, starts: Sequence[float], names: Sequence[str], duration_s: float,
                 texts: Sequence[str] | None = None, ends: Sequence[float | None] | None = None) -> None:
        self.starts = np.asarray(starts, dtype=np.float64)
        self.names = list(names)
        self.duration_s = float(duration_s)
        self.texts = list(texts) if texts is not None else [""] * len(self.names)
        self.excluded = np.zeros(len(self.names), dtype=bool)
        given = [None] * len(self.names) if ends is None else list(ends)
        self.ends = np.array([n if e is None else e for e, n in zip(given, self._next_starts(), strict=True)],
                             dtype=np.float64)

    def _next_starts(self) -> np.ndarray:
        """Where each segment (its clip and the pause after it) ends: the next clip's start, or the stream's end."""
        return np.append(self.starts[1:], max(self.duration_s, float(self.starts[-1])))

    @classmethod
    def read(cls, stream: str | Path) -> StreamSegments | None:
        """The stream's segments, or None when it has no sidecar.

        Raises:
            ConfigError: a sidecar that is not one ``data.stream`` writes (not JSON, no segments, a duration or
                start that is not a finite number of seconds, a clip starting after the end).
        """
        import json
        import math

        path = segments_path(stream)
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            rows = sorted(((float(r[0]), str(r[1]), str(r[3]) if len(r) > 3 else "",
                            float(r[4]) if len(r) > 4 else None) for r in data["segments"]), key=lambda r: r[0])
            duration = float(data["duration_s"])
            if not rows:
                raise ValueError("no segments")
            if not (math.isfinite(duration) and duration > 0):
                raise ValueError(f"duration_s {data['duration_s']!r} is not a positive number of seconds")
            if not all(0 <= r[0] <= duration for r in rows):
                raise ValueError(f"a start is not within 0..{duration} s")
            if not all(r[3] is None or r[0] <= r[3] <= duration for r in rows):
                raise ValueError(f"a clip's end is not within its start..{duration} s")
        except (OSError, ValueError, KeyError, TypeError, IndexError, OverflowError) as exc:  # 10**400: past a float
            raise ConfigError(f"{path}: not a segments file of wb stream ({exc}); rebuild the stream with "
                              f"wb stream, or delete {path.name} to count the stream as one category") from None
        wav = Path(stream)
        if "wav_sha256" in data and wav.is_file() and file_sha256(str(wav)) != data["wav_sha256"]:
            raise ConfigError(f"{path}: not the segments of {wav.name} as it is now (a wb stream cut off between "
                              f"its two files?); rebuild the stream with wb stream --overwrite")
        return cls([r[0] for r in rows], [r[1] if r[1] in CATEGORIES else OTHER for r in rows], duration,
                   [r[2] for r in rows], [r[3] for r in rows])

    def without(self, phrase: str | None) -> StreamSegments:
        """These segments, less those whose text says ``phrase`` (in letters or phonemes; None: none)."""
        from wakebuilder.data.negatives import says

        out = StreamSegments(self.starts, self.names, self.duration_s, self.texts, self.ends.tolist())
        if phrase and phrase.strip():
            out.excluded = np.array([bool(t) and says(t, phrase) for t in self.texts], dtype=bool)
        return out

    def index_at(self, time_s: float | np.ndarray) -> np.ndarray:
        """The segment playing at each time."""
        return np.maximum(np.searchsorted(self.starts, time_s, side="right") - 1, 0)

    def category_at(self, time_s: float) -> str:
        """The category of the clip playing (or the pause after it) at ``time_s``."""
        return self.names[int(self.index_at(time_s))]

    def excluded_at(self, time_s: float | np.ndarray) -> np.ndarray:
        """Whether a left-out segment plays at each time."""
        return self.excluded[self.index_at(time_s)]

    def left_out_spans(self, window_s: float) -> np.ndarray:
        """Open intervals ``(lo, hi)`` of window-centre times, ``(n, 2)`` merged and sorted, whose window of
        ``window_s`` seconds overlaps a left-out clip's audio: ``window_s / 2`` before its start to as long after
        its end (``ends``). A window is timed at its centre (``streaming.frame_times``): one centred at ``t`` hears
        ``(t - window_s / 2, t + window_s / 2)``, so one centred further into the pause hears none of the clip."""
        half = window_s / 2
        spans: list[list[float]] = []
        for start, end in zip(self.starts[self.excluded], self.ends[self.excluded], strict=True):
            if spans and start - half <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], float(end) + half)
            else:
                spans.append([float(start) - half, float(end) + half])
        return np.asarray(spans, dtype=np.float64).reshape(-1, 2)

    def negative_scores(self, raw: np.ndarray, *, window_samples: int, hop: int) -> np.ndarray:
        """The windows' raw scores with those that overlap a left-out segment (``left_out_spans``) set to 0, before
        smoothing and counting.

        The one rule by which calibration and ``wb eval`` count false accepts in a mixed stream. Dropping the
        events whose peak falls in such a segment instead would also drop a real false accept just after it,
        merged (within the refractory period) into the event of the wake word's own clip.
        """
        from wakebuilder import SAMPLE_RATE
        from wakebuilder.streaming import frame_times

        values = np.asarray(raw, dtype=np.float32)
        times = frame_times(values.size, window_samples=window_samples, hop=hop)
        heard = np.zeros(values.size, dtype=bool)
        for lo, hi in self.left_out_spans(window_samples / SAMPLE_RATE):
            heard |= (times > lo) & (times < hi)
        return np.where(heard, np.float32(0), values)

    def seconds(self, *, window_s: float) -> dict[str, float]:
        """Seconds of the stream per category (before the first clip counts for the first), less the time
        ``negative_scores`` leaves out for windows of ``window_s`` seconds (0: the left-out clips' audio alone)."""
        ends = self._next_starts()
        begins = np.concatenate([[0.0], ends[:-1]])
        spans = self.left_out_spans(window_s)
        out: dict[str, float] = {}
        for name, begin, end in zip(self.names, begins, ends, strict=True):
            heard = np.clip(np.minimum(spans[:, 1], end) - np.maximum(spans[:, 0], begin), 0.0, None).sum()
            out[name] = out.get(name, 0.0) + max(0.0, float(end - begin - heard))
        return out
