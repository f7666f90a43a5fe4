"""The recipe's steps that a run again keeps when they finished with the same settings and inputs.

A step's marker (``recipe_step.json`` in its output folder) is written last, atomically, once its output is: it
records what the output was made of (the step's settings and its input files' contents) and the output's bytes.
A run again with the same settings and inputs keeps the output while it is as written and every clip it lists is in
place; otherwise the marker goes before the step is made again, so a kill while remaking keeps nothing stale.
A head's fit (``keep_or_fit``) is such a step too: its inputs are the stores' content. A step's identity holds the
versions of the stages that made it (``stage_version``), so what an older version made is made again once.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wakebuilder.atomic import atomic_write_json, read_json, remove_path
from wakebuilder.errors import WakebuilderError
from wakebuilder.fingerprint import canonical_json, file_sha256
from wakebuilder.manifest import is_manifest_path, read_manifest, resolve_clip_path
from wakebuilder.stage_version import version_change, versioned

if TYPE_CHECKING:
    from wakebuilder.train.fit_config import FitConfig

log = logging.getLogger(__name__)
STEP_NAME = "recipe_step.json"


def input_identity(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, str]]:
    """The identity of a step's input files: each one's path and the sha256 of its bytes (a manifest's clips are
    named by their audio's hash, so its bytes stand for them)."""
    return [{"path": str(path), "sha256": file_sha256(str(path))} for path in paths]


def kept_output(marker: Path, identity: dict[str, Any]) -> Path | None:
    """The output ``marker`` records for ``identity``, when it is as written and (a manifest) every clip it lists
    is in place; None otherwise."""
    if not marker.is_file():
        return None
    try:
        recorded = read_json(marker)
        if not isinstance(recorded, dict) or recorded.get("identity") != identity:
            if older := version_change(recorded.get("identity") if isinstance(recorded, dict) else None, identity):
                log.info("%s: %s, made again", marker.parent, older)
            return None
        output = marker.parent / recorded["output"]
        if not output.is_file() or file_sha256(str(output)) != recorded["sha256"]:
            return None
        if is_manifest_path(output) and not all(resolve_clip_path(output, r).is_file() for r in read_manifest(output)):
            return None
    except (WakebuilderError, OSError, KeyError, TypeError) as exc:
        log.info("%s: not kept, made again (%s)", marker.parent, exc)
        return None
    return output


def keep_or_make(folder: Path, identity: dict[str, Any], make: Callable[[], Path]) -> Path:
    """The output a finished run of ``identity`` left in ``folder`` (``kept_output``), else ``make()``'s, with
    ``folder``'s marker written after it."""
    marker = folder / STEP_NAME
    kept = kept_output(marker, identity)
    if kept is not None:
        log.info("%s: finished with these settings and inputs, kept", kept)
        return kept
    remove_path(marker)
    made = make()
    atomic_write_json(marker, {"identity": identity, "output": os.path.relpath(made, folder),
                               "sha256": file_sha256(str(made))})
    return made


def store_content(paths: Sequence[str | os.PathLike[str]]) -> list[dict[str, Any]]:
    """The identity of embedding stores' content: each one's path, fingerprint (backbone, window, schema), rows,
    the sha256 of its clips' manifest rows in store order and the precision it records, if any (not in the
    fingerprint: a store embedded again at another precision holds other embeddings). A clip's id is its audio's hash
    and the fingerprint says how it was embedded, so these stand for the embeddings without reading them. A bank's
    retired clips (``bank.retired``: in its store, not read) are named too, when it has any."""
    from wakebuilder.bank.retired import retired_digest, retired_ids
    from wakebuilder.store import open_store

    out = []
    for path in paths:
        with open_store(path) as store:
            rows = canonical_json([record.to_dict() for record in store.records()])
            out.append({"path": str(path), "fingerprint": store.fingerprint, "rows": len(store),
                        "sha256": hashlib.sha256(rows.encode("utf-8")).hexdigest()})
            if store.spec.compute_dtype is not None:
                out[-1]["compute_dtype"] = store.spec.compute_dtype
        if retired := retired_digest(retired_ids(path)):
            out[-1]["retired_sha256"] = retired
    return out


def keep_or_fit(stores: Sequence[Path], model_dir: Path, config: FitConfig, *, wake_word: str,
                device: str = "auto") -> Path:
    """``model_dir``: the head a finished fit of the same stores' content, fit settings (seed included) and wake word
    left there, by this version of the fit (its marker beside the weights), else a head fitted anew (``run_fit``:
    built as ``.incomplete``, then renamed over the old one, so a kill leaves the old head or none, never half a
    head)."""
    from wakebuilder.modeldir import WEIGHTS_NAME
    from wakebuilder.train.fit import VERSION, run_fit

    identity = versioned({"step": "fit", "fit": config.identity(), "wake_word": wake_word,
                          "stores": store_content(stores)}, {"fit": VERSION})

    def make() -> Path:
        made, _ = run_fit(stores, model_dir, config, device=device, overwrite=True, wake_word=wake_word)
        return Path(made) / WEIGHTS_NAME

    return keep_or_make(model_dir, identity, make).parent
