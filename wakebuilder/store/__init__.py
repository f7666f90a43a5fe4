"""The embedding store: one frozen-backbone pass over all audio, read by every later stage.

A Zarr v3 directory by default, an HDF5 file when the path ends in ``.h5``/``.hdf5``;
both keep the schema of ``store.base``, survive ``kill -9`` at any moment (see
``zarr_backend`` and ``h5_backend``) and admit one writer at a time.

Example::

    with open_store("embeddings", "a", spec=StoreSpec(backbone=identity, seq_len=9, dim=96)) as store:
        todo = [r for r in records if r.id not in store.ids()]
        store.append(todo, pooled, sequence)
    arrays = open_store("embeddings").load(pooled=False)
"""

from __future__ import annotations

from wakebuilder.store.base import SCHEMA_VERSION, StoreArrays, StoreSpec
from wakebuilder.store.embedding_store import EmbeddingStore
from wakebuilder.store.info import rejects_path, store_info
from wakebuilder.store.layout import CHUNK_ROWS
from wakebuilder.store.opening import open_store, spec_fingerprint

__all__ = [
    "CHUNK_ROWS", "SCHEMA_VERSION", "EmbeddingStore", "StoreArrays", "StoreSpec", "open_store",
    "rejects_path",
    "spec_fingerprint", "store_info",
]
