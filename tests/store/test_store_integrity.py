"""Damaged stores are errors, never data: missing chunks, flipped bytes, NaN rows, a second writer by symlink."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.store.kill_writer import CHUNK, SPEC, clips
from tests.train.test_run_fit import make_store
from wakebuilder.cli import main
from wakebuilder.errors import LockedError, StoreError
from wakebuilder.store import open_store, store_info
from wakebuilder.store.verify import format_rows, verify_store

ROOT = Path(__file__).parents[2]


def build(path: Path, n: int) -> Path:
    with open_store(path, "a", spec=SPEC, chunk_rows=CHUNK) as store:
        store.append(*clips(0, n))
    return path


def chunk_file(store: Path, field: str, index: int) -> Path:
    ndim = {"pooled": 2, "sequence": 3}.get(field, 1)
    return store / field / "c" / "/".join([str(index)] + ["0"] * (ndim - 1))


def scribble(path: Path, offset: int, size: int = 8) -> None:
    """Overwrite ``size`` bytes at ``offset`` with bytes they cannot all equal."""
    with open(path, "r+b") as handle:
        handle.seek(offset)
        old = handle.read(size)
        handle.seek(offset)
        handle.write(bytes((b ^ 0x5A) for b in old))


@pytest.mark.parametrize("backend", ["store.zarr", "store.h5"])
@pytest.mark.parametrize("via", ["store", "parent"])
def test_symlink_to_the_store_is_the_same_writer(tmp_path: Path, backend: str, via: str) -> None:
    real = build(tmp_path / "real" / backend, 3)
    if via == "store":
        alias = tmp_path / f"alias-{backend}"
        alias.symlink_to(real)
    else:
        (tmp_path / "other").symlink_to(tmp_path / "real", target_is_directory=True)
        alias = tmp_path / "other" / backend
    with open_store(real, "a", spec=SPEC):
        with pytest.raises(LockedError, match="another wakebuilder process"):
            open_store(alias, "a", spec=SPEC)
        code = (
            "import sys\nfrom wakebuilder.store import open_store\nfrom wakebuilder.errors import LockedError\n"
            f"try:\n    open_store({str(alias)!r}, 'a')\nexcept LockedError:\n    sys.exit(3)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, cwd=ROOT, check=False)
        assert result.returncode == 3, result.stderr
    with open_store(alias, "a", spec=SPEC) as store:  # released: the alias writes the same store
        store.append(*clips(3, 5))
    assert len(open_store(real)) == 5


@pytest.mark.parametrize("field", ["pooled", "sequence", "label", "id", "row"])
def test_missing_chunk_file_is_an_error_naming_the_store(tmp_path: Path, field: str) -> None:
    path = build(tmp_path / "store.zarr", 40)
    chunk_file(path, field, 1).unlink()
    with open_store(path) as store, pytest.raises(StoreError, match=f"{path}.*'{field}' missing.*16:32"):
        store.load()
        store.records()
    with pytest.raises(StoreError, match=str(path)):
        store_info(path)


def test_all_negative_label_chunks_are_written(tmp_path: Path) -> None:
    records, pooled, sequence = clips(0, 20)
    records = [dataclasses.replace(r, label=0) for r in records]
    with open_store(tmp_path / "s.zarr", "a", spec=SPEC, chunk_rows=CHUNK) as store:
        store.append(records, pooled, sequence)
    assert chunk_file(tmp_path / "s.zarr", "label", 0).is_file()  # zeros stored, so absence means damage


def test_fit_and_info_refuse_a_store_with_a_missing_chunk(tmp_path: Path) -> None:
    path = make_store(tmp_path / "store.zarr", n=120)
    chunk_file(path, "sequence", 0).unlink()
    runner = CliRunner()
    fit = runner.invoke(main, ["fit", "--store", str(path), "--out", str(tmp_path / "m"), "--max-epochs", "1"])
    assert fit.exit_code == 1 and str(path) in fit.output and "missing" in fit.output, fit.output
    assert not (tmp_path / "m").exists()
    info = runner.invoke(main, ["store", "info", str(path)])
    assert info.exit_code == 1 and str(path) in info.output and "missing" in info.output


def test_random_bytes_in_a_zarr_chunk_are_an_error(tmp_path: Path) -> None:
    path = build(tmp_path / "store.zarr", 40)
    target = chunk_file(path, "sequence", 0)
    scribble(target, target.stat().st_size // 2)
    with open_store(path) as store, pytest.raises(StoreError, match=f"{path}.*'sequence' rows"):
        store.load()


def test_random_bytes_in_an_hdf5_chunk_are_an_error(tmp_path: Path) -> None:
    import h5py

    path = build(tmp_path / "store.h5", 40)
    with h5py.File(path, "r") as handle:
        info = handle["pooled"].id.get_chunk_info(1)
    scribble(path, info.byte_offset + 4)
    with open_store(path) as store, pytest.raises(StoreError, match=f"{path}.*'pooled' rows"):
        store.load()


@pytest.mark.parametrize("backend", ["store.zarr", "store.h5"])
def test_non_finite_rows_are_refused_on_read_and_by_fit(tmp_path: Path, backend: str) -> None:
    path = make_store(tmp_path / backend, n=120)
    if backend == "store.h5":  # a NaN written with valid checksums, as a bad embedding pass would
        import h5py

        with h5py.File(path, "r+") as handle:
            handle["sequence"][5, 1, 2] = np.nan
    else:
        import zarr

        zarr.open_group(str(path), mode="r+")["sequence"][5, 1, 2] = np.nan
    with open_store(path) as store, pytest.raises(StoreError, match="NaN or infinite.*first: \\[5\\]"):
        store.load()
    fit = CliRunner().invoke(main, ["fit", "--store", str(path), "--out", str(tmp_path / "m"), "--stream"])
    assert fit.exit_code == 1 and "NaN or infinite" in fit.output, fit.output


def test_verify_lists_the_damaged_rows(tmp_path: Path) -> None:
    path = build(tmp_path / "store.zarr", 40)
    runner = CliRunner()
    healthy = runner.invoke(main, ["store", "verify", str(path)])
    assert healthy.exit_code == 0 and "no damage found" in healthy.output
    chunk_file(path, "pooled", 0).unlink()
    scribble(chunk_file(path, "row", 2), 3)
    result = verify_store(path)
    assert not result["ok"] and result["damaged_rows"] == [*range(16), *range(32, 40)]
    assert {(p["field"], tuple(p["rows"])) for p in result["problems"]} == {("pooled", (0, 16)), ("row", (32, 40))}
    damaged = runner.invoke(main, ["store", "verify", str(path)])
    assert damaged.exit_code == 1
    assert "24 of 40 rows damaged (rows 0-15, 32-39)" in damaged.output
    as_json = runner.invoke(main, ["store", "verify", str(path), "--json"])
    assert json.loads(as_json.output.splitlines()[0])["damaged_rows"][:2] == [0, 1]


def test_verify_on_hdf5_with_a_journal(tmp_path: Path) -> None:
    path = build(tmp_path / "store.h5", 20)
    writer = open_store(path, "a", spec=SPEC, chunk_rows=CHUNK)
    writer.append(*clips(20, 30))  # committed rows in the unmerged journal
    try:
        assert verify_store(path)["ok"]
        journal = path.with_name("store.h5.journal")
        (journal / "id" / "c" / "0").unlink()
        result = verify_store(path)
        assert result["damaged_rows"] == list(range(20, 30))
    finally:
        writer._lock.__exit__(None, None, None)  # the damaged journal cannot merge; just release the lock


def test_stores_without_checksums_stay_readable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from wakebuilder.store import zarr_backend

    monkeypatch.setattr(zarr_backend, "_codecs", lambda name: None)
    path = build(tmp_path / "old.zarr", 20)
    meta = json.loads((path / "zarr.json").read_text())
    del meta["attributes"]["checksums"]
    (path / "zarr.json").write_text(json.dumps(meta))
    monkeypatch.undo()
    with open_store(path) as store:
        assert len(store.load()) == 20
    assert verify_store(path)["checksums"] is None and verify_store(path)["ok"]


def test_format_rows() -> None:
    assert format_rows([0, 1, 2, 5, 7, 8]) == "0-2, 5, 7-8"
    assert format_rows(list(range(0, 10, 2)), limit=2) == "0, 2, ... (3 more ranges)"


def test_os_symlink_lock_path_is_resolved(tmp_path: Path) -> None:
    from wakebuilder.atomic import lock_paths

    (tmp_path / "a").mkdir()
    os.symlink(tmp_path / "a", tmp_path / "b")
    assert lock_paths(tmp_path / "b" / "x.zarr") == lock_paths(tmp_path / "a" / "x.zarr")


@pytest.mark.parametrize("damage", [{"backbone": None}, {"dim": "4"}, {"seq_len": None}, {"fingerprint": 7}])
def test_damaged_store_attributes_are_a_one_line_error(tmp_path: Path, damage: dict) -> None:
    """A zarr.json whose store attributes were edited by hand (a key deleted or of the wrong type) crashed every
    command that opens the store with a KeyError/TypeError traceback; as for a parts.json, it is one line."""
    store = build(tmp_path / "store.zarr", 8)
    meta = json.loads((store / "zarr.json").read_text())
    attrs = meta["attributes"]
    for key, value in damage.items():
        if value is None:
            del attrs[key]
        else:
            attrs[key] = value
    (store / "zarr.json").write_text(json.dumps(meta))
    with pytest.raises(StoreError, match=r"store.zarr: attrs\.\w+ is .*; rebuild the store with wb embed --overwrite"):
        open_store(store)
    result = CliRunner().invoke(main, ["store", "info", str(store)])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1 and "attrs." in result.stderr
