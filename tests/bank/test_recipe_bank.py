"""The recipe with the negative bank: the first phrase builds it, the second reuses it untouched."""

from __future__ import annotations

from pathlib import Path

import pytest

from wakebuilder.bank.location import cache_dir
from wakebuilder.manifest import read_manifest
from wakebuilder.modeldir import load_model
from wakebuilder.recipe import RecipeConfig, run_recipe
from wakebuilder.store import open_store


@pytest.mark.slow
def test_second_phrase_reuses_the_bank(tmp_path: Path) -> None:
    first = run_recipe(RecipeConfig.preset("tiny", engines=("espeak",)), out_dir=tmp_path / "a", device="cpu")
    assert first.bank is not None
    with open_store(first.bank) as bank:
        kinds, size = set(bank.load(pooled=False, sequence=False).kind.tolist()), len(bank)
    assert {"speech_negative", "word_negative"} <= kinds
    complete = next(first.bank.parent.glob("audio/*/complete.json"))
    held = sorted(cache_dir().glob("heldout/*/complete.json"))  # calibration and report speech, one of each
    assert len(held) == 2
    stamps = [path.stat().st_mtime_ns for path in (complete, *held)]
    # another phrase and another seed: the seed changes the phrase's own data, never the shared data
    second = run_recipe(RecipeConfig.preset("tiny", phrase="computer", engines=("espeak",), seed=1),
                        out_dir=tmp_path / "b", device="cpu")
    assert second.bank == first.bank  # nothing synthesized again:
    assert [path.stat().st_mtime_ns for path in (complete, *held)] == stamps
    assert sorted(cache_dir().glob("heldout/*/complete.json")) == held
    assert {r.kind for r in read_manifest(tmp_path / "b" / "heldout-eval" / "manifest.jsonl")} == {"hard_negative"}
    speech = read_manifest(tmp_path / "b" / "heldout-speech-report" / "manifest.jsonl")
    assert speech and all(Path(r.path).is_absolute() and Path(r.path).is_file() for r in speech)
    with open_store(second.bank) as bank:
        assert len(bank) == size  # nothing embedded again
    own = {r.kind for r in read_manifest(tmp_path / "b" / "negatives" / "manifest.jsonl")}
    assert own == {"hard_negative"}  # the phrase made only its sound-alikes
    meta = load_model(second.model_dir).meta
    own_store = (tmp_path / "b" / "store.zarr").resolve()
    assert [Path(s["path"]) for s in meta["stores"]] == [own_store, first.bank.resolve()]
    assert meta["bank_exclusion"]["phrase"] == "computer" and 0.0 < second.threshold < 1.0
