"""Device and thread selection shared by every stage that runs torch."""

from __future__ import annotations

import os

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


def set_threads(threads: int | None) -> None:
    """Set torch's intra-op thread count (None or 0 keeps torch's default)."""
    if not threads:
        return
    if threads < 0:
        raise ConfigError(f"--threads {threads}: must be >= 0")
    import torch

    torch.set_num_threads(threads)
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
