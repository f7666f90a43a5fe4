"""Several stores read as one: refused when embeddings differ, equal to one merged store when they agree."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from tests.train.conftest import SMALL, planted
from wakebuilder.cli import main
from wakebuilder.errors import ConfigError, StoreMismatchError
from wakebuilder.manifest import ClipRecord
from wakebuilder.modeldir import load_model
from wakebuilder.store import StoreSpec, open_store
from wakebuilder.store.union import open_stores
from wakebuilder.train.fit import run_fit

IDENTITY = {"name": "test-backbone", "spec": "test", "window_s": 1.0, "revision": "0", "seq_len": 8, "dim": 32}


def rows(n: int, *, seed: int, prefix: str, text: str = "") -> tuple[list[ClipRecord], np.ndarray]:
    arrays = planted(n, signal=0.8, seed=seed)
    records = [ClipRecord(id=f"{prefix}{i}", path=f"{prefix}{i}.wav", label=int(arrays.label[i]), kind="tts",
                          group=f"{prefix}g{i % 12}", text=text or ("hey wake" if arrays.label[i] else "other"))
               for i in range(n)]
    return records, arrays.sequence


def write(path: Path, parts: list[tuple[list[ClipRecord], np.ndarray]], identity: dict | None = None, *,
          compute_dtype: str | None = None) -> Path:
    spec = StoreSpec(backbone=identity or IDENTITY, seq_len=8, dim=32, compute_dtype=compute_dtype)
    with open_store(path, "a", spec=spec) as store:
        for records, sequence in parts:
            store.append(records, sequence.mean(axis=1), sequence)
    return path


@pytest.mark.parametrize("change", [{"window_s": 2.0}, {"name": "other-backbone"}])
def test_stores_of_other_embeddings_are_refused_in_one_line(tmp_path: Path, change: dict) -> None:
    a = write(tmp_path / "a.zarr", [rows(40, seed=0, prefix="a")])
    b = write(tmp_path / "b.zarr", [rows(40, seed=1, prefix="b")], identity=IDENTITY | change)
    with pytest.raises(StoreMismatchError) as info, open_stores([a, b]):
        pass
    message = str(info.value)
    assert str(a) in message and str(b) in message and next(iter(change)) in message
    result = CliRunner().invoke(main, ["fit", "--store", str(a), "--store", str(b), "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and not (tmp_path / "m").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wb: error: stores ")
    assert f"backbone.{next(iter(change))}" in lines[0]


def test_stores_embedded_at_other_precisions_are_refused_in_one_line(tmp_path: Path) -> None:
    """A phrase's store computed in fp32 and a bank in bf16 share a fingerprint (the precision is not in it): read
    together, a head was fit and calibrated on rows of both precisions without a word. Refused naming both stores and
    their precisions; a store that records none (made before it was recorded) is read with either, as before."""
    fp32 = write(tmp_path / "fp32.zarr", [rows(40, seed=0, prefix="a")], compute_dtype="fp32")
    bf16 = write(tmp_path / "bf16.zarr", [rows(40, seed=1, prefix="b")], compute_dtype="bf16")
    old = write(tmp_path / "old.zarr", [rows(40, seed=2, prefix="c")])
    also_fp32 = write(tmp_path / "fp32b.zarr", [rows(40, seed=3, prefix="d")], compute_dtype="fp32")
    for paths in ([fp32, bf16], [old, bf16, fp32]):
        with pytest.raises(StoreMismatchError) as refused, open_stores(paths):
            pass
        assert all(str(p) in str(refused.value) for p in (fp32, bf16)) and "fp32" in str(refused.value)
        assert "bf16" in str(refused.value)
    for paths in ([fp32, old], [old, bf16], [fp32, also_fp32, old]):
        with open_stores(paths) as union:
            assert len(union) == 40 * len(paths)
    with open_stores([old, bf16]) as union:
        assert union.spec.compute_dtype == "bf16"
    result = CliRunner().invoke(main, ["fit", "--store", str(fp32), "--store", str(bf16), "--out", str(tmp_path / "m")])
    assert result.exit_code != 0 and not (tmp_path / "m").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "embedded in fp32" in lines[0] and "--dtype" in lines[0], lines


def test_union_keeps_an_id_once_in_store_order(tmp_path: Path) -> None:
    first, second = rows(30, seed=0, prefix="a"), rows(20, seed=1, prefix="b")
    shared = ([first[0][0]], first[1][:1])  # clip a0 in both stores
    a = write(tmp_path / "a.zarr", [first])
    b = write(tmp_path / "b.zarr", [second, shared])
    with open_stores([a, b]) as union:
        assert len(union) == 50
        arrays = union.load(pooled=False, sequence=True)
        assert arrays.id.tolist() == [f"a{i}" for i in range(30)] + [f"b{i}" for i in range(20)]
        np.testing.assert_array_equal(arrays.sequence[:30], first[1])
        batches = list(union.iter_batches(7, sequence=True))
        np.testing.assert_array_equal(np.concatenate([b.sequence for b in batches]), arrays.sequence)
        kept = union.restrict(np.arange(50) % 2 == 0)
        assert kept.load(pooled=False, sequence=False).id.tolist() == arrays.id[::2].tolist()
        assert [r.id for r in kept.records()] == arrays.id[::2].tolist()


def test_fit_on_two_stores_equals_fit_on_the_merged_store(tmp_path: Path) -> None:
    first, second = rows(160, seed=0, prefix="a"), rows(120, seed=1, prefix="b")
    a = write(tmp_path / "a.zarr", [first])
    b = write(tmp_path / "b.zarr", [second])
    merged = write(tmp_path / "merged.zarr", [first, second])
    config = SMALL.replace(max_epochs=3)
    two, result_two = run_fit([a, b], tmp_path / "two", config, device="cpu", progress=False)
    one, result_one = run_fit(merged, tmp_path / "one", config, device="cpu", progress=False)
    assert result_two.split == result_one.split
    for key, value in result_one.head.state_dict().items():
        torch.testing.assert_close(result_two.head.state_dict()[key], value, rtol=0, atol=0)
    meta = load_model(two).meta
    assert [s["path"] for s in meta["stores"]] == [str(a.resolve()), str(b.resolve())]
    assert [s["rows"] for s in meta["stores"]] == [160, 120] and meta["bank_exclusion"]["excluded"] == 0
    with open_store(a) as store:
        assert {s["fingerprint"] for s in meta["stores"]} == {store.fingerprint}


def test_describe_records_a_url_store_by_its_url(tmp_path: Path) -> None:
    pytest.importorskip("fsspec", reason="stores at URLs need fsspec")
    url = f"memory://wb-test-{uuid.uuid4().hex}/store"
    local = write(tmp_path / "a.zarr", [rows(20, seed=0, prefix="a")])
    write(url, [rows(20, seed=1, prefix="b")])
    with open_stores([local, url]) as union:
        # model.json's "stores" (and store_path) must name the store the model was fit on, not a local
        # path made by resolving the URL against the working directory
        assert [d["path"] for d in union.describe()] == [str(local.resolve()), url]


def test_describe_records_the_precision_a_store_records(tmp_path: Path) -> None:
    """model.json's "stores" record each store's precision (``compute_dtype``, not in the fingerprint), so
    calibration can tell a store embedded again in place at another one; none for a store that records none."""
    recorded = write(tmp_path / "a.zarr", [rows(20, seed=0, prefix="a")], compute_dtype="fp32")
    unrecorded = write(tmp_path / "b.zarr", [rows(20, seed=1, prefix="b")])
    with open_stores([recorded, unrecorded]) as union:
        first, second = union.describe()
    assert first["compute_dtype"] == "fp32" and "compute_dtype" not in second


def test_one_store_under_two_spellings_is_refused_naming_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--store given twice for one store (relative and absolute, a trailing slash, a symlink, a file:// URL, a hard
    link, a URL spelled two ways) is a slip: refused in one line naming both spellings, as the same path twice is,
    rather than opened (and read) twice or silently once."""
    pytest.importorskip("fsspec", reason="stores at URLs need fsspec")
    zarr_store = write(tmp_path / "a.zarr", [rows(20, seed=0, prefix="a")])
    h5_store = write(tmp_path / "a.h5", [rows(20, seed=0, prefix="a")])
    (tmp_path / "link.zarr").symlink_to(zarr_store)
    os.link(h5_store, tmp_path / "hard.h5")
    url = f"memory://wb-test-{uuid.uuid4().hex}/store"
    write(url, [rows(20, seed=1, prefix="b")])
    monkeypatch.chdir(tmp_path)
    pairs = [(zarr_store, "a.zarr"), (zarr_store, f"{zarr_store}/"), (zarr_store, tmp_path / "link.zarr"),
             (zarr_store, f"file://{zarr_store}"), (h5_store, tmp_path / "hard.h5"), (url, url + "/"),
             (url, url.replace("memory://", "memory:///"))]
    for first, second in pairs:
        with pytest.raises(ConfigError, match="the same store") as refused:
            with open_stores([first, zarr_store if first == url else url, second]):
                pass
        assert str(first) in str(refused.value) and str(second) in str(refused.value)
    with open_stores([zarr_store, h5_store, url]) as union:  # different stores (a.zarr and a.h5 hold the same rows)
        assert len(union) == 40


def test_first_rows_keeps_a_row_whose_id_a_later_row_of_the_first_store_repeats(tmp_path: Path) -> None:
    """With --store BANK --store PHRASE, a clip the bank gained after the fit with the id of one of the phrase's was
    resolved first (the phrase's copy dropped as a duplicate) and then cut by the bank's row limit: calibration lost
    the row and read another validation set than the fit. The row limits now come first, the duplicates after."""
    bank, phrase = rows(10, seed=0, prefix="k"), rows(6, seed=1, prefix="p")
    a = write(tmp_path / "bank.zarr", [bank])
    b = write(tmp_path / "phrase.zarr", [phrase])
    with open_stores([a, b]) as union:
        as_fitted = union.load(pooled=False, sequence=False).id.tolist()
    write(a, [([phrase[0][2]], phrase[1][2:3])])  # the bank grows by a clip with the id of the phrase's p2
    with open_stores([a, b]) as union:
        again = union.first_rows([10, None])
        assert again.load(pooled=False, sequence=False).id.tolist() == as_fitted
        assert len(again.restrict(np.arange(len(again)) != 3)) == len(as_fitted) - 1  # restrictions apply after
        restricted = union.restrict(np.arange(len(union)) != 1).first_rows([10, None])  # ... and before: kept
        assert restricted.load(pooled=False, sequence=False).id.tolist() == [i for i in as_fitted if i != "k1"]
        assert union.load(pooled=False, sequence=False).id.tolist() == as_fitted[:10] + ["p2"] + [
            f"p{i}" for i in (0, 1, 3, 4, 5)]
