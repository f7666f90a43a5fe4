from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from tests.train.conftest import SMALL, planted
from wakebuilder.errors import StoreError, StoreMismatchError, WakebuilderError
from wakebuilder.manifest import ClipRecord
from wakebuilder.modeldir import load_model
from wakebuilder.store import StoreSpec, open_store
from wakebuilder.train.fit import run_fit
from wakebuilder.train.plots import read_metrics_log

IDENTITY = {
    "name": "test-backbone", "spec": "test", "window_s": 1.0, "revision": "0", "seq_len": 8, "dim": 32,
}


def make_store(path: Path, *, n: int = 400, identity: dict | None = None, augmented: bool = True) -> Path:
    """A real store: planted positives, and an augmented copy (own group) of every 4th clip."""
    arrays = planted(n, signal=0.6)
    records, rows = [], []
    for i in range(n):
        label = int(arrays.label[i])
        records.append(ClipRecord(
            id=str(arrays.id[i]), path=f"c{i}.wav", label=label, kind="tts", group=str(arrays.group[i]),
            text="hey wake" if label else "something else",
        ))
        rows.append(i)
        if augmented and i % 4 == 0:
            records.append(ClipRecord(
                id=f"{arrays.id[i]}-aug", path=f"c{i}-aug.wav", label=label, kind="augmented",
                group="augment",
                parent_id=str(arrays.id[i]), text=records[-1].text,
            ))
            rows.append(i)
    sequence = arrays.sequence[rows]
    spec = StoreSpec(backbone=identity or IDENTITY, seq_len=8, dim=32)
    with open_store(path, "a", spec=spec) as store:
        store.append(records, sequence.mean(axis=1), sequence)
    return path


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fit")
    store = make_store(root / "store.zarr")
    model, _ = run_fit(store, root / "model", SMALL.replace(max_epochs=6), device="cpu", progress=False)
    return store, model


def test_model_directory_contents(fitted: tuple[Path, Path]) -> None:
    store, model = fitted
    names = {p.name for p in model.iterdir()}
    assert {"head.safetensors", "model.json", "split.json", "metrics.jsonl", "training_curves.png"} <= names
    assert not model.with_name("model.incomplete").exists()
    meta = json.loads((model / "model.json").read_text())
    with open_store(store) as s:
        assert meta["store_fingerprint"] == s.fingerprint
    assert meta["backbone"] == IDENTITY and meta["wake_word"] == "hey wake"
    assert meta["fit"]["width"] == SMALL.width and meta["head"]["seq_len"] == 8
    history = read_metrics_log(model / "metrics.jsonl")
    assert [r["epoch"] for r in history] == list(range(1, len(history) + 1))
    assert {"train_loss", "val_loss", "accuracy", "precision", "recall", "f1"} <= set(history[0])
    assert (model / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_split_json_keeps_augmented_copies_with_parents(fitted: tuple[Path, Path]) -> None:
    _, model = fitted
    split = json.loads((model / "split.json").read_text())
    assert set(split) == {"seed", "val_fraction", "train_groups", "val_groups"}
    assert "augment" not in split["train_groups"] + split["val_groups"]  # copies joined their parents' groups
    assert not set(split["train_groups"]) & set(split["val_groups"])


def test_save_load_round_trip_gives_same_scores(fitted: tuple[Path, Path]) -> None:
    store, model = fitted
    loaded = load_model(model)
    with open_store(store) as s:
        sequence = torch.from_numpy(s.load(pooled=False).sequence[:20]).float()
    again = load_model(model)
    with torch.no_grad():
        assert torch.equal(loaded.head(sequence), again.head(sequence))
    assert loaded.backbone == IDENTITY


def test_init_fine_tunes_and_refuses_another_backbone(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    store, model = fitted
    tuned, result = run_fit(store, tmp_path / "tuned", SMALL.replace(max_epochs=2), device="cpu", init=model,
                            progress=False)
    assert json.loads((tuned / "model.json").read_text())["init_from"] == str(model.resolve())
    other_identity = {**IDENTITY, "name": "another"}
    other = make_store(tmp_path / "other.zarr", n=120, identity=other_identity, augmented=False)
    with pytest.raises(StoreMismatchError, match="another"):
        run_fit(other, tmp_path / "bad", SMALL, device="cpu", init=model, progress=False)


def test_init_of_an_ensemble_keeps_its_head_shape(tmp_path: Path) -> None:
    """Fine-tuning a two-member model under another --width writes a loadable model of the init's shape."""
    store = make_store(tmp_path / "store.zarr", n=120, augmented=False)
    base, _ = run_fit(store, tmp_path / "base", SMALL.replace(max_epochs=1, members=2), device="cpu",
                      progress=False)
    wider = SMALL.replace(max_epochs=1, members=2, width=24, hidden=(8,), tcn_layers=2, attention=False)
    tuned, _ = run_fit(store, tmp_path / "tuned", wider, device="cpu", init=base, progress=False)
    model = load_model(tuned)
    assert model.head.config == load_model(base).head.config
    assert (model.meta["fit"]["width"], model.meta["fit"]["hidden"]) == (SMALL.width, list(SMALL.hidden))
    assert model.meta["fit"]["max_epochs"] == 1


def test_refuses_existing_output_and_missing_store(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    store, model = fitted
    with pytest.raises(WakebuilderError, match="--overwrite"):
        run_fit(store, model, SMALL, device="cpu", progress=False)
    with pytest.raises(StoreError):
        run_fit(tmp_path / "nothing.zarr", tmp_path / "m", SMALL, device="cpu", progress=False)


def test_an_out_that_cannot_be_written_is_refused_before_training(fitted: tuple[Path, Path], tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """An --out another writer holds (or whose folder refuses the lock file: read-only, no permission) failed only
    after the whole training; it now fails before the stores are read."""
    import wakebuilder.train.fit as fit
    from wakebuilder.atomic import writer_lock
    from wakebuilder.errors import LockedError

    def trained(*args: object, **kwargs: object) -> None:
        raise AssertionError("trained before the --out was checked")

    monkeypatch.setattr(fit, "_fit_stores", trained)
    store, _ = fitted
    with writer_lock(tmp_path / "m"), pytest.raises(LockedError, match="m"):
        run_fit(store, tmp_path / "m", config=SMALL, device="cpu", progress=False)
    assert not (tmp_path / "m").exists() and not (tmp_path / "m.incomplete").exists()


def test_the_out_is_locked_while_training_so_a_second_writer_fails_at_once(fitted: tuple[Path, Path], tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """The lock was only tried before training: a second fit of the same --out started meanwhile trained too, and
    one of them failed (or replaced the other) at the end. It is now held from the start to the rename."""
    import wakebuilder.train.fit as fit
    from wakebuilder.atomic import writer_lock
    from wakebuilder.errors import LockedError

    real, seen = fit._fit_stores, []

    def training(*args: object, **kwargs: object) -> object:
        with pytest.raises(LockedError, match="m"), writer_lock(tmp_path / "m"):  # a second writer, meanwhile
            pass
        seen.append(True)
        return real(*args, **kwargs)

    monkeypatch.setattr(fit, "_fit_stores", training)
    store, _ = fitted
    run_fit(store, tmp_path / "m", config=SMALL, device="cpu", progress=False)
    assert seen == [True] and load_model(tmp_path / "m").head is not None
    with writer_lock(tmp_path / "m"):  # released after the rename
        pass


def test_stream_flag_streams_from_the_store(fitted: tuple[Path, Path], tmp_path: Path) -> None:
    store, _ = fitted
    out, result = run_fit(store, tmp_path / "streamed", SMALL.replace(max_epochs=2), device="cpu",
                          stream=True, progress=False)
    assert result.mode == "stream"
    assert json.loads((out / "model.json").read_text())["training"]["mode"] == "stream"


def test_empty_store_is_a_training_error(tmp_path: Path) -> None:
    from wakebuilder.errors import TrainingError

    with open_store(tmp_path / "empty.zarr", "a", spec=StoreSpec(backbone=IDENTITY, seq_len=8, dim=32)):
        pass
    with pytest.raises(TrainingError, match="empty"):
        run_fit(tmp_path / "empty.zarr", tmp_path / "m", SMALL, device="cpu", progress=False)
    assert not (tmp_path / "m").exists()


def test_training_arrays_are_what_run_fit_trains_on(fitted: tuple[Path, Path]) -> None:
    """fit_head on training_arrays reproduces run_fit's head: same groups, split and sequences."""
    from wakebuilder.train.fit import fit_head, training_arrays

    store, model = fitted
    with open_store(store) as s:
        arrays = training_arrays(s)
        assert arrays.sequence.shape == (len(s), 8, 32)
    assert "augment" not in set(arrays.group)  # copies follow their parents' groups
    result = fit_head(arrays, SMALL.replace(max_epochs=6), device="cpu", progress=False)
    saved = load_model(model).head.state_dict()
    for name, value in result.head.state_dict().items():
        torch.testing.assert_close(value.cpu(), saved[name])


@pytest.mark.parametrize("stream", [False, True])
def test_batch_size_is_capped_by_the_store(tmp_path: Path, stream: bool) -> None:
    store = make_store(tmp_path / "store.zarr", n=80, augmented=False)
    config = SMALL.replace(batch_size=50_000, max_epochs=1)  # uncapped: 50,000-row batches of 80 clips
    model, result = run_fit(store, tmp_path / "m", config, device="cpu", stream=stream, progress=False)
    recorded = json.loads((model / "model.json").read_text())["fit"]["batch_size"]
    assert recorded == 80 and len(result.history) == 1


def test_the_wake_word_is_the_positives_text_without_casing_or_punctuation() -> None:
    import numpy as np

    from wakebuilder.train.fit import _wake_word

    texts = ["Computer?", "computer", "Computer.", "hey, jarvis", "the computer room"]
    assert _wake_word(texts, np.array([1, 1, 1, 1, 0])) == "computer"
    assert _wake_word(["", "  "], np.array([1, 1])) == ""


@pytest.mark.parametrize("where", ["store", "store's folder", "init", "init's folder"])
def test_an_out_that_is_or_holds_an_input_is_refused_even_with_overwrite(where: str, tmp_path: Path) -> None:
    """--overwrite replaces --out: an --out that is the store, --init's model or a folder holding one would delete it
    (wb fit --store data/store.zarr --out data --overwrite)."""
    from wakebuilder.errors import ConfigError

    store = make_store(tmp_path / "data" / "store.zarr", n=80, augmented=False)
    init, _ = run_fit(store, tmp_path / "runs" / "base", SMALL.replace(max_epochs=1), device="cpu", progress=False)
    out = {"store": store, "store's folder": store.parent, "init": init, "init's folder": init.parent}[where]
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=r"^--out .*holds .*choose another --out"):
        run_fit(store, out, SMALL.replace(max_epochs=1), device="cpu", init=init, overwrite=True, progress=False)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


def test_init_of_another_member_count_is_refused_before_the_store_is_read(fitted: tuple[Path, Path], tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """--init of a one-head model under --members 2 is refused before the store's sequences are loaded (minutes for
    a large store), not after."""
    from wakebuilder.errors import ConfigError
    from wakebuilder.train import fit as fit_module

    store, model = fitted

    def no_load(*args: object, **kwargs: object) -> None:
        raise AssertionError("the store's sequences were loaded before --members was checked")

    monkeypatch.setattr(fit_module, "_memory_or_stream", no_load)
    with pytest.raises(ConfigError, match=r"--init holds 1 head\(s\) but --members is 2; pass --members 1"):
        run_fit(store, tmp_path / "m", SMALL.replace(members=2), device="cpu", init=model, progress=False)
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("label", [None, 0, 1])
def test_an_empty_or_one_class_store_is_an_error_naming_it(label: int | None, tmp_path: Path) -> None:
    """The error names the store that cannot train a head (of several --store, which they are) and the fix."""
    from wakebuilder.errors import TrainingError

    path = tmp_path / "store.zarr"
    with open_store(path, "a", spec=StoreSpec(backbone=IDENTITY, seq_len=8, dim=32)) as store:
        if label is not None:
            arrays = planted(40)
            records = [ClipRecord(id=f"c{i}", path=f"c{i}.wav", label=label, kind="tts", group=f"g{i % 4}",
                                  text="hey wake" if label else "other") for i in range(40)]
            store.append(records, arrays.sequence.mean(axis=1), arrays.sequence)
    missing = {None: "empty", 0: "no positives", 1: "no negatives"}[label]
    with pytest.raises(TrainingError, match=rf"^{path}: .*{missing}.*(wb embed|embed both)"):
        run_fit(path, tmp_path / "m", SMALL, device="cpu", progress=False)
    assert not (tmp_path / "m").exists()
