"""One contract suite, run on both backends (Zarr directory and HDF5 file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from click.testing import CliRunner

from tests.store.kill_writer import CHUNK, SPEC, clips
from wakebuilder.cli import main
from wakebuilder.errors import LockedError, StoreError, StoreMismatchError
from wakebuilder.store import StoreSpec, open_store, rejects_path, store_info

BACKENDS = ["store.zarr", "store.h5"]
ROOT = Path(__file__).parents[2]
SPEC_FIELDS = ("pooled", "sequence", "label", "id", "kind", "group", "row")


@pytest.fixture(params=BACKENDS)
def path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / request.param


def build(path: Path, *bounds: int) -> None:
    """Append clips in one writing session per consecutive pair of ``bounds``."""
    for start, stop in zip(bounds, bounds[1:], strict=False):
        with open_store(path, "a", spec=SPEC, chunk_rows=CHUNK) as store:
            store.append(*clips(start, stop))


def check_contents(path: Path, n: int) -> None:
    """The store holds exactly clips 0..n-1, each once, all arrays the same length."""
    records, pooled, sequence = clips(0, n)
    with open_store(path) as store:
        arrays = store.load()
        assert len(store) == len(arrays) == n == len(store.ids())
        assert arrays.id.tolist() == [r.id for r in records]
        assert {len(a) for a in (arrays.pooled, arrays.sequence, arrays.kind, arrays.group)} == {n}
        assert np.array_equal(arrays.pooled, pooled.astype(np.float16))
        assert np.array_equal(arrays.sequence, sequence.astype(np.float16))
        assert arrays.label.dtype == np.int8 and arrays.label.tolist() == [r.label for r in records]
        assert arrays.kind.tolist() == [r.kind for r in records]
        assert arrays.group.tolist() == [r.group for r in records]
        assert store.records() == records


def test_create_append_reopen_append(path: Path) -> None:
    build(path, 0, 40, 50)
    check_contents(path, 50)
    assert not path.with_name(path.name + ".journal").exists()  # HDF5 merged its journal on close
    with open_store(path) as store:
        assert store.spec == SPEC and store.attrs["committed"] == 50
        expected = {"schema_version", "backbone", "seq_len", "dim", "dtype", "wakebuilder_version",
                    "fingerprint"}
        assert expected <= store.attrs.keys()
        batches = list(store.iter_batches(12, pooled=True))
        assert [len(b) for b in batches] == [12, 12, 12, 12, 2]
        assert np.array_equal(np.concatenate([b.sequence for b in batches]), store.load().sequence)
        assert all(b.pooled is not None for b in batches)
        assert next(store.iter_batches(100, sequence=False)).sequence is None
        with pytest.raises(StoreError, match="read-only"):
            store.append(*clips(50, 51))


def chunk_files(path: Path) -> dict[Path, int]:
    """Zarr chunk files (``<array>/c/<row chunk>/...``) and their inodes (a rewrite renames a new file in)."""
    return {p: p.stat().st_ino for p in path.glob("*/c/**/*") if p.is_file()} if path.is_dir() else {}


def test_append_writes_only_the_new_rows(path: Path) -> None:
    build(path, 0, 100)
    before = chunk_files(path)
    written: list[tuple[str, int, int]] = []
    with open_store(path, "a", spec=SPEC) as store:
        write = store._backend.write

        def spy(name: str, start: int, values: np.ndarray) -> None:
            written.append((name, start, len(values)))
            write(name, start, values)

        store._backend.write = spy  # type: ignore[method-assign]
        store.append(*clips(100, 110))
    assert sorted(written) == sorted((name, 100, 10) for name in SPEC_FIELDS)
    # Zarr: only the chunk holding rows 96..111 (chunk 6) was rewritten; full chunks are the same files.
    changed = {p.relative_to(path).parts[2] for p, ino in before.items() if p.stat().st_ino != ino}
    assert changed <= {"6"} and (changed or not before)
    check_contents(path, 110)


def test_uncommitted_rows_are_invisible_then_overwritten(path: Path) -> None:
    build(path, 0, 20)
    with open_store(path, "a", spec=SPEC) as store:
        records, pooled, sequence = clips(20, 30)
        junk = {"pooled": pooled + 1000, "sequence": sequence, "id": np.array(["junk"] * 10)}
        for name, values in junk.items():
            store._backend.write(name, 20, values.astype(object if name == "id" else np.float16))
        with open_store(path) as reader:  # no lock needed; sees committed rows only
            assert len(reader) == 20 and "junk" not in reader.ids()
        assert len(store) == 20
        store.append(*clips(20, 25))
    check_contents(path, 25)


def test_info(path: Path) -> None:
    build(path, 0, 20)
    rejects_path(path).write_text('{"path": "a.wav", "reason": "empty"}\n{"path": "b.wav"}\n\n')
    info = store_info(path)
    assert info["clips"] == 20 and info["labels"] == {"0": 10, "1": 10}
    assert info["kinds"] == {"hard_negative": 10, "tts": 10} and info["groups"] == 7
    assert info["top_groups"]["voice0"] == 3 and len(info["top_groups"]) == 7
    assert info["pooled_shape"] == [20, 4] and info["sequence_shape"] == [20, 3, 4]
    assert info["dtype"] == "float16" and info["backbone"] == SPEC.backbone
    assert info["backend"] == ("hdf5" if path.suffix == ".h5" else "zarr")
    assert info["size_bytes"] > 20 * 16 * 2 and info["rejects"] == 2 and len(info["fingerprint"]) == 32


@pytest.mark.parametrize(
    ("change", "named"),
    [({"backbone": {**SPEC.backbone, "window_s": 2.0}}, "backbone.window_s: store 1.0, this run 2.0"),
     ({"dim": 5}, "dim: store 4, this run 5"), ({"dtype": "float32"}, "dtype: store 'float16'")],
)
def test_mismatch_refused_unless_overwrite(path: Path, change: dict, named: str) -> None:
    build(path, 0, 5)
    other = StoreSpec(**{**SPEC.__dict__, **change})
    with pytest.raises(StoreMismatchError, match=named.replace(".", r"\.")):
        open_store(path, "a", spec=other)
    check_contents(path, 5)  # refused without touching it, lock released
    with open_store(path, "a", spec=other, overwrite=True) as store:
        assert len(store) == 0 and store.spec == other and store.ids() == set()


def test_bad_appends(path: Path) -> None:
    with open_store(path, "a", spec=SPEC) as store:
        records, pooled, sequence = clips(0, 2)
        with pytest.raises(StoreError, match="append got"):
            store.append(records, pooled[:, :2], sequence)
        with pytest.raises(StoreError, match="already stored"):
            store.append(records + records[:1], np.concatenate([pooled, pooled[:1]]),
                         np.concatenate([sequence, sequence[:1]]))
        sequence[0, 0, 0] = np.nan
        with pytest.raises(StoreError, match="NaN"):
            store.append(records, pooled, sequence)
        store.append(*clips(0, 2))
        with pytest.raises(StoreError, match="already stored"):
            store.append(*clips(1, 3))
        store.append([], np.zeros((0, 4)), np.zeros((0, 3, 4)))
    check_contents(path, 2)


def test_missing_and_corrupt_stores(path: Path) -> None:
    with pytest.raises(StoreError, match="no embedding store here"):
        open_store(path)
    with pytest.raises(StoreError, match="no spec to create"):
        open_store(path, "a")
    with pytest.raises(StoreError, match="mode must be"):
        open_store(path, "w")
    build(path, 0, 5)
    corrupt = path / "zarr.json" if path.is_dir() else path
    corrupt.write_bytes(b"\x89HDF garbage {")
    for mode in ("r", "a"):
        with pytest.raises(StoreError, match=f"{path}.*rebuild it with --overwrite"):
            open_store(path, mode, spec=SPEC)
    with open_store(path, "a", spec=SPEC, overwrite=True) as store:  # the way out
        store.append(*clips(0, 3))
    check_contents(path, 3)


def test_refuses_paths_that_hold_something_else(tmp_path: Path) -> None:
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    (tmp_path / "file.zarr").write_text("x")
    (tmp_path / "dir.h5").mkdir()
    for name in ("notes", "file.zarr", "dir.h5"):
        with pytest.raises(StoreError, match="choose another --store path"):
            open_store(tmp_path / name, "a", spec=SPEC, overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


DELETED = object()


def edit_attribute(path: Path, key: str, value: object) -> None:
    """Change (or delete, ``DELETED``) one store attribute by hand: in zarr.json, or the HDF5 file's attribute (JSON
    text for the attributes the file stores as JSON)."""
    if path.is_dir():
        meta = json.loads((path / "zarr.json").read_text())
        meta["attributes"].pop(key) if value is DELETED else meta["attributes"].__setitem__(key, value)
        (path / "zarr.json").write_text(json.dumps(meta))
        return
    import h5py

    with h5py.File(path, "r+") as handle:
        if value is DELETED:
            del handle.attrs[key]
        else:
            handle.attrs[key] = json.dumps(value) if key in json.loads(handle.attrs["json_attrs"]) else value


@pytest.mark.parametrize(("key", "value"), [("committed", "8"), ("committed", 2.5), ("committed", True),
                                            ("committed", -1), ("committed", 99), ("committed", 12),
                                            ("committed", 16),
                                            pytest.param("committed", DELETED, id="committed-deleted"),
                                            ("fields", 5)])
def test_a_hand_edited_row_count_is_a_one_line_error(path: Path, key: str, value: object) -> None:
    """A committed count (or list of fields) edited by hand, of the wrong type, negative or past the rows on disk,
    crashed the commands that open the store with a traceback (HDF5) or read it wrongly; it is one line. Raised to a
    row inside the last 16-row chunk (12, or 16: the Zarr arrays' length), Zarr read 4 or 8 rows of fill values
    (empty ids, zero embeddings)."""
    build(path, 0, 8)
    edit_attribute(path, key, value)
    for mode in ("r", "a"):
        with pytest.raises(StoreError, match=rf"{path.name}: .*{key}.*rebuild"):
            open_store(path, mode, spec=SPEC)
    result = CliRunner().invoke(main, ["store", "info", str(path)])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1 and key in result.stderr, result.output
    with open_store(path, "a", spec=SPEC, overwrite=True) as store:  # the way out
        store.append(*clips(0, 3))
    check_contents(path, 3)


@pytest.mark.parametrize("committed", [0, 5, 7])
def test_an_hdf5_row_count_lowered_by_hand_is_a_one_line_error(tmp_path: Path, committed: int) -> None:
    """An HDF5 file holds exactly its committed rows (a writing session merges into a copy resized to them, renamed
    into place), so a count lowered by hand only hid rows, read as a smaller store; it is refused in one line, as a
    raised one is. (A Zarr store keeps rows a killed writer left past its count: a lower count looks the same.)"""
    path = tmp_path / "store.h5"
    build(path, 0, 8)
    edit_attribute(path, "committed", committed)
    for mode in ("r", "a"):
        match = rf"store\.h5: attrs\.committed is {committed}, but the arrays hold 8 rows; rebuild"
        with pytest.raises(StoreError, match=match):
            open_store(path, mode, spec=SPEC)
    result = CliRunner().invoke(main, ["store", "info", str(path)])
    assert result.exit_code != 0 and result.stderr.count("\n") == 1 and "committed" in result.stderr, result.output


def test_second_writer_is_locked_out(path: Path) -> None:
    build(path, 0, 3)
    with open_store(path, "a", spec=SPEC):
        code = (
            "import sys\nfrom wakebuilder.store import open_store\n"
            "from wakebuilder.errors import LockedError\n"
            f"try:\n    open_store({str(path)!r}, 'a')\nexcept LockedError as e:\n    print(e); sys.exit(3)\n"
        )
        command = [sys.executable, "-c", code]
        result = subprocess.run(command, capture_output=True, text=True, check=False, cwd=ROOT)
        assert result.returncode == 3 and "another wakebuilder process" in result.stdout, result.stderr
        with pytest.raises(LockedError, match=str(path)):
            open_store(path, "a", spec=SPEC)
        with open_store(path) as reader:  # readers take no lock
            assert len(reader) == 3
    with open_store(path, "a", spec=SPEC):  # released on close
        pass


@pytest.fixture(scope="module")
def one_shot(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each backend's store of clips 0..39 appended in one call."""
    paths = {name: tmp_path_factory.mktemp("one-shot") / name for name in BACKENDS}
    for store_path in paths.values():
        build(store_path, 0, 40)
    return paths


@settings(max_examples=8, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=39), max_size=3), batch=st.integers(1, 45))
def test_any_batch_split_equals_one_shot(
    tmp_path_factory: pytest.TempPathFactory, one_shot: dict[str, Path], cuts: list[int], batch: int
) -> None:
    """Appending in any split, over any number of sessions, gives the one-shot store, batch for batch."""
    bounds = [0, *sorted(set(cuts)), 40]
    for name in BACKENDS:
        split = tmp_path_factory.mktemp("split") / name
        build(split, *bounds)
        check_contents(split, 40)
        with open_store(split) as a, open_store(one_shot[name]) as b:
            pairs = zip(a.iter_batches(batch, pooled=True), b.iter_batches(batch, pooled=True), strict=True)
            for x, y in pairs:
                assert np.array_equal(x.sequence, y.sequence) and np.array_equal(x.pooled, y.pooled)
                assert x.id.tolist() == y.id.tolist() and x.group.tolist() == y.group.tolist()
                assert len(x) <= batch
            assert a.fingerprint == b.fingerprint and a.records() == b.records()


def test_append_refuses_values_that_overflow_float16(path: Path) -> None:
    with open_store(path, "a", spec=SPEC) as store:
        store.append(*clips(0, 2))
        records, pooled, sequence = clips(2, 3)
        sequence[0, 1, 2] = 70_000.0  # finite in float32, inf once stored as float16
        with pytest.raises(StoreError, match="float16"):
            store.append(records, pooled, sequence)
        assert len(store) == 2
    check_contents(path, 2)
