"""`wb web serve DIR`: the page folder on http://127.0.0.1 (a secure context, so the microphone works).

The server answers only on the loopback interface, gives ``.wasm`` and
``.mjs`` their MIME types, and sends the cross-origin isolation headers so
ONNX Runtime Web may use WebAssembly threads (SharedArrayBuffer).
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import sys
import threading
from pathlib import Path

from wakebuilder.errors import ConfigError

log = logging.getLogger(__name__)
HOST = "127.0.0.1"
MIME_TYPES = {
    ".wasm": "application/wasm", ".mjs": "text/javascript", ".js": "text/javascript",
    ".json": "application/json", ".onnx": "application/octet-stream", ".html": "text/html",
    ".css": "text/css", ".wav": "audio/wav", ".png": "image/png", ".txt": "text/plain",
}


class PageHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with the right MIME types, isolation headers and no caching."""

    extensions_map = {**http.server.SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        log.debug("%s %s", self.address_string(), format % args)


class PageServer(http.server.ThreadingHTTPServer):
    """A threading server that does not print a traceback when a browser drops a connection."""

    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        if isinstance(sys.exc_info()[1], ConnectionError):
            log.debug("%s closed the connection early", client_address)
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


def page_server(directory: str | os.PathLike[str], *, port: int = 8000) -> PageServer:
    """A server for ``directory`` bound to 127.0.0.1 (``port`` 0 picks a free one); not yet serving."""
    root = Path(directory)
    if not (root / "index.html").is_file() or not (root / "page.json").is_file():
        raise ConfigError(
            f"{root}: not a page folder (no index.html and page.json); build one with wb web MODEL --out DIR")
    if not 0 <= port <= 65535:
        raise ConfigError(f"--port {port}: must be in 0..65535")
    handler = functools.partial(PageHandler, directory=str(root))
    try:
        return PageServer((HOST, port), handler)
    except OSError as exc:
        raise ConfigError(f"--port {port}: cannot listen on {HOST} ({exc.strerror}); pick another port") from exc


def page_url(server: PageServer) -> str:
    """The page's address."""
    return f"http://{HOST}:{server.server_address[1]}/"


def serve_in_thread(directory: str | os.PathLike[str], *, port: int = 0) -> PageServer:
    """Serve in a daemon thread (tests and the benchmark); stop with ``shutdown()``."""
    server = page_server(directory, port=port)
    threading.Thread(target=server.serve_forever, name="wb-web-serve", daemon=True).start()
    return server
