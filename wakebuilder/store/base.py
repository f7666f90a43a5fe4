"""The embedding store contract, shared by the Zarr and HDF5 backends.

Schema (one row per clip, rows ordered by insertion):

==============  ====================  ======================================
array           shape, dtype          meaning
==============  ====================  ======================================
``pooled``      (N, D) float16        the backbone's pooled embedding
``sequence``    (N, T, D) float16     time sequence of embeddings
``label``       (N,) int8             1 wake word, 0 not
``id``          (N,) str              clip content hash (manifest ``id``)
``kind``        (N,) str              manifest ``kind``
``group``       (N,) str              manifest ``group``
``row``         (N,) str              the manifest row as JSON
==============  ====================  ======================================

Attributes: ``schema_version``, ``backbone`` (the backbone's identity),
``seq_len``, ``dim``, ``dtype``, ``wakebuilder_version``, ``fingerprint``
(hash of the embedding config: backbone identity, dtype, schema) and
``committed`` (rows durably written; rows past it are ignored and overwritten,
which is what makes a killed run resumable), and ``compute_dtype`` (the AST pass's
precision, ``fp32`` or ``bf16``; not part of the fingerprint, so stores made before
it was recorded, which lack it, open and take rows as before).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

SCHEMA_VERSION = 1
ARRAY_FIELDS = ("pooled", "sequence", "label", "id", "kind", "group", "row")


@dataclass(frozen=True)
class StoreArrays:
    """Store contents loaded into memory (the fields asked for; others None)."""

    pooled: np.ndarray | None
    sequence: np.ndarray | None
    label: np.ndarray
    id: np.ndarray
    kind: np.ndarray
    group: np.ndarray

    def __len__(self) -> int:
        return int(self.label.shape[0])


@dataclass(frozen=True)
class StoreSpec:
    """What a new store is created for; compared on reopen."""

    backbone: dict[str, Any]
    seq_len: int
    dim: int
    dtype: str = "float16"
    compute_dtype: str | None = None
    """The backbone pass's precision (``fp32``, ``bf16``); None: not recorded (another backbone, an old store)."""
