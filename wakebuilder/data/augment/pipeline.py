"""``wb augment``: K augmented copies of every clip of a manifest, reproducible from the rows."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from wakebuilder import SAMPLE_RATE
from wakebuilder.atomic import refuse_existing
from wakebuilder.audio import AUDIO_EXTENSIONS, load_audio, quantize_pcm16, write_wav
from wakebuilder.categories import record_category
from wakebuilder.data.augment.background import (
    BackgroundBank, BackgroundConfig, apply_background, background_rng, draw_background,
)
from wakebuilder.data.augment.transforms import AugmentConfig, apply_chain, clip_key, draw_params
from wakebuilder.devices import cpu_threads
from wakebuilder.errors import ConfigError, ManifestError
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, read_manifest, resolve_clip_path, write_manifest


def load_bank(folder: str | os.PathLike[str] | None, what: str) -> tuple[list[str], list[np.ndarray]]:
    """Every audio file under ``folder`` (sorted names and samples); empty without a folder."""
    if folder is None:
        return [], []
    root = Path(folder)
    if not root.is_dir():
        raise ConfigError(f"--{what} {root}: not a folder of audio files")
    paths = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS)
    if not paths:
        raise ConfigError(f"--{what} {root}: no audio files in it")
    return [p.relative_to(root).as_posix() for p in paths], [load_audio(p) for p in paths]


def augment_clip(
    samples: np.ndarray, record: ClipRecord, copy: int, config: AugmentConfig, banks: dict[str, list[np.ndarray]],
    names: dict[str, list[str]], background: tuple[BackgroundConfig, BackgroundBank] | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """One augmented copy and the parameters that rebuild it.

    With ``background``, music or noise is added after the chain at an SNR against the clip as the chain
    left it (its own span, after every effect and the gain, as the chain's noise is measured); its
    parameters (key ``background``) come from a Generator of their own.
    """
    params = draw_params(clip_key(config.seed, record.id, copy), config,
                         noise_files=len(banks["noise"]), rir_files=len(banks["rir"]))
    audio, power = apply_chain(samples, params, banks=banks)
    if background is not None:
        settings, bank = background
        drawn = draw_background(background_rng(config.seed, record.id, copy), settings, files=len(bank.names))
        if drawn is not None:
            audio = apply_background(audio, drawn, bank, signal_power=power)
            if drawn["type"] == "file":
                drawn["file"] = bank.names[drawn["file_index"]]
            params["background"] = drawn
    peak = float(np.max(np.abs(audio))) if audio.size else 0.0
    if peak > 0.99:
        audio = audio * (0.99 / peak)
        params["limiter_gain"] = 0.99 / peak
    if params.get("noise", {}).get("file_index") is not None:
        params["noise"]["file"] = names["noise"][params["noise"]["file_index"]]
    if params.get("reverb", {}).get("rir_index") is not None:
        params["reverb"]["file"] = names["rir"][params["reverb"]["rir_index"]]
    return audio, params


def run_augment(
    manifest: str | os.PathLike[str], *, out_dir: str | os.PathLike[str], config: AugmentConfig,
    noise_dir: str | None = None, rir_dir: str | None = None, keep_originals: bool = False, progress: bool = True,
    background: BackgroundConfig | None = None, overwrite: bool = False, workers: int = 0,
) -> Path:
    """Write ``config.copies`` augmented copies of each clip and ``out_dir/manifest.jsonl``.

    ``background`` mixes music and noise (generators and/or manifests' clips) into a share of the copies.
    ``workers`` threads augment clips at once (0: one per core; the Numba kernels, decoding and writing
    release the GIL); every copy depends only on its clip, copy and seed, so the output is the same.

    Raises:
        ArtifactExistsError: the output manifest exists and ``overwrite`` is False.
        ManifestError: the manifest holds no clips.
    """
    from tqdm import tqdm

    if config.copies < 1:
        raise ConfigError(f"--copies {config.copies}: must be at least 1")
    parents = read_manifest(manifest)
    if not parents:
        raise ManifestError(f"{manifest}: no clips; nothing to augment (pass a manifest with clips, such as "
                            "wb synth, wb validate or wb negatives writes)")
    out = refuse_existing(Path(out_dir) / MANIFEST_NAME, overwrite=overwrite).parent
    noise_names, noise_bank = load_bank(noise_dir, "noise")
    rir_names, rir_bank = load_bank(rir_dir, "rir")
    banks, names = {"noise": noise_bank, "rir": rir_bank}, {"noise": noise_names, "rir": rir_names}
    backgrounds = None
    if background is not None:
        background.check()
        backgrounds = (background, BackgroundBank.load(background.manifests))

    def copies(parent: ClipRecord) -> list[ClipRecord]:
        source = resolve_clip_path(manifest, parent)
        samples = load_audio(source)
        records = [ClipRecord(**{**parent.to_dict(), "path": str(source)})] if keep_originals else []
        category = record_category(parent)  # a copy's kind is "augmented": it carries its parent's category
        for copy in range(config.copies):
            audio, params = augment_clip(samples, parent, copy, config, banks, names, backgrounds)
            clip_id = audio_id(quantize_pcm16(audio))
            target = out / "clips" / f"{clip_id}.wav"
            if not target.exists():  # a resumed run keeps what it already wrote
                write_wav(target, audio)
            records.append(ClipRecord(
                id=clip_id, path=f"clips/{clip_id}.wav", label=parent.label, kind="augmented", group=parent.group,
                text=parent.text, duration_s=round(audio.size / SAMPLE_RATE, 4), parent_id=parent.id,
                params={"copy": copy, "seed": config.seed, "parent_kind": parent.kind, "chain": params,
                        "category": category},
                source=str(source),
            ))
        return records

    records: list[ClipRecord] = []
    with ThreadPoolExecutor(workers or cpu_threads(), thread_name_prefix="wb-augment") as pool:
        done = pool.map(copies, parents)  # in the manifest's order
        for made in tqdm(done, total=len(parents), desc="augment", unit="clip", disable=not progress):
            records += made
    unique = list({r.id: r for r in records}.values())
    config.save(out / "augment_config.json")
    if background is not None:
        background.save(out / "background_config.json")
    return write_manifest(out / MANIFEST_NAME, unique)
