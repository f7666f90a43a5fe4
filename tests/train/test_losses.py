from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from wakebuilder.errors import ConfigError
from wakebuilder.train.losses import binary_metrics, class_balance_weights, draw_mixup, focal_loss, mixup


def test_focal_gamma_zero_is_alpha_weighted_bce() -> None:
    logits = torch.tensor([-3.0, -0.5, 0.0, 0.7, 4.0])
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    alpha = 0.8
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    expected = (torch.where(targets == 1, alpha, 1 - alpha) * bce).mean()
    assert torch.allclose(focal_loss(logits, targets, alpha=alpha, gamma=0.0), expected, atol=1e-6)


def test_focal_alpha_weighs_the_positive_class() -> None:
    logits = torch.zeros(2)
    pos_only = focal_loss(logits, torch.ones(2), alpha=0.9, gamma=2.0)
    neg_only = focal_loss(logits, torch.zeros(2), alpha=0.9, gamma=2.0)
    assert pos_only.item() == pytest.approx(9 * neg_only.item(), rel=1e-5)
    # gamma 2 at p = 0.5: 0.25 * log 2 * alpha
    assert pos_only.item() == pytest.approx(0.9 * 0.25 * np.log(2), rel=1e-5)


def test_focal_down_weights_easy_examples() -> None:
    easy, hard = torch.tensor([4.0]), torch.tensor([-1.0])
    target = torch.ones(1)
    ratio_focal = focal_loss(easy, target, gamma=2.0) / focal_loss(hard, target, gamma=2.0)
    ratio_bce = focal_loss(easy, target, gamma=0.0) / focal_loss(hard, target, gamma=0.0)
    assert ratio_focal < ratio_bce / 10


def test_focal_soft_targets_mix_the_two_losses() -> None:
    logits = torch.tensor([0.3, -1.2])
    soft = focal_loss(logits, torch.full((2,), 0.25))
    mix = 0.25 * focal_loss(logits, torch.ones(2)) + 0.75 * focal_loss(logits, torch.zeros(2))
    assert torch.allclose(soft, mix, atol=1e-6)


@pytest.mark.parametrize("gamma", [0.25, 0.5, 2.0])
def test_focal_gradient_stays_finite_on_saturated_logits(gamma: float) -> None:
    # A confident, correct head saturates the sigmoid (p == 1.0 in float32 from logit ~17); a gamma
    # below 1 (FitConfig allows any gamma >= 0) must not turn that into an infinite gradient.
    logits = torch.tensor([20.0, -20.0, 40.0, -40.0, 0.5], requires_grad=True)
    targets = torch.tensor([1.0, 0.0, 0.7, 0.3, 1.0])
    loss = focal_loss(logits, targets, alpha=0.25, gamma=gamma)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    reference = logits.detach().double()
    p, y = torch.sigmoid(reference), targets.double()
    bce_pos, bce_neg = -F.logsigmoid(reference), -F.logsigmoid(-reference)
    expected = (y * 0.25 * (1 - p) ** gamma * bce_pos + (1 - y) * 0.75 * p**gamma * bce_neg).mean()
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)


def test_focal_rejects_bad_alpha() -> None:
    with pytest.raises(ConfigError):
        focal_loss(torch.zeros(1), torch.zeros(1), alpha=1.5)


def test_mixup_lambda_one_is_identity() -> None:
    x, y = torch.randn(4, 3, 5), torch.tensor([1.0, 0.0, 1.0, 0.0])
    mixed, soft = mixup(x, y, torch.ones(4), torch.tensor([3, 2, 1, 0]))
    assert torch.equal(mixed, x) and torch.equal(soft, y)


def test_mixup_is_a_convex_combination() -> None:
    x, y = torch.randn(3, 2, 4), torch.tensor([1.0, 0.0, 0.0])
    lam, perm = torch.tensor([0.25, 0.5, 1.0]), torch.tensor([1, 2, 0])
    mixed, soft = mixup(x, y, lam, perm)
    assert torch.allclose(mixed[0], 0.25 * x[0] + 0.75 * x[1])
    assert torch.allclose(mixed[1], 0.5 * x[1] + 0.5 * x[2])
    assert torch.allclose(soft, torch.tensor([0.25, 0.0, 0.0]))


def test_draw_mixup_is_seeded_and_in_range() -> None:
    lam1, perm1 = draw_mixup(64, 0.5, np.random.default_rng(3), "cpu")
    lam2, perm2 = draw_mixup(64, 0.5, np.random.default_rng(3), "cpu")
    assert torch.equal(lam1, lam2) and torch.equal(perm1, perm2)
    assert float(lam1.min()) >= 0.0 and float(lam1.max()) <= 1.0
    assert sorted(perm1.tolist()) == list(range(64))
    # Beta(0.5, 0.5) is U-shaped: most draws near 0 or 1
    assert float(((lam1 < 0.2) | (lam1 > 0.8)).float().mean()) > 0.4
    off, _ = draw_mixup(8, 0.0, np.random.default_rng(0), "cpu")
    assert torch.equal(off, torch.ones(8))


def test_class_balance_weights_give_each_class_half() -> None:
    y = torch.tensor([1.0, 0.0, 0.0, 0.0])
    w = class_balance_weights(y)
    assert float(w[y == 1].sum()) == pytest.approx(0.5)
    assert float(w[y == 0].sum()) == pytest.approx(0.5)


def test_binary_metrics_golden() -> None:
    logits = np.array([2.0, 1.0, -1.0, 3.0, -2.0])  # predicted 1, 1, 0, 1, 0
    labels = np.array([1, 0, 1, 1, 0])
    m = binary_metrics(logits, labels)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["f1"] == pytest.approx(2 / 3)
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert binary_metrics(np.array([-1.0]), np.array([0]))["f1"] == 0.0
