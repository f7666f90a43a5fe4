"""Calibration plots leave the importer's matplotlib backend alone."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
import matplotlib
matplotlib.use("svg")
import numpy as np
from wakebuilder.plots_calibration import plot_det, plot_sweep
out = sys.argv[1]
grid = np.linspace(0, 1, 11)
table = {"threshold": grid, "far": 1 - grid, "frr": grid, "f1": grid * (1 - grid)}
paths = [plot_sweep(out, table, 0.5), plot_det(out, grid, np.linspace(10, 0, 11), 0.5)]
print(matplotlib.get_backend(), "pyplot" in str(sys.modules.keys()), *paths)
"""


def test_plots_write_pngs_without_touching_the_backend(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], capture_output=True, text=True, check=True)
    backend, pyplot, *paths = done.stdout.split()
    assert backend == "svg" and pyplot == "False"
    assert [Path(p).name for p in paths] == ["calibration_sweep.png", "calibration_det.png"]
    assert all(Path(p).read_bytes().startswith(b"\x89PNG") for p in paths)
