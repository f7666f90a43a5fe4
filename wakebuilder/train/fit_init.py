"""``wb fit --init``: fine-tune a head that starts from another model directory's, shape and settings included.

``start_from`` loads the model (refusing an ensemble, or a head of another backbone or input shape than the
stores') and gives the fit's config that head's settings, so the recorded settings are the head's.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from wakebuilder.errors import ConfigError, StoreMismatchError
from wakebuilder.fingerprint import canonical_json
from wakebuilder.modeldir import LoadedModel, load_model
from wakebuilder.store.base import StoreSpec
from wakebuilder.train.fit_config import HEAD_FIELDS, NO_INIT_FOR_CENTROIDS, FitConfig

if TYPE_CHECKING:
    from wakebuilder.train.head import HeadConfig

log = logging.getLogger(__name__)


def start_from(init: str | os.PathLike[str] | None, spec: StoreSpec, config: FitConfig
               ) -> tuple[LoadedModel | None, FitConfig]:
    """``init``'s model (None without one) and ``config`` with its head's settings.

    Raises:
        ConfigError: ``init`` is an ensemble or a centroids head, holds another number of heads than
            ``config.members``, or ``config`` asks for a centroids head (nothing to fine-tune).
        StoreMismatchError: its head was trained on another backbone or input shape than ``spec``'s.
    """
    if init is None:
        return None, config
    if config.head == "centroids":
        raise ConfigError(f"--init {init}: {NO_INIT_FOR_CENTROIDS}")
    loaded = _load_init(init, spec)
    return loaded, _with_init_head(config, loaded.head.config, init)


def _load_init(init: str | os.PathLike[str], spec: StoreSpec) -> LoadedModel:
    loaded = load_model(init)
    if loaded.meta.get("ensemble"):
        raise ConfigError(f"--init {init}: an ensemble of calibrated models (wb ensemble) is not fine-tuned as "
                          "one head; pass one of its members")
    if canonical_json(loaded.backbone) != canonical_json(spec.backbone):
        raise StoreMismatchError(
            f"--init {init}: its head was trained on backbone {loaded.backbone.get('name')!r} "
            f"({loaded.backbone.get('spec')!r}, window {loaded.backbone.get('window_s')} s) but the store "
            f"holds {spec.backbone.get('name')!r} ({spec.backbone.get('spec')!r}, window "
            f"{spec.backbone.get('window_s')} s); fine-tune on a store from the same backbone"
        )
    head_cfg = loaded.head.config
    if head_cfg.kind == "centroids":
        raise ConfigError(f"--init {init}: a centroids head (computed in closed form, no weights trained) is not "
                          "fine-tuned; fit it again with --head centroids")
    if (head_cfg.seq_len, head_cfg.input_dim) != (spec.seq_len, spec.dim):
        raise StoreMismatchError(
            f"--init {init}: head expects sequences ({head_cfg.seq_len}, {head_cfg.input_dim}), "
            f"the store holds ({spec.seq_len}, {spec.dim})"
        )
    return loaded


def _with_init_head(config: FitConfig, head: HeadConfig, init: str | os.PathLike[str]) -> FitConfig:
    """``config`` with ``--init``'s head settings, logging those that differ from the ones asked for.

    Raises:
        ConfigError: ``--members`` is not ``--init``'s head count (checked before the store's sequences are loaded).
    """
    if head.members != config.members:
        raise ConfigError(f"--init holds {head.members} head(s) but --members is {config.members}; "
                          f"pass --members {head.members} to fine-tune it")
    kept = [f"{name} {getattr(head, name)!r}" for name in HEAD_FIELDS
            if getattr(config, name) != getattr(head, name)]
    if kept:
        log.info("fit: --init %s: fine-tuning keeps its head's %s", init, ", ".join(kept))
    return config.with_head_of(head)
