"""``store_info``: what a store holds, for ``wb store info``; and the rejects file beside it."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path
from typing import Any

from wakebuilder.store.opening import backend_class, open_store, store_location
from wakebuilder.store.remote import disk_bytes_url, read_bytes, url_exists


def rejects_path(store_path: str | os.PathLike[str]) -> Path:
    """Where ``wb embed`` lists the clips it could not embed: ``<store path>.rejects.jsonl``."""
    path = Path(store_path)
    return path.with_name(path.name + ".rejects.jsonl")


def disk_bytes(path: Path | str) -> int:
    """Bytes on disk of a store, journal included (all parts of a store made of parts)."""
    if isinstance(path, str):
        return disk_bytes_url(path)
    total = 0
    for part in backend_class(path).parts(path):
        if part.is_file():
            total += part.stat().st_size
        elif part.is_dir():
            total += sum(p.stat().st_size for p in part.rglob("*") if p.is_file())
    return total


def store_info(path: str | os.PathLike[str], *, top_groups: int = 10) -> dict[str, Any]:
    """Counts by label, kind and group, shapes, backbone identity, fingerprint and size on disk.

    Raises:
        StoreError: no readable store at ``path``.
    """
    where = store_location(path)
    with open_store(where, "r") as store:
        store.check_chunks()
        arrays = store.load(pooled=False, sequence=False)
        groups = Counter(arrays.group.tolist())
        info: dict[str, Any] = {
            "path": str(where),
            "backend": store.backend,
            "parts": store.attrs.get("parts", 1),
            "clips": len(store),
            "labels": {str(k): v for k, v in sorted(Counter(arrays.label.tolist()).items())},
            "kinds": dict(sorted(Counter(arrays.kind.tolist()).items())),
            "groups": len(groups),
            "top_groups": dict(groups.most_common(top_groups)),
            "pooled_shape": [len(store), store.spec.dim],
            "sequence_shape": [len(store), store.spec.seq_len, store.spec.dim],
            "dtype": store.spec.dtype,
            "compute_dtype": store.spec.compute_dtype,
            "backbone": store.spec.backbone,
            "fingerprint": store.fingerprint,
            "schema_version": store.attrs["schema_version"],
            "wakebuilder_version": store.attrs.get("wakebuilder_version"),
            "size_bytes": disk_bytes(where),
        }
    if isinstance(where, str):  # a URL
        text = read_bytes(where + ".rejects.jsonl").decode() if url_exists(where + ".rejects.jsonl") else ""
        info["rejects"] = sum(1 for line in text.splitlines() if line.strip())
        return info
    rejects = rejects_path(where)
    with rejects.open(encoding="utf-8") if rejects.exists() else open(os.devnull, encoding="utf-8") as lines:
        info["rejects"] = sum(1 for line in lines if line.strip())
    return info
