"""Headless Chromium driven over the DevTools protocol on a pipe (no driver, no websocket library).

Used by the web page's tests and its benchmark: open a page, evaluate
JavaScript (awaiting promises), wait for a condition, take a PNG screenshot.
The microphone can be a WAV file through Chromium's fake media-stream flags.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from wakebuilder.errors import WakebuilderError

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


class BrowserError(WakebuilderError):
    """Chromium is missing, did not start, or a page command failed."""


def find_chromium() -> str | None:
    """The Chromium binary (``WB_CHROMIUM`` overrides), or None."""
    override = os.environ.get("WB_CHROMIUM")
    if override:
        return override if Path(override).is_file() else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def chromium_args(*, fake_audio: str | os.PathLike[str] | None = None) -> list[str]:
    """Flags for headless, offline runs in a container; with ``fake_audio`` the microphone plays that WAV (looped).

    Every host name but 127.0.0.1 fails to resolve, so a page that reached for the internet would fail.
    """
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
            "--no-default-browser-check", "--autoplay-policy=no-user-gesture-required", "--mute-audio",
            "--window-size=1100,800", "--use-fake-ui-for-media-stream",
            "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]  # offline: only the local server
    if fake_audio is not None:
        args += ["--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={fake_audio}"]
    return args


class Chromium:
    """One headless Chromium with one page; a context manager."""

    def __init__(self, *, args: list[str] | None = None, binary: str | None = None, timeout_s: float = 30.0) -> None:
        exe = binary or find_chromium()
        if exe is None:
            raise BrowserError("chromium not found; apt-get install chromium (bin/setup does where it runs as root)")
        self.timeout_s = timeout_s
        self._profile = tempfile.mkdtemp(prefix="wb-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def plumb() -> None:  # Chromium reads commands on fd 3 and writes replies on fd 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        cmd = [exe, *(args if args is not None else chromium_args()), f"--user-data-dir={self._profile}",
               "--remote-debugging-pipe", "about:blank"]
        self._log = Path(self._profile) / "chromium.log"
        try:
            with self._log.open("wb") as log:
                self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                             pass_fds=(3, 4), preexec_fn=plumb)
        except OSError as exc:
            self._release()
            raise BrowserError(f"{exe}: cannot start chromium ({exc})") from exc
        finally:  # the child's ends: Chromium holds its own copies, if it started
            os.close(to_child_r)
            os.close(from_child_w)
        self._next_id = 0
        self._replies: dict[int, queue.Queue[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self.console: list[str] = []
        threading.Thread(target=self._read, name="wb-cdp-reader", daemon=True).start()
        try:
            self.session = self._attach()
        except BaseException:  # no caller holds this object to close it: leave no process or profile
            self.proc.kill()
            self.proc.wait()
            self._release()
            raise

    def _read(self) -> None:
        pending = b""
        while chunk := os.read(self._from_child, 1 << 16):
            pending += chunk
            *messages, pending = pending.split(b"\0")
            for raw in messages:
                message = json.loads(raw)
                if "id" in message and message["id"] in self._replies:
                    self._replies[message["id"]].put(message)
                elif message.get("method") == "Runtime.consoleAPICalled":
                    params = message["params"]
                    words = (str(a.get("value", a.get("description", ""))) for a in params["args"])
                    self.console.append(" ".join(words))
                elif message.get("method") == "Runtime.exceptionThrown":
                    self.console.append("exception: " + json.dumps(message["params"]["exceptionDetails"])[:2000])

    def send(self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None,
             timeout_s: float | None = None) -> dict[str, Any]:
        """One DevTools command; returns its result or raises ``BrowserError``."""
        with self._lock:
            self._next_id += 1
            ident = self._next_id
            box: queue.Queue[dict[str, Any]] = queue.Queue()
            self._replies[ident] = box
            message = {"id": ident, "method": method, "params": params or {}}
            if session is not None:
                message["sessionId"] = session
            os.write(self._to_child, json.dumps(message).encode() + b"\0")
        try:
            reply = box.get(timeout=timeout_s or self.timeout_s)
        except queue.Empty:
            tail = self._log.read_text(errors="replace")[-500:] if self.proc.poll() is not None else ""
            waited = timeout_s or self.timeout_s
            raise BrowserError(f"{method}: no answer from chromium in {waited:.0f} s {tail}") from None
        finally:
            self._replies.pop(ident, None)
        if "error" in reply:
            raise BrowserError(f"{method}: {reply['error'].get('message')}")
        return reply.get("result", {})

    def _attach(self) -> str:
        targets = self.send("Target.getTargets")["targetInfos"]
        page = next(t["targetId"] for t in targets if t["type"] == "page")
        session = self.send("Target.attachToTarget", {"targetId": page, "flatten": True})["sessionId"]
        self.send("Page.enable", session=session)
        self.send("Runtime.enable", session=session)
        return session

    def goto(self, url: str) -> None:
        """Open ``url`` in the page."""
        self.send("Page.navigate", {"url": url}, session=self.session)

    def evaluate(self, expression: str, *, timeout_s: float | None = None) -> Any:
        """Evaluate JavaScript in the page (promises awaited) and return its JSON value."""
        result = self.send("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=self.session, timeout_s=timeout_s)
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            raise BrowserError(f"page error: {details.get('exception', {}).get('description', details.get('text'))}")
        return result["result"].get("value")

    def wait_for(self, expression: str, *, timeout_s: float = 30.0, poll_s: float = 0.1) -> Any:
        """Poll ``expression`` until it is truthy; returns its value or raises ``BrowserError``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(poll_s)
        raise BrowserError(f"timed out after {timeout_s:.0f} s waiting for {expression}; console: {self.console[-5:]}")

    def screenshot(self, path: str | os.PathLike[str]) -> Path:
        """Save a PNG of the page."""
        data = self.send("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        target = Path(path)
        target.write_bytes(base64.b64decode(data))
        return target

    def close(self) -> None:
        """Close the browser and remove its profile."""
        try:
            self.send("Browser.close", timeout_s=5)
        except (BrowserError, OSError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._release()

    def _release(self) -> None:
        """Close the pipes and remove the profile (the process is gone)."""
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
