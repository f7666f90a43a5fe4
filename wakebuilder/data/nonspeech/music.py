"""Synthesized music: notes with harmonics and ADSR envelopes, chords, bass lines, melodies on scales
and drums from filtered noise bursts, at several tempos and timbres.

Not meant to sound good; meant to put in front of a wake-word model what music puts there: steady
harmonic partials at musical intervals, note onsets on a beat, percussive broadband bursts, and
several voices at once. ``render_music`` is a pure function of a ``MusicSetting`` and a Generator.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.data.nonspeech.noise import lowpass_gain, unit_rms

SCALES = {
    "major": (0, 2, 4, 5, 7, 9, 11),
    "minor": (0, 2, 3, 5, 7, 8, 10),
    "pentatonic": (0, 2, 4, 7, 9),
    "dorian": (0, 2, 3, 5, 7, 9, 10),
    "blues": (0, 3, 5, 6, 7, 10),
}
# timbre -> (relative amplitude of harmonic k = 1..N, ADSR attack, decay, sustain level, release in seconds)
TIMBRES = {
    "organ": (tuple(1.0 / k for k in range(1, 9)), 0.01, 0.05, 0.9, 0.05),
    "strings": (tuple(1.0 / k**1.2 for k in range(1, 13)), 0.12, 0.1, 0.8, 0.2),
    "clarinet": (tuple((1.0 / k if k % 2 else 0.08 / k) for k in range(1, 12)), 0.03, 0.05, 0.85, 0.08),
    "pluck": (tuple(1.0 / k**1.5 for k in range(1, 16)), 0.003, 0.35, 0.0, 0.1),
    "flute": ((1.0, 0.3, 0.12, 0.05), 0.06, 0.05, 0.9, 0.1),
    "piano": (tuple(1.0 / k**1.8 for k in range(1, 14)), 0.004, 0.6, 0.15, 0.25),
}
# chord progressions as scale degrees of the chord roots (0-based)
PROGRESSIONS = ((0, 3, 4, 0), (0, 5, 3, 4), (1, 4, 0, 0), (0, 4, 5, 3))


@dataclasses.dataclass(frozen=True)
class MusicSetting:
    """The discrete choices of one piece; continuous ones (tempo, key, levels) are drawn per clip."""

    scale: str
    lead: str  # timbre of the melody
    pad: str  # timbre of the chords
    drums: bool
    bass: bool

    @property
    def name(self) -> str:
        return f"{self.scale}-{self.lead}-{self.pad}{'-drums' if self.drums else ''}{'-bass' if self.bass else ''}"


def midi_hz(note: float) -> float:
    """Frequency of a MIDI note number (69 = A4 = 440 Hz)."""
    return 440.0 * 2 ** ((note - 69) / 12)


def adsr(n: int, attack_s: float, decay_s: float, sustain: float, release_s: float) -> np.ndarray:
    """An attack-decay-sustain-release envelope of ``n`` samples (the release ends the note)."""
    t = np.arange(n) / SAMPLE_RATE
    held = max(n / SAMPLE_RATE - release_s, 1e-3)
    rise = np.clip(t / max(attack_s, 1e-4), 0, 1)
    fall = sustain + (1 - sustain) * np.exp(-np.maximum(t - attack_s, 0) / max(decay_s, 1e-4))
    release = np.clip(1 - (t - held) / max(release_s, 1e-4), 0, 1)
    return rise * np.where(t < attack_s, 1.0, fall) * release


def note(freq_hz: float, duration_s: float, timbre: str, *, vibrato_hz: float = 0.0) -> np.ndarray:
    """One note: harmonics ``k * freq_hz`` below 7.5 kHz, weighted by the timbre, under its ADSR envelope."""
    weights, attack, decay, sustain, release = TIMBRES[timbre]
    n = max(int(duration_s * SAMPLE_RATE), 1)
    t = np.arange(n) / SAMPLE_RATE
    wobble = 1 + 0.004 * np.sin(2 * np.pi * vibrato_hz * t) if vibrato_hz else 1.0
    phase = 2 * np.pi * freq_hz * np.cumsum(np.broadcast_to(wobble, t.shape)) / SAMPLE_RATE
    wave = sum(w * np.sin(k * phase) for k, w in enumerate(weights, start=1) if k * freq_hz < 7500)
    return np.asarray(wave) * adsr(n, attack, decay, sustain, release)


def drum(kind: str, rng: np.random.Generator) -> np.ndarray:
    """A kick (a sine falling 150 to 45 Hz), a snare (band noise and a 190 Hz body) or a hi-hat (high noise)."""
    if kind == "kick":
        n = int(0.3 * SAMPLE_RATE)
        t = np.arange(n) / SAMPLE_RATE
        freq = 45 + 105 * np.exp(-t / 0.03)
        return np.sin(2 * np.pi * np.cumsum(freq) / SAMPLE_RATE) * np.exp(-t / 0.08)
    n = int((0.2 if kind == "snare" else 0.06) * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / SAMPLE_RATE)
    if kind == "snare":
        shaped = np.fft.irfft(spectrum * ((freqs > 1000) & (freqs < 6000)), n)
        body = np.sin(2 * np.pi * 190 * t)
        return (unit_rms(shaped) * 0.5 + body * 0.5) * np.exp(-t / 0.05)
    shaped = np.fft.irfft(spectrum * (freqs > 6000), n)
    return unit_rms(shaped) * 0.4 * np.exp(-t / 0.015)


def _place(track: np.ndarray, sound: np.ndarray, start: int, gain: float) -> None:
    if start >= track.size:
        return
    stop = min(start + sound.size, track.size)
    track[start:stop] += gain * sound[: stop - start]


def render_music(n: int, setting: MusicSetting, rng: np.random.Generator, *, tempo_bpm: float, key: int) -> np.ndarray:
    """``n`` samples of a piece: chords of ``setting.pad`` changing every bar, a melody of ``setting.lead``
    walking the scale in eighth and quarter notes, optionally a bass line on the chord roots and a
    kick-snare-hat pattern. ``key`` is the MIDI note of the tonic (around 48-60)."""
    beat = int(60 / tempo_bpm * SAMPLE_RATE)
    scale = SCALES[setting.scale]
    degrees = lambda d: key + 12 * (d // len(scale)) + scale[d % len(scale)]  # noqa: E731
    progression = PROGRESSIONS[int(rng.integers(len(PROGRESSIONS)))]
    chords, melody, bass, drums = (np.zeros(n) for _ in range(4))
    for bar, start in enumerate(range(0, n, 4 * beat)):
        root = progression[bar % len(progression)]
        for third in (0, 2, 4):
            _place(chords, note(midi_hz(degrees(root + third)), 4 * beat / SAMPLE_RATE, setting.pad), start, 0.5)
        if setting.bass:
            for b in range(4):
                step = (0, 0, 4, 2)[b] if rng.random() < 0.5 else 0
                _place(bass, note(midi_hz(degrees(root + step) - 24), beat / SAMPLE_RATE, "pluck"), start + b * beat, 1.0)
    position, degree = 0, len(scale) + int(rng.integers(len(scale)))
    while position < n:
        length = beat // 2 if rng.random() < 0.6 else beat
        degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2]), 0, 3 * len(scale) - 1))
        if rng.random() > 0.1:  # a few rests
            _place(melody, note(midi_hz(degrees(degree)), length / SAMPLE_RATE, setting.lead, vibrato_hz=5.0), position, 1.0)
        position += length
    if setting.drums:
        sounds = {kind: drum(kind, rng) for kind in ("kick", "snare", "hat")}
        for step, start in enumerate(range(0, n, beat // 2)):
            if step % 4 == 0 or (step % 8 == 5 and rng.random() < 0.5):
                _place(drums, sounds["kick"], start, 1.0)
            if step % 4 == 2:
                _place(drums, sounds["snare"], start, 0.8)
            _place(drums, sounds["hat"], start, 0.5 if step % 2 else 0.3)
    mix = unit_rms(chords) * 0.6 + unit_rms(melody) * 0.8
    mix += unit_rms(bass) * 0.5 if setting.bass else 0.0
    mix += unit_rms(drums) * 0.7 if setting.drums else 0.0
    # a gentle low-pass of random colour, as of a room or a cheap speaker
    gain = lowpass_gain(n, float(rng.uniform(3000, 7000)))
    return unit_rms(np.fft.irfft(np.fft.rfft(mix) * gain, n))


def music_settings() -> list[MusicSetting]:
    """Every discrete setting: scales x lead timbres x pad timbres x drums x bass (a group each)."""
    return [MusicSetting(scale, lead, pad, drums, bass) for scale in SCALES for lead in TIMBRES for pad in
            ("organ", "strings", "piano", "clarinet") for drums in (False, True) for bass in (False, True)]
