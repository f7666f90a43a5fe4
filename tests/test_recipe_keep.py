"""The recipe's kept steps: an output is kept while it is as written and every clip it lists is in place."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wakebuilder.audio import write_wav
from wakebuilder.manifest import ClipRecord, write_manifest
from wakebuilder.recipe_keep import keep_or_make


@pytest.mark.parametrize("name", ["manifest.jsonl", "MANIFEST.JSONL"])
def test_a_manifest_whose_clip_is_gone_is_made_again_whatever_its_suffix_case(name: str, tmp_path: Path) -> None:
    """An output named X.JSONL was not read as a manifest, so it was kept with a clip it lists gone."""
    made: list[Path] = []

    def make() -> Path:
        write_wav(tmp_path / "a.wav", np.zeros(1600, np.float32))
        made.append(write_manifest(tmp_path / name, [ClipRecord(id="a", path="a.wav", label=0, kind="noise",
                                                                 group="g")]))
        return made[-1]

    identity = {"step": "test"}
    assert keep_or_make(tmp_path, identity, make) == tmp_path / name
    assert keep_or_make(tmp_path, identity, make) == tmp_path / name and len(made) == 1  # as written: kept
    (tmp_path / "a.wav").unlink()
    assert keep_or_make(tmp_path, identity, make) == tmp_path / name and len(made) == 2
    assert (tmp_path / "a.wav").is_file()


def test_a_network_heads_fit_identity_is_the_one_recorded_before_fit_had_a_head_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """FitConfig.head came after the recipe kept heads: a network head's fit is the fit those recorded, so it is kept,
    not fitted again; a centroids head's fit is another. FitConfig.shrinkage came after both: at 0 each is the fit it
    was, and a centroids head with a shrinkage is another fit again."""
    from wakebuilder import recipe_keep
    from wakebuilder.train.fit_config import FitConfig

    seen: list[dict] = []
    monkeypatch.setattr(recipe_keep, "store_content", lambda paths: [])
    monkeypatch.setattr(recipe_keep, "keep_or_make", lambda folder, identity, make: seen.append(identity) or folder)
    configs = [FitConfig(), FitConfig(head="centroids"), FitConfig(head="centroids", shrinkage=0.2)]
    for k, config in enumerate(configs):
        recipe_keep.keep_or_fit([], tmp_path / str(k), config, wake_word="hey")
    network, centroids, shrunk = (identity["fit"] for identity in seen)
    assert network == {k: v for k, v in FitConfig().to_dict().items() if k not in ("head", "shrinkage")}
    assert centroids == {k: v for k, v in FitConfig(head="centroids").to_dict().items() if k != "shrinkage"}
    assert shrunk == centroids | {"shrinkage": 0.2}
