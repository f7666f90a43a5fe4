"""Babble: several talkers at once, from a manifest of speech clips (or speech synthesized for it).

A babble clip overlaps ``talkers`` voices, each a run of that voice's clips laid end to end with short
pauses from a random offset, at levels within a few dB of each other: the crowd, café and television
chatter a wake word must ignore. Talkers are drawn from distinct groups (voices) where there are enough.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.audio import load_audio
from wakebuilder.data.nonspeech.noise import unit_rms
from wakebuilder.errors import ConfigError
from wakebuilder.manifest import ClipRecord, read_manifest, resolve_clip_path


class SpeechSources:
    """Speech clips to build babble from: samples and records, sorted by clip id so draws are stable."""

    def __init__(self, records: list[ClipRecord], samples: list[np.ndarray], origin: str) -> None:
        if not records:
            raise ConfigError(f"{origin}: no speech clips to build babble from")
        order = sorted(range(len(records)), key=lambda i: records[i].id)
        self.records = [records[i] for i in order]
        self.samples = [samples[i] for i in order]
        self.origin = origin
        groups: dict[str, list[int]] = {}
        for index, record in enumerate(self.records):
            groups.setdefault(record.group, []).append(index)
        self.groups = [groups[name] for name in sorted(groups)]

    @classmethod
    def from_manifest(cls, path: str | os.PathLike[str]) -> SpeechSources:
        """Every label-0 clip of a manifest (label-1 clips would put the wake word into the babble)."""
        records = [r for r in read_manifest(path) if r.label == 0]
        return cls(records, [load_audio(resolve_clip_path(path, r)) for r in records], str(path))


def synthesize_sources(out_dir: str | os.PathLike[str], *, n: int, seed: int, engines: tuple[str, ...]) -> Path:
    """Synthesize ``n`` random sentences over every voice of ``engines`` into ``out_dir``; the manifest path."""
    from wakebuilder.data.synth import SynthConfig, run_synth
    from wakebuilder.data.wordlists import random_sentences

    config = SynthConfig(texts=tuple(random_sentences(n, seed=seed)), n=n, engines=engines, seed=seed, label=0,
                         kind="speech_negative", variants=False)
    return run_synth(config, out_dir=out_dir)


def render_babble(n: int, rng: np.random.Generator, sources: SpeechSources, *, talkers: int) -> tuple[np.ndarray, list[str]]:
    """``n`` samples of ``talkers`` overlapping voices; also the ids of the clips used."""
    groups = [sources.groups[i] for i in rng.permutation(len(sources.groups))]
    mix, used = np.zeros(n), []
    for talker in range(talkers):
        members = groups[talker % len(groups)]
        voice, position = np.zeros(n), -int(rng.integers(0, SAMPLE_RATE))
        while position < n:
            index = members[int(rng.integers(len(members)))]
            clip = sources.samples[index]
            start = max(position, 0)
            piece = clip[start - position : start - position + n - start]
            voice[start : start + piece.size] += piece
            used.append(sources.records[index].id)
            position += clip.size + int(rng.uniform(0.05, 0.4) * SAMPLE_RATE)
        mix += unit_rms(voice) * 10 ** (rng.uniform(-4, 4) / 20)
    return unit_rms(mix), used
