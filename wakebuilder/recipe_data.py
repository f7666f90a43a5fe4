"""The recipe's data steps: each makes one manifest or stream under the recipe's folder.

Small functions of the recipe config, called in order by ``wakebuilder.recipe_build.build_data``; each
calls one stage's library function with the settings ``wb`` would pass it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wakebuilder.errors import ConfigError
from wakebuilder.recipe_config import BANK_SEED, CALIBRATION_SEED, REPORT_SEED, RecipeConfig
from wakebuilder.recipe_keep import input_identity, keep_or_make
from wakebuilder.stage_version import versioned

if TYPE_CHECKING:
    from wakebuilder.bank.heldout import HeldoutStream
    from wakebuilder.data.stream import StreamConfig

Step = Callable[[str], None]


def positives(config: RecipeConfig, out: Path, recordings: Sequence[str | os.PathLike[str]], step: Step) -> list[Path]:
    """Your validated recordings (if any), then ``n_pos`` synthesized positives."""
    from wakebuilder.data.validate import ValidateConfig, validate_recordings

    manifests = []
    if recordings:
        step(f"validate {len(recordings)} recording(s)")
        # overwrite: this run's recordings only (wb validate's default keeps a folder's earlier ones, which here
        # were an earlier run's: another take, or another phrase's)
        manifest, _ = validate_recordings(list(recordings), out_dir=out / "recordings", config=ValidateConfig(),
                                          overwrite=True)
        manifests.append(manifest)
    step(f'synth {config.n_pos} positives of "{config.phrase}"')
    manifests.append(synth(config, out / "positives", config.n_pos, config.seed))
    return manifests


def synth(config: RecipeConfig, out: Path, n: int, seed: int) -> Path:
    """``n`` positives in ``out``: kept when a (killed) run of the same settings and voices finished them, else made
    (a synthesis that was killed resumes; a run of other settings or voices is replaced)."""
    from wakebuilder.data.synth import SynthConfig, keep_or_run_synth

    return keep_or_run_synth(SynthConfig(texts=(config.phrase,), n=n, engines=config.engines, seed=seed), out_dir=out)


def make_negatives(config: RecipeConfig, out: Path, *, n: int, speech: int, words: int, seed: int) -> Path:
    """The negatives in ``out``, kept or made as ``synth``'s positives are (kept only while the texts they speak,
    the sound-alike candidates among them, are the same: ``negatives.keep_or_make_negatives``)."""
    from wakebuilder.data.negatives import NegativesConfig, keep_or_make_negatives

    settings = NegativesConfig(phrase=config.phrase, n=n, speech=speech, words=words,
                               engines=config.negative_engines, seed=seed)
    return keep_or_make_negatives(settings, out_dir=out)


def negatives(config: RecipeConfig, out: Path, step: Step) -> Path:
    """Sound-alikes, and (without the bank, which holds them) generic speech and isolated words for training."""
    speech, words = (0, 0) if config.bank else (config.n_speech, config.n_words)
    step(f"negatives: {config.n_hard} sound-alikes, {speech} generic speech clips, {words} isolated words"
         + (" (generic speech and words are in the bank)" if config.bank else ""))
    return make_negatives(config, out / "negatives", n=config.n_hard, speech=speech, words=words, seed=config.seed)


def bank(config: RecipeConfig, store: Path, step: Step, *, device: str = "auto", threads: int = 0) -> Path:
    """The negative bank of the store's backbone and window: built by the first phrase, reused by the next.

    It holds what the recipe's negatives held that does not depend on the phrase: ``n_speech``
    generic sentences, ``n_words`` isolated words, ``train_stream_s`` of stream windows of them,
    ``n_nonspeech`` music and noise clips (and Debian's, with ``debian``) and ``neg_copies``
    augmented copies (``wakebuilder.bank.ensure``).
    """
    from wakebuilder.bank.negatives import BankNegativesConfig
    from wakebuilder.bank.ensure import ensure_bank
    from wakebuilder.store import open_store

    with open_store(store) as opened:
        window_s = float(opened.spec.backbone["window_s"])
    negatives_config = BankNegativesConfig(
        speech=config.n_speech, words=config.n_words, stream_s=config.train_stream_s, chunk_s=window_s,
        hop_s=config.chunk_hop_s, engines=config.shared_speech_engines, seed=BANK_SEED, nonspeech=config.n_nonspeech,
        debian=config.debian)
    step(f"negative bank of {config.backbone} at {window_s:g} s: build or reuse")
    result = ensure_bank(negatives_config, backbone=config.backbone, window_s=window_s,
                         augment=config.augment.replace(copies=config.neg_copies, seed=BANK_SEED),
                         device=device, threads=threads)
    step(f"negative bank: {'built' if result.synthesized else 'reused'}, {result.embedded} clip(s) embedded, "
         f"{result.clips} in {result.store}")
    return result.store


def heldout_sets(config: RecipeConfig, out: Path, step: Step) -> dict[str, Path]:
    """Held-out data of other seeds: ``calibrate_*`` makes the calibration stream; with ``report``,
    ``report_*`` the report's stream and clips, and ``positives``.

    The streams are generic speech (``*_speech``) and music and noise (``*_nonspeech``): audio that a device
    hears for hours. The phrase's sound-alikes are not in them: a stream holding hundreds of near-homophones
    an hour is no audio anyone hears, and with them a 0.5 FA/h target was set by one outlier ("hey jarash",
    pico: 0.992) at a threshold that kept 2 % of the positives. Held-out sound-alikes (``report_hard``)
    are scored as clips in the report. With the bank, each stream (``*_stream``) and its clips are made once
    in the cache for every phrase (``bank.heldout``); the sentences that say the phrase are left out of the
    report's clips, and out of the streams' counts by their segments' texts.
    """
    from wakebuilder.bank.heldout import without_phrase

    step("held-out data (other seeds): a stream of speech, music and noise calibrates the threshold"
         + (", another measures FA/h, with held-out positives and sound-alikes" if config.report else ""))
    names = ("calibrate", "report") if config.report else ("calibrate",)
    seeds = {"calibrate": CALIBRATION_SEED, "report": REPORT_SEED}
    if not config.heldout_speech:
        raise ConfigError("recipe: the held-out streams need heldout_speech above 0 (their music and noise "
                          "babble it)")
    sets: dict[str, Path] = {}
    for name in names:
        if config.bank:
            shared = shared_stream(config, seeds[name], config.report_stream_s if name == "report" else config.stream_s)
            sets[f"{name}_stream"] = shared.stream
            if shared.nonspeech is not None:
                sets[f"{name}_nonspeech"] = shared.nonspeech
            if name == "report":  # the report's clips
                sets["report_speech"] = without_phrase(shared.speech, config.phrase, out / "heldout-speech-report")[0]
        else:
            sets[f"{name}_speech"] = make_negatives(config, out / f"heldout-speech-{name}", n=0,
                                                    speech=config.heldout_speech, words=0,
                                                    seed=config.seed + seeds[name])
    if config.report:
        if config.heldout_hard:
            sets["report_hard"] = make_negatives(config, out / "heldout-eval", n=config.heldout_hard, speech=0,
                                                 words=0, seed=config.seed + REPORT_SEED)
        sets["positives"] = synth(config, out / "heldout-positives", config.heldout_pos, config.seed + REPORT_SEED)
    if config.heldout_nonspeech and not config.bank:
        step(f"held-out non-speech: {config.heldout_nonspeech} music and noise clips per stream")
        for name in names:
            sets[f"{name}_nonspeech"] = nonspeech(config, out / f"heldout-nonspeech-{name}", sets[f"{name}_speech"],
                                                  n=config.heldout_nonspeech, seed=config.seed + seeds[name])
    return sets


def shared_stream(config: RecipeConfig, seed: int, duration_s: float) -> HeldoutStream:
    """The stream of ``duration_s`` of ``seed``, made once in the cache for every phrase: ``heldout_speech``
    generic sentences (a phrase's counts leave out those that say it; the audio keeps them) and
    ``heldout_nonspeech`` music and noise clips."""
    from wakebuilder.bank.heldout import HeldoutStreamConfig, heldout_stream

    return heldout_stream(HeldoutStreamConfig(
        speech=config.heldout_speech, nonspeech=config.heldout_nonspeech, clip_s=config.embed_window_s or 2.5,
        duration_s=duration_s, seed=BANK_SEED + seed, engines=config.shared_speech_engines))


def nonspeech(config: RecipeConfig, out: Path, speech: Path, *, n: int, seed: int) -> Path:
    """``n`` music and noise clips of ``seed``, every generator (babble from ``speech``'s clips: no more TTS); kept
    when a run of the same settings and speech finished them (``recipe_keep``)."""
    from wakebuilder.data.nonspeech.generators import GENERATORS
    from wakebuilder.data.nonspeech.make import NonspeechConfig, make_nonspeech, stage_versions

    settings = NonspeechConfig(n=n, duration_s=config.embed_window_s or 2.5, seed=seed,
                               kinds=tuple(GENERATORS),
                               babble_from=str(speech))
    identity = versioned({"step": "nonspeech", "config": settings.to_dict(), "inputs": input_identity([speech])},
                         stage_versions(settings))
    return keep_or_make(out, identity, lambda: make_nonspeech(settings, out_dir=out, overwrite=True))


def augmented(config: RecipeConfig, manifest: Path, out: Path, copies: int, *, background: bool = False) -> Path:
    """``copies`` augmented copies of each clip of ``manifest`` (the recipe's augment settings): kept when a run of
    the same settings and manifest finished them, else made (a killed run resumes, one of other settings is replaced).

    ``background``: mix the recipe's music and noise backgrounds into a share of the copies (positives).
    """
    from wakebuilder.data.augment.background import BackgroundConfig
    from wakebuilder.data.augment.pipeline import keep_or_run_augment

    mix = None
    if background and config.background:
        mix = BackgroundConfig(generators=config.background, snr_db=config.background_snr_db, p=config.background_p)
    return keep_or_run_augment(manifest, out_dir=out, config=config.augment.replace(copies=copies, seed=config.seed),
                               background=mix)


def negative_stream(config: RecipeConfig, manifest: Path | Sequence[Path], out_path: Path,
                    duration_s: float | None = None) -> Path:
    """The manifests' clips joined into ``duration_s`` (default ``stream_s``) of continuous audio."""
    from wakebuilder.data.stream import build_negative_stream

    manifests = [manifest] if isinstance(manifest, Path) else list(manifest)
    return build_negative_stream([str(m) for m in manifests], out_path=out_path,
                                 config=_stream_config(config, duration_s), overwrite=True)


def _stream_config(config: RecipeConfig, duration_s: float | None) -> StreamConfig:
    from wakebuilder.data.stream import StreamConfig

    return StreamConfig(duration_s=duration_s or config.stream_s, seed=config.seed)


def training_windows(config: RecipeConfig, out: Path, negatives_manifest: Path, step: Step) -> Path:
    """A stream of training negatives cut into embedding-sized windows every ``chunk_hop_s``.

    Streaming detection sees every alignment of words, pauses and word boundaries, not only centred
    clips; these windows teach the head that. They are cut at the embedding window, so none is
    padded with silence. Kept when a run of the same settings and negatives finished them (``recipe_keep``).
    """
    from wakebuilder.data import realchunks, stream
    from wakebuilder.data.realchunks import ChunkConfig, chunk_real_audio

    chunk_s = config.embed_window_s or 1.5
    step(f"training stream: {config.train_stream_s:g}s of negatives, cut into {chunk_s:g}s windows every "
         f"{config.chunk_hop_s:g} s")
    folder, chunks = out / "train-stream", out / "train-stream-chunks"
    settings = ChunkConfig(min_s=chunk_s, max_s=chunk_s, hop_s=config.chunk_hop_s)

    def make() -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        negative_stream(config, negatives_manifest, folder / "negatives.wav", config.train_stream_s)
        return chunk_real_audio(folder, out_dir=chunks, config=settings, overwrite=True)

    identity = {"step": "training windows", "stream": _stream_config(config, config.train_stream_s).to_dict(),
                "chunks": settings.to_dict(), "inputs": input_identity([negatives_manifest])}
    identity = versioned(identity, {"stream": stream.VERSION, "real-chunks": realchunks.VERSION})
    return keep_or_make(chunks, identity, make)


def real_chunks(real_dir: str | os.PathLike[str], out: Path) -> Path:
    """Chunks of real audio without the phrase (``wb negatives --real``'s defaults) into ``out/real``.

    Raises:
        ConfigError: ``real_dir`` holds the run's folder ``out`` or another recipe run, whose clips (positives
            among them) would be chunked into negatives.
    """
    from wakebuilder.data.realchunks import ChunkConfig, chunk_real_audio
    from wakebuilder.recipe_folders import check_real_folder

    check_real_folder(Path(real_dir), out)
    # overwrite: out/real is the run's, chunked again when an older version chunked it (``realchunks.VERSION``)
    return chunk_real_audio(real_dir, out_dir=out / "real", config=ChunkConfig(), overwrite=True)
