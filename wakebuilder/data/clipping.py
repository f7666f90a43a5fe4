"""How much of a recording is clipped, counted in the file as stored (``wb validate``).

A sample is clipped at full scale (0.999 or more), or in a flat top at its
channel's own peak: a take clipped and then turned down has its flat tops below
0.999, and so has an 8-bit one on its positive side (full scale 127/128).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

# One quantisation step of a file's samples by libsndfile subtype; float, MP3, Vorbis and others are taken as 16-bit.
STEP = {"PCM_S8": 2.0**-7, "PCM_U8": 2.0**-7, "PCM_16": 2.0**-15, "PCM_24": 2.0**-23, "PCM_32": 2.0**-31}
FLAT_TOP_RUN = 3  # samples in a row at the peak that make a flat top (a clean peak is reached by one or two)
# A side of a channel is looked at for flat tops only when its peak is this many steps high: the near-silent
# channel of a stereo take has its few levels, all "at the peak", in long runs.
MIN_PEAK_STEPS = 32


def _in_runs(mask: np.ndarray, min_run: int) -> np.ndarray:
    """Where ``mask`` holds in runs of ``min_run`` or more samples in a row."""
    edges = np.flatnonzero(np.diff(np.concatenate(([False], mask, [False])).astype(np.int8)))
    starts, ends = edges[::2], edges[1::2]
    long = ends - starts >= min_run
    change = np.zeros(mask.size + 1, dtype=np.int64)
    np.add.at(change, starts[long], 1)
    np.add.at(change, ends[long], -1)
    return np.cumsum(change[:-1]) > 0


def clipped_fraction(data: np.ndarray, step: float) -> np.ndarray:
    """Per channel of ``data`` (frames, channels), the fraction of samples clipped: at 0.999 or more, or within
    ``step`` (one quantisation step) of the channel's own positive or negative peak in a run of ``FLAT_TOP_RUN`` or
    more, the flat tops of a take clipped and turned down (or of an 8-bit one, whose full scale is 127/128)."""
    out = np.empty(data.shape[1])
    tolerance = step * 1.001  # a stored step read back as float32
    for index, channel in enumerate(data.T):
        clipped = np.abs(channel) >= 0.999
        for side in (channel, -channel):
            peak = float(side.max())
            if peak >= MIN_PEAK_STEPS * step:
                clipped |= _in_runs(side >= peak - tolerance, FLAT_TOP_RUN)
        out[index] = float(np.mean(clipped))
    return out


def quantisation_step(path: Path) -> float:
    """One quantisation step of the samples stored in ``path`` (a 16-bit one where they are float or coded)."""
    return STEP.get(sf.info(str(path)).subtype, STEP["PCM_16"])
