"""HDF5 journal and merge: a writer dying at each step of the merge loses nothing."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest

from tests.store.kill_writer import SPEC, clips
from tests.store.kills import Killed, kill_at_each_call
from tests.store.test_store_contract import build, check_contents
from wakebuilder.errors import StoreError
from wakebuilder.store import open_store
from wakebuilder.store import h5_backend


def session_killed_in_merge(
    path: Path, monkeypatch: pytest.MonkeyPatch, target: str, after_calls: int
) -> None:
    """Append clips 10..15 in a session whose merge dies at call ``after_calls`` of ``target``.

    ``target`` is patched where the backend looks it up (the ``os`` and ``shutil`` modules), but
    counts and dies only when called from ``h5_backend`` itself, not from zarr or pytest.
    """
    module, name = target.split(".")
    real = getattr(getattr(h5_backend, module), name)
    calls = []

    def dying(*args: object) -> object:
        if sys._getframe(1).f_globals["__name__"] == h5_backend.__name__:  # only the backend's own calls
            calls.append(args)
            if len(calls) > after_calls:
                raise Killed
        return real(*args)

    monkeypatch.setattr(getattr(h5_backend, module), name, dying)
    with pytest.raises(Killed), open_store(path, "a", spec=SPEC) as store:
        store.append(*clips(10, 15))
    monkeypatch.undo()


@pytest.mark.parametrize(
    ("target", "after_calls", "leftover"),
    [("shutil.copyfile", 0, None),  # dies before copying: old file + journal
     ("os.replace", 0, ".incomplete"),  # merged copy written, not yet swapped in
     ("os.replace", 1, ".journal"),  # new file in place, journal not yet retired (the file names it merged)
     ("shutil.rmtree", 0, ".journal.merged-")],  # journal retired, not yet deleted
)
def test_merge_killed_at_each_step(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target: str, after_calls: int, leftover: str | None
) -> None:
    path = tmp_path / "store.h5"
    build(path, 0, 10)
    session_killed_in_merge(path, monkeypatch, target, after_calls)
    names = [p.name for p in tmp_path.iterdir()]
    assert leftover is None or any(n.startswith("store.h5" + leftover) for n in names), names
    check_contents(path, 15)  # a reader sees every committed clip exactly once
    build(path, 15, 20)  # the next writer cleans up and carries on
    check_contents(path, 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["store.h5", "store.h5.lock"]


def test_a_killed_merges_leftover_is_removed_whatever_the_store_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path, neighbour = tmp_path / "take[2].h5", tmp_path / "take2.h5.journal.merged-0"  # [2] is a glob class
    neighbour.mkdir()  # another store's: not this store's to delete
    build(path, 0, 10)
    session_killed_in_merge(path, monkeypatch, "shutil.rmtree", 0)  # journal retired, not yet deleted
    build(path, 15, 20)  # the next writer cleans up
    check_contents(path, 20)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["take2.h5.journal.merged-0", "take[2].h5",
                                                          "take[2].h5.lock"]


def test_reader_notices_a_merge_under_it(tmp_path: Path) -> None:
    path = tmp_path / "store.h5"
    build(path, 0, 10)
    writer = open_store(path, "a", spec=SPEC)
    writer.append(*clips(10, 15))
    with open_store(path) as reader:
        assert len(reader) == 15
        writer.close()  # merges and deletes the journal the reader was using
        with pytest.raises(StoreError, match="reopen it"):
            reader.load()
    check_contents(path, 15)


def test_reader_notices_a_new_journal_at_the_same_path(tmp_path: Path) -> None:
    """After the merge, a new session's journal at the same path holds other rows at the same offsets: the
    reader must refuse them, not return them as its own (it reads its journal's rows while it lasts)."""
    path = tmp_path / "store.h5"
    build(path, 0, 10)
    writer = open_store(path, "a", spec=SPEC)
    writer.append(*clips(10, 15))
    with open_store(path) as reader:
        assert list(reader.load().id) == [f"clip{i:05d}" for i in range(15)]  # its journal's rows, while it lasts
        writer.close()
        with open_store(path, "a", spec=SPEC) as second:
            second.append(*clips(15, 20))
            with pytest.raises(StoreError, match="reopen it"):
                reader.load()
    check_contents(path, 20)


def test_journal_of_another_file_is_refused(tmp_path: Path) -> None:
    build(tmp_path / "a.h5", 0, 10)
    build(tmp_path / "b.h5", 0, 10)
    writer = open_store(tmp_path / "a.h5", "a", spec=SPEC)
    writer.append(*clips(10, 12))
    shutil.copytree(tmp_path / "a.h5.journal", tmp_path / "b.h5.journal")
    writer.close()
    for mode in ("r", "a"):
        with pytest.raises(StoreError, match="does not belong to"):
            open_store(tmp_path / "b.h5", mode)
    check_contents(tmp_path / "a.h5", 12)


def test_journal_without_committed_rows_reads_as_empty(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer killed after creating its journal but before its first commit (found by the kill test)."""
    path = tmp_path / "store.h5"
    writer = open_store(path, "a", spec=SPEC)

    def die(self: object, count: int) -> None:
        raise KeyboardInterrupt("killed before the first commit")

    monkeypatch.setattr(h5_backend.ZarrBackend, "commit", die)
    with pytest.raises(KeyboardInterrupt):
        writer.append(*clips(0, 5))
    with open_store(path) as reader:
        assert len(reader) == 0
        arrays = reader.load()
        assert arrays.pooled.shape == (0, 4) and arrays.sequence.shape == (0, 3, 4) and len(arrays.id) == 0
    monkeypatch.undo()
    writer.close()
    check_contents(path, 0)


def test_a_journal_without_rows_deleted_by_the_next_writer_killed_at_any_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer killed before its first commit leaves a journal of no committed rows, which the next writer's close
    deletes. Deleted in place, a kill after some of its arrays went but not its zarr.json left a journal that failed
    to open ('store is missing an array'), and with it the store and every row of its intact file (the fix offered:
    --overwrite). The journal is now renamed aside first, to the name a merged one takes (deleted by the next
    writer), so a kill at any file leaves the journal whole or retired."""
    template = tmp_path / "template"
    build(template / "store.h5", 0, 10)
    writer = open_store(template / "store.h5", "a", spec=SPEC)
    monkeypatch.setattr(h5_backend.ZarrBackend, "commit", lambda self, count: sys.exit("killed before the commit"))
    with pytest.raises(SystemExit):
        writer.append(*clips(10, 15))
    shutil.copytree(template, tmp_path / "killed")  # the file of 10 rows and a journal of none, as the kill left them
    monkeypatch.undo()
    writer.close()

    def arrange(count: int) -> Path:
        folder = tmp_path / f"run-{count}"
        shutil.copytree(tmp_path / "killed", folder)
        return folder / "store.h5"

    def check(count: int, path: Path) -> None:
        check_contents(path, 10)
        build(path, 10, 15)
        check_contents(path, 15)
        assert sorted(p.name for p in path.parent.iterdir()) == ["store.h5", "store.h5.lock"]

    count = kill_at_each_call(
        os, "unlink", arrange=arrange, check=check,
        action=lambda path: open_store(path, "a", spec=SPEC).close(),  # the next writer: its close drops the journal
    )
    assert count > 7  # a kill landed at every file of the journal


@pytest.mark.parametrize("committed", ["5", -1, 99, None, 12])
def test_a_hand_edited_journal_row_count_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, committed: object
) -> None:
    """The journal a killed writer left, its committed count edited by hand (of the wrong type, negative, past
    its rows on disk, or raised to 12, inside its first 16-row chunk): a one-line error naming the journal, not a
    traceback or rows that are not there (12 read 7 rows of fill values)."""
    path = tmp_path / "store.h5"
    build(path, 0, 10)
    session_killed_in_merge(path, monkeypatch, "shutil.copyfile", 0)  # old file + a journal of 5 rows
    meta_path = tmp_path / "store.h5.journal" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["attributes"]["committed"] = committed
    meta_path.write_text(json.dumps(meta))
    for mode in ("r", "a"):
        with pytest.raises(StoreError, match=r"store\.h5\.journal: attrs\.committed is .*rebuild"):
            len(open_store(path, mode, spec=SPEC))


def damage_fields(path: Path) -> None:
    import h5py

    with h5py.File(path, "r+") as handle:
        del handle.attrs["fields"]


def damage_committed(path: Path) -> None:
    import h5py

    with h5py.File(path, "r+") as handle:
        handle.attrs["committed"] = -1


def journal_of_another_store(path: Path) -> None:
    other = path.with_name("other.h5")
    build(other, 0, 10)
    writer = open_store(other, "a", spec=SPEC)
    writer.append(*clips(10, 12))
    shutil.copytree(other.with_name("other.h5.journal"), path.with_name("store.h5.journal"))
    writer.close()


def unreadable_journal(path: Path) -> None:
    journal = path.with_name("store.h5.journal")
    journal.mkdir()
    (journal / "zarr.json").write_text("{ not json")


@pytest.mark.parametrize("damage", [damage_fields, damage_committed, journal_of_another_store, unreadable_journal])
def test_a_store_that_fails_to_open_leaves_no_file_open(tmp_path: Path, damage: object) -> None:
    """A damaged store (or journal) refused on open left its HDF5 file open until garbage collection: the same
    process could not open it for writing ('file is already open for read-only'); on some platforms it also
    blocks deleting the file."""
    import h5py

    path = tmp_path / "store.h5"
    build(path, 0, 10)
    damage(path)  # type: ignore[operator]
    for mode in ("r", "a"):
        with pytest.raises(StoreError) as refused:
            open_store(path, mode, spec=SPEC)
        held = [f.name for f in h5py.h5f.get_obj_ids(types=h5py.h5f.OBJ_FILE) if Path(f.name.decode()) == path]
        assert not held, refused.value  # the error (and its traceback, holding the backend) is still alive
        h5py.File(path, "r+", locking=False).close()
