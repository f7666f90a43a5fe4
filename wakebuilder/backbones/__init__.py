"""Pretrained backbones: AST through transformers, and the offline speech-embedding and word-embedding models."""

from __future__ import annotations

from wakebuilder.backbones.base import Backbone, window_seconds

__all__ = ["ALIASES", "Backbone", "backbone_kind", "identity_window_samples", "is_onnx", "load_backbone",
           "window_seconds"]

# Names of the shipped backbones -> their canonical name; any other spec is an AST checkpoint (hub id or folder).
ALIASES = {"ast": "ast", "speech-embedding": "speech-embedding", "speech_embedding": "speech-embedding",
           "word-embedding": "word-embedding", "word_embedding": "word-embedding"}
# Backbones that run in onnxruntime on the CPU (no torch, no device choice, no compute precision)
ONNX_KINDS = ("speech-embedding", "word-embedding")


def backbone_kind(spec: str) -> str:
    """``speech-embedding``, ``word-embedding`` or ``ast``: which backbone a ``--backbone`` spec loads."""
    return ALIASES.get(spec, "ast")


def is_onnx(spec: str) -> bool:
    """Whether the ``--backbone`` spec loads an onnxruntime backbone (run on the CPU)."""
    return backbone_kind(spec) in ONNX_KINDS


KNOWN_NAMES = ("ast", "speech-embedding", "word-embedding")


def check_spec(spec: str, *, option: str = "--backbone", locate: bool = True) -> None:
    """Refuse a ``--backbone`` (or the ``option`` named) that is neither a known name, a local directory nor a hub id
    (owner/name), or word-embedding where its model is not installed (located, not loaded: a run fails now, not at
    embedding after minutes of synthesis). ``locate`` False: the name only, for a command that loads no backbone
    (``wb bank path``, ``info``, ``reclaim``), so a bank outlives its uninstalled model.

    Raises:
        BackboneError: naming the known names, saying the directory does not exist, or how to install the model.
    """
    from pathlib import Path

    from wakebuilder.errors import BackboneError

    path = Path(spec).expanduser()
    if locate and ALIASES.get(spec) == "word-embedding":
        from wakebuilder.backbones.word_embedding import model_path

        try:
            model_path()
        except BackboneError as exc:  # its message names word-embedding, said here once; --fuse-with's first may
            # be speech-embedding already
            other = f"pass {option} speech-embedding (shipped)" if option == "--backbone" else f"leave {option} out"
            detail = str(exc).removeprefix("word-embedding: ")
            raise BackboneError(f"{option} {spec}: {detail}, or {other}") from None
    if spec in ALIASES or path.is_dir():
        return
    known = f"known names: {', '.join(KNOWN_NAMES)}; or an HF hub id (owner/name) of an AST checkpoint"
    if path.exists():
        raise BackboneError(f"{option} {spec}: is a file, not a checkpoint directory ({known})")
    if "/" not in spec:
        raise BackboneError(
            f"{option} {spec!r}: unknown backbone, and no directory {path} exists ({known}, or a local "
            "checkpoint directory)"
        )
    if spec.startswith(("/", ".", "~")) or spec.count("/") > 1:
        raise BackboneError(f"{option} {spec}: the directory {path} does not exist ({known})")


def load_backbone(
    spec: str = "ast",
    *,
    window_s: float | None = None,
    device: str = "auto",
    dtype: str = "auto",
    threads: int = 0,
) -> Backbone:
    """Load a backbone by name, hub id or local directory.

    Args:
        spec: ``ast`` (the default AST checkpoint), ``speech-embedding`` or ``word-embedding`` (the
            offline ONNX models), an HF hub id of an AST checkpoint, or a local
            directory holding one.
        window_s: seconds of audio one embedding sees (None: the backbone's own).
        device: ``auto``, ``cpu`` or ``cuda``.
        dtype: ``auto``, ``fp32`` or ``bf16`` compute precision (AST only).
        threads: onnxruntime calls at once on parts of a batch (ONNX backbones only; 0: one per core).
    """
    from wakebuilder.devices import require_device

    require_device(device)
    check_spec(spec)
    if backbone_kind(spec) == "speech-embedding":
        from wakebuilder.backbones.speech_embedding import SpeechEmbeddingBackbone

        return SpeechEmbeddingBackbone(window_s=window_s, threads=threads)
    if backbone_kind(spec) == "word-embedding":
        from wakebuilder.backbones.word_embedding import WordEmbeddingBackbone

        return WordEmbeddingBackbone(window_s=window_s, threads=threads)
    from wakebuilder.backbones.ast import ASTBackbone

    return ASTBackbone.load(spec, window_s=window_s, device=device, dtype=dtype)


def identity_window_samples(identity: dict) -> int:
    """The ``window_samples`` of the backbone a store or model was made with, read from its recorded identity alone
    (no weights loaded, no checkpoint needed): an AST's from its front end's frames (``FbankSettings``: 128 frames
    take 20720 samples, not its ``window_s`` 1.28 s), an ONNX backbone's from its ``window_s``.

    Raises:
        TypeError, ValueError or ConfigError: an AST identity whose ``fbank`` is no front end's settings.
    """
    if "fbank" in identity:
        from wakebuilder.backbones.fbank import FbankSettings

        return int(FbankSettings(**identity["fbank"]).window_samples)
    from wakebuilder import SAMPLE_RATE

    return round(float(identity["window_s"]) * SAMPLE_RATE)


def backbone_from_identity(identity: dict, *, device: str = "auto", dtype: str = "auto") -> Backbone:
    """Re-load the backbone a store or model was made with, from its recorded identity.

    Every backbone's identity holds ``spec`` (what ``load_backbone`` takes) and
    ``window_s``; the re-loaded backbone's identity must equal the recorded one.
    """
    from wakebuilder.errors import StoreMismatchError

    backbone = load_backbone(identity["spec"], window_s=identity["window_s"], device=device, dtype=dtype)
    if backbone.identity != identity:
        raise StoreMismatchError(
            f"backbone {identity['spec']!r} now loads as {backbone.identity}, but the artifact was made "
            f"with {identity}; use the same checkpoint and window"
        )
    return backbone
