"""The bank's retired clips: still in its store, no longer served.

The bank's store is shared by every phrase's recipe and read without a lock
(fit, calibrate), so it only grows: when its voices change, the old voices'
clips are not removed from it (rewriting the store under a reader would break
it) but listed in ``retired.json`` beside it, written whole (atomically) under
the bank's build lock. A reader reads the list once, when it opens the stores
(``bank.exclude.open_served``), and leaves those rows out; the rows it opened
stay as they were while another phrase retires or adds clips.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from wakebuilder.atomic import atomic_write_json, read_json
from wakebuilder.bank.location import is_bank_store
from wakebuilder.errors import ConfigError

RETIRED_NAME = "retired.json"


def retired_path(store: str | os.PathLike[str]) -> Path:
    """Where a bank store's retired clips are listed."""
    return Path(store).parent / RETIRED_NAME


def retired_ids(store: str | os.PathLike[str]) -> frozenset[str]:
    """The ids of the clips a bank store holds but no longer serves (none for a store that is no bank).

    Raises:
        WakebuilderError: ``retired.json`` is not JSON.
        ConfigError: it is no list of clip ids (edited by hand).
    """
    path = retired_path(store)
    if not is_bank_store(store) or not path.is_file():
        return frozenset()
    ids = read_json(path)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ConfigError(f"{path}: not a list of clip ids; delete it and run the recipe again")
    return frozenset(ids)


def retire(store: str | os.PathLike[str], *, add: Collection[str] = (), serve: Collection[str] = ()) -> None:
    """List the clips ``add`` as retired in ``store``'s bank and ``serve`` (clips wanted again) as served.

    The list is read, changed and written whole: ``ensure_bank`` calls this under the bank's build lock.
    """
    before = retired_ids(store)
    after = (before | set(add)) - set(serve)
    if after == before:
        return
    path = retired_path(store)
    if after:
        atomic_write_json(path, sorted(after))
    else:
        path.unlink()
