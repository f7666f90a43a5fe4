"""The folders of the bank's audio (``<bank>/audio/<settings key>/``): which settings were used last, which no
recipe needs.

``ensure_bank`` makes the audio of each settings into its own folder and records in ``audio.current.json`` beside
them the settings the bank was built or reused with last (``mark_current``); ``wb bank reclaim`` removes the
folders no recipe needs (``stale_audio``).
"""

from __future__ import annotations

import collections
import logging
import re
from collections.abc import Collection
from pathlib import Path

from wakebuilder.atomic import read_json
from wakebuilder.bank.heldout import TRASH_DIR
from wakebuilder.bank.location import BANK_MARKER
from wakebuilder.bank.used_last import mark_used, used_last
from wakebuilder.errors import WakebuilderError
from wakebuilder.manifest import read_manifest

log = logging.getLogger(__name__)
AUDIO_DIR = "audio"  # audio/<settings key>/: the audio of the bank's clips made with those settings
AUDIO_KEY = re.compile(r"[0-9a-f]{12}")
COMPLETE_NAME = "complete.json"
CURRENT_NAME = AUDIO_DIR + ".current.json"  # beside audio/: the settings key the bank was built or reused with last
REPLACED_NAME = "replaced.json"  # the clips of a bank made with other voices, until they are retired


def mark_current(bank: Path, key: str) -> None:
    """Record ``key`` as the settings the bank (its folder) was built or reused with last (``CURRENT_NAME``)."""
    mark_used(bank / CURRENT_NAME, "key", key)


def stale_audio(bank: Path, served: Collection[str]) -> list[Path]:
    """The folders of the bank's audio (in the bank folder ``bank``) that no recipe needs, with what a killed
    reclaim left (``TRASH_DIR``).

    Needed: the audio of the settings the bank was built or reused with last (``CURRENT_NAME``; without it, the
    newest folder), from which a killed build resumes; and that of other settings while the bank serves a clip of
    it that their build embedded (the bank's marker lists its manifests) or that no other folder holds. The bank
    serves the clips of every settings built (a recipe with other settings retires none of them), and a recipe
    with those settings reuses their audio, where without it the bank would be spoken again. Not needed: the audio
    of a build killed before it embedded its clips (those it shares with other settings are theirs), and of clips
    no longer served (retired, their rows removed; a store made anew). A folder's clips are those of its
    ``complete.json`` and its ``replaced.json`` (served until the new voices' are); one whose records cannot be
    read is kept. Only for a caller holding the bank's build lock and its read lock alone (``bank.reclaim``).
    """
    root = bank / AUDIO_DIR
    folders = [p for p in sorted(root.iterdir()) if AUDIO_KEY.fullmatch(p.name) and p.is_dir()
               and not p.is_symlink()] if root.is_dir() else []
    clips = {folder: _folder_clips(folder) for folder in folders}
    held = collections.Counter(clip for ids in clips.values() if ids for clip in ids)
    current, served = used_last(bank / CURRENT_NAME, "key", folders), set(served)
    embedded = _embedded_keys(bank / BANK_MARKER)
    stale = [root / TRASH_DIR] if (root / TRASH_DIR).exists() else []
    for folder, ids in clips.items():
        own = ids & served if ids is not None and folder.name != current else None
        if own is not None and not ((own and folder.name in embedded) or any(held[clip] == 1 for clip in own)):
            stale.append(folder)
    return stale


def audio_key(manifest: object) -> str | None:
    """The settings key of the bank's audio folder a manifest (its path) lies in, by the folder's name after
    ``AUDIO_DIR`` (a cache moved since reads the same); None for a manifest elsewhere."""
    parts = Path(str(manifest)).parts
    keys = [key for name, key in zip(parts, parts[1:], strict=False) if name == AUDIO_DIR and AUDIO_KEY.fullmatch(key)]
    return keys[-1] if keys else None


def _embedded_keys(marker: Path) -> set[str | None]:
    """The settings keys of the audio whose manifests the bank's ``marker`` lists as embedded."""
    recorded = read_json(marker) if marker.is_file() else {}
    listed = recorded.get("manifests") if isinstance(recorded, dict) else None
    return {audio_key(m) for m in listed} if isinstance(listed, list) else set()


def _folder_clips(folder: Path) -> set[str] | None:
    """The clips of the bank's audio in ``folder`` (its finished manifests', those it replaces); None when a record
    or a manifest it names cannot be read."""
    complete, replaced = folder / COMPLETE_NAME, folder / REPLACED_NAME
    try:
        recorded = read_json(complete) if complete.is_file() else {}
        manifests = [folder / m for m in recorded["manifests"]] if recorded else []
        ids = set(read_json(replaced)) if replaced.is_file() else set()
        return ids | {record.id for manifest in manifests for record in read_manifest(manifest)}
    except (WakebuilderError, KeyError, TypeError) as error:
        log.warning("negative bank audio %s: its clips cannot be told (%s); kept", folder, error)
        return None
