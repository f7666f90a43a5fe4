"""The bank's reuse across voices: the clips of replaced voices are retired, also after a kill."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.store.kill_writer import SPEC, clips
from wakebuilder.bank.ensure import REPLACED_NAME, _replaced_clips
from wakebuilder.bank.location import BANK_MARKER
from wakebuilder.bank.retired import open_served, retire
from wakebuilder.store import open_store
from wakebuilder.store.merge import merge_store


def bank_store(where: Path, n: int) -> list[str]:
    """A bank's store of ``n`` clips at ``where/store.zarr`` (its marker beside it); their ids, sorted."""
    store = where / "store.zarr"
    with open_store(store, "a", spec=SPEC) as opened:
        opened.append(*clips(0, n))
        ids = sorted(opened.ids())
    (where / BANK_MARKER).write_text("{}")
    return ids


def served_ids(store: Path) -> set[str]:
    with open_served([store]) as (union, _):
        return set(union.load(pooled=False, sequence=False).id)


@pytest.mark.parametrize("killed", ["between the renames", "without the merged store", "after the swap"])
def test_a_compaction_killed_in_its_swap_is_finished_by_the_next_run(tmp_path: Path, killed: str) -> None:
    """A kill between compaction's two renames (a release that compacted the bank) left no store.zarr: the next run
    saw no store, skipped the replaced clips, forgot them and re-embedded the whole bank beside the .merging and
    .parts-old copies. The swap is finished now (or rolled back), its copies removed, and the bank serves every
    other clip."""
    store, folder = tmp_path / "store.zarr", tmp_path / "audio" / "key"
    merging, old = tmp_path / "store.zarr.merging", tmp_path / "store.zarr.parts-old"
    ids = bank_store(tmp_path, 10)
    gone, kept = set(ids[:3]), set(ids[3:])
    folder.mkdir(parents=True)
    (folder / REPLACED_NAME).write_text(json.dumps(sorted(gone)))
    merge_store(store, merging, drop=gone)  # compaction's merge, done; then its first rename
    os.replace(store, old)
    if killed == "without the merged store":
        merging.rename(tmp_path / "elsewhere.zarr")  # (deleted by hand): the old store is put back, then retired
    if killed == "after the swap":
        os.replace(merging, store)
    assert _replaced_clips(folder, store=store) == gone
    assert not merging.exists() and not old.exists()
    retire(store, add=gone)  # as build_bank does once it embedded the new voices' clips
    assert served_ids(store) == kept


def test_a_fit_kept_on_the_bank_is_made_again_once_clips_are_retired(tmp_path: Path) -> None:
    """A head fitted on the bank is kept while its stores' content is the same (keep_or_fit). When the bank's
    clips were removed from its store, that content changed; retired, they stay in the store, so the list of the
    retired clips is part of that content: a fit that read them is not kept."""
    from wakebuilder.recipe_keep import store_content

    ids = bank_store(tmp_path, 6)
    store = tmp_path / "store.zarr"
    before = store_content([store])
    retire(store, add=ids[:2])
    assert served_ids(store) == set(ids[2:]) and store_content([store]) != before
    retire(store, serve=ids[:2])  # wanted again (the voices changed back): served, the same content as before
    assert served_ids(store) == set(ids) and store_content([store]) == before
