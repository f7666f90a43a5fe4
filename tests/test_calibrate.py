"""Platt scaling, threshold rules, and wb calibrate on a real (tiny) model and store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.model_helpers import copy_model, planted_stream, spy_stream_precision, tone_setup
from tests.conftest import noise
from wakebuilder import metrics
from wakebuilder.audio import write_wav
from wakebuilder.calibrate import (
    CalibrateConfig, apply_platt, calibrate_model, choose_threshold, fit_platt, format_report,
)
from wakebuilder.cli import main
from wakebuilder.errors import ConfigError, StoreMismatchError, TrainingError
from wakebuilder.streaming import count_events_many


def saturated_logits(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.r_[np.ones(200, int), np.zeros(300, int)]
    logits = np.where(labels == 1, rng.normal(14, 3, labels.size), rng.normal(-12, 3, labels.size))
    logits[200:215] = rng.normal(9, 1.5, 15)  # hard negatives: the raw best threshold is 0.9999
    return logits, labels


def test_saturated_logits_get_a_threshold_away_from_0_and_1() -> None:
    logits, labels = saturated_logits()
    raw = 1 / (1 + np.exp(-logits))
    assert metrics.best_f1_threshold(metrics.sweep(labels, raw, metrics.threshold_grid(raw))) > 0.99
    temperature, bias = fit_platt(logits, labels)
    scores = apply_platt(logits, temperature, bias)
    threshold = metrics.best_f1_threshold(metrics.sweep(labels, scores, metrics.threshold_grid(scores)))
    assert 0.05 <= threshold <= 0.95
    assert temperature > 1  # saturated logits are spread out, not sharpened
    raw_f1 = metrics.metrics_at(labels, raw, 0.9999)["f1"]
    assert metrics.metrics_at(labels, scores, threshold)["f1"] >= raw_f1


def test_platt_recovers_a_known_mapping() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 4, 20000)
    labels = (rng.random(logits.size) < 1 / (1 + np.exp(-(logits - 1.0) / 2.0))).astype(int)
    temperature, bias = fit_platt(logits, labels)
    assert temperature == pytest.approx(2.0, rel=0.1) and bias == pytest.approx(1.0, abs=0.2)
    assert np.all(np.diff(apply_platt(np.sort(logits), temperature, bias)) >= 0)


def test_platt_refuses_one_class_and_inverted_scores() -> None:
    with pytest.raises(TrainingError, match="positives and negatives"):
        fit_platt(np.ones(5), np.ones(5))
    with pytest.raises(TrainingError, match="separate"):
        fit_platt(np.r_[-5.0, -4, -6, 5, 4, 6], np.r_[1, 1, 1, 0, 0, 0])
    with pytest.raises(TrainingError, match="^m: .*same logit"):  # a head that learned nothing
        fit_platt(np.full(6, 3.5), np.r_[1, 1, 1, 0, 0, 0], where="m")


def test_fa_per_hour_target_picks_the_lowest_threshold_meeting_it() -> None:
    rng = np.random.default_rng(2)
    traces = [rng.beta(1, 8, 18000) for _ in range(2)]  # 1 h of scores at 0.1 s hops
    grid = metrics.threshold_grid()
    fa_h = metrics.fa_per_hour(count_events_many(traces, grid, frame_s=0.1, refractory_s=1.0), 1.0)
    table = {"threshold": grid, "f1": np.zeros_like(grid)}
    config = CalibrateConfig(objective="fa-per-hour", target_fa_per_hour=0.5)
    chosen = choose_threshold(table, fa_h, config)
    index = int(np.flatnonzero(grid == chosen)[0])
    assert fa_h[index] <= 0.5 and fa_h[index - 1] > 0.5
    with pytest.raises(ConfigError, match="--stream"):
        choose_threshold(table, None, config)
    with pytest.raises(ConfigError, match="no threshold reaches"):
        choose_threshold(table, fa_h + 100, config)


def test_not_below_f1_lets_the_stream_raise_the_threshold_but_not_lower_it() -> None:
    grid = metrics.threshold_grid()
    f1 = np.exp(-((grid - 0.6) ** 2) / 0.01)  # per-clip F1 best at 0.6
    table = {"threshold": grid, "f1": f1}
    easy = np.where(grid >= 0.03, 0.0, 10.0)  # a stream with no false accept above 0.03
    hard = np.where(grid >= 0.85, 0.0, 10.0)  # one that needs 0.85
    plain = CalibrateConfig(objective="fa-per-hour")
    floored = plain.replace(not_below_f1=True)
    assert choose_threshold(table, easy, plain) == 0.03 and choose_threshold(table, easy, floored) == 0.6
    assert choose_threshold(table, hard, plain) == choose_threshold(table, hard, floored) == 0.85
    unreachable = CalibrateConfig(objective="auto", not_below_f1=True)
    assert choose_threshold(table, np.where(grid >= 0.2, 6.0, 12.0), unreachable) == 0.6


def test_min_threshold_is_a_floor_under_every_rule() -> None:
    """A backbone whose synthetic calibration stream does not bind the threshold (word-embedding: the rules land at
    0.27-0.5 and real speech wakes it 15-50 times an hour) gets a fixed floor: never below it, whatever the rule."""
    grid = metrics.threshold_grid()
    table = {"threshold": grid, "f1": np.exp(-((grid - 0.3) ** 2) / 0.01)}  # per-clip F1 best at 0.3
    easy = np.where(grid >= 0.3, 0.0, 10.0)  # no false accept above 0.3
    hard = np.where(grid >= 0.9, 0.0, 10.0)
    for config in (CalibrateConfig(objective="f1"), CalibrateConfig(objective="fa-per-hour"),
                   CalibrateConfig(not_below_f1=True)):
        assert choose_threshold(table, easy, config) == pytest.approx(0.3)
        assert choose_threshold(table, easy, config.replace(min_threshold=0.8)) == 0.8
        assert choose_threshold(table, hard, config.replace(min_threshold=0.8)) == pytest.approx(
            0.9 if config.objective != "f1" else 0.8)  # a rule above the floor keeps its own
    assert choose_threshold(table, np.zeros_like(grid), CalibrateConfig(min_threshold=0.8)) == 0.8  # unbound
    for bad in (1.0, 1.5, -0.1, float("nan")):
        with pytest.raises(ConfigError, match="--min-threshold"):
            CalibrateConfig(min_threshold=bad)


def test_a_stream_that_bounds_no_threshold_takes_the_f1_rule(caplog: pytest.LogCaptureFixture) -> None:
    """Silence, or audio nothing like the wake word, has no false accept at any threshold: the FA/h rule would
    take the bottom of the grid (0.01), so the per-clip F1 rule's threshold is taken, with a warning."""
    grid = metrics.threshold_grid()
    table = {"threshold": grid, "f1": np.exp(-((grid - 0.6) ** 2) / 0.01)}
    assert choose_threshold(table, np.zeros_like(grid), CalibrateConfig(objective="fa-per-hour")) == 0.6
    assert "does not bound the threshold" in caplog.text


def test_a_stream_whose_false_accepts_no_threshold_removes_takes_the_f1_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """One false accept that saturates at 1.0 on an otherwise quiet stream has the same FA/h at every threshold:
    the fewest false accepts are those of the bottom of the grid (0.01), which the stream does not bound either,
    so the per-clip F1 rule's threshold is taken, not 0.01."""
    from wakebuilder.calibrate import stream_fa_per_hour

    grid = metrics.threshold_grid(stream_peak=1.0)
    table = {"threshold": grid, "f1": np.exp(-((grid - 0.6) ** 2) / 0.01)}
    trace = np.zeros(6000, dtype=np.float32)
    trace[3000:3010] = 1.0
    fa_h = stream_fa_per_hour([trace], 6000 * 0.1 / 3600, grid, CalibrateConfig(refractory_s=1.0))
    assert np.all(fa_h == 6.0)
    assert choose_threshold(table, fa_h, CalibrateConfig()) == 0.6
    assert "does not bound the threshold" in caplog.text
    with pytest.raises(ConfigError, match="no threshold reaches"):
        choose_threshold(table, fa_h, CalibrateConfig(objective="fa-per-hour"))


def test_false_accepts_are_counted_on_the_hop_detection_steps_by() -> None:
    """A hop of 0.04997 s steps by 800 samples (0.05 s) in wb detect: two crossings 20 hops apart are 1.0 s
    apart there, so a 1 s refractory period keeps both, and so must the count that sets the threshold."""
    from wakebuilder.calibrate import stream_fa_per_hour

    trace = np.zeros(100, dtype=np.float32)
    trace[[10, 30]] = 0.9
    config = CalibrateConfig(hop_s=0.04997, refractory_s=1.0)
    assert stream_fa_per_hour([trace], 1.0, np.array([0.5]), config).tolist() == [2.0]


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="objective"):
        CalibrateConfig(objective="accuracy")
    with pytest.raises(ConfigError, match="hop-s"):
        CalibrateConfig(hop_s=0.5)


def test_calibrate_model_with_stream(tmp_path: Path) -> None:
    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    stream = write_wav(tmp_path / "neg.wav", noise(60, amplitude=0.02, seed=5))
    config = CalibrateConfig(objective="fa-per-hour", target_fa_per_hour=0.5)
    path, summary = calibrate_model(model, setup["store"], streams=[stream], config=config)
    saved = json.loads(path.read_text())
    assert path == model / "calibration.json" and saved["threshold"] == summary["threshold"]
    assert 0.0 < saved["threshold"] < 1.0 and saved["temperature"] > 0
    assert saved["stream_hours"] == pytest.approx(60 / 3600)
    assert saved["fa_per_hour"] <= 0.5 and saved["metrics"]["recall"] > 0.9
    # a minute of stream bounds the rate only loosely: its 95 % upper bound is given beside it
    false_accepts = round(saved["fa_per_hour"] * saved["stream_hours"])
    assert saved["fa_per_hour_upper95"] == pytest.approx(metrics.fa_per_hour_upper(false_accepts, 60 / 3600))
    assert saved["fa_per_hour_upper95"] >= 2.9957 * 60 - 0.1
    assert f"FA/h 95% upper bound     {saved['fa_per_hour_upper95']:.4f}" in format_report(summary).splitlines()
    assert set(saved["frr_at_fa"]) == {"0.5", "0.1"} and saved["det"]
    assert {r["metric"] for r in saved["targets"]} == set(metrics.SEED_TARGETS)
    assert (model / "calibration_sweep.png").stat().st_size > 1000
    assert (model / "calibration_det.png").exists()


def test_calibrate_cli_f1_objective(tmp_path: Path) -> None:
    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    args = ["calibrate", "--model", str(model), "--store", str(setup["store"]), "--json"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["fa_per_hour"] is None and 0.05 <= summary["threshold"] <= 0.95
    assert summary["fa_per_hour_upper95"] is None  # no stream, no bound
    assert "FA/h 95% upper bound     n/a" in result.stderr.splitlines()
    assert "accuracy" in result.stderr and "pass" in result.stderr


@pytest.mark.parametrize(("window_s", "recorded"), [(1.5, 1.5), (0.8, 1.0)])
def test_calibration_records_the_models_window_as_its_refractory_period(window_s: float, recorded: float,
                                                                        tmp_path: Path) -> None:
    """A wake word stays in the sliding window for about a window's length, so its score can dip and rise again up
    to a window after it fired: with the 1 s default, 14 of 177 real utterances woke a 1.5 s word-embedding model
    twice, none at 1.5 s. wb calibrate without --refractory-s records the model's window, never below 1 s, and wb
    export carries it to wb detect; --refractory-s given still wins."""
    from tests.model_helpers import tone_store_and_model
    from wakebuilder.detect import load_detector
    from wakebuilder.export import export_model

    if window_s == 1.5:
        model, store = copy_model(tone_setup()["model"], tmp_path / "model"), tone_setup()["store"]
    else:
        model, store = tone_store_and_model(tmp_path, window_s=window_s)[0], tmp_path / "store"
    args = ["calibrate", "--model", str(model), "--store", str(store)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert json.loads((model / "calibration.json").read_text())["config"]["refractory_s"] == recorded
    if window_s == 1.5:
        onnx = export_model(model, tmp_path / "export", name="chirp").files["onnx"]
        assert load_detector(onnx).settings["refractory_s"] == recorded
    assert CliRunner().invoke(main, [*args, "--refractory-s", "1.2"]).exit_code == 0
    assert json.loads((model / "calibration.json").read_text())["config"]["refractory_s"] == 1.2
    _, summary = calibrate_model(model, store, config=CalibrateConfig(refractory_s=0.5))
    assert summary["config"]["refractory_s"] == 0.5


def test_store_of_another_model_is_refused(tmp_path: Path) -> None:
    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    meta = json.loads((model / "model.json").read_text())
    meta["store_fingerprint"] = "0" * 32
    (model / "model.json").write_text(json.dumps(meta))
    with pytest.raises(StoreMismatchError, match="fingerprint"):
        calibrate_model(model, setup["store"])


def test_store_of_another_phrase_is_refused(tmp_path: Path) -> None:
    """Stores of one backbone share a fingerprint and voice group names: the validation positives' text must be
    the model's wake word."""
    from tests.model_helpers import tone_clips
    from wakebuilder.backbones import load_backbone
    from wakebuilder.manifest import ClipRecord
    from wakebuilder.store import StoreSpec, open_store

    setup = tone_setup()
    backbone = load_backbone("speech-embedding")
    clips, labels = tone_clips(backbone.window_samples, 40, seed=1)
    pooled, sequence = backbone.embed(clips)
    records = [ClipRecord(id=f"val{i:04d}", path=f"val{i}.wav", label=int(y), kind="tts" if y else "noise",
                          group="val", duration_s=1.5, text="Hey, Jarvis!" if y else "")
               for i, y in enumerate(labels)]
    with open_store(tmp_path / "store", "a", spec=StoreSpec(backbone=backbone.identity, seq_len=backbone.seq_len,
                                                           dim=backbone.dim)) as store:
        store.append(records, pooled, sequence)
    model = copy_model(setup["model"], tmp_path / "model")
    meta = json.loads((model / "model.json").read_text())
    for wake_word in ("hey jarvis", "Alexa"):
        (model / "model.json").write_text(json.dumps({**meta, "wake_word": wake_word}))
        if wake_word == "hey jarvis":
            calibrate_model(model, tmp_path / "store")  # its phrase: accepted
            continue
        with pytest.raises(StoreMismatchError, match="validation positives say 'hey jarvis'.*wake word is 'alexa'"):
            calibrate_model(model, tmp_path / "store")


def test_stores_other_than_those_fit_on_are_refused(tmp_path: Path) -> None:
    """Stores of one backbone share a fingerprint: model.json's ``stores`` (rows of each) tell a subset."""
    from wakebuilder.store import open_store

    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    with open_store(setup["store"], "r") as store:
        fitted = {"path": str(setup["store"]), "fingerprint": store.fingerprint, "rows": len(store)}
    meta = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**meta, "stores": [fitted]}))
    calibrate_model(model, setup["store"])  # the store it was fit on
    bank = dict(fitted, path="/elsewhere/bank", rows=7)
    (model / "model.json").write_text(json.dumps({**meta, "stores": [fitted, bank]}))
    with pytest.raises(StoreMismatchError, match=r"fit on .*store \(\d+ rows\), /elsewhere/bank \(7 rows\), given"):
        calibrate_model(model, setup["store"])


def test_a_store_made_again_with_other_clips_and_as_many_rows_is_refused(tmp_path: Path) -> None:
    """A phrase's store rebuilt at the same path, as many rows, other clips: the ids' sha256 the fit recorded
    tells it (a model.json without it is read as before)."""
    from wakebuilder.store import open_store
    from wakebuilder.store.union import rows_digest

    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    with open_store(setup["store"], "r") as store:
        fitted = {"path": str(setup["store"]), "fingerprint": store.fingerprint, "rows": len(store),
                  "ids_sha256": rows_digest(store, len(store))}
    meta = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**meta, "stores": [fitted]}))
    calibrate_model(model, setup["store"])  # the clips it was fit on
    (model / "model.json").write_text(json.dumps({**meta, "stores": [{**fitted, "ids_sha256": "f" * 64}]}))
    with pytest.raises(StoreMismatchError, match=r"/store: holds \d+ rows .*but other clips .*fit the model again"):
        calibrate_model(model, setup["store"])
    (model / "model.json").write_text(json.dumps({**meta, "stores": [{**fitted, "ids_sha256": None}]}))
    calibrate_model(model, setup["store"])  # recorded before the hash was


def test_a_store_embedded_again_at_another_precision_is_refused(tmp_path: Path) -> None:
    """A store embedded again in place at another precision (wb embed --overwrite --dtype) keeps its fingerprint,
    rows and ids: the precision the fit recorded tells it (a model.json without it is read as before)."""
    import shutil

    from wakebuilder.store import open_store
    from wakebuilder.store.union import rows_digest

    setup = tone_setup()
    store_path = Path(shutil.copytree(setup["store"], tmp_path / "store"))
    zarr_meta = json.loads((store_path / "zarr.json").read_text())
    zarr_meta["attributes"]["compute_dtype"] = "bf16"  # embedded again in bf16 after a fit in fp32
    (store_path / "zarr.json").write_text(json.dumps(zarr_meta))
    model = copy_model(setup["model"], tmp_path / "model")
    with open_store(store_path, "r") as store:
        fitted = {"path": str(store_path), "fingerprint": store.fingerprint, "rows": len(store),
                  "ids_sha256": rows_digest(store, len(store))}
    meta = json.loads((model / "model.json").read_text())
    (model / "model.json").write_text(json.dumps({**meta, "stores": [{**fitted, "compute_dtype": "fp32"}]}))
    with pytest.raises(StoreMismatchError) as refused:
        calibrate_model(model, store_path)
    message = str(refused.value)
    assert "\n" not in message and str(store_path) in message and "bf16" in message and "fp32" in message
    assert "wb fit" in message and "--dtype fp32" in message
    (model / "model.json").write_text(json.dumps({**meta, "stores": [{**fitted, "compute_dtype": "bf16"}]}))
    calibrate_model(model, store_path)  # the precision it was fit at
    (model / "model.json").write_text(json.dumps({**meta, "stores": [fitted]}))
    calibrate_model(model, store_path)  # recorded before the precision was


def test_augmented_copies_of_training_clips_do_not_validate(tmp_path: Path) -> None:
    """wb fit puts an augmented copy in its parent's group: calibration must too, or copies of training clips
    named in a validation group are scored as held-out."""
    from tests.model_helpers import tone_clips
    from wakebuilder.backbones import load_backbone
    from wakebuilder.calibrate import validation_logits
    from wakebuilder.manifest import ClipRecord
    from wakebuilder.modeldir import load_model
    from wakebuilder.store import StoreSpec, open_store

    setup = tone_setup()
    backbone = load_backbone("speech-embedding")
    clips, labels = tone_clips(backbone.window_samples, 24, seed=3)
    pooled, sequence = backbone.embed(clips)
    records = [ClipRecord(id=f"c{i:04d}", path=f"c{i}.wav", label=int(y), kind="tts" if y else "noise",
                          group="train" if i < 8 else "val", duration_s=1.5,
                          parent_id=f"c{i - 16:04d}" if i >= 16 else None)  # c0016..: copies of c0000..
               for i, y in enumerate(labels)]
    spec = StoreSpec(backbone=backbone.identity, seq_len=backbone.seq_len, dim=backbone.dim)
    with open_store(tmp_path / "store", "a", spec=spec) as store:
        store.append(records, pooled, sequence)
    model = copy_model(setup["model"], tmp_path / "model")
    logits, held = validation_logits(load_model(model), tmp_path / "store")
    assert len(logits) == 8 and held.tolist() == labels[8:16].tolist()


def test_short_streams_and_bad_segment_files_are_one_line_errors(tmp_path: Path) -> None:
    from wakebuilder.categories import segments_path

    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    short = write_wav(tmp_path / "short.wav", noise(0.5, amplitude=0.02, seed=5))
    with pytest.raises(ConfigError, match=r"short.wav: 0.50 s of audio, shorter than the backbone's"):
        calibrate_model(model, setup["store"], streams=[short])
    stream = write_wav(tmp_path / "stream.wav", noise(5, amplitude=0.02, seed=5))
    for duration in (0, "NaN", -3):
        segments_path(stream).write_text(json.dumps({"duration_s": duration, "segments": [[0.0, "noise", "x", ""]]}))
        with pytest.raises(ConfigError, match=r"stream.segments.json: not a segments file of wb stream \(duration_s"):
            calibrate_model(model, setup["store"], streams=[stream])
    segments_path(stream).write_text(json.dumps({"duration_s": 10**400, "segments": [[10**400, "noise", "x", ""]]}))
    with pytest.raises(ConfigError, match=r"stream.segments.json: not a segments file of wb stream \(int too large"):
        calibrate_model(model, setup["store"], streams=[stream])  # JSON keeps the integer: past a float's range
    for end in (6.0, "NaN", -1.0):  # a clip's end past the stream's, not a number, before its start
        segments = [[0.5, "noise", "x", "", end]]
        segments_path(stream).write_text(json.dumps({"duration_s": 5.0, "segments": segments}))
        with pytest.raises(ConfigError, match=r"stream.segments.json: not a segments file of wb stream \(a clip's end"):
            calibrate_model(model, setup["store"], streams=[stream])
    segments_path(stream).write_text(json.dumps({"duration_s": 5.0, "segments": [[0.0, "speech", "x", "hey tone"]]}))
    with pytest.raises(ConfigError, match="every clip of the stream says 'hey tone'"):
        calibrate_model(model, setup["store"], streams=[stream])


def test_a_stream_given_twice_is_refused(tmp_path: Path) -> None:
    """`--stream s.wav --stream s.wav` scored the stream twice: its hours doubled, the FA/h upper bound shrank as if
    twice the audio had been heard; now it is refused in one line, before any work, however the path is spelled."""
    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    stream = write_wav(tmp_path / "neg.wav", noise(5, amplitude=0.02, seed=5))
    again = tmp_path / "sub" / ".." / "neg.wav"
    (tmp_path / "sub").mkdir()
    result = CliRunner().invoke(main, ["calibrate", "--model", str(model), "--store", str(setup["store"]),
                                       "--stream", str(stream), "--stream", str(again)])
    assert result.exit_code == 2 and result.stdout == "", result.output
    line = result.stderr.strip()
    assert line.count("\n") == 0 and "given twice" in line and str(again) in line and "pass each stream once" in line
    assert not (model / "calibration.json").exists()


def test_a_model_another_writer_holds_is_refused_before_scoring(tmp_path: Path) -> None:
    """calibrate wrote calibration.json and its plots into the model with no writer lock: a second calibrate (or a
    wb fit --overwrite rewriting the model) at once left a calibration of one run beside plots of the other. It now
    holds the model's writer lock, fit's own, and a second writer fails at once, before any scoring."""
    from wakebuilder.atomic import writer_lock
    from wakebuilder.errors import LockedError

    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    with writer_lock(model), pytest.raises(LockedError, match="another wakebuilder process"):
        calibrate_model(model, setup["store"])
    assert not (model / "calibration.json").exists()
    calibrate_model(model, setup["store"])  # released: it runs
    assert (model / "calibration.json").is_file()


def test_a_model_folder_that_cannot_be_written_is_refused_before_scoring(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """calibrate on a model folder it may not write (chmod 555, a read-only mount) scored the validation split and
    every stream, then failed writing calibration.json; it now fails at once, in one line naming the folder and the
    fix, and leaves nothing in it. Root (these tests' user) writes whatever the mode, so the folder is made to refuse
    every new file as a read-only mount does (EROFS, which root gets too)."""
    import errno
    import os

    import wakebuilder.calibrate as module

    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")

    def scored(*args: object, **kwargs: object) -> None:
        raise AssertionError("scored before the model folder was checked")

    monkeypatch.setattr(module, "validation_logits", scored)
    opened, folder = os.open, os.path.realpath(model)

    def read_only(path: str | os.PathLike[str], flags: int, *args: int) -> int:
        real = os.path.realpath(path)
        if flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) and folder in (real, os.path.dirname(real)):
            raise OSError(errno.EROFS, "Read-only file system", str(path))
        return opened(path, flags, *args)

    monkeypatch.setattr(os, "open", read_only)
    before = sorted(p.name for p in model.iterdir())
    result = CliRunner().invoke(main, ["calibrate", "--model", str(model), "--store", str(setup["store"])])
    assert result.exit_code == 2 and result.stdout == "", result.output
    line = result.stderr.strip()
    assert line.count("\n") == 0 and line.startswith(f"wb: error: {model}: "), line
    assert "writable" in line and "copy" in line, line
    assert sorted(p.name for p in model.iterdir()) == before


def test_cli_help_and_bad_input() -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["calibrate", "--help"]).exit_code == 0
    result = runner.invoke(main, ["calibrate", "--model", "/nonexistent/model", "--store", "/nonexistent/s"])
    assert result.exit_code != 0
    assert result.stderr.strip().count("\n") == 0 and "model directory not found" in result.stderr


def test_planted_stream_helper_is_loud_where_planted() -> None:
    audio = planted_stream((1.0,), 3.0)
    assert np.abs(audio[16000:17000]).max() > 0.3 and np.abs(audio[:8000]).max() < 0.1


def test_streams_are_scored_at_the_precision_the_model_was_fit_at(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """--dtype auto scored the calibration stream at the device's precision (bf16 on CUDA), whatever the stores the
    head was fit on were embedded at: the FA/h that set the threshold came from other embeddings. It now scores at
    the precision model.json records for them (the device's where none is); another one asked for is honoured and
    warned of."""
    import wakebuilder.devices as devices
    from wakebuilder.store import open_store
    from wakebuilder.store.union import rows_digest

    setup = tone_setup()
    model = copy_model(setup["model"], tmp_path / "model")
    stream = write_wav(tmp_path / "neg.wav", noise(5, amplitude=0.02, seed=5))
    meta = json.loads((model / "model.json").read_text())
    with open_store(setup["store"], "r") as store:
        fitted = {"path": str(setup["store"]), "fingerprint": store.fingerprint, "rows": len(store),
                  "ids_sha256": rows_digest(store, len(store))}
    loaded = spy_stream_precision(monkeypatch)

    def calibrated_at(recorded: str | None, dtype: str = "auto") -> str:
        stores = [fitted | ({"compute_dtype": recorded} if recorded else {})]  # recorded, or a model.json before it
        (model / "model.json").write_text(json.dumps(meta | {"stores": stores}))
        _, summary = calibrate_model(model, setup["store"], streams=[stream], config=CalibrateConfig(dtype=dtype))
        assert summary["config"]["dtype"] == loaded[-1]  # calibration.json says what the stream was scored at
        return loaded[-1]

    def warned() -> list[str]:
        return [r.getMessage() for r in caplog.records if "scoring the stream" in r.getMessage()]

    assert calibrated_at("bf16") == "bf16"  # on this CPU, where auto alone is fp32
    assert calibrated_at(None) == "auto"  # the device's
    monkeypatch.setattr(devices, "resolve_device", lambda name="auto": "cuda")  # a GPU's default: bf16
    assert calibrated_at("fp32") == "fp32" and calibrated_at("fp32", dtype="fp32") == "fp32"
    assert not warned()
    assert calibrated_at("fp32", dtype="bf16") == "bf16"
    [message] = warned()
    assert "in bf16" in message and "in fp32" in message and str(model) in message
