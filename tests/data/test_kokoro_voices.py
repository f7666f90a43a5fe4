"""Kokoro's voices as a run chooses them: --voices naming one voice. Tiny voices files, no network."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.data.test_tts import _kokoro_or_skip
from wakebuilder.data.synth import SynthConfig, find_voices
from wakebuilder.data.tts import get_engine
from wakebuilder.data.tts.kokoro import draw_blends

NAMES = ("af_bella", "af_heart", "af_sky", "zm_yunjian", "zm_yunxi", "zm_yunxia")  # zm_yunxi: a prefix of another


def _voices_file(path: Path, names: tuple[str, ...] = NAMES) -> Path:
    """A tiny voices file: a few style rows per voice (any count of 256-wide rows loads)."""
    rng = np.random.default_rng(0)
    np.savez(path, **{name: rng.standard_normal((4, 1, 256)).astype(np.float32) * 0.1 for name in names})
    return path


def _chosen(pattern: str | None, voices_file: Path) -> set[str]:
    """The names of the Kokoro voices ``--voices pattern`` selects from ``voices_file``."""
    config = SynthConfig(texts=("hi",), n=1, engines=("kokoro",), voice_pattern=pattern, kokoro_voices=str(voices_file))
    try:
        return {voice.name for voice in find_voices(config)["kokoro"]}
    finally:
        get_engine("kokoro").use_voices_file(None)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("pattern", "chosen"), [
    ("af_heart", {"af_heart"}), ("kokoro:af_heart", {"af_heart"}), ("zm_yunxi", {"zm_yunxi"}),
    ("heart", {"af_heart"}), ("^af_(heart|sky)$", {"af_heart", "af_sky"}), ("af_mix01", {"af_mix01"}),
])
def test_naming_a_voice_selects_it_and_not_the_blends_that_mix_it(tmp_path: Path, pattern: str,
                                                                    chosen: set[str]) -> None:
    """--voices af_heart also selected every blend mixing af_heart (their blend=af_heart*0.4+... setting is in the
    key searched), and zm_yunxi also zm_yunxia; a voice's exact name now selects that voice only, and a blend is
    selected by its own name, not by the voices it mixes."""
    _kokoro_or_skip()
    assert _chosen(pattern, _voices_file(tmp_path / "voices.npz")) == chosen


def test_a_prefix_or_mix_pattern_selects_blends_and_no_pattern_every_voice(tmp_path: Path) -> None:
    _kokoro_or_skip()
    path = _voices_file(tmp_path / "voices.npz")
    blends = set(draw_blends(NAMES))
    assert _chosen(None, path) == set(NAMES) | blends
    assert _chosen("mix", path) == blends
    assert _chosen("^af_", path) == {"af_bella", "af_heart", "af_sky"} | {b for b in blends if b.startswith("af_")}
