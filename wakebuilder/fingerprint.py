"""Cache keys as hashes of canonical JSON, failing loudly on anything unhashable."""

from __future__ import annotations

import hashlib
import json
import math
import os
from typing import Any

import numpy as np

from wakebuilder.errors import ConfigError


def _canonical(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _canonical(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ConfigError(f"cannot fingerprint non-finite float {value!r}")
        return value
    if value is None or isinstance(value, (str, int, bool)):
        return value
    raise ConfigError(f"cannot fingerprint value of type {type(value).__name__}: {value!r}")


def canonical_json(value: Any) -> str:
    """Serialise ``value`` deterministically (sorted keys, no whitespace)."""
    return json.dumps(_canonical(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def fingerprint(stage: str, version: int, config: dict[str, Any], inputs: Any = None) -> str:
    """Hash a stage's identity: its name, version, semantic config and input identities."""
    payload = {"stage": stage, "version": version, "config": config, "inputs": inputs}
    return hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()[:32]


def audio_id(samples: np.ndarray) -> str:
    """Content hash of decoded audio: float32 samples at 16 kHz, little-endian."""
    data = np.ascontiguousarray(samples, dtype="<f4")
    return hashlib.sha256(data.tobytes()).hexdigest()[:24]


def file_sha256(path: str, *, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


_FILE_DIGESTS: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, for this process


def cached_file_sha256(path: str | os.PathLike[str]) -> str:
    """``file_sha256`` of ``path``, read once a process while its size and modification time stay the same (a
    voice file of hundreds of megabytes is hashed by each run's check, not by every step of it)."""
    resolved = os.path.realpath(path)
    stat = os.stat(resolved)
    key = (resolved, stat.st_size, stat.st_mtime_ns)
    if key not in _FILE_DIGESTS:
        _FILE_DIGESTS[key] = file_sha256(resolved)
    return _FILE_DIGESTS[key]
