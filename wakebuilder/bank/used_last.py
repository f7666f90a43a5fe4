"""Which of a cache's folders was used last: a small JSON pointer beside them, which ``wb bank reclaim`` keeps.

The held-out folders of one settings (``<settings>.current.json``) and the bank's audio folders
(``audio.current.json``) each record the one a recipe used last; reclaim removes others but never that one. A
cache of before the pointer was written counts its newest folder as the one used last.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from wakebuilder.atomic import atomic_write_json, read_json


def mark_used(pointer: Path, field: str, name: str) -> None:
    """Record ``name`` as the folder used last in ``pointer`` (``{field: name}``), written only when it changes."""
    if not (pointer.is_file() and read_json(pointer) == {field: name}):
        atomic_write_json(pointer, {field: name})


def used_last(pointer: Path, field: str, folders: Sequence[Path]) -> str | None:
    """The name of the folder among ``folders`` that ``pointer`` records, else the newest's; None for no folders."""
    recorded = read_json(pointer) if pointer.is_file() else None
    name = recorded.get(field) if isinstance(recorded, dict) else None
    if folders and name not in {f.name for f in folders}:
        name = max(folders, key=lambda f: f.stat().st_mtime_ns).name
    return name if folders else None
