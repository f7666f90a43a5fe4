"""``ensure_bank``: the recipe's bank, built by the first phrase and reused by every later one.

The first call synthesizes the phrase-independent negatives
(``make_bank_negatives``: generic speech of every voice, isolated words,
training-stream windows), their augmented copies and any extra negative
manifests (music, noise, the user's real audio), all under the bank's folder,
and embeds them into the bank. A later call with the same settings finds the
audio marked complete and the clips stored, so it synthesizes and embeds
nothing; a new extra manifest is embedded alone. A phrase then synthesizes and
embeds only its positives and sound-alikes, and fits on its store plus the bank.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wakebuilder.atomic import atomic_write_json, read_json
from wakebuilder.bank.build import BankNegativesConfig, build_bank, make_bank_negatives
from wakebuilder.bank.location import bank_dir

log = logging.getLogger(__name__)
COMPLETE_NAME = "complete.json"


@dataclasses.dataclass(frozen=True)
class BankResult:
    """The bank's store, whether this call synthesized or embedded anything, and its seconds."""

    store: Path
    synthesized: bool
    embedded: int
    clips: int
    seconds: float


def bank_manifests(config: BankNegativesConfig, *, folder: Path, copies: int = 1) -> tuple[list[Path], bool]:
    """The bank's TTS manifests (and ``copies`` augmented copies of each) under ``folder``; made once.

    Returns the manifests and whether they were made now (False: found complete).
    """
    from wakebuilder.data.augment.pipeline import run_augment
    from wakebuilder.data.augment.transforms import AugmentConfig

    complete = folder / COMPLETE_NAME
    if complete.is_file() and read_json(complete).get("config") == config.to_dict():
        return [folder / m for m in read_json(complete)["manifests"]], False
    made = make_bank_negatives(config, out_dir=folder)
    manifests = list(made)
    for manifest in made[:-1] if config.stream_s > 0 else made:  # stream windows are not augmented
        if copies:
            augment = AugmentConfig(copies=copies, seed=config.seed)
            manifests.append(run_augment(manifest, out_dir=f"{manifest.parent}-aug", config=augment))
    atomic_write_json(complete, {"config": config.to_dict(),
                                 "manifests": [str(Path(m).relative_to(folder)) for m in manifests]})
    return manifests, True


def ensure_bank(
    config: BankNegativesConfig, *, backbone: str, window_s: float | None, copies: int = 1,
    extra_manifests: Sequence[str | os.PathLike[str]] = (), cache: str | os.PathLike[str] | None = None,
    device: str = "auto", threads: int = 0,
) -> BankResult:
    """Build the bank of ``backbone`` and ``window_s`` with ``config``'s negatives, or reuse it.

    The audio lives in ``<bank_dir>/audio/<config fingerprint>/`` so banks of
    other settings never mix theirs; the embeddings grow in the one bank store.
    """
    from wakebuilder.fingerprint import fingerprint

    started = time.perf_counter()
    folder = bank_dir(backbone, window_s, cache=cache) / "audio" / fingerprint("bank", 1, config.to_dict())[:12]
    manifests, synthesized = bank_manifests(config, folder=folder, copies=copies)
    summary: dict[str, Any] = build_bank([*manifests, *extra_manifests], backbone=backbone, window_s=window_s,
                                         cache=cache, device=device, threads=threads, progress=False)
    seconds = time.perf_counter() - started
    log.info("bank %s: %s, %d clip(s) embedded, %d in the bank (%.0f s)", summary["path"],
             "built" if synthesized else "reused", summary["embedded"], summary["clips_in_store"], seconds)
    return BankResult(Path(summary["path"]), synthesized, int(summary["embedded"]),
                      int(summary["clips_in_store"]), seconds)
