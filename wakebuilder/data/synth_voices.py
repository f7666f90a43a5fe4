"""The voices a synthesis run speaks with: found here per engine, and recorded.

``find_voices`` finds a run's voices (the engines installed, the voice files found, ``voice_pattern``, and
non-commercial licences only when named); ``voice_identity`` is what a run records of them, so a resumed or kept
run is not taken for one with other voices (``synth_journal``); ``describe_voices`` lists every engine's voices
for ``wb synth --list-voices``.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from wakebuilder.data.tts import (
    ENGINES, NON_COMMERCIAL_ENGINES, Engine, Voice, get_engine, is_non_commercial, usable_engines, voice_licence,
)
from wakebuilder.errors import ConfigError, EngineUnavailableError
from wakebuilder.fingerprint import cached_file_sha256, canonical_json

log = logging.getLogger(__name__)
_SAID_LEFT_OUT: set[tuple[str, tuple[str, ...]]] = set()  # (engine, voices): said once a process, not every step
_SAID_UNUSABLE: set[tuple[str, str]] = set()  # (engine, why): an engine left out that cannot read its voices


class VoiceChoice(Protocol):
    """What of a run's config chooses its voices: ``synth.SynthConfig``'s fields (not imported: synth imports
    this module)."""

    @property
    def engines(self) -> tuple[str, ...]: ...

    @property
    def voice_pattern(self) -> str | None: ...

    @property
    def piper_voices(self) -> tuple[str, ...]: ...

    @property
    def kokoro_voices(self) -> str | None: ...


def select_voices(voices: list[Voice], pattern: str | None) -> list[Voice]:
    """The voices ``pattern`` (``--voices``) selects: a voice as ``--list-voices`` names it (``af_heart``,
    ``kokoro:af_heart``, espeak's ``en-us`` with its variants) selects that voice alone; any other pattern is a
    regular expression searched in each voice's name and key, a blend's key without the voices it mixes, so
    ``^a[fm]_`` selects Kokoro's US voices and their blends, ``mix`` the blends, ``rhvoice:slt`` one RHVoice speaker.
    """
    if pattern is None:
        return voices
    exact = [voice for voice in voices if pattern in _listed_names(voice)]
    if exact:
        return exact
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"--voices {pattern!r}: not a regular expression ({exc})") from exc
    return [voice for voice in voices if compiled.search(_searched_key(voice)) or compiled.search(voice.name)]


def _listed_names(voice: Voice) -> set[str]:
    """The names ``--list-voices`` gives ``voice`` (``describe_voices``: a variant ``en-us+f3`` under ``en-us``),
    with and without its engine."""
    names = {voice.name, voice.name.split("+")[0]}
    return names | {f"{voice.engine}:{name}" for name in names}


def _searched_key(voice: Voice) -> str:
    """``voice.key`` without a blend's recipe (``blend=af_heart*0.4+...``): a blend is not the voices it mixes."""
    return Voice(voice.engine, voice.name, {k: v for k, v in voice.settings.items() if k != "blend"}).key


def names_voice(pattern: str | None, voice: Voice) -> bool:
    """Whether ``pattern`` names ``voice`` itself: it is the voice's name as ``--list-voices`` gives it, matches the
    name, or a match in the key overlaps the name (``rhvoice:lyubov``, ``lyubov:pitch=100``); one matching only the
    engine or settings (``pitch=100``) does not."""
    if pattern is None:
        return False
    if pattern in _listed_names(voice) or re.search(pattern, voice.name):
        return True
    start = len(voice.engine) + 1  # the key is engine:name:settings
    key = _searched_key(voice)
    return any(m.start() < start + len(voice.name) and m.end() > start for m in re.finditer(pattern, key))


def commercial_voices(engine: Engine, voices: list[Voice], pattern: str | None = None) -> list[Voice]:
    """``voices`` without those under a non-commercial licence that ``pattern`` (``--voices``) does not name
    (``names_voice``), unless the engine's every voice is (then naming the engine names them: it is never in a
    default set); logs what was left out and how to name it, once a process (every synthesis step of a recipe
    finds its voices)."""
    if engine.name in NON_COMMERCIAL_ENGINES:
        return voices
    kept = [v for v in voices if not is_non_commercial(voice_licence(engine, v.name)) or names_voice(pattern, v)]
    left = sorted({v.name for v in voices} - {v.name for v in kept})
    if left and (engine.name, tuple(left)) not in _SAID_LEFT_OUT:
        _SAID_LEFT_OUT.add((engine.name, tuple(left)))
        log.info("synth: %s voices %s have a non-commercial licence and are left out; name them with --voices",
                 engine.name, ", ".join(left))
    return kept


def _voices_by_engine(config: VoiceChoice, chosen: list[Voice] | None) -> dict[str, list[Voice]]:
    if chosen is not None:
        usable_engines(list(config.engines))  # fails clearly when an engine of the given voices is missing
        found = {name: [v for v in chosen if v.engine == name] for name in config.engines}
    else:
        engines = usable_engines(list(config.engines))
        readable = _readable_voices(engines)
        engines = [e for e in engines if e.name in readable]
        found = {e.name: select_voices(readable[e.name], config.voice_pattern) for e in engines}
        found = {e.name: commercial_voices(e, found[e.name], config.voice_pattern) for e in engines}
    found = {name: voices for name, voices in found.items() if voices}
    if not found:
        names = ", ".join(config.engines)
        raise ConfigError(f"--voices {config.voice_pattern!r}: matches no voice of {names}")
    return found


def _readable_voices(engines: list[Engine]) -> dict[str, list[Voice]]:
    """Each engine's voices; one that cannot read them (a damaged WB_KOKORO_VOICES, a bad model file) is left out
    with a warning naming the file and the fix (once a process), as a missing engine is, unless none can.

    Raises:
        EngineUnavailableError: no engine can read its voices (the first one's error).
    """
    found, failed = {}, {}
    for engine in engines:
        try:
            found[engine.name] = engine.voices()
        except EngineUnavailableError as err:
            failed[engine.name] = err
    if not found:
        raise next(iter(failed.values()))
    for name, err in failed.items():
        if (name, str(err)) not in _SAID_UNUSABLE:
            _SAID_UNUSABLE.add((name, str(err)))
            log.warning("TTS engine %s unavailable: %s", name, err)
    return found


def find_voices(config: VoiceChoice, chosen: list[Voice] | None = None) -> dict[str, list[Voice]]:
    """The voices a run of ``config`` speaks with here, per engine (``chosen``: the given Voice settings).

    Not all in the config: they follow the engines installed and the voice files found (``piper_voices``,
    ``kokoro_voices``, else WB_PIPER_VOICES, WB_KOKORO_VOICES, fetched ones); an engine missing, or one that cannot
    read its voice files, is skipped with a warning while another can run.

    Raises:
        ConfigError: no voice of the engines matches ``voice_pattern``.
        EngineUnavailableError: none of the engines can run here, or none can read its voices (the one-line reason).
    """
    for path in config.piper_voices:
        get_engine("piper").add_voice(path)  # type: ignore[attr-defined]
    if "kokoro" in config.engines:  # the same voices as the spawned workers will load
        get_engine("kokoro").use_voices_file(config.kokoro_voices)  # type: ignore[attr-defined]
    return _voices_by_engine(config, chosen)


def voice_identity(voices: dict[str, list[Voice]]) -> dict[str, Any]:
    """What a run records of the voices it speaks with (``find_voices``), so a run with the same config but other
    voices is not taken for it: a sha256 of every voice setting in order, per engine their number, and (``files``)
    per engine that reads its voices from files a sha256 of their contents (``voice_files_sha256``)."""
    settings = {engine: [voice.to_dict() for voice in found] for engine, found in sorted(voices.items())}
    identity = {"sha256": hashlib.sha256(canonical_json(settings).encode("utf-8")).hexdigest(),
                "settings": {engine: len(found) for engine, found in settings.items()}}
    files = voice_files_sha256(voices)
    return (identity | {"files": files}) if files else identity


def voice_files_sha256(voices: dict[str, list[Voice]]) -> dict[str, str]:
    """Per engine whose voices come from files (its ``voice_files``: Kokoro's, Piper's), a sha256 of their contents,
    so voices of the same names from another file (WB_KOKORO_VOICES, --piper-voice pointed elsewhere, a voice fetched
    again) are other voices. Each file is read once a process (``fingerprint.cached_file_sha256``).

    Raises:
        EngineUnavailableError: a voice file cannot be read.
    """
    digests = {}
    for name, found in sorted(voices.items()):
        listed = getattr(get_engine(name), "voice_files", None) if name in ENGINES else None
        paths = listed(found) if listed is not None else []
        if not paths:
            continue
        lines = []
        for path in paths:
            try:
                lines.append(f"{cached_file_sha256(path)}  {Path(path).name}\n")
            except OSError as exc:
                raise EngineUnavailableError(f"{path}: cannot read this {name} voice file ({exc.strerror}); "
                                             "pass a readable one") from exc
        digests[name] = hashlib.sha256("".join(lines).encode("utf-8")).hexdigest()
    return digests


def voice_table(*, piper_voices: Sequence[str] = (), kokoro_voices: str | None = None) -> dict[str, dict[str, Any]]:
    """Per engine: whether it can run here (``reason``: why not), whether its voices are non-commercial (never used
    unless named), and its base voices (``name``, ``kind``: voice or the blend, ``settings``, ``licence``). An
    engine that cannot read its voices (a damaged voices file) is unavailable with the reason, as one not installed."""
    for path in piper_voices:
        get_engine("piper").add_voice(path)  # type: ignore[attr-defined]
    if kokoro_voices:
        get_engine("kokoro").use_voices_file(kokoro_voices)  # type: ignore[attr-defined]
    table: dict[str, dict[str, Any]] = {}
    for name in ENGINES:
        engine = get_engine(name)
        row: dict[str, Any] = {"available": False, "reason": None, "non_commercial": name in NON_COMMERCIAL_ENGINES,
                               "voices": []}
        table[name] = row
        if not engine.available():
            row["reason"] = engine.why_unavailable()
            continue
        try:
            voices = engine.voices()
        except EngineUnavailableError as err:  # its voice files (a bad --kokoro-voices): the others are listed
            row["reason"] = str(err)
            continue
        row["available"] = True
        settings = Counter(voice.name.split("+")[0] for voice in voices)
        blends = {v.name: v.settings["blend"] for v in voices if "blend" in v.settings and "*" in v.settings["blend"]}
        row["voices"] = [{"name": f"{name}:{base}", "settings": count, "licence": voice_licence(engine, base),
                          "kind": f"blend {blends[base]}" if base in blends and "+" in blends[base] else "voice"}
                         for base, count in settings.items()]
    return table


def describe_voices(*, piper_voices: Sequence[str] = (), kokoro_voices: str | None = None) -> list[str]:
    """``voice_table`` as lines: per engine a line (its voice settings, or why it cannot run here), then one line
    per base voice with its licence and number of settings; non-commercial voices are marked."""
    lines = []
    for name, row in voice_table(piper_voices=piper_voices, kokoro_voices=kokoro_voices).items():
        if not row["available"]:
            lines.append(f"{name}\tunavailable: {row['reason']}")
            continue
        note = " (non-commercial: only when named)" if row["non_commercial"] else ""
        total = sum(voice["settings"] for voice in row["voices"])
        lines.append(f"{name}\t{total} voice settings of {len(row['voices'])} voices{note}")
        lines += [f"  {v['name']}\t{v['kind']}\t{v['settings']} settings\t{v['licence']}" for v in row["voices"]]
    return lines
