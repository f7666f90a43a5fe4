"""Device and thread selection shared by every stage that runs torch."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

from wakebuilder.errors import ConfigError

DEVICE_CHOICES = ("auto", "cpu", "cuda")


def require_device(name: str) -> str:
    """``name`` unchanged if it can run here; the one check every command makes of ``--device``.

    torch is imported only for a CUDA device, so ``auto`` and ``cpu`` cost nothing.

    Raises:
        ConfigError: ``cuda`` was asked for and no CUDA device is present, or an unknown name.
    """
    if name in ("auto", "cpu"):
        return name
    if not name.startswith("cuda"):
        raise ConfigError(f"--device {name!r}: expected one of {', '.join(DEVICE_CHOICES)}")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"--device {name}: no CUDA device is available; use --device cpu or auto")
    return name


def resolve_device(name: str = "auto") -> str:
    """Map ``auto|cpu|cuda[:N]`` to a concrete torch device string.

    Raises:
        ConfigError: ``cuda`` was asked for and no CUDA device is present.
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return "cpu"
    return require_device(name)


def cpu_threads() -> int:
    """The cores this process may run on (its CPU affinity where the platform says)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def threads_for(threads: int | None) -> Iterator[None]:
    """``set_threads`` for the block only: torch's thread count and ``OMP_NUM_THREADS`` are as they were after it,
    whether it ends or fails, so that a library call does not leave its caller's process on its count."""
    if not threads:  # torch's default: nothing to set or restore (a negative count goes on to set_threads' refusal)
        yield
        return
    import torch

    before, env = torch.get_num_threads(), os.environ.get("OMP_NUM_THREADS")
    set_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
        if env is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = env


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op thread count (None or 0 keeps torch's default)."""
    if not threads:
        return
    if threads < 0:
        raise ConfigError(f"--threads {threads}: must be >= 0")
    import torch

    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
