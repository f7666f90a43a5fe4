"""The non-speech generators by name: drawing a clip's parameters apart from rendering them.

``draw(name, rng)`` draws one clip's settings (a discrete *group*, e.g. ``noise:pink`` or a music
setting, plus continuous values and a render seed); ``render(params, n)`` turns them into samples with
no other randomness, so a manifest row's ``params`` rebuild its clip exactly, and ``wb augment`` can
draw a background of any length from the same generators.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from wakebuilder.data.nonspeech import music, noise
from wakebuilder.data.nonspeech.babble import SpeechSources, render_babble

# name -> stable code (part of each clip's seed, so adding a generator never changes another's clips)
GENERATORS = {"noise": 1, "music": 2, "tone": 3, "chirp": 4, "click": 5, "hum": 6, "room": 7, "babble": 8}
SYNTHETIC = tuple(name for name in GENERATORS if name != "babble")  # the ones that need no speech
MANIFEST_KIND = {"music": "music"}  # everything else is kind "noise"
_MUSIC_SETTINGS = music.music_settings()


def manifest_kind(name: str) -> str:
    """The manifest ``kind`` of a generator's clips: ``music`` or ``noise``."""
    return MANIFEST_KIND.get(name, "noise")


def clip_rng(seed: int, name: str, index: int) -> np.random.Generator:
    """The Generator of the ``index``-th clip of generator ``name``: a function of these three only."""
    return np.random.default_rng([seed, GENERATORS[name], index])


def draw(name: str, rng: np.random.Generator) -> dict[str, Any]:
    """One clip's parameters; ``group`` names the discrete setting (splits hold groups out)."""
    params: dict[str, Any] = {"generator": name}
    if name == "noise":
        color = str(rng.choice(list(noise.COLOR_SLOPES)))
        params.update(group=f"noise:{color}", color=color)
    elif name == "music":
        setting = _MUSIC_SETTINGS[int(rng.integers(len(_MUSIC_SETTINGS)))]
        params.update(group=f"music:{setting.name}", scale=setting.scale, lead=setting.lead, pad=setting.pad,
                      drums=setting.drums, bass=setting.bass, tempo_bpm=float(rng.uniform(60, 170)),
                      key=int(rng.integers(48, 61)))
    elif name == "tone":
        count = int(rng.integers(1, 4))
        beep_s, gap_s = float(rng.uniform(0.08, 0.8)), float(rng.choice([0.0, rng.uniform(0.05, 0.6)]))
        params.update(group=f"tone:{count}{'-beeps' if gap_s else '-steady'}", beep_s=beep_s, gap_s=gap_s,
                      freqs_hz=[float(f) for f in np.exp(rng.uniform(np.log(200), np.log(4000), count))])
    elif name == "chirp":
        low = float(np.exp(rng.uniform(np.log(80), np.log(1500))))
        log = bool(rng.random() < 0.5)
        params.update(group=f"chirp:{'log' if log else 'linear'}", low_hz=low,
                      high_hz=float(min(low * rng.uniform(1.5, 8.0), noise.CHIRP_MAX_HZ)),
                      sweep_s=float(rng.uniform(0.1, 2.0)), log=log)
    elif name == "click":
        rate = float(np.exp(rng.uniform(np.log(0.5), np.log(30))))
        params.update(group=f"click:{'sparse' if rate < 4 else 'dense'}", rate_hz=rate,
                      decay_ms=float(rng.uniform(0.3, 8.0)))
    elif name == "hum":
        mains = int(rng.choice([50, 60]))
        params.update(group=f"hum:{mains}", mains_hz=float(mains), harmonics=int(rng.integers(1, 9)),
                      noise_db=float(rng.uniform(-40, -20)))
    elif name == "room":
        params.update(group="room", cutoff_hz=float(rng.uniform(150, 900)), mod_hz=float(rng.uniform(0.05, 0.5)),
                      mod_depth=float(rng.uniform(0.05, 0.4)))
    elif name == "babble":
        talkers = int(rng.integers(3, 9))
        params.update(group=f"babble:{talkers}", talkers=talkers)
    else:
        raise KeyError(name)
    params["seed"] = int(rng.integers(2**31))
    return params


def render(params: dict[str, Any], n: int, *, speech: SpeechSources | None = None) -> np.ndarray:
    """``n`` samples of unit RMS from drawn ``params`` (babble needs ``speech``)."""
    rng = np.random.default_rng(params["seed"])
    name = params["generator"]
    if name == "noise":
        return noise.colored_noise(n, params["color"], rng)
    if name == "music":
        setting = music.MusicSetting(params["scale"], params["lead"], params["pad"], params["drums"], params["bass"])
        return music.render_music(n, setting, rng, tempo_bpm=params["tempo_bpm"], key=params["key"])
    if name == "tone":
        return noise.tones(n, rng, freqs_hz=tuple(params["freqs_hz"]), beep_s=params["beep_s"], gap_s=params["gap_s"])
    if name == "chirp":
        return noise.chirps(n, rng, low_hz=params["low_hz"], high_hz=params["high_hz"], sweep_s=params["sweep_s"],
                            log=params["log"])
    if name == "click":
        return noise.clicks(n, rng, rate_hz=params["rate_hz"], decay_ms=params["decay_ms"])
    if name == "hum":
        return noise.mains_hum(n, rng, mains_hz=params["mains_hz"], harmonics=params["harmonics"],
                               noise_db=params["noise_db"])
    if name == "room":
        return noise.room_tone(n, rng, cutoff_hz=params["cutoff_hz"], mod_hz=params["mod_hz"],
                               mod_depth=params["mod_depth"])
    if name == "babble":
        if speech is None:
            raise ValueError("babble needs speech sources")
        return render_babble(n, rng, speech, talkers=params["talkers"])[0]
    raise KeyError(name)
