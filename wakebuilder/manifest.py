"""Clip manifests: JSONL files, one clip a line, the interface between data stages.

Every data-preparation command writes one; ``wb embed`` reads them. Paths are
relative to the manifest's folder unless absolute, and a relative path may not
escape that folder.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_text
from wakebuilder.errors import ManifestError
from wakebuilder.values import finite_number

KINDS = frozenset(
    {
        "recording",  # the user's own recordings of the wake word
        "tts",  # synthesized positives
        "augmented",  # an augmented copy of another clip (see parent_id)
        "hard_negative",  # phonetically close phrases, partial phrases
        "real_negative",  # chunks of real audio (speech, music, noise)
        "speech_negative",  # generic TTS speech that is not the wake word
        "word_negative",  # a single word spoken alone that is not the wake word
        "noise",  # synthetic or recorded background noise, babble, tones, hum
        "music",  # synthesized or recorded music
    }
)
MANIFEST_NAME = "manifest.jsonl"


@dataclass(frozen=True)
class ClipRecord:
    """One clip of a manifest.

    Attributes:
        id: content hash of the decoded 16 kHz audio (see ``fingerprint.audio_id``).
        path: audio file, relative to the manifest's folder unless absolute.
        label: 1 for the wake word, 0 for anything else.
        kind: one of ``KINDS``.
        group: speaker, voice or source file; clips sharing a group share a split.
        text: what is said, if known.
        duration_s: duration in seconds.
        parent_id: id of the clip this one was derived from (augmentation).
        params: drawn augmentation or synthesis parameters.
        source: where the clip came from (engine, corpus, original path).
    """

    id: str
    path: str
    label: int
    kind: str
    group: str
    text: str = ""
    duration_s: float = 0.0
    parent_id: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The row as a plain dict, ready for JSON."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, row: dict[str, Any], *, where: str = "row") -> ClipRecord:
        """Validate a row and build a record; errors name ``where`` and the field."""
        return cls(**_validated(row, where))


_REQUIRED = ("id", "path", "label", "kind", "group")
_FIELDS = {f.name for f in dataclasses.fields(ClipRecord)}


def _validated(row: Any, where: str) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(row).__name__}")
    missing = [name for name in _REQUIRED if name not in row]
    if missing:
        raise ManifestError(f"{where}: missing field(s) {', '.join(missing)}")
    unknown = sorted(set(row) - _FIELDS)
    if unknown:
        raise ManifestError(f"{where}: unknown field(s) {', '.join(unknown)}")
    out = dict(row)
    for name in ("id", "path", "kind", "group"):
        if not isinstance(out[name], str) or not out[name]:
            raise ManifestError(f"{where}: field {name!r} must be a non-empty string")
    if out["label"] not in (0, 1) or isinstance(out["label"], bool):
        raise ManifestError(f"{where}: label must be 0 or 1, got {out['label']!r}")
    if out["kind"] not in KINDS:
        raise ManifestError(f"{where}: kind {out['kind']!r} is not one of {', '.join(sorted(KINDS))}")
    duration = out.get("duration_s", 0.0)
    if not finite_number(duration, low=0.0):
        raise ManifestError(f"{where}: duration_s must be a finite number >= 0, got {duration!r}")
    out["duration_s"] = float(duration)
    if not isinstance(out.get("params", {}), dict):
        raise ManifestError(f"{where}: params must be an object")
    for name in ("text", "source"):
        if not isinstance(out.get(name, ""), str):
            raise ManifestError(f"{where}: field {name!r} must be a string")
    if out.get("parent_id") is not None and not isinstance(out["parent_id"], str):
        raise ManifestError(f"{where}: parent_id must be a string or null")
    return out


def is_manifest_path(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names a manifest: its suffix is ``.jsonl`` in any case (a copy through Windows or a FAT
    drive may be ``X.JSONL``); where manifests and audio are given together, anything else is audio."""
    return Path(path).suffix.lower() == ".jsonl"


def read_manifest(path: str | os.PathLike[str]) -> list[ClipRecord]:
    """Read and validate a JSONL manifest; raises ``ManifestError`` naming file and line."""
    manifest = Path(path)
    if not manifest.is_file():
        raise ManifestError(f"{manifest}: manifest not found")
    records: list[ClipRecord] = []
    seen: set[str] = set()
    try:
        text = manifest.read_text(encoding="utf-8-sig")  # -sig: a byte order mark an editor put first
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{manifest}: not a JSONL manifest (not UTF-8 text, byte {exc.start}); pass the "
                            "manifest.jsonl a wb command wrote") from exc
    for lineno, line in enumerate(text.split("\n"), start=1):  # not splitlines: U+2028 may sit in a text
        if not line.strip():
            continue
        where = f"{manifest}:{lineno}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"{where}: not valid JSON ({exc.msg})") from exc
        except RecursionError:  # brackets nested past the parser's stack: no manifest row is
            raise ManifestError(f"{where}: not valid JSON (nested too deeply)") from None
        record = ClipRecord.from_dict(row, where=where)
        if record.id in seen:
            raise ManifestError(f"{where}: duplicate clip id {record.id}")
        seen.add(record.id)
        records.append(record)
    return records


def write_manifest(path: str | os.PathLike[str], records: Iterable[ClipRecord]) -> Path:
    """Write records as JSONL atomically (one sorted-key object per line)."""
    lines = [json.dumps(r.to_dict(), sort_keys=True, ensure_ascii=False) for r in records]
    return atomic_write_text(path, "".join(line + "\n" for line in lines))


def resolve_clip_path(
    manifest_path: str | os.PathLike[str], record: ClipRecord, *, allow_outside: bool = False
) -> Path:
    """Absolute path of a clip's audio.

    A relative path is taken from the manifest's folder and may not escape it
    (``../``), so a manifest from elsewhere cannot read arbitrary files; an
    absolute path is one the user wrote and is taken as it is.
    """
    root = Path(manifest_path).resolve().parent
    raw = Path(record.path)
    if raw.is_absolute():
        return raw
    resolved = (root / raw).resolve()
    if not allow_outside and not resolved.is_relative_to(root):
        raise ManifestError(
            f"{manifest_path}: clip {record.id} path {record.path!r} escapes the manifest's folder "
            f"{root}; use an absolute path if that is intended"
        )
    return resolved


def relative_clip_path(manifest_dir: str | os.PathLike[str], audio_path: str | os.PathLike[str]) -> str:
    """The path to store in a row: relative to the manifest's folder when inside it."""
    root = Path(manifest_dir).resolve()
    audio = Path(audio_path).resolve()
    return audio.relative_to(root).as_posix() if audio.is_relative_to(root) else str(audio)
