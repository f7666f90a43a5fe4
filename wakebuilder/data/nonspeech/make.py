"""``wb negatives --nonspeech N``: a manifest of synthesized non-speech negatives, no download.

Clip ``i`` comes from generator ``kinds[i % len(kinds)]`` with the Generator of (seed, generator,
``i // len(kinds)``), so a run is reproducible and a larger N only adds clips. Each clip gets a level
drawn in dBFS; its row records everything that rebuilds it, and its group is the generator's discrete
setting, so a split holds out whole settings (a colour, a music setting, 50 or 60 Hz hum).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.atomic import atomic_directory, atomic_write_json, refuse_existing
from wakebuilder.audio import quantize_pcm16, write_wav
from wakebuilder.config import StageConfig
from wakebuilder.data.nonspeech import generators
from wakebuilder.data.nonspeech.babble import SpeechSources, render_babble, synthesize_sources
from wakebuilder.data.tts import DEFAULT_ENGINES
from wakebuilder.devices import cpu_threads
from wakebuilder.errors import ConfigError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, write_manifest
from wakebuilder.stage_version import versioned

log = logging.getLogger(__name__)
# The non-speech clips' version, in their sources and in the identity of a run kept (``run_identity``): bump it
# when a release makes other clips for the same settings (``stage_version``).
VERSION = 1
CONFIG_NAME = "nonspeech_config.json"  # the run's identity (``run_identity``), beside its manifest
PEAK = 0.99


@dataclasses.dataclass(frozen=True, kw_only=True)
class NonspeechConfig(StageConfig):
    """How many clips of which generators, how long, how loud."""

    n: int
    kinds: tuple[str, ...] = generators.SYNTHETIC
    duration_s: float = 2.5
    level_dbfs: tuple[float, ...] = (-35.0, -12.0)
    seed: int = 0
    babble_from: str | None = None  # a speech manifest; None: synthesize speech for babble
    babble_sources: int = 200  # sentences to synthesize when babble_from is None
    engines: tuple[str, ...] = DEFAULT_ENGINES


def stage_versions(config: NonspeechConfig) -> dict[str, int]:
    """The versions of the stages that make a run's clips: this one, and synthesis when the run speaks its
    babble's sentences itself (``stage_version``)."""
    from wakebuilder.data import synth

    versions = {"nonspeech": VERSION}
    if "babble" in config.kinds and not config.babble_from:
        versions["synth"] = synth.VERSION
    return versions


def run_identity(config: NonspeechConfig) -> dict[str, Any]:
    """What a run's clips depend on besides their babble's speech, as it records it beside its manifest: ``config``
    and ``stage_versions``, so a run of an older version is not kept."""
    return versioned(config.to_dict(), stage_versions(config))


def check_config(config: NonspeechConfig) -> None:
    """Refuse unknown generators and empty or impossible settings, naming the option."""
    unknown = [k for k in config.kinds if k not in generators.GENERATORS]
    if unknown or not config.kinds:
        raise ConfigError(f"--kinds {','.join(config.kinds)!r}: choose from {','.join(generators.GENERATORS)}")
    twice = sorted({k for k in config.kinds if config.kinds.count(k) > 1})
    if twice:  # clip i draws from (seed, generator, i // len(kinds)): a repeat would make identical clips
        raise ConfigError(f"--kinds {','.join(config.kinds)!r}: name each generator once ({','.join(twice)} "
                          "is repeated)")
    if config.n < 1:
        raise ConfigError(f"--nonspeech {config.n}: need at least one clip")
    if not 0.1 <= config.duration_s <= 60:
        raise ConfigError(f"--duration-s {config.duration_s}: expected 0.1 to 60 seconds")
    low, high = config.level_dbfs
    if not low <= high <= 0:
        raise ConfigError(f"level_dbfs {config.level_dbfs}: expected MIN <= MAX <= 0 dBFS")


def nonspeech_clip(
    config: NonspeechConfig, index: int, speech: SpeechSources | None = None
) -> tuple[np.ndarray, dict]:
    """Clip ``index`` of a run and its parameters (generator, group, drawn values, level)."""
    name = config.kinds[index % len(config.kinds)]
    rng = generators.clip_rng(config.seed, name, index // len(config.kinds))
    params = generators.draw(name, rng)
    params["level_dbfs"] = float(rng.uniform(*config.level_dbfs))
    n = int(round(config.duration_s * SAMPLE_RATE))
    if name == "babble":
        samples, used = render_babble(n, np.random.default_rng(params["seed"]), speech, talkers=params["talkers"])
        params["talker_clips"] = list(dict.fromkeys(used))
        texts = {r.id: r.text for r in speech.records}
        params["text"] = " | ".join(dict.fromkeys(texts[i] for i in used if texts[i]))
    else:
        samples = generators.render(params, n)
    samples = samples * 10 ** (params["level_dbfs"] / 20)
    peak = float(np.max(np.abs(samples)))
    if peak > PEAK:
        samples = samples * (PEAK / peak)
        params["limiter_gain"] = PEAK / peak
    return samples.astype(np.float32), params


def make_nonspeech(config: NonspeechConfig, *, out_dir: str | os.PathLike[str], overwrite: bool = False,
                   workers: int = 0) -> Path:
    """Write ``config.n`` clips and ``out_dir/manifest.jsonl``; returns the manifest path.

    ``workers`` threads render clips at once (0: one per core); the clips are the same.

    Raises:
        ConfigError: bad settings.
        ArtifactExistsError: ``out_dir`` already holds files and ``overwrite`` is False.
    """
    check_config(config)
    target = Path(out_dir)
    if target.exists() and any(target.iterdir()) and not overwrite:
        refuse_existing(target, overwrite=False)
    if target.is_dir() and not any(target.iterdir()):
        target.rmdir()
    with atomic_directory(target, overwrite=overwrite) as work:
        speech = _speech_sources(config, work) if "babble" in config.kinds else None

        def clip(index: int) -> ClipRecord:
            samples, params = nonspeech_clip(config, index, speech)
            clip_id = audio_id(quantize_pcm16(samples))
            write_wav(work / "clips" / f"{clip_id}.wav", samples)
            name = params["generator"]
            return ClipRecord(
                id=clip_id, path=f"clips/{clip_id}.wav", label=0, kind=generators.manifest_kind(name),
                group=params.pop("group"), text=params.pop("text", ""), duration_s=round(samples.size / SAMPLE_RATE, 4),
                params={**params, "index": index, "run_seed": config.seed, "category": generators.manifest_kind(name)},
                source=f"wakebuilder.nonspeech/{VERSION}:{name}",
            )

        # clip i depends only on (seed, generator, i): rendered and written on every core, in index order
        with ThreadPoolExecutor(workers or cpu_threads(), thread_name_prefix="wb-nonspeech") as pool:
            records = list(pool.map(clip, range(config.n)))
        atomic_write_json(work / CONFIG_NAME, run_identity(config))
        write_manifest(work / MANIFEST_NAME, list({r.id: r for r in records}.values()))
    return target / MANIFEST_NAME


def _speech_sources(config: NonspeechConfig, work: Path) -> SpeechSources:
    if config.babble_from:
        return SpeechSources.from_manifest(config.babble_from)
    folder = work / "babble_speech"
    if folder.exists():  # a killed run's partial synthesis: start it again
        shutil.rmtree(folder)
    log.info("babble: synthesizing %d sentences with %s", config.babble_sources, ",".join(config.engines))
    return SpeechSources.from_manifest(synthesize_sources(folder, n=config.babble_sources, seed=config.seed,
                                                          engines=config.engines))
