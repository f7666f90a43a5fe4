"""The recipe with the negative bank: the first phrase builds it, the second reuses it untouched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from wakebuilder.bank.location import cache_dir
from wakebuilder.cli import main
from wakebuilder.manifest import read_manifest
from wakebuilder.modeldir import load_model
from wakebuilder.recipe import RecipeConfig, run_recipe
from wakebuilder.store import open_store
from wakebuilder.stream_cache import stream_key


@pytest.mark.slow
def test_second_phrase_reuses_the_bank(tmp_path: Path) -> None:
    first = run_recipe(RecipeConfig.preset("tiny", engines=("espeak",)), out_dir=tmp_path / "a", device="cpu")
    assert first.bank is not None
    with open_store(first.bank) as bank:
        kinds, size = set(bank.load(pooled=False, sequence=False).kind.tolist()), len(bank)
    assert {"speech_negative", "word_negative"} <= kinds
    complete = next(first.bank.parent.glob("audio/*/complete.json"))
    # calibration and report speech, and their streams of speech, music and noise: one of each
    held = sorted([*cache_dir().glob("heldout/*/complete.json"), *cache_dir().glob("heldout/*/manifest.jsonl")])
    assert len(held) == 4
    identity = load_model(first.model_dir).backbone  # the backbone's pass over each stream, at the 0.1 s hop
    streams = (first.data.calibration_stream, first.data.report_stream)
    passes = [cache_dir() / "stream-embeddings" / f"{stream_key(s, identity, 1600)}.npy" for s in streams]
    assert all(path.is_file() for path in passes)
    cached = sorted(cache_dir().glob("stream-embeddings/*.npy"))
    stamps = [path.stat().st_mtime_ns for path in (complete, *held, *passes)]
    # another phrase and another seed: the seed changes the phrase's own data, never the shared data
    second = run_recipe(RecipeConfig.preset("tiny", phrase="computer", engines=("espeak",), seed=1),
                        out_dir=tmp_path / "b", device="cpu")
    assert second.bank == first.bank  # nothing synthesized again:
    assert [path.stat().st_mtime_ns for path in (complete, *held, *passes)] == stamps
    assert sorted([*cache_dir().glob("heldout/*/complete.json"), *cache_dir().glob("heldout/*/manifest.jsonl")]) == held
    assert sorted(cache_dir().glob("stream-embeddings/*.npy")) == cached  # the second ran only its head on them
    assert (second.data.calibration_stream, second.data.report_stream) == streams
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


@pytest.mark.slow
def test_a_cpu_recipe_reads_a_bf16_bank_at_its_precision(tmp_path: Path, tiny_ast_dir: Path) -> None:
    """A bank embedded in bf16 (on a GPU) and reused by a recipe on the CPU: the phrase's store was embedded in fp32,
    the CPU's precision, and the fit refused to read it with the bank. The phrase's store (new, or an earlier run's
    in fp32 rebuilt) and the calibration stream's pass (the heads' and their ensemble's) are now at the bank's bf16,
    a head fit on the fp32 store is fit again (not calibrated on bf16 rows), and the bank is left as it was."""
    from wakebuilder.train.fit_config import FitConfig

    # more positives and smaller batches than tiny's: a random AST's rows then give heads that calibrate
    config = RecipeConfig.preset("tiny", engines=("espeak",), backbone=str(tiny_ast_dir), report=False, n_pos=20,
                                 fit=FitConfig(batch_size=32))
    first = run_recipe(config.replace(heads=1), out_dir=tmp_path / "a", device="cpu")
    assert first.bank is not None
    with open_store(first.bank) as bank, open_store(first.store) as own:
        assert bank.spec.compute_dtype == own.spec.compute_dtype == "fp32"
        window, size = bank.spec.backbone["window_s"], len(bank)
    manifests = json.loads((first.bank.parent / "bank.json").read_text())["manifests"]
    embedded = CliRunner().invoke(main, ["embed", *manifests, "--store", str(first.bank), "--backbone",
                                         str(tiny_ast_dir), "--window-s", str(window), "--dtype", "bf16",
                                         "--overwrite"])  # the bank as a GPU embeds it
    assert embedded.exit_code == 0, embedded.output
    for cached in cache_dir().glob("stream-embeddings/*"):  # a GPU's passes are bf16's
        cached.unlink()
    for out, heads in ((tmp_path / "b", 2), (tmp_path / "a", 1)):
        result = run_recipe(config.replace(heads=heads), out_dir=out, device="cpu")
        assert result.bank == first.bank and 0.0 < result.threshold < 1.0
        with open_store(result.bank) as bank, open_store(result.store) as own:
            assert bank.spec.compute_dtype == own.spec.compute_dtype == "bf16" and len(bank) == size
        identity, stream = load_model(result.model_dir).backbone, result.data.calibration_stream
        passes = [cache_dir() / "stream-embeddings" / f"{stream_key(stream, identity, 1600, d)}.npy"
                  for d in ("bf16", "fp32")]
        assert [p.is_file() for p in passes] == [True, False]
        for member in result.members or (result.model_dir,):
            assert json.loads((member / "calibration.json").read_text())["config"]["dtype"] == "bf16"
            # fit on the bf16 stores: a's head, fit on the fp32 ones, is not kept
            assert {s.get("compute_dtype") for s in load_model(member).meta["stores"]} == {"bf16"}
