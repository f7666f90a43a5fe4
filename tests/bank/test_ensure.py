"""The bank's reuse across voices: the clips of replaced voices leave its store, also after a kill."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.store.kill_writer import SPEC, clips
from wakebuilder.bank.ensure import REPLACED_NAME, _drop_replaced
from wakebuilder.store import open_store
from wakebuilder.store.merge import merge_store


@pytest.mark.parametrize("killed", ["between the renames", "without the merged store", "after the swap"])
def test_a_compaction_killed_in_its_swap_is_finished_by_the_next_run(tmp_path: Path, killed: str) -> None:
    """A kill between compaction's two renames left no store.zarr: the next run saw no store, skipped the compaction,
    forgot the replaced clips and re-embedded the whole bank beside the .merging and .parts-old copies. The swap is
    finished now (or rolled back, then compacted), its copies removed, and the bank keeps every other clip."""
    store, folder = tmp_path / "store.zarr", tmp_path / "audio" / "key"
    merging, old = tmp_path / "store.zarr.merging", tmp_path / "store.zarr.parts-old"
    with open_store(store, "a", spec=SPEC) as opened:
        opened.append(*clips(0, 10))
        ids = sorted(opened.ids())
    gone, kept = set(ids[:3]), set(ids[3:])
    folder.mkdir(parents=True)
    (folder / REPLACED_NAME).write_text(json.dumps(sorted(gone)))
    merge_store(store, merging, drop=gone)  # compaction's merge, done; then its first rename
    os.replace(store, old)
    if killed == "without the merged store":
        merging.rename(tmp_path / "elsewhere.zarr")  # (deleted by hand): the old store is put back, then compacted
    if killed == "after the swap":
        os.replace(merging, store)
    _drop_replaced(folder, [], store=store)
    with open_store(store) as opened:
        assert opened.ids() == kept
    assert not merging.exists() and not old.exists() and not (folder / REPLACED_NAME).exists()
