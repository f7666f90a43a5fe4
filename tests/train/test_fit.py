from __future__ import annotations

import dataclasses
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

from tests.train.conftest import SMALL, planted
from tests.train.test_data import FakeStore
from wakebuilder.errors import ConfigError, TrainingError
from wakebuilder.train.fit import FitConfig, fit_head


def test_planted_signal_is_learned() -> None:
    result = fit_head(planted(600, signal=0.6), SMALL)
    assert result.best["f1"] > 0.9
    assert result.mode == "memory" and not result.head.training


def test_no_signal_is_not_learned() -> None:
    result = fit_head(planted(600, signal=0.0), SMALL)
    assert result.best["f1"] < 0.75


def test_early_stopping_on_a_plateau() -> None:
    config = SMALL.replace(max_epochs=40, patience=3, lr=1e-7)  # nothing moves: val loss plateaus at once
    result = fit_head(planted(300), config)
    assert result.stopped_early
    assert len(result.history) == result.best_epoch + 3 < 40


def test_best_epoch_is_restored() -> None:
    config = SMALL.replace(max_epochs=8, patience=8, min_delta=0.0)
    arrays = planted(400, signal=0.6)
    result = fit_head(arrays, config)
    train, val = result.split.masks(arrays.group)
    with torch.no_grad():
        logits = result.head(torch.from_numpy(arrays.sequence[val]).float())
    from wakebuilder.train.losses import class_balance_weights, focal_loss

    labels = torch.from_numpy(arrays.label[val].astype(np.float32))
    loss = focal_loss(logits, labels, weights=class_balance_weights(labels))
    assert float(loss) == pytest.approx(result.best["val_loss"], rel=1e-4)
    assert result.best["val_loss"] == min(r["val_loss"] for r in result.history)


def test_same_data_and_seed_give_identical_weights() -> None:
    arrays = planted(300)
    config = SMALL.replace(max_epochs=3)
    a = fit_head(arrays, config).head.state_dict()
    before = torch.random.get_rng_state()
    b = fit_head(arrays, config).head.state_dict()
    assert torch.equal(before, torch.random.get_rng_state())  # the caller's RNG is left alone
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = fit_head(arrays, config.replace(seed=1)).head.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_a_fit_gives_the_same_head_while_another_fit_runs_in_another_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's random generator and deterministic-algorithms switch are process-wide: two fits at once in two
    threads (run_recipe in a ThreadPoolExecutor) must not draw from one stream or reset it under each other.

    Each fit's first epoch waits at a two-party barrier: without the library's lock the second fit joins the first
    inside its seeded section (its manual_seed reseeds the stream the first draws dropout from), deterministically;
    with it the first waits out the timeout alone, finishes, and only then does the second start.
    """
    from wakebuilder.train import loop

    arrays = planted(300)
    configs = [SMALL.replace(max_epochs=3, frame_dropout=0.2, seed=seed) for seed in (0, 5)]
    alone = [fit_head(arrays, config).head.state_dict() for config in configs]
    real_epoch, barrier, waited = loop._train_epoch, threading.Barrier(2, timeout=3.0), threading.local()

    def first_epoch_meets_the_other_fit(*args: object, **kwargs: object) -> float:
        if not getattr(waited, "once", False):
            waited.once = True
            try:
                barrier.wait()
            except threading.BrokenBarrierError:  # alone in the seeded section: what the lock should give
                pass
        return real_epoch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(loop, "_train_epoch", first_epoch_meets_the_other_fit)
    deterministic = torch.are_deterministic_algorithms_enabled()
    with ThreadPoolExecutor(max_workers=2) as pool:
        together = [f.result().head.state_dict() for f in [pool.submit(fit_head, arrays, c) for c in configs]]
    for lone, other in zip(alone, together, strict=True):
        assert all(torch.equal(lone[k], other[k]) for k in lone), "a fit changed while another ran in a thread"
    assert torch.are_deterministic_algorithms_enabled() == deterministic


def test_streaming_learns_too() -> None:
    arrays = planted(600, signal=0.6)
    meta_only = dataclasses.replace(arrays, sequence=None)
    store = FakeStore(arrays)
    store.spec = type("Spec", (), {"seq_len": 8, "dim": 32})()
    result = fit_head(meta_only, SMALL, stream_source=store)
    assert result.mode == "stream" and result.best["f1"] > 0.9


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        (planted(0), "empty"),
        (dataclasses.replace(planted(60), label=np.zeros(60, dtype=np.int8)), "only one class"),
        (dataclasses.replace(planted(60), group=np.array(["one"] * 60)), "too few groups"),
    ],
    ids=["empty", "one-class", "one-group"],
)
def test_bad_input_is_a_training_error(arrays: object, message: str) -> None:
    with pytest.raises(TrainingError, match=message):
        fit_head(arrays, SMALL)


def test_nan_embedding_is_a_training_error() -> None:
    arrays = planted(60)
    sequence = arrays.sequence.copy()
    sequence[5, 0, 0] = np.inf
    with pytest.raises(TrainingError, match="NaN or infinite"):
        fit_head(dataclasses.replace(arrays, sequence=sequence), SMALL)


def test_a_diverging_fit_is_a_training_error_not_a_nan_model() -> None:
    """A learning rate that blows the weights up gives NaN losses from the first epoch: no model is written."""
    with pytest.raises(TrainingError, match="diverged in epoch 1.*lower --lr"):
        fit_head(planted(300), SMALL.replace(lr=1e30, max_epochs=4))


def test_a_fit_that_diverges_later_keeps_its_best_finite_epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    import wakebuilder.train.loop as loop

    real, calls = loop.evaluate_head, []

    def nan_from_the_third(*args: object, **kwargs: object) -> dict[str, float]:
        calls.append(1)
        record = real(*args, **kwargs)  # type: ignore[arg-type]
        return {**record, "val_loss": float("nan")} if len(calls) >= 3 else record

    monkeypatch.setattr(loop, "evaluate_head", nan_from_the_third)
    result = fit_head(planted(300), SMALL.replace(max_epochs=8, patience=8, min_delta=0.0))
    assert len(result.history) == 3 and result.best_epoch in (1, 2) and np.isfinite(result.best["val_loss"])


def test_config_round_trip_and_validation() -> None:
    config = FitConfig(hidden=(64,), tcn=False, seed=3)
    assert FitConfig.from_dict(config.to_dict()) == config
    head = config.head_config(12, 768)
    assert (head.seq_len, head.input_dim, head.hidden, head.tcn) == (12, 768, (64,), False)
    with pytest.raises(ConfigError, match="dropout"):
        FitConfig(dropout=1.0)


def test_members_are_independent_seeds_and_the_logit_is_their_mean() -> None:
    from wakebuilder.train.head import HeadEnsemble

    arrays = planted(400, signal=0.6)
    config = SMALL.replace(max_epochs=4, members=3)
    result = fit_head(arrays, config)
    assert isinstance(result.head, HeadEnsemble) and len(result.members) == 3
    # member k is the head that seed k trains on the ensemble's one split
    singles = [fit_head(arrays, config.replace(members=1, seed=s), split=result.split).head for s in (0, 1, 2)]
    for member, single in zip(result.head.members, singles, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(member.state_dict().values(), single.state_dict().values()))
    x = torch.from_numpy(arrays.sequence[:50]).float()
    with torch.no_grad():
        mean = torch.stack([s(x) for s in singles]).mean(0)
        torch.testing.assert_close(result.head(x), mean)
        assert not torch.allclose(singles[0](x), singles[1](x))
    assert set(result.best) >= {"val_loss", "f1"} and result.best is result.ensemble_val
    log = result.metrics_log()
    assert {r["member"] for r in log} == {0, 1, 2} and len(log) == sum(len(m.history) for m in result.members)


def test_init_must_match_the_member_count() -> None:
    arrays = planted(300, signal=0.6)
    single = fit_head(arrays, SMALL.replace(max_epochs=2)).head
    with pytest.raises(ConfigError, match="--members 1"):
        fit_head(arrays, SMALL.replace(max_epochs=2, members=2), init_head=single)


def test_input_and_frame_dropout_act_in_training_only() -> None:
    from wakebuilder.train.head import HeadConfig, WakeHead

    torch.manual_seed(0)
    head = WakeHead(HeadConfig(input_dim=32, seq_len=8, width=16, input_dropout=0.3, frame_dropout=0.5))
    sequence = torch.randn(64, 8, 32) + 3.0  # no value is zero before dropout
    dropped = head.train().drop_input(sequence)
    zero_steps = (dropped == 0).all(dim=2)
    assert 0.35 < float(zero_steps.float().mean()) < 0.65  # whole time steps are dropped
    kept = dropped[~zero_steps]  # (steps, 32): values are dropped (0) or scaled by 1 / (1 - 0.3)
    scaled = torch.isclose(kept, sequence[~zero_steps] / 0.7)
    assert bool((scaled | (kept == 0)).all()) and 0.2 < float((kept == 0).float().mean()) < 0.4
    plain = WakeHead(HeadConfig(input_dim=32, seq_len=8, width=16))
    plain.load_state_dict(head.state_dict())
    assert torch.equal(head.eval()(sequence), plain.eval()(sequence))  # no effect at inference


def test_input_dropout_is_recorded_and_validated() -> None:
    config = SMALL.replace(max_epochs=2, input_dropout=0.4, frame_dropout=0.2)
    head = fit_head(planted(200), config).head
    assert (head.config.input_dropout, head.config.frame_dropout) == (0.4, 0.2)
    with pytest.raises(ConfigError, match="frame_dropout"):
        FitConfig(frame_dropout=1.0)


@pytest.mark.parametrize("bad", [{"val_fraction": 1.0}, {"val_fraction": 0.0}, {"val_fraction": float("nan")},
                                 {"weight_decay": -0.1}, {"min_delta": -1.0}, {"mixup_alpha": -0.5},
                                 {"mixup_alpha": float("nan")}, {"tcn_kernel": -1}])
def test_a_config_out_of_the_cli_bounds_is_refused_when_made(bad: dict) -> None:
    """What wb fit's options refuse, FitConfig refuses too: fit_head and the recipe build it without the CLI, and
    such a value otherwise failed minutes later (the split) or deep in torch (AdamW, Conv1d, Beta draws)."""
    (name, value), = bad.items()
    with pytest.raises(ConfigError, match=rf"^FitConfig: invalid {name}="):
        FitConfig(**bad)
