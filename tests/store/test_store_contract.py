"""One contract suite, run on both backends (Zarr directory and HDF5 file)."""

from __future__ import annotations

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

from wakebuilder.errors import LockedError, StoreError, StoreMismatchError
from wakebuilder.manifest import ClipRecord
from wakebuilder.store import StoreSpec, open_store, rejects_path, store_info

SPEC = StoreSpec(backbone={"name": "fake", "spec": "fake", "window_s": 1.0}, seq_len=3, dim=4)
BACKENDS = ["store.zarr", "store.h5"]


def clips(start: int, stop: int) -> tuple[list[ClipRecord], np.ndarray, np.ndarray]:
    """Deterministic rows: clip i's embeddings are all i (exactly representable in float16)."""
    records = [
        ClipRecord(id=f"clip{i:05d}", path=f"{i}.wav", label=i % 2, kind="tts" if i % 2 else "hard_negative",
                   group=f"voice{i % 7}", text="hey", duration_s=1.0)
        for i in range(start, stop)
    ]
    values = np.arange(start, stop, dtype=np.float32)
    return records, np.repeat(values[:, None], 4, 1), np.broadcast_to(values[:, None, None], (stop - start, 3, 4)).copy()


def check_contents(path: Path, n: int) -> None:
    with open_store(path) as store:
        assert len(store) == n
        arrays = store.load()
        assert arrays.id.tolist() == [f"clip{i:05d}" for i in range(n)]
        assert np.array_equal(arrays.sequence[:, 0, 0], np.arange(n, dtype=np.float16))
        assert np.array_equal(arrays.pooled[:, 3], np.arange(n, dtype=np.float16))
        assert arrays.label.tolist() == [i % 2 for i in range(n)]
        assert store.records()[n - 1].group == f"voice{(n - 1) % 7}" if n else True


@pytest.fixture(params=BACKENDS)
def path(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    return tmp_path / request.param


def test_create_append_reopen_append(path: Path) -> None:
    with open_store(path, "a", spec=SPEC) as store:
        store.append(*clips(0, 300))
        assert len(store) == 300 and "clip00299" in store.ids()
    with open_store(path, "a", spec=SPEC) as store:
        assert len(store) == 300
        store.append(*clips(300, 310))
        assert len(store) == 310
    check_contents(path, 310)
    assert not path.with_name(path.name + ".journal").exists()  # HDF5 merged its journal on close
    with open_store(path) as store:
        assert store.spec == SPEC and store.attrs["wakebuilder_version"]
        batches = list(store.iter_batches(128, pooled=True))
        assert [len(b) for b in batches] == [128, 128, 54]
        assert np.concatenate([b.sequence for b in batches]).shape == (310, 3, 4)
        with pytest.raises(StoreError, match="read-only"):
            store.append(*clips(310, 311))


def test_info(path: Path) -> None:
    with open_store(path, "a", spec=SPEC) as store:
        store.append(*clips(0, 20))
    rejects_path(path).write_text('{"path": "bad.wav", "reason": "empty"}\n')
    info = store_info(path)
    assert info["clips"] == 20 and info["labels"] == {"0": 10, "1": 10}
    assert info["kinds"] == {"hard_negative": 10, "tts": 10} and info["groups"] == 7
    assert info["sequence_shape"] == [20, 3, 4] and info["size_bytes"] > 0 and info["rejects"] == 1


def test_mismatch_refused_unless_overwrite(path: Path) -> None:
    with open_store(path, "a", spec=SPEC) as store:
        store.append(*clips(0, 5))
    other = StoreSpec(backbone={**SPEC.backbone, "window_s": 2.0}, seq_len=3, dim=4)
    with pytest.raises(StoreMismatchError, match="window_s"):
        open_store(path, "a", spec=other)
    with open_store(path, "a", spec=other, overwrite=True) as store:
        assert len(store) == 0 and store.spec == other


def test_bad_appends_and_missing_store(path: Path) -> None:
    with pytest.raises(StoreError, match="no embedding store"):
        open_store(path)
    with open_store(path, "a", spec=SPEC) as store:
        records, pooled, sequence = clips(0, 2)
        with pytest.raises(StoreError, match="append got"):
            store.append(records, pooled[:, :2], sequence)
        sequence[0, 0, 0] = np.nan
        with pytest.raises(StoreError, match="NaN"):
            store.append(records, pooled, sequence)
        assert len(store) == 0


def test_second_writer_is_locked_out(path: Path) -> None:
    with open_store(path, "a", spec=SPEC):
        code = (
            "import sys\nfrom wakebuilder.store import open_store\nfrom wakebuilder.errors import LockedError\n"
            f"try:\n    open_store({str(path)!r}, 'a')\nexcept LockedError as e:\n    print(e); sys.exit(3)\n"
        )
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
        assert result.returncode == 3 and "another wakebuilder process" in result.stdout
        with pytest.raises(LockedError):
            open_store(path, "a", spec=SPEC)
    with open_store(path, "a", spec=SPEC):  # released on close
        pass


@settings(max_examples=15, deadline=None)
@given(cuts=st.lists(st.integers(min_value=1, max_value=600), max_size=4))
def test_any_batch_split_equals_one_shot(tmp_path_factory: pytest.TempPathFactory, cuts: list[int]) -> None:
    for name in BACKENDS:
        path = tmp_path_factory.mktemp("split") / name
        bounds = [0, *sorted(set(cuts)), 600]
        for start, stop in zip(bounds, bounds[1:], strict=False):
            with open_store(path, "a", spec=SPEC) as store:
                store.append(*clips(start, stop))
        check_contents(path, 600)


WRITER = """
import sys, time
sys.path.insert(0, {root!r})
from tests.store.test_store_contract import SPEC, clips
from wakebuilder.store import open_store
with open_store({path!r}, "a", spec=SPEC) as store:
    start = len(store)
    print("ready", flush=True)
    for begin in range(start, {total}, 7):
        store.append(*clips(begin, min(begin + 7, {total})))
"""


@pytest.mark.parametrize("name", BACKENDS)
def test_kill_9_then_resume(tmp_path: Path, name: str) -> None:
    """SIGKILL a real writer at random moments; every committed clip survives exactly once."""
    path, total = tmp_path / name, 3000
    rng = np.random.default_rng(0)
    code = WRITER.format(root=str(Path(__file__).parents[2]), path=str(path), total=total)
    for _ in range(6):
        process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        time.sleep(float(rng.uniform(0.0, 0.3)))
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        with open_store(path) as store:
            check_contents(path, len(store))
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL)
    check_contents(path, total)
