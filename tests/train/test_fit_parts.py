"""``wb fit`` and calibration's validation read a store made of parts as one store."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.train.conftest import SMALL
from tests.train.test_run_fit import make_store
from wakebuilder.calibrate import validation_logits
from wakebuilder.modeldir import load_model
from wakebuilder.store import open_store
from wakebuilder.store.parts import part_location
from wakebuilder.store.parts_index import PartsIndex
from wakebuilder.train.fit import run_fit

pytest.importorskip("fsspec", reason="stores made of parts need the [dask] extra")


def split_into_parts(single: Path, parted: Path, bounds: list[int]) -> None:
    """The single store's rows, in order, as contiguous parts."""
    with open_store(single) as store:
        arrays, records = store.load(), store.records()
        spec = store.spec
    index = PartsIndex(parted, spec=spec)
    try:
        for k, (start, stop) in enumerate(zip(bounds, bounds[1:], strict=False)):
            with open_store(part_location(parted, f"p{k}"), "a", spec=spec) as part:
                part.append(records[start:stop], arrays.pooled[start:stop], arrays.sequence[start:stop])
            index.register(f"p{k}")
    finally:
        index.close()


def test_fit_and_validation_on_parts_equal_one_store(tmp_path: Path) -> None:
    single = make_store(tmp_path / "single.zarr", n=160)
    with open_store(single) as store:
        total = len(store)
    split_into_parts(single, tmp_path / "parted", [0, 50, 51, 130, total])
    config = SMALL.replace(max_epochs=2)
    one, _ = run_fit(single, tmp_path / "model-one", config, device="cpu", progress=False)
    parts, _ = run_fit(tmp_path / "parted", tmp_path / "model-parts", config, device="cpu", progress=False)
    a, b = load_model(one), load_model(parts)
    assert a.meta["store_fingerprint"] == b.meta["store_fingerprint"]
    for (name, x), (_, y) in zip(a.head.state_dict().items(), b.head.state_dict().items(), strict=True):
        assert np.array_equal(x.numpy(), y.numpy()), name
    logits_one, labels_one = validation_logits(a, single)
    logits_parts, labels_parts = validation_logits(b, tmp_path / "parted")
    assert np.array_equal(labels_one, labels_parts) and np.allclose(logits_one, logits_parts, atol=1e-6)
