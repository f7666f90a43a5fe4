"""How much of a recording is clipped, counted in the file as stored (``wb validate``).

A sample is clipped at full scale (0.999 or more), or in a flat top at its
channel's own peak: a take clipped and then turned down has its flat tops below
0.999, and so has an 8-bit one on its positive side (full scale 127/128).

A flat top is also what quantisation makes of a smooth peak where the step is
coarse: in 8 bits a steady hum at 0.3 stays within one step of its top for 6 to
10% of its samples. Such a top falls away from its run as a parabola would, so a
run is called clipped only where its neighbours fall further (``_smooth_peak``).

MP3, Vorbis and Opus turn a clipped take's flat tops into ripples about full
scale with no flat runs, so only about half of its clipped samples decode at
0.999 or more; in such a file a sample counts from 0.95 up (``LOSSY_FULL_SCALE``).
A take clipped and then turned down before lossy coding is not caught: its
ripples reach no full scale and leave no flat top.

Mu-law and A-law (telephony) store 8-bit codes on levels fine near zero and far
apart near full scale (8 or 16 of 32768 near zero, 1024 in the top segment), so
a hum at -1 dBFS stays on its top level for several samples at each peak: flat
tops are judged there at the step below the channel's peak (``levels``).
"""

from __future__ import annotations

import io
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf

FULL_SCALE = 0.999  # a sample this loud or louder is clipped
# Coded as MP3, Vorbis or Opus (libsndfile subtypes), a sample at 0.95 or more is clipped. Espeak speech (four voices,
# two phrases) hard-clipped on 1-5% of its samples, coded at 16, 44.1 and 48 kHz with compression 0, 0.5 and 0.9,
# decodes with 11-101% of those samples at 0.999 and 76-120% at 0.95 (49-100% from Opus at 0.9, its lowest bitrate);
# the same speech unclipped, normalised to 1.0, has at most 0.05% at 0.95 (a twentieth of the 1% limit), and through
# a limiter (+12 dB into a 0.98 ceiling) at most 0.55%.
LOSSY = frozenset({"MPEG_LAYER_I", "MPEG_LAYER_II", "MPEG_LAYER_III", "VORBIS", "OPUS"})
LOSSY_FULL_SCALE = 0.95
# One quantisation step of a file's samples by libsndfile subtype; float, MP3, Vorbis and others are taken as 16-bit.
# Mu-law and A-law have their finest here (near zero); near a peak their step is the gap to the level below it.
STEP = {"PCM_S8": 2.0**-7, "PCM_U8": 2.0**-7, "PCM_16": 2.0**-15, "PCM_24": 2.0**-23, "PCM_32": 2.0**-31,
        "ULAW": 2.0**-12, "ALAW": 2.0**-11}
# Companded 8-bit subtypes. Judged at the step below their peak, steady hums (sines and buzzes of 1-4 harmonics,
# 50-400 Hz, -36 to -0.1 dBFS, 8 to 48 kHz, with noise or vibrato) reach 1.46 times the parabola's fall (under
# SMOOTH_SLACK); a sine driven 1.2 times past full scale or more counts all its clipped samples, 1.1 times none.
COMPANDED = frozenset({"ULAW", "ALAW"})
FLAT_TOP_RUN = 3  # samples in a row at the peak that make a flat top (a clean peak is reached by one or two)
# A side of a channel is looked at for flat tops only when its peak is this many steps high: the near-silent
# channel of a stereo take has its few levels, all "at the peak", in long runs.
MIN_PEAK_STEPS = 32


# How much further than the parabola through a run its neighbours may fall and still be a smooth peak's. In 8 bits,
# steady hums (sines and buzzes of 3 or 4 harmonics, 50-400 Hz, peak 0.26-0.985, 8 to 48 kHz, with noise or vibrato)
# reach 1.03 times the parabola's fall and clean espeak speech 1.32; of the flat tops of clipped espeak speech 85% of
# runs of 3 and 93% of longer ones go past 2, so a clipped take counts 90-100% of the samples it did before.
SMOOTH_SLACK = 2.0


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Starts and ends (exclusive) of the runs where ``mask`` holds."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    return edges[::2], edges[1::2]


def _smooth_peak(side: np.ndarray, start: int, end: int, *, top: float, step: float) -> bool:
    """Whether the run ``side[start:end]`` (within a step of ``top``, 3 or more long) is a smooth peak quantised.

    The run's values round a parabola that stays within 2 steps of its vertex over the run's L samples, so it falls
    at most 8 / (L - 1)^2 steps per squared sample, and a sample d samples from the run's centre lies at most
    1 + 8 (d / (L - 1))^2 steps below the top (a vertex off centre only loosens this). The L samples either side of
    the run are held to ``SMOOTH_SLACK`` times that: a clipped signal enters and leaves its flat top steeply.
    """
    length = end - start
    centre = (start + end - 1) / 2
    around = np.r_[max(0, start - length) : start, end : min(side.size, end + length)]
    fall = (top - side[around]) / step
    allowed = SMOOTH_SLACK * (1 + 8 * (np.abs(around - centre) / (length - 1)) ** 2)
    return bool(around.size) and bool(np.all(fall <= allowed))


def _flat_tops(side: np.ndarray, step: float, levels: np.ndarray | None = None) -> np.ndarray:
    """Where ``side`` is within a step of its peak in a run of ``FLAT_TOP_RUN`` or more that no smooth peak
    explains; nowhere on a side whose peak is under ``MIN_PEAK_STEPS`` steps. The step is ``step``, or where
    ``levels`` (a companded file's) are given, the gap from the peak's level to the one below it."""
    out = np.zeros(side.size, dtype=bool)
    top = float(side.max())
    if top < MIN_PEAK_STEPS * step:
        return out
    if levels is not None:
        at = int(np.argmin(np.abs(levels - top)))
        step = float(levels[at] - levels[at - 1])
    starts, ends = _runs(side >= top - step * 1.001)  # 1.001: a stored step read back as float32
    for start, end in zip(starts.tolist(), ends.tolist()):
        if end - start >= FLAT_TOP_RUN and not _smooth_peak(side, start, end, top=top, step=step):
            out[start:end] = True
    return out


def clipped_fraction(data: np.ndarray, step: float, *, full_scale: float = FULL_SCALE,
                     levels: np.ndarray | None = None) -> np.ndarray:
    """Per channel of ``data`` (frames, channels), the fraction of samples clipped: at ``full_scale`` or more, or in a
    flat top at the channel's own positive or negative peak (``_flat_tops``, with ``step`` one quantisation step and
    ``levels`` a companded file's)."""
    out = np.empty(data.shape[1])
    for index, channel in enumerate(data.T):
        tops = _flat_tops(channel, step, levels) | _flat_tops(-channel, step, levels)
        clipped = (np.abs(channel) >= full_scale) | tops
        out[index] = float(np.mean(clipped))
    return out


@cache
def _companded_levels(subtype: str) -> np.ndarray:
    """The levels, zero and up, that libsndfile decodes a companded ``subtype``'s 256 codes to (float32)."""
    decoded, _ = sf.read(io.BytesIO(bytes(range(256))), samplerate=8000, channels=1, format="RAW", subtype=subtype,
                         dtype="float32")
    levels = np.unique(np.abs(decoded))
    levels.flags.writeable = False  # shared by every call (cached)
    return levels


def stored_scale(path: Path) -> tuple[float, float, np.ndarray | None]:
    """One quantisation step of the samples stored in ``path`` (a 16-bit one where they are float or coded), the
    level from which a sample counts as clipped (lower in a lossy file) and, in a mu-law or A-law file, its levels."""
    subtype = sf.info(str(path)).subtype
    levels = _companded_levels(subtype) if subtype in COMPANDED else None
    return STEP.get(subtype, STEP["PCM_16"]), LOSSY_FULL_SCALE if subtype in LOSSY else FULL_SCALE, levels
