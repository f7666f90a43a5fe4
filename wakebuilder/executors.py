"""Where ``wb embed`` runs its shards: this process, N processes of this machine, or a Dask cluster.

Every executor is a ``concurrent.futures.Executor``, so one loop submits the shards
and collects them as they finish, whichever runs them:

- ``local``: this process, one shard after another.
- ``processes:N``: N worker processes of this machine (spawned, so no thread or
  onnxruntime state is forked), each with ``cpu_count // N`` threads unless
  ``--threads`` says otherwise.
- ``tcp://HOST:PORT`` (any Dask scheduler address, ``tls://``, ``inproc://``...): the
  cluster's workers, through ``distributed.Client.get_executor``. Workers need
  wakebuilder installed, and the manifests, audio and store at the same paths (a
  shared file system) or the store at a URL every worker can reach.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor

from wakebuilder.errors import ConfigError

EXECUTOR_HELP = "local (this process), processes:N (N processes here) or a Dask scheduler address tcp://HOST:PORT"


def parse_executor(text: str) -> tuple[str, int | str]:
    """``("local", 1)``, ``("processes", N)`` or ``("dask", address)``.

    Raises:
        ConfigError: anything else.
    """
    if text == "local":
        return "local", 1
    if text.startswith("processes:"):
        count = text.split(":", 1)[1]
        if not count.isdigit() or int(count) < 1:
            raise ConfigError(f"--executor {text}: processes:N needs a whole number N >= 1, e.g. processes:2")
        return "processes", int(count)
    if "://" in text:
        return "dask", text
    raise ConfigError(f"--executor {text!r}: expected {EXECUTOR_HELP}")


def worker_threads(text: str, threads: int) -> int:
    """Threads per worker: ``threads`` when set; for ``processes:N``, the cores shared out; else 0."""
    kind, arg = parse_executor(text)
    if threads or kind != "processes":
        return threads
    return max(1, (os.cpu_count() or 1) // int(arg))


@contextlib.contextmanager
def open_executor(text: str) -> Iterator[Executor]:
    """The executor ``text`` names, shut down (or disconnected) on exit.

    Raises:
        ConfigError: a bad spec, or a Dask address without dask installed.
        WakebuilderError: the Dask scheduler cannot be reached.
    """
    kind, arg = parse_executor(text)
    if kind == "local":
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="wb-shard") as pool:
            yield pool
        return
    if kind == "processes":
        import multiprocessing

        with ProcessPoolExecutor(max_workers=int(arg), mp_context=multiprocessing.get_context("spawn")) as pool:
            yield pool
        return
    with _dask_executor(str(arg)) as pool:
        yield pool


@contextlib.contextmanager
def _dask_executor(address: str) -> Iterator[Executor]:
    try:
        from distributed import Client
    except ImportError as exc:
        raise ConfigError(
            f"--executor {address}: needs dask.distributed (pip install 'wakebuilder[dask]')"
        ) from exc
    from wakebuilder.errors import WakebuilderError

    try:
        client = Client(address, timeout="20s")
    except (OSError, TimeoutError) as exc:
        raise WakebuilderError(
            f"--executor {address}: cannot reach the Dask scheduler ({exc}); start it (dask scheduler) "
            "or check the address"
        ) from exc
    try:
        yield client.get_executor(pure=False)
    finally:
        client.close()
