"""The backbone's passes over the recipe's held-out streams, made ahead by a process at the lowest CPU priority.

The first time a cache meets the calibration and report streams, their passes (``stream_cache``) are the recipe's
longest backbone runs: about 60 s and 170 s of word-embedding on two cores, needed only after the negative bank and
the fit. The steps before them leave cores idle (231 of 1,646 core-seconds before the report in one quickstart here:
downloads, audio decoding, single-threaded steps), so the recipe starts ``start_warming`` as soon as the phrase's
store records the backbone: a process of its own, at the lowest priority, which makes the passes with the cores the
run leaves idle and yields them to it otherwise. The run's own ``stream_sequences`` then finds a pass in the cache,
or waits on its lock for the rest of it, so nothing is computed twice; a warming process that fails or is stopped
leaves nothing the run would read (the cache's writes are atomic), and the run makes what is missing itself.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["Warming", "start_warming", "warm_passes"]

log = logging.getLogger(__name__)
STOP_WAIT_S = 10.0  # after SIGTERM, before SIGKILL


class Warming:
    """A running warming process; ``stop`` ends it (a run's end: what it has not made, nobody needs now)."""

    def __init__(self, process: subprocess.Popen, log_path: Path) -> None:
        self.process = process
        self.log_path = log_path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(STOP_WAIT_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        elif self.process.returncode != 0:
            log.warning("making the streams' backbone passes ahead failed (exit %d; its log: %s); the run made them "
                        "itself", self.process.returncode, self.log_path)


def start_warming(streams: Sequence[str | os.PathLike[str]], identity: dict[str, Any], *, hop: int, dtype: str,
                  log_path: Path) -> Warming:
    """Start a process that makes the passes of ``streams`` (in that order) with the backbone of ``identity`` at
    ``hop`` samples and ``dtype``, on the CPU, into the cache the environment names; its log goes to ``log_path``.
    The caller stops it (``Warming.stop``) when its run ends."""
    spec = {"streams": [str(s) for s in streams], "identity": identity, "hop": hop, "dtype": dtype}
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # on Windows at the idle priority class from its start; elsewhere it lowers its own (``main``): preexec_fn is
    # unsafe in a process with threads, as a run's is
    flags = {"creationflags": subprocess.IDLE_PRIORITY_CLASS} if sys.platform == "win32" else {}
    with log_path.open("ab") as sink:
        process = subprocess.Popen([sys.executable, "-m", __name__, json.dumps(spec)], stdin=subprocess.DEVNULL,
                                   stdout=subprocess.DEVNULL, stderr=sink, **flags)
    log.info("backbone passes over %d held-out stream(s) made ahead at the lowest priority (process %d)",
             len(spec["streams"]), process.pid)
    return Warming(process, log_path)


def warm_passes(streams: Sequence[str | os.PathLike[str]], identity: dict[str, Any], *, hop: int,
                dtype: str = "auto") -> None:
    """Put the passes of ``streams`` in the cache, as the recipe's calibration and report read them
    (``calibrate.model_stream_scores``: the backbone of the store's ``identity`` at the stores' ``dtype``)."""
    from wakebuilder.backbones import backbone_from_identity
    from wakebuilder.stream_cache import stream_sequences

    backbone = backbone_from_identity(identity, device="cpu", dtype=dtype)
    for stream in streams:
        stream_sequences(stream, backbone, hop=hop)


def main(argv: Sequence[str]) -> int:
    if hasattr(os, "nice"):
        os.nice(19)  # before the backbone is imported and loaded
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(levelname)s: %(message)s")
    spec = json.loads(argv[0])
    warm_passes(spec["streams"], spec["identity"], hop=int(spec["hop"]), dtype=spec["dtype"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
