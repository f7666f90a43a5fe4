"""Kokoro's voices as a run chooses them: --voices naming one voice, a voices file that
cannot be used (skipped by the recipe, refused by wb synth --engine kokoro). Tiny voices files, no network."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from tests.data.test_tts import _kokoro_or_skip
from wakebuilder.cli import main
from wakebuilder.data.synth import SynthConfig, find_voices
from wakebuilder.data.tts import get_engine
from wakebuilder.data.tts.kokoro import draw_blends
from wakebuilder.manifest import read_manifest

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


def _damaged(tmp_path: Path, how: str = "cut short") -> Path:
    """A voices file Kokoro cannot use: a download that stopped half way, or styles of another width."""
    bad = tmp_path / "voices-v1.0.bin"
    if how == "cut short":
        whole = _voices_file(tmp_path / "whole.npz")
        bad.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    else:
        with bad.open("wb") as handle:
            np.savez(handle, af_a=np.zeros((4, 1, 256), np.float32), af_b=np.zeros((4, 1, 128), np.float32))
    return bad


@pytest.mark.parametrize("how", ["cut short", "other width"])
def test_the_recipe_skips_kokoro_when_its_voices_file_cannot_be_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, how: str
) -> None:
    """A damaged WB_KOKORO_VOICES stopped the whole recipe, where a missing engine is skipped with a warning and the
    recipe runs with the others; Kokoro is now skipped the same way, in one warning (once a process) naming the
    file and the fix."""
    from wakebuilder import recipe_data
    from wakebuilder.data import synth_voices
    from wakebuilder.recipe import RecipeConfig

    _kokoro_or_skip()
    cut = _damaged(tmp_path, how)
    monkeypatch.setenv("WB_KOKORO_VOICES", str(cut))
    monkeypatch.setattr(synth_voices, "_SAID_UNUSABLE", set())
    config = RecipeConfig.preset("tiny", phrase="hey jarvis", engines=("kokoro", "espeak"))
    with caplog.at_level(logging.WARNING):
        for seed in (0, 1):  # two synthesis steps of one run
            records = read_manifest(recipe_data.synth(config, tmp_path / f"positives-{seed}", 3, seed))
            assert len(records) == 3 and {r.source for r in records} == {"espeak"}
    said = [r.getMessage() for r in caplog.records if "kokoro" in r.getMessage()]
    assert len(said) == 1 and "\n" not in said[0], said
    assert str(cut) in said[0] and "unset WB_KOKORO_VOICES" in said[0]  # wb quickstart has no --kokoro-voices


def test_wb_synth_engine_kokoro_with_an_unusable_voices_file_is_a_one_line_error(tmp_path: Path) -> None:
    _kokoro_or_skip()
    cut = _damaged(tmp_path)
    try:
        result = CliRunner().invoke(main, ["synth", "hey", "--out", str(tmp_path / "out"), "-n", "1",
                                           "--engine", "kokoro", "--kokoro-voices", str(cut)])
    finally:
        get_engine("kokoro").use_voices_file(None)  # type: ignore[attr-defined]
    lines = [line for line in result.output.splitlines() if line]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert lines[0].startswith("wb: error:") and str(cut) in lines[0] and "--kokoro-voices" in lines[0]
    assert not (tmp_path / "out" / "manifest.jsonl").exists()  # nothing made
