"""Kills at each call of a function in turn, and the removal and next run the store's kill tests share.

The store's kill tests arrange a fresh copy, make one function (``os.unlink``, an fsspec method) die at its call
number 0, 1, 2, ... and check what the next run makes of what each kill left, until the action finishes unkilled.
A kill raised in one of zarr's I/O threads stops that thread only; a real kill stops them all, so each check waits
for the others first (``finish_zarr_io``).
"""

from __future__ import annotations

import asyncio
from typing import Callable, TypeVar

import pytest

from tests.store.kill_writer import SPEC, clips
from wakebuilder.store import open_store
from wakebuilder.store.parts import Location, part_location
from wakebuilder.store.parts_index import PartsIndex

T = TypeVar("T")


class Killed(BaseException):
    """Stands in for SIGKILL at one exact call (BaseException: nothing catches it)."""


def die_at_call(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, count: int) -> list[tuple[object, ...]]:
    """Replace ``owner.name`` by one that dies (raises Killed) at its call number ``count`` (from 0).

    Returns the arguments of the calls done before the kill. A method of a class (``owner`` a class) still gets
    ``self`` first.
    """
    real, done = getattr(owner, name), []

    def dying(*args: object, **kwargs: object) -> object:
        if len(done) >= count:
            raise Killed
        result = real(*args, **kwargs)
        done.append(args)
        return result

    monkeypatch.setattr(owner, name, dying)
    return done


def kill_at_each_call(
    owner: object,
    name: str,
    *,
    arrange: Callable[[int], T],
    action: Callable[[T], object],
    check: Callable[[int, T], None],
) -> int:
    """Run ``action`` killed at call 0, 1, 2, ... of ``owner.name`` until it finishes; returns that call count.

    Each try starts from ``arrange(count)`` (made before the kill is armed); after each kill, exactly ``count``
    calls were done and ``check(count, arranged)`` runs with the real function back in place.
    """
    count = 0
    while True:
        arranged = arrange(count)
        with pytest.MonkeyPatch.context() as patch:
            done = die_at_call(patch, owner, name, count)
            try:
                action(arranged)
            except Killed:
                finish_zarr_io()  # the kill still armed: what they do next dies as at a real kill
            else:
                return count
        assert len(done) == count, (count, done)
        check(count, arranged)
        count += 1


def finish_zarr_io() -> None:
    """Wait until zarr's event loop runs no task: what a kill in one of its I/O threads left running.

    zarr writes a store's files in threads, several at once (``asyncio.gather``); a kill raised in one ends the
    gather and the action, while its siblings write on, into the folder the check's next run deletes ('Directory not
    empty' when the machine was loaded). Awaiting each task waits for the thread it runs in.
    """
    from zarr.core.sync import sync

    async def remaining() -> None:
        while tasks := asyncio.all_tasks() - {asyncio.current_task()}:
            await asyncio.gather(*tasks, return_exceptions=True)  # Killed among them: retrieved, not logged

    sync(remaining())


def remove_with_overwrite(location: Location, how: str) -> None:
    """The removal of a store before a new one: ``wb embed --overwrite`` in parts (PartsIndex) or into a single
    store (open_store)."""
    if how == "parts":
        PartsIndex(location, spec=SPEC, overwrite=True).close()
    else:
        open_store(location, "a", spec=SPEC, overwrite=True).close()


def build_new_parts(location: Location) -> None:
    """The next ``wb embed`` in parts after a removal (new settings, no --overwrite): no part of the old store is
    adopted, and a new part of the 2 clips ``clips(0, 2)`` is listed."""
    index = PartsIndex(location, spec=SPEC)
    try:
        assert index.adopt_orphans() == []  # no part of the old store comes back
        with open_store(part_location(location, "new"), "a", spec=SPEC) as part:
            part.append(*clips(0, 2))
        index.register("new")
    finally:
        index.close()
