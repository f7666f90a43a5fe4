"""The recipe in the library: presets, its config round trip, the CLI calling it, a tiny real run."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import wakebuilder.recipe as recipe
from wakebuilder.cli import main
from wakebuilder.errors import ConfigError
from tests.conftest import noise
from tests.test_readme import readme_artifacts
from wakebuilder.bank.location import cache_dir
from wakebuilder.manifest import read_manifest
from wakebuilder.stream_cache import stream_key
from wakebuilder.recipe import SIZES, RecipeConfig, RecipeData, RecipeResult, run_recipe


def fake_result(config: RecipeConfig, out: Path) -> RecipeResult:
    data = RecipeData(train_manifests=[], negatives=out / "n.jsonl", heldout_positives=None, heldout_negatives=None,
                      calibration_stream=out / "s.wav", report_stream=None)
    return RecipeResult(config=config, out_dir=out, onnx=out / "export" / "x.onnx", model_dir=out / "model",
                        store=out / "store.zarr", data=data, threshold=0.5, report=None, seconds=1.0)


def test_presets_hold_the_quickstart_counts() -> None:
    quick, full = RecipeConfig.preset("quick"), RecipeConfig.preset("full")
    assert (quick.n_pos, quick.pos_copies, quick.n_hard, quick.n_speech, quick.n_words) == (600, 2, 750, 1000, 1500)
    assert (full.n_pos, full.pos_copies, full.n_hard, full.n_speech, full.n_words) == (1700, 3, 10000, 5000, 5000)
    assert full.train_stream_s == full.stream_s == full.report_stream_s == 3600.0
    assert (quick.stream_s, quick.report_stream_s) == (600.0, 1500.0)  # the report's stream costs the first phrase
    assert RecipeConfig() == quick  # the dataclass defaults are the quick preset
    assert RecipeConfig.preset("tiny", seed=3).seed == 3 and set(SIZES) == {"tiny", "quick", "full"}
    with pytest.raises(ConfigError, match="--size"):
        RecipeConfig.preset("huge")
    with pytest.raises(ConfigError, match="engine"):
        RecipeConfig(engines=())
    # three heads of the phrase's store averaged; one in the smoke test
    assert (RecipeConfig.preset("tiny").heads, quick.heads, full.heads) == (1, 3, 3)
    assert quick.data_seeds == full.data_seeds == 1
    with pytest.raises(ConfigError, match="data_seeds=0, heads=0"):
        RecipeConfig(data_seeds=0, heads=0)


def test_window_slug_and_negative_engines() -> None:
    config = RecipeConfig(phrase="Hey, Jarvis!", engines=("piper",), backbone="speech-embedding")
    assert config.slug == "hey-jarvis" and config.embed_window_s == 2.5 and config.negative_engines == ("piper",)
    # the default, word-embedding, sees its own 1.5 s; the smoke test's preset runs on the shipped backbone
    assert RecipeConfig().backbone == "word-embedding" and RecipeConfig().embed_window_s is None
    assert RecipeConfig.preset("tiny").backbone == "speech-embedding"
    assert RecipeConfig.preset("tiny", backbone="word-embedding").backbone == "word-embedding"
    assert RecipeConfig(backbone="ast").embed_window_s is None
    assert RecipeConfig(neg_engines=("espeak",)).negative_engines == ("espeak",)
    # Kokoro speaks the phrase and its sound-alikes, not the shared sentences (too slow for the first run)
    assert "kokoro" in RecipeConfig().engines and "kokoro" not in RecipeConfig().shared_speech_engines
    # Kokoro speaks the positives, not the sound-alikes, unless it is the only engine or named for them
    assert "kokoro" not in RecipeConfig().negative_engines and "piper" in RecipeConfig().negative_engines
    assert RecipeConfig(engines=("kokoro",)).negative_engines == ("kokoro",)
    assert RecipeConfig(neg_engines=("kokoro", "piper")).negative_engines == ("kokoro", "piper")
    assert RecipeConfig(neg_engines=("espeak",), shared_engines=()).shared_speech_engines == ("espeak",)


def test_word_embedding_calibrates_with_a_floor_under_its_threshold() -> None:
    """word-embedding's synthetic calibration stream does not bind its threshold (0.27-0.5, real speech woke it 15-50
    times an hour): the recipe calibrates it with a floor of 0.8; the other backbones keep none, and their config (the
    kept work's identity) is unchanged."""
    from wakebuilder.recipe_model import calibration_config

    assert calibration_config(RecipeConfig(backbone="word-embedding")).min_threshold == 0.8
    assert calibration_config(RecipeConfig(backbone="word_embedding")).min_threshold == 0.8
    assert calibration_config(RecipeConfig(backbone="speech-embedding")).min_threshold == 0.0
    assert calibration_config(RecipeConfig(backbone="ast")).min_threshold == 0.0
    assert "min_threshold" not in RecipeConfig().to_dict()


def test_word_embedding_fits_a_centroids_head_beside_its_network_heads() -> None:
    """On realdev the shrunk discriminant on word-embedding's vectors ranked real clips better than the network heads
    and, averaged with them, found more at the calibrated thresholds with fewer false accepts: the recipe fits one
    for word-embedding (shrinkage 0.2), none for the others unless asked."""
    assert RecipeConfig(backbone="word-embedding").centroids_head == 0.2
    assert RecipeConfig(backbone="speech-embedding").centroids_head is None
    assert RecipeConfig(backbone="ast").centroids_head is None
    assert RecipeConfig(backbone="word-embedding", centroids=False).centroids_head is None
    assert RecipeConfig(backbone="speech-embedding", centroids=True).centroids_head == 0.2
    assert RecipeConfig(backbone="word-embedding", centroids_shrinkage=0.0).centroids_head == 0.0  # two centroids
    with pytest.raises(ConfigError, match="centroids_shrinkage=1.5"):
        RecipeConfig(centroids_shrinkage=1.5)


def test_the_centroids_shrinkage_is_one_named_value_that_the_help_texts_quote() -> None:
    """The word-embedding entry, the fallback of a head forced on and the help of ``wb quickstart`` and ``wb fit`` all
    read ``DEFAULT_CENTROIDS_SHRINKAGE``: a new value cannot leave one of them saying the old."""
    from wakebuilder.cli.fit_cmd import fit
    from wakebuilder.cli.recipe_cmd import quickstart
    from wakebuilder.recipe_config import CENTROIDS_SHRINKAGE, DEFAULT_CENTROIDS_SHRINKAGE

    assert CENTROIDS_SHRINKAGE["word-embedding"] == DEFAULT_CENTROIDS_SHRINKAGE
    assert RecipeConfig(backbone="speech-embedding", centroids=True).centroids_head == DEFAULT_CENTROIDS_SHRINKAGE
    value = f"{DEFAULT_CENTROIDS_SHRINKAGE:g}"
    helps = {command.name: {p.name: getattr(p, "help", None) for p in command.params} for command in (quickstart, fit)}
    assert f"--head centroids --shrinkage {value})" in helps["quickstart"]["centroids"]
    assert f"measured {value} on word-embedding" in helps["fit"]["shrinkage"]


def test_a_centroids_head_joins_the_heads_in_a_folder_of_its_own(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """With one network head and a centroids head, the network head leaves ``out/model`` (the ensemble's folder)
    for ``head-0/``; the centroids head is fitted on the first head's split in ``head-centroids/``, calibrated like
    the others, and kept by a rerun."""
    import wakebuilder.calibrate as calibrate
    from tests.model_helpers import tone_setup
    from wakebuilder.modeldir import load_model

    calibrated = []
    monkeypatch.setattr(calibrate, "calibrate_model",
                        lambda model, *a, **k: (calibrated.append(Path(model)), (model, {"threshold": 0.5}))[1])
    monkeypatch.setattr(calibrate, "format_report", lambda summary: "")
    data = RecipeData(train_manifests=[], negatives=tmp_path / "n.jsonl", heldout_positives=None,
                      heldout_negatives=None, calibration_stream=tmp_path / "s.wav", report_stream=None)
    config = RecipeConfig.preset("tiny", phrase="hey tone", heads=1, centroids=True, centroids_shrinkage=0.3)
    config = config.replace(fit=config.fit.replace(max_epochs=3, width=16, hidden=(16,)))  # seconds, not minutes
    out = tmp_path / "run"
    models = recipe.fit_heads(config, out, tone_setup()["store"], data, device="cpu")
    assert [m for m, _ in models] == calibrated == [out / "head-0" / "model", out / "head-centroids" / "model"]
    centroids = load_model(out / "head-centroids" / "model")
    assert centroids.head.config.kind == "centroids" and centroids.meta["fit"]["shrinkage"] == 0.3
    assert centroids.meta["fit"]["seed"] == load_model(out / "head-0" / "model").meta["fit"]["seed"] == config.seed
    before = (out / "head-centroids" / "model" / "head.safetensors").stat().st_mtime_ns
    recipe.fit_heads(config, out, tone_setup()["store"], data, device="cpu")
    assert (out / "head-centroids" / "model" / "head.safetensors").stat().st_mtime_ns == before  # kept


def test_config_round_trips_with_nested_settings(tmp_path: Path) -> None:
    config = RecipeConfig.preset("tiny", engines=("espeak",))
    config = config.replace(augment=config.augment.replace(formant_p=0.3), fit=config.fit.replace(members=2))
    path = config.save(tmp_path / "recipe.json")
    assert RecipeConfig.load(path) == config
    with pytest.raises(ConfigError, match="unknown"):
        RecipeConfig.from_dict({"fit": {"no_such": 1}})


def test_quickstart_cli_runs_run_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def spy(config: RecipeConfig, **kwargs):
        calls.append((config, kwargs))
        return fake_result(config, Path(kwargs["out_dir"]))

    monkeypatch.setattr(recipe, "run_recipe", spy)
    out = tmp_path / "run"
    result = CliRunner().invoke(main, ["quickstart", "ok computer", "--size", "tiny", "--engines", "piper,espeak",
                                       "--seed", "4", "--out", str(out), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == str(out / "export" / "x.onnx")
    (config, kwargs), = calls
    assert config == RecipeConfig.preset("tiny", phrase="ok computer", engines=("piper", "espeak"), seed=4)
    assert kwargs["device"] == "cpu" and kwargs["recordings"] == ()
    f1 = CliRunner().invoke(main, ["quickstart", "ok computer", "--size", "tiny", "--objective", "f1",
                                   "--out", str(out)])
    assert f1.exit_code == 0, f1.output
    assert calls[-1][0].objective == "f1" and config.objective == "fa-per-hour" and config.target_fa_per_hour == 0.5
    bad = CliRunner().invoke(main, ["quickstart", "--engines", "piper,nope"])
    assert bad.exit_code != 0 and "nope" in bad.output
    seeds = CliRunner().invoke(main, ["quickstart", "x", "--size", "full", "--data-seeds", "2", "--out", str(out)])
    assert seeds.exit_code == 0, seeds.output
    assert calls[-1][0] == RecipeConfig.preset("full", phrase="x", data_seeds=2)
    heads = CliRunner().invoke(main, ["quickstart", "x", "--heads", "1", "--out", str(out)])
    assert heads.exit_code == 0, heads.output
    assert calls[-1][0] == RecipeConfig.preset("quick", phrase="x", heads=1)
    fused = CliRunner().invoke(main, ["quickstart", "x", "--fuse-with", "speech-embedding", "--out", str(out)])
    assert fused.exit_code == 0, fused.output
    assert calls[-1][0] == RecipeConfig.preset("quick", phrase="x", fuse_with="speech-embedding")
    assert calls[-1][0].backbone == "word-embedding" and calls[-1][1]["out_dir"] == str(out)
    fused_seeds = CliRunner().invoke(main, ["quickstart", "x", "--fuse-with", "speech-embedding", "--data-seeds", "3",
                                            "--out", str(out)])
    assert fused_seeds.exit_code == 0, fused_seeds.output  # each data seed trains both backbones
    assert calls[-1][0] == RecipeConfig.preset("quick", phrase="x", fuse_with="speech-embedding", data_seeds=3)
    default_out = CliRunner().invoke(main, ["quickstart", "Hey X"])
    assert default_out.exit_code == 0, default_out.output
    assert calls[-1][1]["out_dir"] == "runs/hey-x-word-embedding"


def test_quickstart_resumes_an_earlier_run_with_its_own_backbone(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A run made while speech-embedding was the default, resumed with --out and no --backbone, was embedded, fitted
    and exported again with word-embedding, replacing its model: it now keeps the backbone its config records."""
    calls = []

    def spy(config: RecipeConfig, **kwargs):
        calls.append(config)
        return fake_result(config, Path(kwargs["out_dir"]))

    monkeypatch.setattr(recipe, "run_recipe", spy)
    out = tmp_path / "run"
    out.mkdir()
    RecipeConfig.preset("quick", phrase="x", backbone="speech-embedding").save(out / "recipe_config.json")
    resumed = CliRunner().invoke(main, ["quickstart", "x", "--out", str(out)])
    assert resumed.exit_code == 0, resumed.output
    assert calls[-1].backbone == "speech-embedding" and "resumed with its backbone speech-embedding" in resumed.stderr
    changed = CliRunner().invoke(main, ["quickstart", "x", "--out", str(out), "--backbone", "word-embedding"])
    assert changed.exit_code == 0 and calls[-1].backbone == "word-embedding"
    new = CliRunner().invoke(main, ["quickstart", "x", "--out", str(tmp_path / "new")])
    assert new.exit_code == 0 and calls[-1].backbone == "word-embedding" and "resumed" not in new.stderr
    same = CliRunner().invoke(main, ["quickstart", "x", "--fuse-with", "word-embedding", "--out", str(tmp_path / "f")])
    assert same.exit_code == 2 and "the --backbone itself (word-embedding, the default)" in same.stderr


def test_realdev_benchmark_runs_the_same_run_recipe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """research/real_transfer.py trains through the library's run_recipe with the quickstart's defaults."""
    script = Path(__file__).resolve().parents[1] / "research" / "real_transfer.py"
    spec = importlib.util.spec_from_file_location("real_transfer_under_test", script)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)
    spec.loader.exec_module(module)
    calls = []

    def spy(config: RecipeConfig, **kwargs):
        calls.append((config, kwargs))
        return fake_result(config, Path(kwargs["out_dir"]))

    monkeypatch.setattr(recipe, "run_recipe", spy)
    onnx = module.train_word("happy", 2, module.parse_args(["--realdev", str(tmp_path)]), tmp_path / "w")
    assert onnx == tmp_path / "w" / "export" / "x.onnx"
    (config, kwargs), = calls
    assert config == RecipeConfig.preset("quick", phrase="happy", seed=2)  # bin/quickstart's defaults
    assert kwargs["out_dir"] == tmp_path / "w" and kwargs["extra_negatives"] == []


def assert_ensemble_threshold_rule(model_dir: Path, members: tuple[Path, ...]) -> None:
    """The recipe's ensemble threshold: the FA/h rule on its own calibration-stream scores, not below the mean of
    its members' best-F1 thresholds (each found again in the member's saved sweep)."""
    from wakebuilder import metrics
    from wakebuilder.ensemble import STREAM_RULE

    calibration = json.loads((model_dir / "calibration.json").read_text())
    sweeps = [json.loads((m / "calibration.json").read_text())["sweep"] for m in members]
    floor = np.mean([metrics.best_f1_threshold({k: np.array([r[k] for r in rows]) for k in ("threshold", "f1")})
                     for rows in sweeps])
    threshold, fa_h = calibration["threshold"], {r["threshold"]: r["fa_per_hour"] for r in calibration["stream_sweep"]}
    assert calibration["objective"] == STREAM_RULE and calibration["member_f1_threshold"] == pytest.approx(floor)
    assert threshold >= floor - 1e-9
    if threshold > floor + 1e-9:  # the stream set it: the lowest threshold of the grid within 0.5 FA/h
        assert fa_h[threshold] <= 0.5 and all(f > 0.5 for t, f in fa_h.items() if t < threshold)


@pytest.mark.slow
def test_tiny_recipe_writes_a_detector_and_its_report(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from wakebuilder.detect import load_detector
    from wakebuilder.modeldir import load_model

    config = RecipeConfig.preset("tiny", engines=("espeak",), background=("music", "noise"), heads=2)
    with caplog.at_level(logging.INFO, logger="wakebuilder.stream_cache"):
        result = run_recipe(config, out_dir=tmp_path, device="cpu")
    assert result.onnx == tmp_path / "export" / "hey-jarvis.onnx" and result.onnx.is_file()
    assert RecipeConfig.load(tmp_path / "recipe_config.json") == config
    assert 0.0 < result.threshold < 1.0
    assert result.report is not None and result.report["n_clips"] == 3 + 6 + 8 and "fa_per_hour" in result.report
    assert {"music", "noise"} <= set(result.report["clip_categories"])  # held-out non-speech, counted per category
    assert json.loads((tmp_path / "report.json").read_text()) == result.report  # kept beside the run, not only shown
    # and the export says what the report measured of it, beside its calibration stream's figures
    held = json.loads(result.onnx.with_suffix(".json").read_text())["heldout_report"]
    assert held["file"] == "../report.json" and (result.onnx.parent / held["file"]).is_file()
    assert held["fa_per_hour"] == result.report["fa_per_hour"] and held["n_clips"] == 3 + 6 + 8
    assert held["recall"] == result.report["metrics"]["recall"] and held["verified"] is False
    # two heads of the one store, each with its own seed and calibration, averaged into the exported model
    assert result.members == (tmp_path / "head-0" / "model", tmp_path / "head-1" / "model")
    assert [load_model(m).meta["fit"]["seed"] for m in result.members] == [0, 100]
    assert load_model(result.model_dir).head.config.members == 2
    calibration = json.loads((result.members[0] / "calibration.json").read_text())
    assert calibration["stream_hours"] > 0 and calibration["objective"] == "fa-per-hour"
    window_s = load_model(result.model_dir).window_samples / 16000  # the refractory period: the window, >= 1 s
    assert calibration["config"]["refractory_s"] == max(1.0, window_s) == load_detector(result.onnx).settings[
        "refractory_s"]
    assert_ensemble_threshold_rule(result.model_dir, result.members)
    # positives over the world's sound: a share of their copies is mixed with music or noise
    copies = read_manifest(tmp_path / "positives-aug" / "manifest.jsonl")
    backgrounds = [r.params["chain"].get("background") for r in copies]
    assert any(backgrounds) and not all(backgrounds)
    # the calibration and report streams, made once in the cache, hold held-out music and noise of different seeds
    streams = (result.data.calibration_stream, result.data.report_stream)
    cal, rep = (read_manifest(s.parent / "nonspeech" / "manifest.jsonl") for s in streams)
    assert len(cal) == len(rep) == 8 and not {r.id for r in cal} & {r.id for r in rep}
    assert result.data.heldout_nonspeech == streams[1].parent / "nonspeech" / "manifest.jsonl"
    assert all(s.is_relative_to(cache_dir()) for s in streams) and not (tmp_path / "stream-calibrate.wav").exists()
    # the backbone's pass over each stream is in the cache: another phrase runs only its head on them
    identity = json.loads((result.model_dir / "model.json").read_text())["backbone"]
    passes = {cache_dir() / "stream-embeddings" / f"{stream_key(s, identity, 1600)}.npy" for s in streams}
    assert len(passes) == 2 and all(p.is_file() for p in passes)
    # made ahead by a process of the run's own (stream_warm), or by the run where it got there first: once each
    ahead = (tmp_path / "stream-passes.log").read_text()
    assert all(str(s) in ahead for s in streams)
    assert ahead.count("windows into") + caplog.text.count("windows into") <= 2
    # the streams are speech, music and noise; held-out sound-alikes are report clips, never stream audio
    from wakebuilder.recipe_build import _stream_sources

    held = {"report_hard": tmp_path, "calibrate_speech": tmp_path / "s"}
    assert _stream_sources(held, "calibrate") == [tmp_path / "s"]
    assert {r.kind for r in read_manifest(tmp_path / "heldout-eval" / "manifest.jsonl")} == {"hard_negative"}
    # every file the README's Artifacts section promises is there
    promised = readme_artifacts()
    where = {"Clip manifest": tmp_path / "positives", "Model directory": result.members[0],
             "Export": result.onnx.parent, "Recipe run": tmp_path, "Embedding store": tmp_path}
    missing = [f"{title}: {name}" for title, folder in where.items() for name in promised[title]
               if not name.startswith((".", "PATH")) and not (folder / name.replace("NAME", config.slug)).exists()]
    assert not missing, missing


@pytest.mark.slow
def test_data_seeds_and_heads_average_calibrated_models(tmp_path: Path) -> None:
    from wakebuilder.modeldir import load_model

    # with a centroids head beside each data seed's network heads (speech-embedding keeps none unless asked)
    config = RecipeConfig.preset("tiny", engines=("espeak",), seed=5, data_seeds=2, heads=2, centroids=True)
    result = run_recipe(config, out_dir=tmp_path, device="cpu")
    assert result.members == tuple(tmp_path / f"seed-{d}" / f"head-{k}" / "model"
                                   for d in (5, 6) for k in ("0", "1", "centroids"))
    members = [load_model(m) for m in result.members]
    assert [m.meta["fit"]["seed"] for m in members] == [5, 105, 5, 6, 106, 6]  # each head its own split and start
    assert [m.head.config.kind for m in members] == ["network", "network", "centroids"] * 2
    assert all(m.calibration["threshold"] > 0 for m in members)  # each member calibrated before the ensemble
    # the first data seed's run makes the held-out sets of the ensemble's report
    assert [RecipeConfig.load(tmp_path / f"seed-{d}" / "recipe_config.json") for d in (5, 6)] == [
        config.replace(seed=5, data_seeds=1), config.replace(seed=6, data_seeds=1, report=False)]
    clips = [[(r.id, r.params.get("voice")) for r in read_manifest(tmp_path / f"seed-{d}/positives/manifest.jsonl")]
             for d in (5, 6)]
    assert clips[0] and clips[1] and clips[0] != clips[1]  # other synthesized clips
    ensemble = load_model(result.model_dir)
    assert result.model_dir == tmp_path / "model" and ensemble.head.config.members == 6
    assert [m["model"] for m in ensemble.meta["ensemble"]["members"]] == [str(m.path.resolve()) for m in members]
    assert_ensemble_threshold_rule(result.model_dir, result.members)
    assert ensemble.calibration["stream_hours"] > 0 and ensemble.calibration["fa_per_hour"] is not None
    assert result.onnx == tmp_path / "export" / "hey-jarvis.onnx" and result.onnx.is_file()
    assert result.report is not None and result.report["n_clips"] == 3 + 6 + 8
    assert not (tmp_path / "seed-5" / "export").exists()  # one export: the ensemble's



@pytest.mark.slow
def test_tiny_recipe_fuses_two_backbones(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """--fuse-with: the data made once, each backbone's calibrated export (the second in its own folder, at its own
    window and threshold floor), fused into the run's detector, which the report measures; a rerun keeps the heads.
    The log says "done" once, last: each member's export said it before the fusion and its report had run."""
    import wakebuilder.train.fit as fit
    from tests.backbones.test_word_embedding import stand_in_model
    from wakebuilder.backbones import word_embedding as we
    from wakebuilder.detect import load_detector
    from wakebuilder.store import open_store

    monkeypatch.setenv(we.MODEL_ENV, str(stand_in_model(tmp_path / "word-embedding.onnx")))
    out = tmp_path / "run"
    config = RecipeConfig.preset("tiny", engines=("espeak",), fuse_with="word-embedding")
    with caplog.at_level(logging.INFO, logger="wakebuilder"):
        result = run_recipe(config, out_dir=out, device="cpu")
    steps = [r.getMessage() for r in caplog.records if r.getMessage().startswith("quickstart:")]
    assert [s for s in steps if "] done in " in s] == steps[-1:] and "fused" in steps[-2]
    assert result.onnx == out / "export-fused" / "hey-jarvis.onnx" and result.onnx.is_file()
    members = (out / "export" / "hey-jarvis.onnx", out / "word-embedding" / "export" / "hey-jarvis.onnx")
    assert result.fused == members and all(m.is_file() for m in members)
    detector, parts = load_detector(result.onnx), [load_detector(m) for m in members]
    assert detector.info["backbone"]["members"] == ["speech-embedding", "word-embedding"]
    assert [m["file"] for m in detector.info["fused"]["members"]] == ["hey-jarvis.onnx"] * 2
    assert [p.window_samples for p in parts] == [40000, 24000] and detector.window_samples == 40000
    assert parts[1].threshold >= 0.8  # word-embedding's floor, as in a run of its own
    assert result.threshold == pytest.approx((parts[0].threshold + parts[1].threshold) / 2) == detector.threshold
    assert RecipeConfig.load(out / "recipe_config.json") == config
    assert RecipeConfig.load(out / "word-embedding" / "recipe_config.json") == config.replace(
        backbone="word-embedding", fuse_with=None, report=False)
    with open_store(out / "store.zarr") as first, open_store(out / "word-embedding" / "store.zarr") as second:
        assert first.ids() == second.ids()  # one data: the same training clips in each backbone's store
    assert not (out / "word-embedding" / "positives").exists()
    assert result.report is not None and result.report["n_clips"] == 3 + 6 + 8 and "fa_per_hour" in result.report
    # a rerun keeps each backbone's store and head, and fuses them again
    def refit(stores: object, out_dir: Path, *args: object, **kwargs: object) -> None:
        raise AssertionError(f"{out_dir}: fitted again")

    monkeypatch.setattr(fit, "run_fit", refit)
    again = run_recipe(config, out_dir=out, device="cpu")
    assert again.onnx == result.onnx and again.threshold == pytest.approx(result.threshold)


@pytest.mark.slow
def test_tiny_recipe_fuses_two_backbones_over_data_seeds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--fuse-with with --data-seeds: each data seed's data made once (``seed-<N>/``), each backbone's store and
    calibrated heads on it (the second's in ``seed-<N>/<name>/``); each backbone's heads of every seed averaged and
    exported (the second's in ``<name>/``), the two exports fused and reported on the first seed's held-out data."""
    from tests.backbones.test_word_embedding import stand_in_model
    from wakebuilder.backbones import word_embedding as we
    from wakebuilder.detect import load_detector
    from wakebuilder.modeldir import load_model
    from wakebuilder.store import open_store

    monkeypatch.setenv(we.MODEL_ENV, str(stand_in_model(tmp_path / "word-embedding.onnx")))
    out = tmp_path / "run"
    config = RecipeConfig.preset("tiny", engines=("espeak",), seed=5, data_seeds=2, fuse_with="word-embedding")
    result = run_recipe(config, out_dir=out, device="cpu")
    for d in (5, 6):
        seed_out = out / f"seed-{d}"
        with open_store(seed_out / "store.zarr") as first, open_store(seed_out / "word-embedding/store.zarr") as second:
            assert first.ids() == second.ids()  # one data per seed: the same training clips in each backbone's store
        assert not (seed_out / "word-embedding" / "positives").exists() and not (seed_out / "export").exists()
    assert RecipeConfig.load(out / "seed-6" / "word-embedding" / "recipe_config.json") == config.replace(
        backbone="word-embedding", fuse_with=None, report=False, seed=6, data_seeds=1)
    # each backbone's calibrated heads of both seeds averaged (word-embedding's with its centroids head) and exported
    heads = {out: ("model",), out / "word-embedding": ("head-0/model", "head-centroids/model")}
    for folder, names in heads.items():
        seeds = [str((out / f"seed-{d}" / folder.relative_to(out) / n).resolve()) for d in (5, 6) for n in names]
        assert [m["model"] for m in load_model(folder / "model").meta["ensemble"]["members"]] == seeds
    assert result.members == (out / "seed-5" / "model", out / "seed-6" / "model")
    members = (out / "export" / "hey-jarvis.onnx", out / "word-embedding" / "export" / "hey-jarvis.onnx")
    assert result.onnx == out / "export-fused" / "hey-jarvis.onnx" and result.onnx.is_file()
    assert result.fused == members and all(m.is_file() for m in members)
    detector, parts = load_detector(result.onnx), [load_detector(m) for m in members]
    assert detector.info["backbone"]["members"] == ["speech-embedding", "word-embedding"]
    assert [p.window_samples for p in parts] == [40000, 24000] and parts[1].threshold >= 0.8
    assert result.threshold == pytest.approx((parts[0].threshold + parts[1].threshold) / 2) == detector.threshold
    assert result.data.report_stream is not None and result.store == out / "seed-5" / "store.zarr"
    assert result.report is not None and result.report["n_clips"] == 3 + 6 + 8 and "fa_per_hour" in result.report


@pytest.mark.slow
def test_tiny_fused_report_scores_its_stream_on_the_members_cached_passes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--fuse-with: the report's stream is scored by each member's head on its backbone's cached pass, aligned on
    the fused window's centred slices and weighted as the fused graph does, not by the fused ONNX over the stream;
    its report is the one through the fused ONNX."""
    from tests.backbones.test_word_embedding import stand_in_model
    from wakebuilder import evaluate
    from wakebuilder.backbones import word_embedding as we
    from wakebuilder.detect import load_detector
    from wakebuilder.recipe_model import report_on_heldout
    from wakebuilder.streaming import hop_samples

    monkeypatch.setenv(we.MODEL_ENV, str(stand_in_model(tmp_path / "word-embedding.onnx")))
    scans, traces = [], []
    score_blocks, evaluate_detector = evaluate.score_blocks, evaluate.evaluate_detector

    def scanned(scan: Any) -> Any:
        def run(*args: Any, **kwargs: Any) -> Any:
            scans.append(scan.__name__)
            return scan(*args, **kwargs)
        return run

    def recorded(*args: Any, **kwargs: Any) -> Any:
        traces.append(kwargs.get("traces"))
        return evaluate_detector(*args, **kwargs)

    monkeypatch.setattr(evaluate, "score_blocks", scanned(score_blocks))
    monkeypatch.setattr(evaluate, "detect_blocks", scanned(evaluate.detect_blocks))
    monkeypatch.setattr(evaluate, "evaluate_detector", recorded)
    config = RecipeConfig.preset("tiny", engines=("espeak",), fuse_with="word-embedding")
    result = run_recipe(config, out_dir=tmp_path / "run", device="cpu")
    assert result.report is not None and scans == []  # the fused ONNX never scanned the report's stream
    through_onnx = report_on_heldout(result.onnx, result.data, device="cpu")  # today's path: no members given
    assert scans == ["score_blocks"] and traces[1] is None
    assert result.report == through_onnx  # the same false accepts (per category), clips and metrics
    assert json.loads((tmp_path / "run" / "report.json").read_text()) == result.report  # the fused detector's
    detector, stream = load_detector(result.onnx), str(result.data.report_stream)
    assert [load_detector(m).window_samples for m in result.fused] == [40000, 24000]  # word-embedding's: 5 hops in
    hop = hop_samples(evaluate.EvalConfig().resolved(detector).hop_s)
    fast = traces[0][stream]
    slow = score_blocks(evaluate.AudioBlocks(stream), detector.scorer, window_samples=detector.window_samples,
                        hop=hop)
    assert fast.shape == slow.shape
    # the members' passes are cached in float16 (embeddings rounded by up to 2**-11 of themselves), the ONNX's float32
    assert np.max(np.abs(fast - slow)) < 1e-3 < np.ptp(slow) / 4
    # at a threshold the trace crosses, clear of its values by more than that: the same events, in the same categories
    levels = np.sort(slow)[len(slow) // 4 : 3 * len(slow) // 4]
    widest = int(np.argmax(np.diff(levels)))
    assert np.diff(levels)[widest] / 2 > np.max(np.abs(fast - slow))
    at = evaluate.EvalConfig(threshold=float(levels[widest : widest + 2].mean()))
    fused, scanned_fa = (evaluate_detector(detector, streams=[stream], config=at, categories=["other"], traces=t)
                         for t in ({stream: fast}, None))
    assert fused == scanned_fa and fused["false_accepts"] > 0


@pytest.mark.parametrize("bank", [False, True])
def test_without_the_bank_training_holds_the_nonspeech_negatives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bank: bool
) -> None:
    """--no-bank: music and noise clips (babble of the negatives' speech) and their copies join training."""
    import wakebuilder.recipe_data as steps
    from tests.conftest import tone
    from wakebuilder.audio import write_wav
    from wakebuilder.manifest import ClipRecord, write_manifest

    neg_dir = tmp_path / "negatives"
    for i in range(3):
        write_wav(neg_dir / f"s{i}.wav", tone(200 + 50 * i, 1.0))
    rows = [ClipRecord(id=f"s{i}", path=f"s{i}.wav", label=0, kind="speech_negative", group=f"s{i}") for i in range(3)]
    neg = write_manifest(neg_dir / "manifest.jsonl", rows)
    monkeypatch.setattr(steps, "positives", lambda *a: [])
    monkeypatch.setattr(steps, "negatives", lambda *a: neg)
    monkeypatch.setattr(steps, "heldout_sets", lambda *a: {"calibrate_speech": neg})
    monkeypatch.setattr(steps, "augmented", lambda config, manifest, out, copies, **k: out / "manifest.jsonl")
    monkeypatch.setattr(steps, "training_windows", lambda *a: tmp_path / "windows.jsonl")
    monkeypatch.setattr(steps, "negative_stream", lambda config, manifests, path, *a: path)
    config = RecipeConfig.preset("tiny", engines=("espeak",), bank=bank, heldout_nonspeech=0, report=False)
    data = recipe.build_data(config, tmp_path)
    made = [m for m in data.train_manifests if m.parent.name.startswith("nonspeech")]
    if bank:
        assert made == []  # the bank holds them
        return
    assert [m.parent.name for m in made] == ["nonspeech", "nonspeech-aug"]
    rows = read_manifest(made[0])
    assert len(rows) == config.n_nonspeech and {r.params["category"] for r in rows} == {"music", "noise"}
    assert "babble" in {r.params["generator"] for r in rows}


def test_embed_data_rebuilds_a_store_that_holds_another_runs_clips(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    """A second run into the same folder without a recording (or with another seed) fits on its own clips only;
    a store left by a killed run of the same data is resumed, not rebuilt."""
    from wakebuilder.audio import quantize_pcm16, write_wav
    from wakebuilder.fingerprint import audio_id
    from wakebuilder.manifest import ClipRecord, write_manifest
    from wakebuilder.recipe import RecipeData, embed_data
    from wakebuilder.store import open_store

    def manifest(folder: Path, text: str, seed: int) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        records = []
        for i in range(3):
            audio = noise(1.0, amplitude=0.2, seed=seed * 100 + i)
            clip = audio_id(quantize_pcm16(audio))
            write_wav(folder / f"{clip}.wav", audio)
            records.append(ClipRecord(id=clip, path=f"{clip}.wav", label=1, kind="recording", group=f"g{i}",
                                      text=text))
        return write_manifest(folder / "manifest.jsonl", records)

    def data(manifests: list[Path]) -> RecipeData:
        return RecipeData(train_manifests=manifests, negatives=manifests[0], heldout_positives=None,
                          heldout_negatives=None, calibration_stream=tmp_path / "s.wav", report_stream=None)

    config, out = RecipeConfig.preset("tiny", phrase="hey jarvis"), tmp_path / "run"
    recording, synthesized = manifest(out / "recordings", "alexa", 1), manifest(out / "positives", "hey jarvis", 2)
    store = embed_data(config, out, data([recording, synthesized]), threads=1)
    with open_store(store) as opened:
        assert len(opened) == 6
    store = embed_data(config, out, data([recording, synthesized]), threads=1)  # the same data: kept
    assert "rebuilding" not in caplog.text
    store = embed_data(config, out, data([synthesized]), threads=1)
    assert "holds 3 clip(s) that this run's data does not" in caplog.text
    with open_store(store) as opened:
        assert len(opened) == 3 and {r.text for r in opened.records()} == {"hey jarvis"}


def test_embed_data_rebuilds_a_store_of_another_backbone_window(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    """A rerun into the same --out with another window (or backbone) embeds anew instead of failing after the
    data steps with the store's "use another --store, or --overwrite" (options wb quickstart does not have)."""
    from wakebuilder.audio import quantize_pcm16, write_wav
    from wakebuilder.fingerprint import audio_id
    from wakebuilder.manifest import ClipRecord, write_manifest
    from wakebuilder.recipe import embed_data
    from wakebuilder.store import open_store

    folder, records = tmp_path / "run" / "positives", []
    folder.mkdir(parents=True)
    for i in range(3):
        audio = noise(1.0, amplitude=0.2, seed=i)
        clip = audio_id(quantize_pcm16(audio))
        write_wav(folder / f"{clip}.wav", audio)
        records.append(ClipRecord(id=clip, path=f"{clip}.wav", label=1, kind="tts", group=f"g{i}"))
    manifest = write_manifest(folder / "manifest.jsonl", records)
    data = RecipeData(train_manifests=[manifest], negatives=manifest, heldout_positives=None, heldout_negatives=None,
                      calibration_stream=tmp_path / "s.wav", report_stream=None)
    config = RecipeConfig.preset("tiny")
    embed_data(config, tmp_path / "run", data, threads=1)
    store = embed_data(config.replace(window_s=2.0), tmp_path / "run", data, threads=1)
    assert "rebuilding" in caplog.text
    with open_store(store) as opened:
        assert len(opened) == 3 and opened.spec.backbone["window_s"] == 2.0


def test_a_rerun_trains_on_its_own_recordings_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A rerun into the same --out with other recordings (another take, or another phrase) does not keep the
    earlier run's: those would be positives of this run's phrase."""
    import soundfile as sf

    import wakebuilder.recipe_data as steps
    from tests.data.test_validate import speechlike

    monkeypatch.setattr(steps, "synth", lambda config, out, n, seed: out / "manifest.jsonl")
    first, second = tmp_path / "hey-jarvis.wav", tmp_path / "ok-computer.wav"
    sf.write(first, speechlike(1.2), 16_000)
    sf.write(second, speechlike(1.5), 16_000)
    out = tmp_path / "run"
    steps.positives(RecipeConfig.preset("tiny", phrase="hey jarvis"), out, [first], lambda message: None)
    manifests = steps.positives(RecipeConfig.preset("tiny", phrase="ok computer"), out, [second],
                                lambda message: None)
    assert [Path(r.source) for r in read_manifest(manifests[0])] == [second.resolve()]


@pytest.mark.parametrize("target", ["0", "-1", "nan", "inf"])
def test_a_bad_fa_per_hour_target_is_refused_before_the_run(target: str, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The calibration refused a target of 0 or below only after the synthesis, embedding and fit (minutes);
    nan and inf reached it as targets."""
    calls = []
    monkeypatch.setattr(recipe, "run_recipe", lambda config, **kwargs: calls.append(config))
    result = CliRunner().invoke(main, ["quickstart", "x", "--size", "tiny", "--out", str(tmp_path / "run"),
                                       "--target-fa-per-hour", target])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith("wb: error: --target-fa-per-hour") and not calls
    with pytest.raises(ConfigError, match="target"):
        RecipeConfig(target_fa_per_hour=float(target))


def test_an_unknown_backbone_is_refused_before_any_synthesis(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A mistyped --backbone failed only when the store was embedded, after minutes of synthesis and augmentation."""
    from wakebuilder.errors import BackboneError

    def build_data(*args, **kwargs):
        raise AssertionError("synthesis started")

    monkeypatch.setattr(recipe, "build_data", build_data)
    with pytest.raises(BackboneError, match="speech-embeding"):
        run_recipe(RecipeConfig.preset("tiny", backbone="speech-embeding"), out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    result = CliRunner().invoke(main, ["quickstart", "x", "--size", "tiny", "--backbone", "speech-embeding",
                                       "--out", str(tmp_path / "run")])
    assert result.exit_code == 1 and result.stderr.startswith("wb: error: --backbone 'speech-embeding'")



def test_a_fused_runs_second_backbone_has_a_folder_of_its_own(tmp_path: Path) -> None:
    """The second backbone's folder under --out: a shipped backbone's name; an AST checkpoint's apart from the run's
    own folders, and two checkpoint directories of one name apart from each other."""
    from wakebuilder.recipe_folders import backbone_folder

    assert backbone_folder("word_embedding") == backbone_folder("word-embedding") == "word-embedding"
    first, second = tmp_path / "a" / "checkpoint", tmp_path / "b" / "checkpoint"
    first.mkdir(parents=True)
    second.mkdir(parents=True)
    folders = {backbone_folder(str(first)), backbone_folder(str(second))}
    assert len(folders) == 2 and all(f.startswith("ast-checkpoint-") for f in folders)
    hub = backbone_folder("MIT/ast-finetuned-audioset-10-10-0.4593")
    assert hub.startswith("ast-") and "/" not in hub


@pytest.mark.parametrize(("backbone", "fuse_with", "error", "exit_code"), [
    ("speech-embedding", "word-embeding", "--fuse-with 'word-embeding': unknown backbone", 1),  # as --backbone's
    ("speech-embedding", "speech_embedding", "--fuse-with speech_embedding: the --backbone itself", 2),
    ("word-embedding", "word-embedding", "--fuse-with word-embedding: the --backbone itself", 2),
])
def test_fuse_with_an_unknown_or_the_same_backbone_is_refused_before_any_synthesis(
    backbone: str, fuse_with: str, error: str, exit_code: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A mistyped --fuse-with would fail at the second backbone's embedding, after the first one's whole run; the
    same backbone twice would fuse a model with a copy of itself."""
    from wakebuilder.errors import WakebuilderError

    def build_data(*args, **kwargs):
        raise AssertionError("synthesis started")

    monkeypatch.setattr(recipe, "build_data", build_data)
    with pytest.raises(WakebuilderError, match=error):
        run_recipe(RecipeConfig.preset("tiny", backbone=backbone, fuse_with=fuse_with), out_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
    result = CliRunner().invoke(main, ["quickstart", "x", "--size", "tiny", "--backbone", backbone,
                                       "--fuse-with", fuse_with, "--out", str(tmp_path / "run")])
    assert result.exit_code == exit_code and result.stderr.startswith(f"wb: error: {error}"), result.output


def _no_synthesis(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if the recipe starts synthesizing its positives (a check was to refuse the run before)."""
    import wakebuilder.recipe_data as steps

    def positives(*args: object) -> None:
        raise AssertionError("synthesis started")

    monkeypatch.setattr(steps, "positives", positives)


def test_a_real_folder_without_audio_is_refused_before_any_synthesis(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """--real DIR holding no audio it reads (.m4a files, say) failed only after the synthesis and augmentation."""
    _no_synthesis(monkeypatch)
    real = tmp_path / "real"
    real.mkdir()
    (real / "tv.m4a").write_bytes(b"\0" * 100)
    with pytest.raises(ConfigError, match="no audio files"):
        recipe.build_data(RecipeConfig.preset("tiny"), tmp_path / "run", real_dir=real)


def test_a_real_folder_that_holds_the_run_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--real . with the run's folder under it (runs/<phrase>-<backbone> by default) chunked the run's own clips,
    its synthesized and recorded positives among them, into label-0 negatives."""
    from tests.conftest import tone
    from wakebuilder.audio import write_wav

    _no_synthesis(monkeypatch)
    write_wav(tmp_path / "tv.wav", noise(3.0))
    out = tmp_path / "runs" / "hey-jarvis-speech-embedding"
    write_wav(out / "positives" / "p.wav", tone(440, 1.0))  # an earlier run's positive
    with pytest.raises(ConfigError, match="--real .*holds the run's folder"):
        recipe.build_data(RecipeConfig.preset("tiny"), out, real_dir=tmp_path)
    assert not (out / "real").exists()


def test_an_out_folder_that_is_not_a_recipe_run_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--out DIR of the user's own (their model/ and export/, other files) had its model/ and export/ replaced;
    it is refused before any synthesis. A new or empty folder, or an earlier run's (resumed), is a run folder."""
    class Started(Exception):
        pass

    def build_data(*args, **kwargs):
        raise Started

    monkeypatch.setattr(recipe, "build_data", build_data)
    mine = tmp_path / "mine"
    (mine / "model").mkdir(parents=True)
    (mine / "model" / "head.safetensors").write_bytes(b"weights")
    (mine / "export").mkdir()
    config = RecipeConfig.preset("tiny")
    with pytest.raises(ConfigError, match=f"--out {mine}: .*not a recipe run.*empty or new folder"):
        run_recipe(config, out_dir=mine)
    assert sorted(p.name for p in mine.iterdir()) == ["export", "model"]
    assert (mine / "model" / "head.safetensors").read_bytes() == b"weights"
    result = CliRunner().invoke(main, ["quickstart", "x", "--size", "tiny", "--out", str(mine)])
    assert result.exit_code == 2 and result.stderr.count("\n") == 1, result.output
    assert result.stderr.startswith(f"wb: error: --out {mine}")
    for folder in (tmp_path / "new", tmp_path / "empty"):  # a new folder, an empty one
        (tmp_path / "empty").mkdir(exist_ok=True)
        with pytest.raises(Started):
            run_recipe(config, out_dir=folder)
        assert RecipeConfig.load(folder / "recipe_config.json") == config
    earlier = tmp_path / "empty"  # now an earlier (killed) run's folder: resumed
    (earlier / "positives").mkdir()
    with pytest.raises(Started):
        run_recipe(config.replace(seed=3), out_dir=earlier)
    assert RecipeConfig.load(earlier / "recipe_config.json").seed == 3


def test_a_real_folder_that_holds_another_recipe_run_is_refused(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """--real DIR holding another run's folder (runs/ under the user's audio) chunked that run's synthesized
    positives of the same phrase into label-0 negatives; refused before any synthesis, naming the run."""
    from tests.conftest import tone
    from wakebuilder.audio import write_wav

    _no_synthesis(monkeypatch)
    real = tmp_path / "audio"
    write_wav(real / "tv.wav", noise(3.0))
    earlier = real / "runs" / "hey-jarvis-speech-embedding"
    RecipeConfig.preset("tiny").save(earlier / "recipe_config.json")
    write_wav(earlier / "positives" / "p.wav", tone(440, 1.0))  # the earlier run's positive
    out = tmp_path / "run"
    with pytest.raises(ConfigError, match=f"--real {real}: holds the recipe run {earlier}"):
        recipe.build_data(RecipeConfig.preset("tiny"), out, real_dir=real)
    assert not (out / "real").exists()
    with pytest.raises(ConfigError, match=f"--real {earlier}: holds the recipe run {earlier}"):
        recipe.build_data(RecipeConfig.preset("tiny"), out, real_dir=earlier)


def test_a_second_run_into_one_folder_is_refused_while_the_first_runs(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Two runs into one --out at once (another phrase, or bin/quickstart started twice) rewrote each other's
    recipe_config.json and data folders: the first trained on the second's positives. The second now fails at once."""
    from wakebuilder.atomic import writer_lock
    from wakebuilder.errors import LockedError

    def build_data(*args, **kwargs):
        raise AssertionError("synthesis started")

    monkeypatch.setattr(recipe, "build_data", build_data)
    out, first = tmp_path / "run", RecipeConfig.preset("tiny", phrase="hey jarvis")
    first.save(out / "recipe_config.json")
    with writer_lock(out), pytest.raises(LockedError, match="another wakebuilder"):
        run_recipe(RecipeConfig.preset("tiny", phrase="ok computer"), out_dir=out)
    assert RecipeConfig.load(out / "recipe_config.json") == first


def test_a_real_folder_that_holds_the_cache_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--real ~ held wakebuilder's cache (~/.cache/wakebuilder): the bank's synthesized speech and the held-out
    calibration and report streams were chunked into training negatives, so the report scored audio the head had
    trained on. Refused before any synthesis, naming the cache."""
    from wakebuilder.audio import write_wav

    _no_synthesis(monkeypatch)
    home = tmp_path / "home"
    write_wav(home / "tv.wav", noise(3.0))
    cache = home / ".cache" / "wakebuilder"
    write_wav(cache / "heldout" / "stream.wav", noise(3.0, seed=1))
    monkeypatch.setenv("WB_CACHE_DIR", str(cache))
    with pytest.raises(ConfigError, match=f"--real {home}: holds wakebuilder's cache {cache}"):
        recipe.build_data(RecipeConfig.preset("tiny"), tmp_path / "run", real_dir=home)
    assert not (tmp_path / "run" / "real").exists()


def test_a_rerun_keeps_the_synthesis_steps_a_killed_run_finished(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """wb quickstart run again after a kill (in fit, say) synthesized its positives and sound-alikes all over
    again; steps that finished with the same settings are now kept, steps of other settings made again."""
    from wakebuilder import recipe_data
    from wakebuilder.data import negatives as negatives_module
    from wakebuilder.data import synth

    config = RecipeConfig.preset("tiny", phrase="hey jarvis", engines=("espeak",))
    positives = recipe_data.synth(config, tmp_path / "positives", 3, 0)
    negatives = recipe_data.make_negatives(config, tmp_path / "negatives", n=3, speech=2, words=0, seed=0)
    made = {p: p.stat().st_ino for p in tmp_path.rglob("*.wav")}
    real = synth.synthesize_clips
    calls: list[int] = []

    def counted(config: object, **kwargs: object) -> object:
        calls.append(1)
        return real(config, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(synth, "synthesize_clips", counted)
    monkeypatch.setattr(negatives_module, "synthesize_clips", counted)
    assert recipe_data.synth(config, tmp_path / "positives", 3, 0) == positives
    assert recipe_data.make_negatives(config, tmp_path / "negatives", n=3, speech=2, words=0, seed=0) == negatives
    assert calls == [] and {p: p.stat().st_ino for p in tmp_path.rglob("*.wav")} == made
    other = read_manifest(recipe_data.synth(config, tmp_path / "positives", 3, 1))
    assert calls == [1] and {r.params["seed"] for r in other} == {1}


def test_a_rerun_makes_again_what_was_finished_with_other_voices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """wb quickstart run again after the voices found changed (``wb voices fetch kokoro-en``, as Kokoro's warning
    says, or an engine installed) kept the positives and sound-alikes made with the old voices: the voices are not
    in the config. A step finished with other voices is now made again, saying why."""
    from tests.data.test_synth import fewer_voices
    from wakebuilder import recipe_data
    from wakebuilder.data import negatives as negatives_module
    from wakebuilder.data import synth

    config = RecipeConfig.preset("tiny", phrase="hey jarvis", engines=("espeak",))
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        recipe_data.synth(config, tmp_path / "positives", 3, 0)
        recipe_data.make_negatives(config, tmp_path / "negatives", n=3, speech=2, words=0, seed=0)
    real = synth.synthesize_clips
    calls: list[str] = []

    def counted(config: object, **kwargs: object) -> object:
        calls.append(config.kind)  # type: ignore[attr-defined]
        return real(config, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(synth, "synthesize_clips", counted)
    monkeypatch.setattr(negatives_module, "synthesize_clips", counted)
    with caplog.at_level(logging.INFO, logger="wakebuilder"):
        positives = recipe_data.synth(config, tmp_path / "positives", 3, 0)
        recipe_data.make_negatives(config, tmp_path / "negatives", n=3, speech=2, words=0, seed=0)
    assert calls == ["tts", "hard_negative", "speech_negative"] and "made again" in caplog.text
    assert "voices" in caplog.text
    assert positives.read_bytes() == recipe_data.synth(config, tmp_path / "fresh", 3, 0).read_bytes()
    calls.clear()
    recipe_data.synth(config, tmp_path / "positives", 3, 0)  # the same voices now: kept
    assert calls == []


def test_a_rerun_makes_again_the_negatives_of_other_candidates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """wb quickstart run again after the sound-alike candidates changed (07faa3d left out "visuals" for "visual")
    kept the negatives finished with the old ones, since the candidates are not in the config, and so every step
    after them. The texts a run speaks are now recorded with it: other candidates make the negatives again."""
    from wakebuilder import recipe_data
    from wakebuilder.data import negatives as negatives_module
    from wakebuilder.data.phonetics import Candidate

    config = RecipeConfig.preset("tiny", phrase="hey jarvis", engines=("espeak",))
    real = negatives_module.candidates
    stale = Candidate("hey jarvises", 0.0, "a rule of before")  # its reason sorts first: the first text spoken

    def with_stale(phrase: str, **kwargs: object) -> list[Candidate]:
        return [stale, *real(phrase, **kwargs)]  # type: ignore[arg-type]

    with monkeypatch.context() as patch:
        patch.setattr(negatives_module, "candidates", with_stale)
        before = recipe_data.make_negatives(config, tmp_path / "negatives", n=3, speech=2, words=0, seed=0)
        assert stale.text in {r.text for r in read_manifest(before)}
    after = read_manifest(recipe_data.make_negatives(config, tmp_path / "negatives", n=3, speech=2, words=0, seed=0))
    assert stale.text not in {r.text for r in after}
    fresh = recipe_data.make_negatives(config, tmp_path / "fresh", n=3, speech=2, words=0, seed=0)
    assert (tmp_path / "negatives" / "manifest.jsonl").read_bytes() == fresh.read_bytes()


def test_a_rerun_keeps_the_augmented_copies_windows_and_nonspeech_it_finished(tmp_path: Path) -> None:
    """wb quickstart run again in its folder with the same config augmented the positives and negatives, cut the
    training-stream windows and made the non-speech negatives all over again although the first run had finished
    them; a step finished with the same settings and inputs is now kept (no file rewritten), one whose settings
    changed is made again."""
    from tests.conftest import tone
    from wakebuilder import recipe_data
    from wakebuilder.audio import quantize_pcm16, write_wav
    from wakebuilder.fingerprint import audio_id
    from wakebuilder.manifest import ClipRecord, write_manifest

    rows = []
    for i in range(3):
        x = tone(200 + 70 * i, 1.0)
        write_wav(tmp_path / "in" / f"{i}.wav", x)
        rows.append(ClipRecord(id=audio_id(quantize_pcm16(x)), path=f"{i}.wav", label=0, kind="speech_negative",
                               group=f"s{i}", text=f"word {i}"))
    neg, out = write_manifest(tmp_path / "in" / "manifest.jsonl", rows), tmp_path / "run"

    def steps(config: RecipeConfig) -> list[Path]:
        return [recipe_data.augmented(config, neg, out / "negatives-aug", config.neg_copies),
                recipe_data.augmented(config, neg, out / "positives-aug", config.pos_copies, background=True),
                recipe_data.nonspeech(config, out / "nonspeech", neg, n=config.n_nonspeech, seed=config.seed),
                recipe_data.training_windows(config, out, neg, lambda message: None)]

    def stamps() -> dict[Path, tuple[int, int]]:
        return {p: (p.stat().st_ino, p.stat().st_mtime_ns) for p in out.rglob("*") if p.is_file()
                and p.suffix != ".lock"}

    config = RecipeConfig.preset("tiny", engines=("espeak",), background=("noise",), n_nonspeech=4,
                                 train_stream_s=8.0)
    made = steps(config)
    first, written = [m.read_bytes() for m in made], stamps()
    assert steps(config) == made and stamps() == written
    again = steps(config.replace(seed=1, neg_copies=2))
    assert again == made and all(m.read_bytes() != before for m, before in zip(again, first))
    copies, positives, extra = (read_manifest(m) for m in again[:3])
    assert len(copies) == 6 and {r.params["seed"] for r in copies + positives} == {1}
    assert {r.params["run_seed"] for r in extra} == {1}


def test_a_rerun_keeps_the_heads_it_fit_and_refits_for_another_seed(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe's head step run again in its folder (killed while fitting its second head) fitted every head
    again, although the first had finished with the same store, settings and seed; a finished head is now kept
    (its files not rewritten), the unfinished one fitted, and another seed fits every head again."""
    import wakebuilder.calibrate as calibrate
    import wakebuilder.train.fit as fit
    from tests.model_helpers import tone_setup

    store, real_fit, fitted = tone_setup()["store"], fit.run_fit, []

    def counted(stores: object, out_dir: Path, config: object, **kwargs: object) -> object:
        if len(fitted) == 1 and not (tmp_path / "killed").exists():
            (tmp_path / "killed").touch()
            raise KeyboardInterrupt  # the kill, while fitting head-1
        fitted.append(Path(out_dir))
        return real_fit(stores, out_dir, config, **kwargs)

    monkeypatch.setattr(fit, "run_fit", counted)
    monkeypatch.setattr(calibrate, "calibrate_model", lambda model, *a, **k: (model, {"threshold": 0.5}))
    monkeypatch.setattr(calibrate, "format_report", lambda summary: "")
    data = RecipeData(train_manifests=[], negatives=tmp_path / "n.jsonl", heldout_positives=None,
                      heldout_negatives=None, calibration_stream=tmp_path / "s.wav", report_stream=None)
    config, out = RecipeConfig.preset("tiny", phrase="hey tone", heads=2), tmp_path / "run"
    config = config.replace(fit=config.fit.replace(max_epochs=3, width=16, hidden=(16,)))  # seconds, not minutes
    with pytest.raises(KeyboardInterrupt):
        recipe.fit_heads(config, out, store, data, device="cpu")
    assert fitted == [out / "head-0" / "model"]
    head_0 = {p: p.stat().st_mtime_ns for p in (out / "head-0" / "model").iterdir()}
    models = recipe.fit_heads(config, out, store, data, device="cpu")
    assert fitted == [out / "head-0" / "model", out / "head-1" / "model"]  # head-0 kept, head-1 fitted
    assert [m for m, _ in models] == fitted
    assert all(p.stat().st_mtime_ns == t for p, t in head_0.items())
    recipe.fit_heads(config, out, store, data, device="cpu")
    assert len(fitted) == 2  # both finished: kept
    recipe.fit_heads(config.replace(seed=1), out, store, data, device="cpu")
    assert len(fitted) == 4  # another seed: both fitted again


def test_a_head_fit_by_an_older_version_is_fit_again_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """A release that changed how heads are fit kept the heads an older release fit in the recipe's folder: the
    step's identity held the stores' content and the settings, not the code. It now holds the fit stage's version:
    a head recorded without it (fit before it was recorded) or with a lower one is fit again, once, saying why; a
    head of this version is kept."""
    import wakebuilder.train.fit as fit
    from tests.model_helpers import tone_setup
    from wakebuilder.recipe_keep import STEP_NAME, keep_or_fit
    from wakebuilder.stage_version import KEY

    store, real_fit, fitted = tone_setup()["store"], fit.run_fit, []

    def counted(stores: object, out_dir: Path, config: object, **kwargs: object) -> object:
        fitted.append(1)
        return real_fit(stores, out_dir, config, **kwargs)

    monkeypatch.setattr(fit, "run_fit", counted)
    config = RecipeConfig.preset("tiny").fit.replace(max_epochs=2, width=16, hidden=(16,))
    model = tmp_path / "model"

    def run() -> Path:
        return keep_or_fit([store], model, config, wake_word="hey tone", device="cpu")

    assert run() == model and len(fitted) == 1
    marker = json.loads((model / STEP_NAME).read_text())
    assert marker["identity"][KEY] == {"fit": fit.VERSION}
    identity = {k: v for k, v in marker["identity"].items() if k != KEY}  # as written before
    (model / STEP_NAME).write_text(json.dumps({**marker, "identity": identity}))
    with caplog.at_level(logging.INFO, logger="wakebuilder"):
        assert run() == model
    assert len(fitted) == 2 and "made by an older version of fit, made again" in caplog.text
    assert run() == model and len(fitted) == 2  # this version's: kept
    monkeypatch.setattr(fit, "VERSION", fit.VERSION + 1)  # a release that changed the fit
    assert run() == model and len(fitted) == 3
    assert run() == model and len(fitted) == 3


def test_a_rerun_makes_again_once_the_steps_an_older_version_of_their_stages_made(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A release that changed how a stage makes its output (synthesis, negatives, non-speech clips, the training
    stream and its windows, augmentation) kept what an older release made in the recipe's folder. Each step's
    identity now holds the versions of the stages that made it: a release that bumps one makes again, once, the
    steps that stage made, saying why, and keeps the others."""
    from wakebuilder import recipe_data
    from wakebuilder.data import negatives, realchunks, stream, synth
    from wakebuilder.data.augment import pipeline
    from wakebuilder.data.nonspeech import make

    config = RecipeConfig.preset("tiny", phrase="hey jarvis", engines=("espeak",), n_nonspeech=4, train_stream_s=6.0)
    out = tmp_path / "run"

    def steps() -> dict[str, Path]:
        positives = recipe_data.synth(config, out / "positives", 3, 0)
        negative = recipe_data.make_negatives(config, out / "negatives", n=3, speech=2, words=0, seed=0)
        return {"positives": positives, "negatives": negative,
                "nonspeech": recipe_data.nonspeech(config, out / "nonspeech", negative, n=4, seed=0),
                "windows": recipe_data.training_windows(config, out, negative, lambda message: None),
                "augmented": recipe_data.augmented(config, positives, out / "positives-aug", 1)}

    def remade(module: object, stage: str) -> set[str]:
        stamps = {name: path.stat().st_mtime_ns for name, path in steps().items()}  # kept: nothing rewritten
        monkeypatch.setattr(module, "VERSION", module.VERSION + 1)  # type: ignore[attr-defined]
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="wakebuilder"):
            after = steps()
        assert f"made by an older version of {stage}" in caplog.text
        return {name for name, path in after.items() if path.stat().st_mtime_ns != stamps[name]}

    steps()
    assert remade(synth, "synth") == {"positives", "negatives"}
    assert remade(negatives, "negatives") == {"negatives"}
    assert remade(make, "nonspeech") == {"nonspeech"}
    assert remade(stream, "stream") == {"windows"}
    assert remade(realchunks, "real-chunks") == {"windows"}
    assert remade(pipeline, "augment") == {"augmented"}
    stamps = {name: path.stat().st_mtime_ns for name, path in steps().items()}
    assert {name: path.stat().st_mtime_ns for name, path in steps().items()} == stamps


def test_the_report_stream_is_scored_at_the_precision_of_the_stores(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """The report's stream, scored by the head on the backbone's cached pass, was scored at the device's precision
    (bf16 on a GPU, fp32 on a CPU), not at the one its stores were embedded at and the heads fit and calibrated on:
    an ensemble's model.json records no stores to tell it. It is now scored at the stores' precision."""
    import shutil

    from tests.model_helpers import copy_model, spy_stream_precision, tone_setup
    from wakebuilder.audio import write_wav

    setup = tone_setup()
    store = Path(shutil.copytree(setup["store"], tmp_path / "store"))
    zarr_meta = json.loads((store / "zarr.json").read_text())
    zarr_meta["attributes"]["compute_dtype"] = "bf16"  # embedded on a GPU; this CPU's auto is fp32
    (store / "zarr.json").write_text(json.dumps(zarr_meta))
    model = copy_model(setup["calibrated"], tmp_path / "model")  # its model.json lists no stores, as an ensemble's
    stream = write_wav(tmp_path / "report.wav", noise(5, amplitude=0.02, seed=5))
    data = RecipeData(train_manifests=[], negatives=tmp_path / "n.jsonl", heldout_positives=None,
                      heldout_negatives=None, calibration_stream=tmp_path / "s.wav", report_stream=stream)
    loaded = spy_stream_precision(monkeypatch)
    config = RecipeConfig.preset("tiny", phrase="hey tone", bank=True)
    result = recipe.export_and_report(config, tmp_path / "run", model, store, data, {"threshold": 0.5}, device="cpu")
    assert result.report is not None and result.report["stream_hours"] == pytest.approx(5 / 3600)
    assert loaded[-1] == "bf16"


def test_the_recipe_leaves_the_callers_thread_count_as_it_was(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """run_recipe(threads=N) set torch's thread count (and OMP_NUM_THREADS) for the rest of the caller's process:
    a notebook or service that ran one recipe on one thread stayed on one thread. The count holds for the run only,
    whether it ends or fails."""
    import torch

    class Started(Exception):
        pass

    seen: list[tuple[int, str | None]] = []

    def build_data(*args, **kwargs):
        seen.append((torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")))
        raise Started

    monkeypatch.setattr(recipe, "build_data", build_data)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    wanted = 1 if before > 1 else 2
    try:
        with pytest.raises(Started):
            run_recipe(RecipeConfig.preset("tiny"), out_dir=tmp_path / "run", threads=wanted)
        assert seen == [(wanted, str(wanted))]  # the run itself has the count it was given
        assert torch.get_num_threads() == before and "OMP_NUM_THREADS" not in os.environ
    finally:
        torch.set_num_threads(before)


def test_streams_are_made_ahead_only_on_the_cpu_with_the_bank_and_no_thread_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    import contextlib

    import wakebuilder.stream_warm as stream_warm
    from wakebuilder.recipe_types import RecipeData

    started: list[list[str]] = []
    monkeypatch.setattr(stream_warm, "start_warming", lambda streams, *a, **k: started.append(streams))
    data = RecipeData(train_manifests=[], negatives=tmp_path, heldout_positives=None, heldout_negatives=None,
                      calibration_stream=tmp_path / "c.wav", report_stream=None)
    with contextlib.ExitStack() as held:
        for config, threads in ((RecipeConfig(bank=False), 0), (RecipeConfig(), 1)):
            recipe._warm_streams(config, tmp_path, data, tmp_path / "store", device="cpu", threads=threads,
                                 held=held)
        assert started == []
        with caplog.at_level(logging.WARNING, logger="wakebuilder.recipe"):  # no store to read the backbone from:
            recipe._warm_streams(RecipeConfig(), tmp_path, data, tmp_path / "store", device="cpu", threads=0,
                                 held=held)
    assert started == [] and "not made ahead" in caplog.text  # the run goes on and makes them itself
