"""The synthesis workers: a function run on each part of the jobs, each part in a freshly spawned process.

Not multiprocessing.Pool: it replaces a worker that dies (killed, out of memory, a crash in a TTS library) and
waits for the lost part forever. Here a dead worker is a one-line ``WakebuilderError``, and an error or Ctrl-C
stops the other workers at once.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import traceback
from pathlib import Path
from typing import Any

from wakebuilder.errors import WakebuilderError


def send_result(conn: Any, function: Any, args: Any) -> None:
    """In a worker: ``function(args)``, or the error it raised, sent back through ``conn``."""
    try:
        outcome: tuple[bool, Any] = (True, function(args))
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, which raises it
        if not isinstance(exc, WakebuilderError):  # a bug: keep where it happened
            exc.add_note("in the synthesis worker:\n" + traceback.format_exc())
        outcome = (False, exc)
    try:
        conn.send(outcome)
    except Exception:  # an error that does not pickle: its message
        conn.send((False, WakebuilderError(f"synth worker: {type(outcome[1]).__name__}: {outcome[1]}")))
    conn.close()


def run_in_processes(function: Any, parts: list[Any], *, clips: Path) -> list[Any]:
    """``function(part)`` for each part, each in a freshly spawned process; results in part order.

    ``clips``: the folder the workers write into, named in the error when one dies.
    """
    context = multiprocessing.get_context("spawn")
    pending: dict[Any, tuple[int, Any]] = {}
    results: list[Any] = [None] * len(parts)
    try:
        for k, part in enumerate(parts):
            receive, send = context.Pipe(duplex=False)
            process = context.Process(target=send_result, args=(send, function, part), daemon=True)
            process.start()
            send.close()
            pending[receive] = (k, process)
        while pending:
            for receive in multiprocessing.connection.wait(list(pending)):
                k, process = pending.pop(receive)
                try:
                    ok, value = receive.recv()
                except EOFError:  # the process ended without a word: killed
                    process.join()
                    raise WakebuilderError(
                        f"synth: a synthesis worker process died (exit {process.exitcode}: killed, out of memory or "
                        f"crashed in a TTS engine); the clips made so far are in {clips}; run again") from None
                finally:
                    receive.close()
                if not ok:
                    raise value
                results[k] = value
                process.join()
    finally:
        for receive, (_, process) in pending.items():
            process.terminate()
            process.join()
            receive.close()
    return results
