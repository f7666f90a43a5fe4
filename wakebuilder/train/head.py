"""The wake-word head: a small network over the backbone's time sequence, or two centroids.

(training only: dropout of embedding values and of whole time steps) -> input
LayerNorm -> projection to a small width -> optional TCN (dilated
temporal convolutions with residuals) -> optional squeeze-and-excitation ->
attention pooling over time (or mean pooling) -> MLP -> one logit.
With ``members > 1`` the head is an ensemble of that many such heads: trained
independently (other seeds) on the same split, whose logits are averaged (``combine="logit"``,
``wb fit --members``), or calibrated models fitted on differently seeded data, whose calibrated
probabilities are averaged (``combine="probability"``, ``wb ensemble``); those may be of other kinds
(``member_kinds``: a network head and a centroids head of one store).

``kind="centroids"`` (``wb fit --head centroids``) is no network: the window's embeddings averaged over time and
scaled to unit length, dotted with the difference of the two classes' unit mean directions, which
``wakebuilder.train.centroids`` computes in closed form from the training split. On word-embedding (one ArcFace
vector a window, which its own library compares by cosine) it ranked real speech better than the network head
(research/centroid_head.py: 198 of 234 real clips at one false accept per model against 186). With ``wb fit
--shrinkage A`` the direction is instead a linear discriminant on the same unit rows, its within-class covariance shrunk
toward the identity by 1 - A, at unit length (204 of 234 at A = 0.2); the head and its export are the same.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from wakebuilder.config import StageConfig
from wakebuilder.errors import ConfigError
from wakebuilder.train.head_kinds import HEAD_KINDS

COMBINE = ("logit", "probability")
# A mean probability this close to 0 or 1 is clamped before its logit (float32 keeps it finite in ONNX too).
PROBABILITY_EPS = 1e-7


@dataclasses.dataclass(frozen=True, kw_only=True)
class HeadConfig(StageConfig):
    """Shape of the head; every switch is recorded with the model."""

    input_dim: int
    seq_len: int
    width: int = 128
    tcn: bool = True
    tcn_layers: int = 2
    tcn_kernel: int = 3
    tcn_dropout: float = 0.0
    se: bool = True
    attention: bool = True
    hidden: tuple[int, ...] = (256, 128)
    dropout: float = 0.5
    input_dropout: float = 0.0
    frame_dropout: float = 0.0
    members: int = 1
    combine: str = "logit"  # an ensemble's rule: mean of logits, or of Platt-calibrated probabilities
    kind: str = "network"  # models saved before the field existed have none, and are networks
    # An ensemble of heads of other kinds (wb ensemble): one kind a member, the shape fields above the network
    # members'. Empty: every member is of ``kind`` (all models of one kind, and all saved before the field).
    member_kinds: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.combine not in COMBINE:
            raise ConfigError(f"head combine {self.combine!r}: expected one of {', '.join(COMBINE)}")
        if self.kind not in HEAD_KINDS:
            raise ConfigError(f"head kind {self.kind!r}: expected one of {', '.join(HEAD_KINDS)}")
        if not self.member_kinds:
            return
        kinds = list(self.member_kinds)
        if self.members < 2 or len(kinds) != self.members:
            raise ConfigError(f"head member_kinds {kinds}: expected one kind per member of an ensemble "
                              f"(members {self.members}), or none when all are of kind {self.kind!r}")
        if unknown := [k for k in kinds if k not in HEAD_KINDS]:
            raise ConfigError(f"head member_kinds {kinds}: kind {unknown[0]!r} is not one of {', '.join(HEAD_KINDS)}")
        if len(set(kinds)) > 1 and self.combine != "probability":  # a cosine difference and a logit: other scales
            raise ConfigError(f"head member_kinds {kinds}: heads of other kinds are combined by their calibrated "
                              f"probabilities (combine 'probability'), not {self.combine!r}")

    def kinds(self) -> tuple[str, ...]:
        """The kind of each member (one for a single head)."""
        return self.member_kinds or (self.kind,) * self.members

    def to_dict(self) -> dict[str, Any]:
        """As ``StageConfig.to_dict``, without an empty ``member_kinds``: a model of one kind writes the model.json
        it wrote before the field (which an older wakebuilder still loads)."""
        data = super().to_dict()
        if not self.member_kinds:
            del data["member_kinds"]
        return data


class TemporalBlock(nn.Module):
    """Dilated 1-D convolution, GELU and a residual connection."""

    def __init__(self, width: int, kernel: int, dilation: int, dropout: float) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2)
        self.norm = nn.BatchNorm1d(width)
        self.drop = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        return x + self.drop(nn.functional.gelu(self.norm(self.conv(x))))


class SqueezeExcite(nn.Module):
    """Channel squeeze-and-excitation over the time axis."""

    def __init__(self, width: int, reduction: int = 4) -> None:
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(width, max(width // reduction, 4)),
            nn.ReLU(),
            nn.Linear(max(width // reduction, 4), width),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T)
        return x * self.fc(x.mean(dim=2)).unsqueeze(2)


class AttentionPool(nn.Module):
    """Softmax-weighted average over time."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.score = nn.Linear(width, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, C)
        weights = torch.softmax(self.score(x).squeeze(-1), dim=1)
        return torch.einsum("bt,btc->bc", weights, x)


class WakeHead(nn.Module):
    """Maps a ``(B, T, D)`` embedding sequence to ``(B,)`` wake-word logits."""

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.norm = nn.LayerNorm(config.input_dim)
        self.project = nn.Linear(config.input_dim, config.width)
        self.tcn = (
            nn.Sequential(
                *[
                    TemporalBlock(config.width, config.tcn_kernel, 2**i, config.tcn_dropout)
                    for i in range(config.tcn_layers)
                ]
            )
            if config.tcn
            else nn.Identity()
        )
        self.se = SqueezeExcite(config.width) if config.se else nn.Identity()
        self.pool = AttentionPool(config.width) if config.attention else None
        layers: list[nn.Module] = []
        width = config.width
        for hidden in config.hidden:
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(config.dropout)]
            width = hidden
        layers.append(nn.Linear(width, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        x = self.project(self.norm(self.drop_input(sequence.float())))  # (B, T, C)
        x = self.se(self.tcn(x.transpose(1, 2))).transpose(1, 2)
        pooled = self.pool(x) if self.pool is not None else x.mean(dim=1)
        return self.mlp(pooled).squeeze(-1)

    def drop_input(self, sequence: torch.Tensor) -> torch.Tensor:
        """Training only: drop embedding values, then whole time steps (a step's vector becomes zeros).

        A regulariser against leaning on fine detail of the few synthetic training voices. Off by default:
        on real recordings (research/REAL_TRANSFER.md) it moved the calibrated operating point,
        more recall and more false accepts, without ranking real clips better.
        """
        if not self.training:
            return sequence
        x = nn.functional.dropout(sequence, self.config.input_dropout) if self.config.input_dropout else sequence
        if self.config.frame_dropout:
            keep = torch.rand(x.shape[0], x.shape[1], 1, device=x.device) >= self.config.frame_dropout
            x = x * keep.to(x.dtype)
        return x


class CentroidHead(nn.Module):
    """Maps a ``(B, T, D)`` embedding sequence to ``(B,)`` logits: its mean over time at unit length, dotted with
    ``direction`` (the buffer ``wakebuilder.train.centroids`` fills: unit positive mean - unit negative mean, or with
    a shrinkage the unit shrunk discriminant).

    The logit is the cosine to the positives' mean direction minus that to the negatives', in [-2, 2] (with a
    shrinkage, the cosine to the discriminant, in [-1, 1]); calibration's Platt mapping scales it to a probability as
    it does a network's logit.
    """

    def __init__(self, config: HeadConfig) -> None:
        super().__init__()
        self.config = config
        self.register_buffer("direction", torch.zeros(config.input_dim))

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        return unit_rows(sequence.float().mean(dim=1)) @ self.direction


def unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows scaled to length one (a zero row stays zero), as research/linear_scores.py's ``unit``."""
    return x / torch.linalg.vector_norm(x, dim=-1, keepdim=True).clamp_min(1e-12)


class HeadEnsemble(nn.Module):
    """Several heads (``WakeHead``s or ``CentroidHead``s); the logit is the mean of theirs, or
    (``combine="probability"``) the logit of the mean of their calibrated probabilities
    ``sigmoid((logit_k - bias_k) / temperature_k)``, with each member's Platt mapping held in the buffers
    ``temperatures`` and ``biases``.

    The members are of one shape and kind, or (``config.member_kinds``, ``wb ensemble`` only: averaged as
    probabilities) of other kinds: the network members of the config's shape, each centroids member taking the
    same sequences. Their weights go in as the members' ``state_dict`` entries (``members.<k>.``), so a loaded
    ensemble is built from the config alone.
    """

    def __init__(self, config: HeadConfig, members: list[nn.Module] | None = None) -> None:
        super().__init__()
        self.config = config
        single = dataclasses.replace(config, members=1, combine="logit", member_kinds=())
        kinds = config.kinds()
        self.members = nn.ModuleList(members if members is not None else
                                     [build_head(single.replace(kind=kind)) for kind in kinds])
        if len(self.members) != config.members:
            raise ValueError(f"HeadEnsemble: config says {config.members} members, got {len(self.members)}")
        if (given := tuple(member.config.kind for member in self.members)) != kinds:
            raise ValueError(f"HeadEnsemble: config says members of kinds {list(kinds)}, got {list(given)}")
        if config.combine == "probability":
            self.register_buffer("temperatures", torch.ones(config.members))
            self.register_buffer("biases", torch.zeros(config.members))

    def forward(self, sequence: torch.Tensor) -> torch.Tensor:
        logits = torch.stack([member(sequence) for member in self.members])  # (members, B)
        if self.config.combine == "logit":
            return logits.mean(dim=0)
        mapped = (logits - self.biases[:, None]) / self.temperatures[:, None]
        p = torch.sigmoid(mapped).mean(dim=0).clamp(PROBABILITY_EPS, 1 - PROBABILITY_EPS)
        return torch.log(p) - torch.log1p(-p)


def build_head(config: HeadConfig) -> WakeHead | CentroidHead | HeadEnsemble:
    """The head a config describes: one ``WakeHead`` or ``CentroidHead`` (its ``kind``), or an ensemble of them when
    ``members > 1``."""
    if config.members != 1:
        return HeadEnsemble(config)
    return CentroidHead(config) if config.kind == "centroids" else WakeHead(config)
