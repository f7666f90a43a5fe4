"""The kill harness the store's kill tests share (``tests.store.kills``)."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from tests.store.kills import kill_at_each_call

# How long the sibling write below waits for the check to look before it writes anyway: it ends the wait of a harness
# that waits for the sibling first (as it should); one that does not checks at once, well within it.
LOOK_TIMEOUT_S = 1.0


def test_a_kill_in_one_zarr_io_thread_lets_its_siblings_finish_before_the_check(tmp_path: Path) -> None:
    """zarr runs a store's file writes in threads under its own event loop: a kill raised in one of them (creating a
    store: an os.unlink of zarr's, its exclusive write's temporary file) ended the action while a sibling thread
    still wrote (another zarr.json), into the folder that the check's next run was deleting ('Directory not
    empty' in test_removal, seen on a loaded machine). A real kill stops every thread at once, so the harness now
    waits for zarr's I/O to finish, the kill still armed, before it checks. Here the sibling writes once the check
    has looked (or after LOOK_TIMEOUT_S, the harness waiting for it), so a harness that does not wait sees it still
    running, every time."""
    from zarr.core.sync import sync

    looked, written = threading.Event(), threading.Event()

    def sibling_write(path: Path) -> None:
        looked.wait(LOOK_TIMEOUT_S)
        (path / "sibling").write_bytes(b"late")
        written.set()

    async def two_writes(path: Path) -> None:  # as zarr does: concurrent file operations, each in a thread
        await asyncio.gather(asyncio.to_thread(os.unlink, path / "temporary"), asyncio.to_thread(sibling_write, path))

    def arrange(count: int) -> Path:  # kill at call 0 (the check looks), then none
        path = tmp_path / f"try-{count}"
        path.mkdir()
        (path / "temporary").write_bytes(b"")
        return path

    def check(count: int, path: Path) -> None:
        running = not written.is_set()
        looked.set()
        assert not running, "the check ran while a sibling of the killed thread still wrote"
        assert (path / "sibling").exists() and (path / "temporary").exists()

    count = kill_at_each_call(os, "unlink", arrange=arrange, action=lambda path: sync(two_writes(path)), check=check)
    assert count == 1
