"""``verify_store``: read every committed chunk of a store and list the rows that are damaged.

A row is damaged when one of its chunks is missing on disk or fails its
checksum (Zarr's CRC-32C, HDF5's Fletcher-32), when its embeddings hold NaN or
infinite values, or when its id or manifest row does not parse. In a store made
of parts, a row is also damaged when an earlier part holds its clip id (readers
refuse such a store). Everything is read a chunk at a time, so memory stays
bounded by one chunk (and, for parts, the set of ids) whatever the size.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from wakebuilder.errors import StoreError
from wakebuilder.store.base import ARRAY_FIELDS
from wakebuilder.store.opening import open_store, store_location

_EMBEDDINGS = ("pooled", "sequence")


def _bad_values(name: str, values: np.ndarray) -> np.ndarray:
    """Offsets of rows whose values are unusable (non-finite embeddings, empty ids, rows not JSON)."""
    if name in _EMBEDDINGS:
        return np.flatnonzero(~np.isfinite(values).reshape(values.shape[0], -1).all(axis=1))
    if name == "id":
        return np.flatnonzero([not isinstance(v, str) or not v for v in values])
    if name == "row":
        bad = []
        for i, value in enumerate(values):
            try:
                json.loads(value)
            except (TypeError, json.JSONDecodeError):
                bad.append(i)
        return np.asarray(bad, dtype=np.int64)
    return np.zeros(0, dtype=np.int64)


def _failing_rows(backend: Any, name: str, rows: list[int], reason: str) -> list[dict[str, Any]]:
    """One problem per run of consecutive rows that cannot be read one at a time."""
    problems: list[dict[str, Any]] = []
    for row in rows:
        try:
            backend.read(name, row, row + 1)
        except StoreError:
            if problems and problems[-1]["rows"][1] == row:
                problems[-1]["rows"][1] = row + 1
            else:
                problems.append({"field": name, "rows": [row, row + 1], "reason": reason})
    return problems


def _check_field(backend: Any, name: str, committed: int) -> list[dict[str, Any]]:
    problems = [
        {"field": name, "rows": [a, b], "reason": "chunk file missing"}
        for a, b in backend.missing_chunks(name)
    ]
    missing = {row for p in problems for row in range(*p["rows"])}
    step = backend.chunk_rows(name)
    for start in range(0, committed, step):
        stop = min(start + step, committed)
        try:
            values = backend.read(name, start, stop)
        except StoreError as exc:  # narrow it down to the rows that fail on their own
            reason = str(exc).split(": ", 1)[-1]
            problems += _failing_rows(backend, name, [r for r in range(start, stop) if r not in missing], reason)
            continue
        for offset in _bad_values(name, values).tolist():
            reason = "NaN or infinite values" if name in _EMBEDDINGS else f"unreadable {name}"
            problems.append({"field": name, "rows": [start + offset, start + offset + 1], "reason": reason})
    return problems


def _repeated_ids(pieces: list[Any]) -> list[dict[str, Any]]:
    """Problems for the rows whose clip id an earlier part holds (rows numbered across the parts)."""
    first_part: dict[str, str] = {}
    problems: list[dict[str, Any]] = []
    offset = 0
    for piece in pieces:
        backend, name = piece.storage, os.path.basename(str(piece.path).rstrip("/"))
        step = backend.chunk_rows("id")
        for start in range(0, len(piece), step):
            try:
                ids = backend.read("id", start, min(start + step, len(piece)))
            except StoreError:  # listed already as a damaged chunk
                continue
            for i, clip in enumerate(ids.tolist()):
                row = offset + start + i
                if clip not in first_part:
                    first_part[clip] = name
                    continue
                reason = f"clip id also stored in part {first_part[clip]}"
                if problems and problems[-1]["rows"][1] == row and problems[-1]["reason"] == reason:
                    problems[-1]["rows"][1] = row + 1
                else:
                    problems.append({"field": "id", "rows": [row, row + 1], "reason": reason})
        offset += len(piece)
    return problems


def verify_store(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Check every committed row of the store at ``path``.

    Returns:
        ``{"path", "backend", "clips", "checksums", "ok", "damaged_rows", "problems"}``;
        ``problems`` lists ``{"field", "rows": [start, stop], "reason"}`` and
        ``damaged_rows`` the sorted row numbers they cover.

    Raises:
        StoreError: no store at ``path``, or one too damaged to open.
    """
    from wakebuilder.store.parts import PartedStore

    where = store_location(path)
    with open_store(where, "r") as store:
        committed = len(store)
        # A store made of parts: each part is an ordinary store; rows are numbered across the parts.
        pieces = list(store.parts) if isinstance(store, PartedStore) else [store]
        problems: list[dict[str, Any]] = []
        offset = 0
        for piece in pieces:
            for name in ARRAY_FIELDS:
                for p in _check_field(piece.storage, name, len(piece)):
                    start, stop = p["rows"]
                    problems.append({**p, "rows": [start + offset, stop + offset]})
            offset += len(piece)
        if isinstance(store, PartedStore):
            problems += _repeated_ids(pieces)
        checksums = pieces[0].attrs.get("checksums") if pieces else store.attrs.get("checksums")
    damaged = sorted({row for p in problems for row in range(*p["rows"])})
    return {
        "path": str(where), "backend": store.backend, "clips": committed, "checksums": checksums,
        "ok": not problems, "damaged_rows": damaged, "problems": problems,
    }


def format_rows(rows: list[int], *, limit: int = 20) -> str:
    """``0-255, 300, 512-767`` style ranges of row numbers (at most ``limit`` ranges)."""
    ranges: list[list[int]] = []
    for row in rows:
        if ranges and row == ranges[-1][1] + 1:
            ranges[-1][1] = row
        else:
            ranges.append([row, row])
    text = ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in ranges[:limit])
    return text + (f", ... ({len(ranges) - limit} more ranges)" if len(ranges) > limit else "")
