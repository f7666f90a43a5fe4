"""Where wakebuilder caches things, following the platform's conventions, and where banks live.

Linux and other Unix: ``$XDG_CACHE_HOME/wakebuilder`` (``~/.cache/wakebuilder``);
macOS: ``~/Library/Caches/wakebuilder``; Windows: ``%LOCALAPPDATA%\\wakebuilder\\Cache``.
``WB_CACHE_DIR`` overrides all of them, and an explicit folder overrides that.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from pathlib import Path

from wakebuilder.errors import ConfigError, StoreError

BANK_MARKER = "bank.json"
BUILD_LOCK = "build.lock"  # held while the bank changes (``bank.build.bank_lock``)
STORE_NAME = "store.zarr"


def cache_dir(override: str | os.PathLike[str] | None = None) -> Path:
    """wakebuilder's cache folder: ``override``, else ``WB_CACHE_DIR``, else the platform's."""
    if override:
        return Path(override)
    if os.environ.get("WB_CACHE_DIR"):
        return Path(os.environ["WB_CACHE_DIR"])
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "wakebuilder"
    if sys.platform.startswith("win"):
        base = os.environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
        return Path(base) / "wakebuilder" / "Cache"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wakebuilder"


def backbone_slug(backbone: str) -> str:
    """A folder-safe name of a backbone argument; a local directory gets a hash of its full path."""
    if Path(backbone).is_dir():
        digest = hashlib.sha256(str(Path(backbone).resolve()).encode()).hexdigest()[:8]
        return f"{re.sub(r'[^A-Za-z0-9._-]+', '-', Path(backbone).resolve().name)}-{digest}"
    return re.sub(r"[^A-Za-z0-9._-]+", "--", backbone.strip()).strip("-") or "backbone"


def bank_dir(backbone: str, window_s: float | None, *, cache: str | os.PathLike[str] | None = None) -> Path:
    """``<cache>/banks/<backbone>-<window>s``: one bank per backbone and window (``native`` when unset)."""
    if window_s is not None and window_s <= 0:
        raise ConfigError(f"--window-s {window_s}: must be > 0")
    window = "native" if window_s is None else f"{window_s:g}s"
    return cache_dir(cache) / "banks" / f"{backbone_slug(backbone)}-{window}"


def bank_store_path(backbone: str, window_s: float | None, *, cache: str | os.PathLike[str] | None = None
                    ) -> Path:
    """The bank's embedding store (a Zarr directory inside ``bank_dir``)."""
    return bank_dir(backbone, window_s, cache=cache) / STORE_NAME


def no_bank_error(store_path: str | os.PathLike[str]) -> StoreError:
    """The error of a command that reads the bank where there is none: its fix is wb bank build, or other options."""
    return StoreError(f"{store_path}: no negative bank here (wb bank build or wb quickstart makes one); check "
                      "--backbone, --window-s and --cache-dir")


def is_bank_store(store_path: str | os.PathLike[str]) -> bool:
    """Whether a store is a negative bank (``wb bank build`` wrote its marker beside it)."""
    path = Path(store_path)
    return (path.parent / BANK_MARKER).is_file() and path.name == STORE_NAME
