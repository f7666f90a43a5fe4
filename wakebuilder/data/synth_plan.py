"""What a ``wb synth`` run makes: its config, and the jobs (index, text, voice) planned from it.

Voices are shared out evenly across engines, then over each engine's speakers in turn (each speaker's settings
shuffled); texts get punctuation, casing and pause variants. The plan depends on the config's seed alone, so the
same seed gives the same jobs whatever the number of workers that make them (``synth``).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wakebuilder.config import StageConfig
from wakebuilder.data.tts import DEFAULT_ENGINES, Voice


@dataclasses.dataclass(frozen=True, kw_only=True)
class SynthConfig(StageConfig):
    """What a synthesis run makes."""

    texts: tuple[str, ...]
    n: int
    engines: tuple[str, ...] = DEFAULT_ENGINES
    piper_voices: tuple[str, ...] = ()
    seed: int = 0
    label: int = 1
    kind: str = "tts"
    variants: bool = True
    workers: int = 2
    voice_pattern: str | None = None
    kokoro_voices: str | None = None


def text_variants(text: str) -> list[str]:
    """Punctuation, casing and pause variants of a text ("hey, jarvis", "Hey Jarvis!")."""
    base = " ".join(text.strip().split())
    words = base.split(" ")
    out = [base.lower(), base.capitalize() + ".", base.lower() + "!", base.title() + "?", base.title()]
    if len(words) > 1:
        rest = " ".join(words[1:])
        out += [words[0].lower() + ", " + rest.lower(), words[0].capitalize() + "... " + rest]
    return list(dict.fromkeys(out))


def speaker_order(voices: list[Voice], rng: np.random.Generator) -> list[Voice]:
    """An engine's voice settings in turn order: rounds in which every speaker (voice name) speaks once.

    So every speaker gets an equal share whatever its number of settings (flite's rms has fewer than its
    other voices, festival's HTS voice fewer than its diphone voices); a speaker's settings are shuffled and
    repeat only after all of them were used; and each round takes the speakers in a fresh random order, so
    which speaker says which text (texts also go in turn) does not follow a fixed period.
    """
    names = list(dict.fromkeys(voice.name for voice in voices))
    settings = {name: [v for v in voices if v.name == name] for name in names}
    settings = {name: [vs[i] for i in rng.permutation(len(vs))] for name, vs in settings.items()}
    rounds = max(len(vs) for vs in settings.values())
    return [settings[names[i]][r % len(settings[names[i]])] for r in range(rounds) for i in rng.permutation(len(names))]


def plan_jobs(config: SynthConfig, voices_by_engine: dict[str, list[Voice]]) -> list[tuple[int, str, Voice]]:
    """``n`` (index, text, voice) jobs: engines in turn, within an engine its speakers in turn."""
    rng = np.random.default_rng(config.seed)
    engines = sorted(voices_by_engine)
    orders = {e: speaker_order(voices_by_engine[e], rng) for e in engines}
    offset = int(rng.integers(1 << 16))
    jobs = []
    for index in range(config.n):
        engine = engines[index % len(engines)]
        turn = index // len(engines)
        voice = orders[engine][turn % len(orders[engine])]
        text = config.texts[index % len(config.texts)]
        variants = text_variants(text) if config.variants else [text]
        # a voice's k-th turn takes the k-th variant, so (voice, text) pairs repeat only when all are used
        variant = variants[(turn // len(orders[engine]) + offset + turn) % len(variants)]
        jobs.append((index, variant, voice))
    return jobs
