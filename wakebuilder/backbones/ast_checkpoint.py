"""An AST checkpoint: found locally or in the HF cache (or the hub), loaded strictly, resized to a window.

``load_checkpoint`` turns a ``--backbone`` spec into the model, its pinned
revision and its preprocessor config; ``resize_model`` rebuilds it for another
number of frames, with the time axis of the position embeddings interpolated
(longer) or centre-cropped (shorter), as the AST reference code adapts them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import torch
from torch import nn

from wakebuilder.errors import BackboneError
from wakebuilder.fingerprint import file_sha256

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_CHECKPOINT = "MIT/ast-finetuned-speech-commands-v2"
N_SPECIAL_TOKENS = 2  # the CLS and distillation tokens lead the sequence
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def _hub_options(*, local_only: bool) -> dict[str, Any]:
    """Cache and offline options read now, not when huggingface_hub was first imported."""
    offline = os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")
    options: dict[str, Any] = {"local_files_only": local_only or offline}
    cache = os.environ.get("HF_HUB_CACHE") or os.environ.get("HUGGINGFACE_HUB_CACHE")
    if not cache and os.environ.get("HF_HOME"):
        cache = str(Path(os.environ["HF_HOME"]) / "hub")
    if cache:
        options["cache_dir"] = cache
    return options


def _missing_weights_error(checkpoint: str, reason: str) -> BackboneError:
    hf_home = os.environ.get("HF_HOME", str(Path.home() / ".cache" / "huggingface"))
    return BackboneError(
        f"cannot load AST checkpoint {checkpoint!r} ({reason}); it is not in the HF cache "
        f"(HF_HOME={hf_home}) "
        f"and cannot be downloaded here: download it where there is network "
        f"(`hf download {checkpoint}`) and copy the cache, or save it to a directory and pass --backbone DIR"
    )


def _weights_revision(directory: Path) -> str:
    """sha256 of a local checkpoint's weights (several shards: a hash of their hashes)."""
    files = [directory / name for name in WEIGHT_FILES if (directory / name).is_file()][:1]
    files = files or sorted(directory.glob("*.safetensors")) or sorted(directory.glob("*.bin"))
    if not files:
        raise BackboneError(f"{directory}: no model weights (model.safetensors or pytorch_model.bin) found")
    hashes = [file_sha256(str(path)) for path in files]
    return hashes[0] if len(hashes) == 1 else hashlib.sha256("".join(hashes).encode()).hexdigest()


def _hub_call(fetch: Callable[[dict[str, Any]], T]) -> T:
    """Run a hub fetch from the HF cache first, then (unless HF_HUB_OFFLINE) from the network."""
    try:
        return fetch(_hub_options(local_only=True))
    except OSError:
        options = _hub_options(local_only=False)
        if options["local_files_only"]:
            raise
        return fetch(options)


def _resolve_hub(repo: str) -> tuple[str, Path]:
    """A hub id's commit hash and its preprocessor_config.json path (cache, then hub)."""
    from transformers.utils import cached_file

    try:
        config_path = Path(_hub_call(lambda options: cached_file(repo, "config.json", **options)))
        commit = config_path.parent.name
        if config_path.parent.parent.name != "snapshots":
            raise BackboneError(f"{repo}: {config_path} is outside an HF cache; pass its directory instead")
        preprocessor = _hub_call(
            lambda options: cached_file(repo, "preprocessor_config.json", revision=commit, **options)
        )
        return commit, Path(preprocessor)
    except OSError as exc:
        raise _missing_weights_error(repo, str(exc).splitlines()[0]) from exc


def _read_preprocessor(path: Path) -> dict[str, Any]:
    """A preprocessor_config.json as a dict ({} when a local checkpoint has none: extractor defaults)."""
    if not path.is_file():
        log.warning("%s is missing; using ASTFeatureExtractor defaults", path)
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise BackboneError(f"{path}: unreadable preprocessor config ({exc}); re-save it") from exc


def _load_pretrained(source: str, *, revision: str | None = None) -> nn.Module:
    """ASTModel.from_pretrained with SDPA attention, hub ids pinned to ``revision``; missing weights raise."""
    from safetensors import SafetensorError
    from transformers import ASTModel

    def fetch(options: dict[str, Any]) -> tuple[nn.Module, dict[str, Any]]:
        return ASTModel.from_pretrained(
            source, attn_implementation="sdpa", output_loading_info=True, **options
        )

    try:
        if revision is None:
            model, info = fetch({})
        else:
            model, info = _hub_call(lambda options: fetch({"revision": revision, **options}))
    except OSError as exc:
        if revision is None:
            reason = str(exc).splitlines()[0]
            raise BackboneError(f"{source}: not a loadable AST checkpoint ({reason})") from exc
        raise _missing_weights_error(source, str(exc).splitlines()[0]) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise BackboneError(f"{source}: not a loadable AST checkpoint ({exc})") from exc
    except (RuntimeError, SafetensorError) as exc:  # torch.load and safetensors on a cut-off or corrupt file
        reason = str(exc).splitlines()[0]
        raise BackboneError(f"{source}: not a loadable AST checkpoint, its weights are cut off or corrupt "
                            f"({reason}); copy or download the checkpoint again") from exc
    missing = [key for key in info.get("missing_keys", []) if key]
    if missing:
        raise BackboneError(f"{source}: not an AST checkpoint, weights missing for {missing[:3]}...")
    return model


def _checkpoint_folder(spec: str) -> tuple[str, str, Path, str | None]:
    """Where ``spec`` (``ast``, a hub id or a local directory) is: ``(spec, checkpoint, folder, hub revision)``.

    A local directory's spec and checkpoint become its resolved path (no hub revision); a hub id's folder is its
    pinned snapshot in the HF cache (config.json and preprocessor_config.json side by side).

    Raises:
        BackboneError: a local directory without config.json, or a hub id that is not available.
    """
    local_dir = Path(spec).expanduser()
    if spec != "ast" and local_dir.is_dir():
        spec = checkpoint = str(local_dir.resolve())
        if not (local_dir / "config.json").is_file():  # transformers would build a default-sized AST and fail
            raise BackboneError(f"{local_dir}: no config.json, so not an AST checkpoint folder; save the "
                                "checkpoint with save_pretrained, which writes it beside the weights")
        return spec, checkpoint, local_dir, None
    checkpoint = DEFAULT_CHECKPOINT if spec == "ast" else spec
    revision, preprocessor_path = _resolve_hub(checkpoint)
    return spec, checkpoint, preprocessor_path.parent, revision


def load_checkpoint(spec: str) -> tuple[str, str, str, nn.Module, dict[str, Any]]:
    """``ast`` (the default checkpoint), a hub id (HF cache or download) or a local directory, loaded.

    Returns:
        ``(spec, checkpoint, revision, model, preprocessor)``: a local directory's spec and checkpoint become
        its resolved path and its revision the sha256 of its weights; a hub id's revision is its commit.

    Raises:
        BackboneError: the weights are not available, or the checkpoint is not an AST.
    """
    spec, checkpoint, folder, revision = _checkpoint_folder(spec)
    model = _load_pretrained(checkpoint, revision=revision)
    if revision is None:
        revision = _weights_revision(folder)
    return spec, checkpoint, revision, model, _read_preprocessor(folder / "preprocessor_config.json")


def load_config(spec: str) -> tuple[str, Any, dict[str, Any]]:
    """``load_checkpoint``'s checkpoint, its model config and preprocessor config, without reading the weights.

    What a window needs (``ast.checkpoint_settings``) is in config.json and preprocessor_config.json; the weights
    (350 MB for the default checkpoint) are neither read nor hashed.

    Raises:
        BackboneError: the checkpoint is not available, or its config.json is not an AST's.
    """
    from transformers import ASTConfig

    _, checkpoint, folder, _ = _checkpoint_folder(spec)
    try:
        config = ASTConfig.from_pretrained(folder)
        int(config.max_length), int(config.num_mel_bins)
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise BackboneError(f"{checkpoint}: not an AST checkpoint, its config.json gives no AST window ({exc}); "
                            "pass an AST checkpoint") from exc
    return checkpoint, config, _read_preprocessor(folder / "preprocessor_config.json")


def interpolate_time_positions(positions: torch.Tensor, n_freq: int, n_time: int) -> torch.Tensor:
    """Adapt AST position embeddings ``(1, 2 + F*T, D)`` to ``n_time`` time patches.

    The patch part is reshaped to its ``(F, T)`` grid; a longer time axis is
    interpolated bilinearly (linear along time, as the AST reference code), a
    shorter one centre-cropped; the two special tokens are kept as they are.
    """
    special, patches = positions[:, :N_SPECIAL_TOKENS], positions[:, N_SPECIAL_TOKENS:]
    dim = positions.shape[-1]
    old_time = patches.shape[1] // n_freq
    if old_time * n_freq != patches.shape[1]:
        raise BackboneError(f"{patches.shape[1]} position embeddings do not fill a {n_freq}-row patch grid")
    grid = patches.reshape(1, n_freq, old_time, dim).permute(0, 3, 1, 2)
    if n_time >= old_time:  # at the same size bilinear interpolation is the identity
        grid = nn.functional.interpolate(grid, size=(n_freq, n_time), mode="bilinear", align_corners=False)
    else:
        start = old_time // 2 - n_time // 2
        grid = grid[..., start : start + n_time]
    patches = grid.permute(0, 2, 3, 1).reshape(1, n_freq * n_time, dim)
    return torch.cat([special, patches], dim=1)


def resize_model(model: nn.Module, max_length: int) -> nn.Module:
    """A copy of ``model`` built for ``max_length`` frames, position embeddings adapted, loaded strictly."""
    import copy

    from transformers import ASTModel

    config = copy.deepcopy(model.config)
    config.max_length = max_length
    config._attn_implementation = "sdpa"
    with torch.device("meta"):
        resized = ASTModel(config)
    n_freq, n_time = resized.embeddings.get_shape(config)
    state = model.state_dict()
    key = "embeddings.position_embeddings"
    state[key] = interpolate_time_positions(state[key], n_freq, n_time)
    resized.load_state_dict(state, strict=True, assign=True)
    if any(tensor.is_meta for tensor in [*resized.parameters(), *resized.buffers()]):
        raise BackboneError(f"AST resized to {max_length} frames left tensors uninitialised; report this bug")
    return resized.eval()
