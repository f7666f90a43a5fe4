"""The recipe's settings: a frozen ``RecipeConfig`` and its size presets (``tiny``, ``quick``, ``full``)."""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

from wakebuilder.config import StageConfig
from wakebuilder.data.augment.params import AugmentConfig
from wakebuilder.errors import ConfigError
from wakebuilder.train.fit_config import FitConfig

# Counts of each preset. quick: minutes on a 2-core laptop; full: the seed recipe's counts; tiny: a smoke test, on the
# backbone the package ships (speech-embedding: no 100 MB model to install and load).
SIZES: dict[str, dict[str, Any]] = {
    "tiny": dict(n_pos=6, pos_copies=1, n_hard=6, n_speech=6, n_words=6, neg_copies=1, train_stream_s=20.0,
                 stream_s=20.0, report_stream_s=20.0, heldout_hard=3, heldout_speech=3, heldout_pos=3, n_nonspeech=8,
                 debian=False, heldout_nonspeech=8, heads=1, backbone="speech-embedding", verify=False),
    "quick": dict(n_pos=600, pos_copies=2, n_hard=750, n_speech=1000, n_words=1500, neg_copies=1,
                  train_stream_s=600.0, stream_s=600.0, report_stream_s=1500.0, n_nonspeech=1600),
    "full": dict(n_pos=1700, pos_copies=3, n_hard=10000, n_speech=5000, n_words=5000, neg_copies=1,
                 train_stream_s=3600.0, stream_s=3600.0, report_stream_s=3600.0, n_nonspeech=4000),
}
# speech-embedding sees 2.5 s around the phrase: with its 1.5 s default the held-out test's recall fell
# from 0.98 to 0.80 and its false accepts rose from 0 to 300 FA/h (tests/test_end_to_end.py, espeak-ng voices).
SPEECH_EMBEDDING_WINDOW_S = 2.5
# The floor under each backbone's calibrated threshold (``wb calibrate --min-threshold``; none where not listed).
# word-embedding's synthetic calibration stream has no false accept above the per-clip F1 threshold, so its
# thresholds landed at 0.27-0.5 and real speech woke the models 15-50 times an hour; isolated words and sentences in
# the stream did not bind it either. 0.8 was chosen on the development set realdev (round 22, seed 0); as a fixed
# threshold it kept 14 and 13 of 18 models within one false accept (16 and 19 in all) at 77.8 % recall in rounds 22
# and 23, and as this floor under round 23's thresholds 13 of 18 (19) at 75.6 %, against the calibrated 6 of 18
# (218) at 86.3 % (research/REAL_TRANSFER.md, twenty-second and twenty-third rounds).
MIN_THRESHOLD: dict[str, float] = {"word-embedding": 0.8}
# The shrinkage of a closed-form centroids head (``wb fit --head centroids --shrinkage A``) fitted beside the network
# heads and averaged with them, per backbone (none where not listed). On realdev's word-embedding vectors the shrunk
# discriminant ranked real clips better than the network heads (204 against 186 of 234 at one false accept per
# model); in the recipe's ensemble with its three heads (the recipe's steps on round 23's stores) it found 183 of 234
# at the calibrated thresholds with 6 false accepts, 16 of 18 models within one, against the heads' 177 with 19, 13
# of 18 (research/REAL_TRANSFER.md, twenty-sixth and twenty-seventh rounds). On speech-embedding it ranked worse
# than the heads (158 against 169), so that backbone keeps none. The one value, also the shrinkage of a centroids head
# asked for on a backbone not listed, and the one the help of ``wb fit`` and ``wb quickstart`` quotes.
DEFAULT_CENTROIDS_SHRINKAGE = 0.2
CENTROIDS_SHRINKAGE: dict[str, float] = {"word-embedding": DEFAULT_CENTROIDS_SHRINKAGE}
# About 1 s of CPU an utterance against 0.03-0.1 s for the other engines: they speak the phrase, not the many
# negatives (sound-alikes, the bank's speech), unless named for those.
SLOW_ENGINES = ("kokoro",)
# Seed offsets of the held-out sets: one calibrates the threshold, one measures the report's FA/h.
CALIBRATION_SEED, REPORT_SEED = 1000, 2000
# The seed of what every phrase shares (the negative bank, the held-out generic speech): a phrase's --seed
# changes its own data and head, never the shared data, so another seed reuses the bank instead of growing it.
BANK_SEED = 0
# Seed offset between the heads fitted on one data seed's store (``heads``): apart from the data seeds' seed + i.
HEAD_SEED_STEP = 100


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecipeConfig(StageConfig):
    """Everything the recipe's outputs depend on (paths and devices are ``run_recipe``'s arguments).

    ``engines`` make positives and sound-alikes (``neg_engines`` empty: the same less Kokoro), sharing the
    clips out evenly over engines, then over each engine's speakers. On real recordings the number of distinct
    speakers was the one lever that moved recall (research/REAL_TRANSFER.md, research/speaker_count/: 8
    speakers was the worst point, 16-32 gained 4-6 of 17-21 real clips), so the default takes every voice
    licensed for commercial use here: Piper's joe, flite's five, Kokoro's (54 with ``WB_KOKORO_VOICES`` or
    ``wb voices fetch kokoro-en``, else its five bundled ones; 2-3-voice blends of them), SVOX Pico's two and
    RHVoice's four. espeak-ng positives transfer far worse. A missing engine, or one that cannot read its voices (a
    damaged ``WB_KOKORO_VOICES``), is skipped with a warning.
    """

    phrase: str = "hey jarvis"
    # word-embedding (EfficientWord-Net, trained on real spoken words) with its centroids head, the recipe end to end,
    # found 180 of 234 realdev clips at the calibrated thresholds with 5 false accepts, 16 of 18 models within one,
    # and 202 at one false accept per model; speech-embedding's recipe 168 with 23, 11 of 18, and 169
    # (research/REAL_TRANSFER.md, twenty-fourth and twenty-seventh rounds). A run refuses it at its start, with the
    # command that installs it, where its model is not installed.
    backbone: str = "word-embedding"
    # A second backbone trained on the same data (its own store, heads and export in ``<out>/<name>/``, settings as a
    # run of its own; with ``data_seeds`` on each seed's data, in ``<out>/seed-<N>/<name>/``, its heads of every seed
    # averaged) and fused with the first (``wb fuse``: the mean of their calibrated probabilities). On real
    # speech word-embedding with speech-embedding kept 18 of 18 models within one false accept (2 in all, against 23)
    # at speech-embedding's recall (research/REAL_TRANSFER.md, twenty-fourth round). None: one backbone.
    fuse_with: str | None = None
    engines: tuple[str, ...] = ("piper", "flite", "kokoro", "pico", "rhvoice")
    # Engines of the phrase's sound-alikes (empty: ``engines`` less Kokoro when others remain). Kokoro's voices
    # in the positives were worth 12 of 78 real clips at one false accept, its sound-alikes about 3 (within the
    # spread of two head seeds) for about half of a second phrase's synthesis time: 152 s of sound-alikes with
    # Kokoro, 41 s without (research/REAL_TRANSFER.md, QUICKSTART_TIMING.md).
    neg_engines: tuple[str, ...] = ()
    # Engines of the speech every phrase shares (the bank's sentences and words, the held-out generic speech;
    # empty: those of the sound-alikes). Without Kokoro (``SLOW_ENGINES``), the first quickstart stays within
    # 15 minutes on 2 cores.
    shared_engines: tuple[str, ...] = ("piper", "flite", "pico", "rhvoice")
    n_pos: int = 600
    pos_copies: int = 2
    # Sound-alikes: a few dozen candidate texts, each spoken by many voices. Half as many (every text, half the
    # voices) found 52.7 of 78 real clips at one false accept against 51.0 (head refits, six words, three data
    # seeds, two head seeds; research/REAL_TRANSFER.md, thirteenth round) and save a phrase about 28 s. End to end
    # on two seeds the change was mixed (113 against 108 of 156 real clips calibrated, 97 against 103 at one false
    # accept per model, 43 against 29 false accepts): no difference shown beyond the seeds' spread.
    n_hard: int = 750
    n_speech: int = 1000
    # Isolated single words: on real speech (research/REAL_TRANSFER.md) they cut false accepts at the
    # calibrated threshold from 26 to 2 over two words.
    n_words: int = 1500
    neg_copies: int = 1
    train_stream_s: float = 600.0
    stream_s: float = 600.0
    # The report's stream. With the bank it is made and embedded once for every phrase, so its length costs the
    # first phrase only: 25 minutes tell FA/h in steps of 2.4 an hour, 10 minutes in steps of 6 (its 400 sentences
    # and 200 music and noise clips last about 27 minutes without a repeat).
    report_stream_s: float = 1500.0
    heldout_hard: int = 200
    heldout_speech: int = 400
    heldout_pos: int = 150
    # Held-out non-speech clips (other seeds than the bank's) mixed into the calibration and report streams.
    heldout_nonspeech: int = 200
    window_s: float | None = None  # None: 2.5 s for speech-embedding, the backbone's choice otherwise
    chunk_hop_s: float = 0.3
    # The threshold keeps ``target_fa_per_hour`` false accepts per hour on the calibration stream (speech,
    # music, noise): per-clip F1 picked one that woke 48 times an hour on the held-out stream. "f1" stays an option.
    objective: str = "fa-per-hour"
    # The negative bank (wakebuilder.bank): generic speech, isolated words and their stream windows are
    # synthesized and embedded once per backbone and window in the cache, and every phrase fits on its
    # own store plus the bank; the phrase synthesizes and embeds only its positives and sound-alikes.
    bank: bool = True
    # Non-speech negatives in the bank: clips spread over noise, music, tone, chirp, click, hum, room and
    # babble (of the bank's own speech clips), and Debian's music and game sound where apt works.
    n_nonspeech: int = 1600
    debian: bool = True
    target_fa_per_hour: float = 0.5
    # Positives in the world's sound: a share ``background_p`` of their augmented copies mixed with synthesized
    # music or noise (``wb augment --background``) at an SNR drawn in ``background_snr_db``. Off by default:
    # on realdev, heads refitted without those copies found 47.5 of 78 real clips at one false accept on speech
    # against 41.0 with them (six words, two head seeds; research/REAL_TRANSFER.md, twelfth round).
    background: tuple[str, ...] = ()  # e.g. ("music", "noise")
    background_p: float = 0.5
    background_snr_db: tuple[float, ...] = (0.0, 20.0)
    report: bool = True
    # The export asks wb detect and wb eval to check each detection with speech recognizers (wb export --verify,
    # wakebuilder.verify), and the report verifies. On the default recipe's 18 realdev models (research round 31):
    # 217 of 234 real clips with every model within one false accept, against 180 and 16 of 18 at the calibrated
    # thresholds alone. The smoke test (tiny) keeps none: no recognizer to load.
    verify: bool = True
    # Models averaged into one (wb ensemble: the mean of their calibrated probabilities behind one backbone pass; the
    # threshold by the FA/h rule on the ensemble's own scores over the calibration stream, not below the mean of the
    # members' best-F1 thresholds). ``heads``: heads fitted on each data seed's store with the seeds seed, seed + 100,
    # ... (each its own validation split and start), each calibrated; ``data_seeds``: the phrase's own data
    # synthesized with the seeds seed, seed + 1, ... (other clips, augmentation, split). On realdev three heads of one
    # store did as well as three data seeds and cut the false accepts at the calibrated thresholds from 52 to 29 over
    # the current recipe's 18 models, with more real clips found (research/REAL_TRANSFER.md, sixteenth round). A head
    # costs a fit and a calibration (about 45-50 s on 2 cores), a data seed the phrase's synthesis, embedding and fit
    # again (about 220 s). From a clean clone on a slow day the first "hey jarvis" took 987 s with three heads and
    # 873 s with one, whose threshold (0.99, set by one confident false accept on the calibration stream) kept 0.15
    # of the held-out positives against the three heads' 0.96 at 0 FA/h; with the bank's steps and the backbone
    # on both cores, three heads took 779 s (research/QUICKSTART_TIMING.md). The smoke test (tiny) keeps one.
    heads: int = 3
    # A closed-form centroids head (``FitConfig.head`` "centroids", in ``head-centroids/``) fitted on each data seed's
    # store beside the ``heads``, calibrated as they are and averaged with them: None is the backbone's choice
    # (``CENTROIDS_SHRINKAGE``), True or False overrides it. ``centroids_shrinkage`` None: the backbone's, else
    # ``DEFAULT_CENTROIDS_SHRINKAGE``.
    centroids: bool | None = None
    centroids_shrinkage: float | None = None
    data_seeds: int = 1
    augment: AugmentConfig = dataclasses.field(default_factory=AugmentConfig)  # copies and seed set per use
    fit: FitConfig = dataclasses.field(default_factory=FitConfig)  # seed set from ``seed``
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.phrase.strip():
            raise ConfigError("recipe: the phrase is empty")
        if not self.engines:
            raise ConfigError("recipe: give at least one TTS engine")
        counts = {"n_pos": self.n_pos, "pos_copies": self.pos_copies, "neg_copies": self.neg_copies,
                  "data_seeds": self.data_seeds, "heads": self.heads}
        bad = [f"{k}={v}" for k, v in counts.items() if v < 1]
        if bad:
            raise ConfigError(f"recipe: {', '.join(bad)} must be at least 1")
        if self.centroids_shrinkage is not None and not 0.0 <= self.centroids_shrinkage <= 1.0:
            raise ConfigError(f"recipe: centroids_shrinkage={self.centroids_shrinkage!r}: expected 0 <= shrinkage <= 1 "
                              "(0: the two centroids; None: the backbone's)")
        if not (math.isfinite(self.target_fa_per_hour) and self.target_fa_per_hour > 0):
            raise ConfigError(f"recipe: target_fa_per_hour={self.target_fa_per_hour} must be a finite number above 0")
        if self.fuse_with is not None:
            self._check_fuse_with()

    def _check_fuse_with(self) -> None:
        """Refuse a second backbone that is the first (a model fused with a copy of itself)."""
        from wakebuilder.backbones import ALIASES

        if ALIASES.get(self.fuse_with, self.fuse_with) == ALIASES.get(self.backbone, self.backbone):
            default = ", the default" if self.backbone == type(self).backbone else ""
            raise ConfigError(f"--fuse-with {self.fuse_with}: the --backbone itself ({self.backbone}{default}); name "
                              "another backbone, or leave --fuse-with out")

    @classmethod
    def preset(cls, size: str = "quick", **changes: Any) -> RecipeConfig:
        """The ``tiny``, ``quick`` or ``full`` counts, with ``changes`` on top."""
        if size not in SIZES:
            raise ConfigError(f"--size {size!r}: expected one of {', '.join(SIZES)}")
        return cls(**{**SIZES[size], **changes})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecipeConfig:
        """Build from a dict (as ``to_dict`` wrote it), nested augment and fit settings included."""
        nested = {"augment": AugmentConfig, "fit": FitConfig}
        data = dict(data)
        built = {k: kind.from_dict(data.pop(k)) for k, kind in nested.items() if k in data}
        return dataclasses.replace(super().from_dict(data), **built)

    @property
    def negative_engines(self) -> tuple[str, ...]:
        if self.neg_engines:
            return self.neg_engines
        return tuple(e for e in self.engines if e not in SLOW_ENGINES) or self.engines

    @property
    def shared_speech_engines(self) -> tuple[str, ...]:
        return self.shared_engines or self.negative_engines

    @property
    def embed_window_s(self) -> float | None:
        if self.window_s is not None:
            return self.window_s
        from wakebuilder.backbones import backbone_kind

        return SPEECH_EMBEDDING_WINDOW_S if backbone_kind(self.backbone) == "speech-embedding" else None

    @property
    def min_threshold(self) -> float:
        """The floor under the calibrated threshold for the backbone (``MIN_THRESHOLD``): derived, not a field, so
        the config of the other backbones, which keep none, is unchanged."""
        from wakebuilder.backbones import backbone_kind

        return MIN_THRESHOLD.get(backbone_kind(self.backbone), 0.0)

    @property
    def centroids_head(self) -> float | None:
        """The shrinkage of the centroids head fitted beside the network heads, None for no such head: ``centroids``,
        or where it is None the backbone's choice (``CENTROIDS_SHRINKAGE``)."""
        from wakebuilder.backbones import backbone_kind

        listed = CENTROIDS_SHRINKAGE.get(backbone_kind(self.backbone))
        if self.centroids is False or (self.centroids is None and listed is None):
            return None
        if self.centroids_shrinkage is not None:
            return self.centroids_shrinkage
        return listed if listed is not None else DEFAULT_CENTROIDS_SHRINKAGE

    @property
    def slug(self) -> str:
        """The phrase as a file name: ``hey jarvis`` -> ``hey-jarvis``."""
        return re.sub(r"[^a-z0-9]+", "-", self.phrase.lower()).strip("-") or "wakeword"
