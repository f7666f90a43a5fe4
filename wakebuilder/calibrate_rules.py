"""How ``wb calibrate`` chooses a threshold: its settings, Platt scaling, and the F1 and FA/h rules.

The head's logits are mapped to probabilities with Platt scaling fitted on the
held-out validation groups, ``p = sigmoid((logit - bias) / temperature)``,
by minimising log loss against Platt's smoothed targets ((N+ + 1)/(N+ + 2)
for positives, 1/(N- + 2) for negatives). The smoothing keeps the fit finite
when the validation set is perfectly separated, which is what moves a chosen
threshold from 0.9996 to somewhere in the middle of (0, 1).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from wakebuilder import metrics
from wakebuilder.config import StageConfig
from wakebuilder.errors import ConfigError, TrainingError
from wakebuilder.stream_settings import default_refractory_s
from wakebuilder.streaming import check_stream_settings, hop_samples

OBJECTIVES = ("auto", "f1", "fa-per-hour")
log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True, kw_only=True)
class CalibrateConfig(StageConfig):
    """How the threshold is chosen and how streams are scored.

    ``auto`` (the default) chooses for false accepts per hour on the calibration
    stream when there is one (a wake word is judged by how often it wakes by
    mistake) and by per-clip F1 otherwise.
    """

    objective: str = "auto"
    target_fa_per_hour: float = 0.5
    # FA/h rule only: never below the best per-clip F1 threshold. A synthetic calibration stream is easier than
    # real audio; on realdev the lowest threshold with no false accept on it (0.03 for "happy") woke 145 times
    # an hour, so the stream may raise the threshold above F1's, never lower it.
    not_below_f1: bool = False
    # Every rule: never below this. For a backbone whose synthetic calibration does not bind the threshold: with
    # word-embedding the calibration stream has no false accept above the F1 rule's threshold, which lands at
    # 0.27-0.5 and real speech wakes it 15-50 times an hour (research/REAL_TRANSFER.md, rounds 22-23).
    min_threshold: float = 0.0
    hop_s: float = 0.1
    # None: the model's window, at least 1 s (``resolved``; ``stream_settings.default_refractory_s`` says why), which
    # calibration.json then records, so wb detect runs with the period the threshold was chosen with.
    refractory_s: float | None = None
    smooth: int = 1
    batch_size: int = 64
    device: str = "auto"
    # The AST's compute precision over the streams (auto: the one model.json records for the stores the head was fit
    # on, else bf16 on CUDA and fp32 elsewhere: ``calibrate.stream_precision``), so a head is calibrated on a pass of
    # the precision it was fit on.
    dtype: str = "auto"
    # Keep the backbone's pass over each stream in the cache (``stream_cache``): a later head (another phrase,
    # seed or refit) on the same stream runs only the head. Costs disk: about 50 MB per 10 minutes for
    # speech-embedding.
    cache_streams: bool = False

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise ConfigError(f"--objective {self.objective!r}: expected one of {', '.join(OBJECTIVES)}")
        if self.target_fa_per_hour <= 0:
            raise ConfigError(f"--target-fa-per-hour {self.target_fa_per_hour}: must be > 0")
        if not 0.0 <= self.min_threshold < 1.0:  # NaN too
            raise ConfigError(f"--min-threshold {self.min_threshold}: must be at least 0 and below 1")
        hop_samples(self.hop_s)
        check_stream_settings(smooth=self.smooth, refractory_s=self.refractory_s)

    def resolved(self, window_samples: int) -> CalibrateConfig:
        """These settings for a model of ``window_samples`` windows: a refractory period not given is its window,
        at least 1 s (``default_refractory_s``)."""
        if self.refractory_s is not None:
            return self
        return self.replace(refractory_s=default_refractory_s(window_samples))


def fit_platt(logits: np.ndarray, labels: np.ndarray, *, where: str = "validation") -> tuple[float, float]:
    """Fit ``(temperature, bias)`` of ``sigmoid((logit - bias) / temperature)`` (see module docstring).

    ``where`` names the clips in errors (the model and its validation split).

    Raises:
        TrainingError: one class only, logits that are all equal, or logits that rank negatives above positives.
    """
    from scipy.optimize import minimize

    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(labels).astype(np.int64)
    n_pos, n_neg = int((y == 1).sum()), int((y == 0).sum())
    if n_pos == 0 or n_neg == 0:
        raise TrainingError(f"{where}: calibration needs positives and negatives, it has {n_pos} positives and "
                            f"{n_neg} negatives; fit with a --val-fraction that leaves both in validation")
    mu, sd = float(z.mean()), float(z.std())
    if not np.isfinite([mu, sd]).all() or sd <= 1e-9 * max(1.0, abs(mu)):
        raise TrainingError(f"{where}: the head gives every clip the same logit ({mu:.4g}), so no threshold "
                            "tells the wake word from negatives; retrain the head")
    target = np.where(y == 1, (n_pos + 1) / (n_pos + 2), 1 / (n_neg + 2))
    x = (z - mu) / sd

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        u = params[0] * x + params[1]
        value = np.mean(target * np.logaddexp(0, -u) + (1 - target) * np.logaddexp(0, u))
        residual = (1 / (1 + np.exp(-u)) - target) / x.size
        return float(value), np.array([np.sum(residual * x), np.sum(residual)])

    result = minimize(loss, np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
    a, c = float(result.x[0]), float(result.x[1])
    if not np.isfinite([a, c]).all() or a <= 0:
        raise TrainingError(
            f"{where}: its logits do not separate wake word from negatives (Platt slope <= 0); retrain the head"
        )
    temperature = sd / a
    return temperature, mu - c * temperature


def resolved_objective(config: CalibrateConfig, *, has_stream: bool) -> str:
    """``f1`` or ``fa-per-hour``: what ``auto`` means with or without a calibration stream."""
    if config.objective != "auto":
        return config.objective
    return "fa-per-hour" if has_stream else "f1"


def choose_threshold(
    table: dict[str, np.ndarray], fa_h: np.ndarray | None, config: CalibrateConfig
) -> float:
    """Seed rule (best per-clip F1) or field rule (``fa_rule_threshold``; with ``not_below_f1``, not below the
    F1 rule's); either not below ``min_threshold``.

    With ``auto`` a target no threshold reaches takes the threshold of the fewest false accepts per hour, with
    a warning; asked for explicitly it is an error.
    """
    objective = resolved_objective(config, has_stream=fa_h is not None)
    f1_threshold = metrics.best_f1_threshold(table)
    if objective == "f1":
        return max(f1_threshold, config.min_threshold)
    if fa_h is None:
        raise ConfigError("--objective fa-per-hour needs continuous negative audio: pass --stream AUDIO")
    chosen = fa_rule_threshold(fa_h, table["threshold"], config.target_fa_per_hour,
                               floor=f1_threshold if config.not_below_f1 else 0.0, unbound=f1_threshold,
                               strict=config.objective != "auto")
    return max(chosen, config.min_threshold)


def fa_rule_threshold(fa_h: np.ndarray, thresholds: np.ndarray, target: float, *, floor: float = 0.0,
                      unbound: float, strict: bool = False) -> float:
    """The lowest of ``thresholds`` from which every higher one has at most ``target`` FA/h, not below ``floor``.

    A stream with no more than ``target`` FA/h even at the lowest threshold (silence, or audio nothing like
    the wake word) does not bound the threshold: it takes ``unbound`` (the per-clip F1 rule's), with a
    warning, rather than the bottom of the grid. A target no threshold reaches takes the threshold of the
    fewest false accepts per hour, with a warning (``unbound`` again where that is the bottom of the grid: as
    many at every threshold); with ``strict`` it is an error.
    """
    chosen, bound = metrics.lowest_threshold_meeting(fa_h, thresholds, target), target
    if chosen is None:
        fewest = float(fa_h[-1])  # the highest threshold's: every lower one's bound is at least as high
        if strict:
            raise ConfigError(f"--target-fa-per-hour {target}: no threshold reaches it (lowest FA/h "
                              f"{fewest:.3f}); raise the target or train with more negatives")
        log.warning("no threshold reaches %.3g FA/h on the calibration stream; taking the fewest (%.3f FA/h)",
                    target, fewest)
        chosen, bound = float(metrics.lowest_threshold_meeting(fa_h, thresholds, fewest)), fewest
    if chosen <= float(thresholds[0]):  # as many at every threshold (silence, or a false accept scoring 1.0)
        log.warning("the calibration stream has at most %.3g FA/h at every threshold, so it does not bound the "
                    "threshold; taking the per-clip F1 rule's (%.3f)", bound, unbound)
        return max(unbound, floor)
    return max(chosen, floor)
