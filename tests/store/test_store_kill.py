"""kill -9 a real writer at random moments, on both backends: every committed clip survives exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tests.store.test_store_contract import BACKENDS, ROOT, build, check_contents
from wakebuilder.store import open_store

KILLS = 10
ENDLESS = 10**6


def start_writer(path: Path, total: int) -> subprocess.Popen[str]:
    """``tests.store.kill_writer``: appends 7 clips at a time, 5 appends per writing session."""
    command = [sys.executable, "-m", "tests.store.kill_writer", str(path), str(total)]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if process.stdout is None or process.stdout.readline().strip() != "ready":
        raise RuntimeError("the writer process did not start")
    return process


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKENDS)
def test_kill_9_at_random_moments_then_resume(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    rng = np.random.default_rng(7)
    counts = []
    for _ in range(KILLS):
        process = start_writer(path, ENDLESS)
        time.sleep(float(rng.uniform(0.05, 0.5)))
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait() == -signal.SIGKILL
        if path.exists():
            with open_store(path) as store:
                counts.append(len(store))
            check_contents(path, counts[-1])  # intact and consistent after every kill
    assert counts == sorted(counts) and counts[-1] > 0, f"committed rows went backwards or nowhere: {counts}"
    total = counts[-1] + 30
    assert start_writer(path, total).wait(timeout=120) == 0  # resume and finish
    check_contents(path, total)
    build(one_shot := tmp_path / f"one-shot-{name}", 0, total)
    with open_store(path) as resumed, open_store(one_shot) as reference:
        a, b = resumed.load(), reference.load()
        for field in ("pooled", "sequence", "label", "id", "kind", "group"):
            assert np.array_equal(getattr(a, field), getattr(b, field)), field
        assert resumed.records() == reference.records()
    leftovers = [p.name for p in tmp_path.iterdir() if ".incomplete" in p.name or ".journal" in p.name]
    assert not leftovers and not list(tmp_path.rglob("*.partial")), leftovers
