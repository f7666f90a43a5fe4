"""research/ensemble_scores.py: which kept score files a member set names, and averaging them per word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


def test_a_set_names_every_pair_of_data_and_head_seeds(ensemble_scores, tmp_path: Path) -> None:
    assert ensemble_scores.parse_set("0,1,2:0") == ([0, 1, 2], [0])
    for d in (0, 1):
        run = tmp_path / f"hs-s{d}"
        run.mkdir()
        for h in (0, 1):
            np.save(run / f"happy-d{d}-h{h}.npy", np.zeros(3, np.float16))
    files = ensemble_scores.member_files(tmp_path, "hs-s*", "happy", [0, 1], [1])
    assert [f.relative_to(tmp_path).as_posix() for f in files] == ["hs-s0/happy-d0-h1.npy", "hs-s1/happy-d1-h1.npy"]
    with pytest.raises(SystemExit, match="happy-d2-h0.npy: 0 files"):
        ensemble_scores.member_files(tmp_path, "hs-s*", "happy", [2], [0])
