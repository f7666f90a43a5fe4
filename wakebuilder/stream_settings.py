"""The stream settings a threshold is calibrated with, as a calibration records them, and their check.

``wb calibrate`` records the hop, smoothing and refractory period it scored with in its ``config`` (``wb export``
copies it into NAME.json as ``calibration_config``), so that ``wb detect`` scans a stream as the threshold was chosen.
A file edited by hand may hold anything there; every reader and copier checks it here, so they refuse the same
things in the same words.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wakebuilder import MAX_REFRACTORY_S, MAX_SMOOTH, MIN_DEFAULT_REFRACTORY_S, SAMPLE_RATE
from wakebuilder.errors import ModelFileError
from wakebuilder.modeldir import CALIBRATION_NAME, LoadedModel, short_repr
from wakebuilder.streaming import MAX_HOP_S, MIN_HOP_S, hop_ok, refractory_ok, smooth_ok
from wakebuilder.values import finite_number

STREAM_DEFAULTS: dict[str, Any] = {"hop_s": 0.1, "smooth": 1, "refractory_s": None}
"""The streaming settings of a model whose calibration records none (``wb calibrate``'s own defaults); a refractory
period of None is the detector's window (``default_refractory_s``)."""


def default_refractory_s(window_samples: int) -> float:
    """The refractory period of a detector of ``window_samples`` windows where none is given or recorded: its window
    in seconds, never below ``MIN_DEFAULT_REFRACTORY_S``.

    A wake word stays inside the sliding window for about a window's length, so its score can dip and rise again up
    to a window after the first detection. With 1 s, 14 of 177 real utterances detected by word-embedding models
    (1.5 s window) fired twice, none at 1.5 s, with the same recall, thresholds and false accepts on real speech.
    """
    return max(MIN_DEFAULT_REFRACTORY_S, window_samples / SAMPLE_RATE)


def stream_defaults(window_samples: int) -> dict[str, Any]:
    """``STREAM_DEFAULTS`` for a detector of ``window_samples`` windows: its refractory period resolved
    (``default_refractory_s``). What wb detect runs a detector that records no settings with."""
    return STREAM_DEFAULTS | {"refractory_s": default_refractory_s(window_samples)}


SETTING_KINDS: dict[str, str] = {"hop_s": f"a number within {MIN_HOP_S:g}..{MAX_HOP_S:g}",
                                 "smooth": f"an integer within 1..{MAX_SMOOTH}",
                                 "refractory_s": f"a number within 0..{MAX_REFRACTORY_S:g}",
                                 "target_fa_per_hour": "a finite number",
                                 "not_below_f1": "true or false",
                                 "min_threshold": "a number within 0..1 (1 excluded)"}
"""What each setting a calibration records in its ``config`` must be (the stream settings and the FA/h rule's)."""


RANGE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "hop_s": hop_ok, "smooth": smooth_ok, "refractory_s": refractory_ok,
    "min_threshold": lambda value: finite_number(value) and 0.0 <= value < 1.0,
}
"""The settings bounded as their options are (``--hop-s``, ``--smooth``, ``--refractory-s``, ``--min-threshold``)."""


def setting_problem(name: str, value: Any) -> str | None:
    """Why ``value``, read from a calibration's ``config``, is no ``name`` setting (``SETTING_KINDS``), or None.

    JSON may hold anything there (a file edited by hand): a string, null, a list, NaN; a setting that is not of
    its kind would end in a TypeError deep in scoring, or, a NaN or infinite refractory period, merge every
    detection of a stream into its first; a smoothing past ``--smooth``'s bounds, in an OverflowError (10**30).
    A refractory period past ``--refractory-s``'s bounds merges them silently (1e9), or is refused as if the user
    had passed a bad ``--refractory-s`` (-1).
    """
    kind = SETTING_KINDS[name]
    if kind == "true or false":
        ok = isinstance(value, bool)
    elif name in RANGE_CHECKS:
        ok = RANGE_CHECKS[name](value)
    else:
        ok = finite_number(value)
    return None if ok else f"{name} {short_repr(value)} is not {kind}"


def recorded_settings(config: Any, *, where: Path, key: str, fix: str) -> dict[str, Any]:
    """The streaming settings recorded in a calibration's ``config`` (``key`` of the file ``where``; none when it
    is absent or null).

    Raises:
        ModelFileError: it is not an object (edited by hand): ignored, the stream would be scanned with other
            settings than the threshold was calibrated with; ``fix`` ends the message.
    """
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ModelFileError(f"{where}: {key} {short_repr(config)} must be an object of the stream settings the "
                             f"threshold was calibrated with ({', '.join(STREAM_DEFAULTS)}) or null; {fix}")
    return {k: config[k] for k in STREAM_DEFAULTS if k in config}


def calibration_settings(model: LoadedModel, *, keys: Sequence[str] = tuple(STREAM_DEFAULTS)) -> dict[str, Any]:
    """The ``keys`` a model folder's calibration records in its ``config`` (none before wb calibrate, or null), each
    of its kind (``setting_problem``): checked before wb export copies them into NAME.json and wb ensemble into its
    calibration, so neither writes a file wb detect would refuse.

    Raises:
        ModelFileError: ``config`` is not an object (wb detect's line), or a setting is not of its kind (edited by
            hand); naming calibration.json and the fix.
    """
    where, fix = model.path / CALIBRATION_NAME, f"run wb calibrate on {model.path} again"
    config = (model.calibration or {}).get("config")
    recorded_settings(config, where=where, key="config", fix=fix)
    settings = {k: v for k, v in (config or {}).items() if k in keys}
    for key, value in settings.items():
        if problem := setting_problem(key, value):
            raise ModelFileError(f"{where}: config.{problem}; {fix}")
    return settings
