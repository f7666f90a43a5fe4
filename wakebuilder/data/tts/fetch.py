"""``wb voices fetch``: Kokoro's English voices and Piper voices from the Hugging Face Hub, for users online.

Files go through ``huggingface_hub`` into its cache (``HF_HUB_CACHE``, else ``HF_HOME/hub``) at pinned
revisions and are checked against pinned sha256 values (the Git LFS object ids the Hub publishes). Where no
published value was found (marked ``None`` below), the size and sha256 of the first fetch are recorded in
``WB_CACHE_DIR/voices/first-fetch.json`` and every later fetch must match them. The engines find fetched
files in the cache without the network (``cached_kokoro_packs``, ``cached_piper_voices``). Offline, a
fetch fails at once with a one-line error that says how to pass local files instead.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlparse

from wakebuilder.atomic import atomic_write_bytes, waiting_lock
from wakebuilder.bank.location import cache_dir
from wakebuilder.errors import ConfigError, EngineUnavailableError
from wakebuilder.fingerprint import file_sha256

KOKORO_REPO, KOKORO_REVISION = "hexgrad/Kokoro-82M", "f3ff3571791e39611d31c381e3a41a3af07b4987"
PIPER_REPO, PIPER_REVISION = "rhasspy/piper-voices", "684347567be75658435fc7ad46aaa15687dad044"
CONNECT_TIMEOUT_S = 2.0
T = TypeVar("T")
# Kokoro v1.0's 28 native English voices (voices/<name>.pt, 523 kB each): LFS sha256 from the Hub's file
# pages of hexgrad/Kokoro-82M and of its verbatim duplicates; None where none was found (recorded on first fetch).
KOKORO_ENGLISH = {
    "af_alloy": "6d877149dd8b348fbad12e5845b7e43d975390e9f3b68a811d1d86168bef5aa3",
    "af_aoede": "c03bd1a4c3716c2d8eaa3d50022f62d5c31cfbd6e15933a00b17fefe13841cc4",
    "af_bella": None,
    "af_heart": "0ab5709b8ffab19bfd849cd11d98f75b60af7733253ad0d67b12382a102cb4ff",
    "af_jessica": "cdfdccb8cc975aa34ee6b89642963b0064237675de0e41a30ae64cc958dd4e87",
    "af_kore": "8bfbc512321c3db49dff984ac675fa5ac7eaed5a96cc31104d3a9080e179d69d",
    "af_nicole": "c5561808bcf5250fe8c5f5de32caf2d94f27e57e95befdb098c5c85991d4c5da",
    "af_nova": "e0233676ddc21908c37a1f102f6b88a59e4e5c1bd764983616eb9eda629dbcd2",
    "af_river": "e149459bd9c084416b74756b9bd3418256a8b839088abb07d463730c369dab8f",
    "af_sarah": None,
    "af_sky": "c799548aed06e0cb0d655a85a01b48e7f10484d71663f9a3045a5b9362e8512c",
    "am_adam": "ced7e284aba12472891be1da3ab34db84cc05cc02b5889535796dbf2d8b0cb34",
    "am_echo": "8bcfdc852bc985fb45c396c561e571ffb9183930071f962f1b50df5c97b161e8",
    "am_eric": "ada66f0eefff34ec921b1d7474d7ac8bec00cd863c170f1c534916e9b8212aae",
    "am_fenrir": "98e507eca1db08230ae3b6232d59c10aec9630022d19accac4f5d12fcec3c37a",
    "am_liam": "c82550757ddb31308b97f30040dda8c2d609a9e2de6135848d0a948368138518",
    "am_michael": "9a443b79a4b22489a5b0ab7c651a0bcd1a30bef675c28333f06971abbd47bd37",
    "am_onyx": "e8452be16cd0f6da7b4579eaf7b1e4506e92524882053d86d72b96b9a7fed584",
    "am_puck": "dd1d8973f4ce4b7d8ae407c77a435f485dabc052081b80ea75c4f30b84f36223",
    "am_santa": "7f2f7582fa2b1f160e90aafe6d0b442a685e773608b6667e545d743b073e97a7",
    "bf_alice": "d292651b6af6c0d81705c2580dcb4463fccc0ff7b8d618a471dbb4e45655b3f3",
    "bf_emma": "d0a423deabf4a52b4f49318c51742c54e21bb89bbbe9a12141e7758ddb5da701",
    "bf_isabella": "cdd4c37003805104d1d08fb1e05855c8fb2c68de24ca6e71f264a30aaa59eefd",
    "bf_lily": "6e09c2e481e2d53004d7e5ae7d3a325369e130a6f45c35a6002de75084be9285",
    "bm_daniel": "fc3fce4e9c12ed4dbc8fa9680cfe51ee190a96444ce7c3ad647549a30823fc5d",
    "bm_fable": "d44935f3135257a9064df99f007fc1342ff1aa767552b4a4fa4c3b2e6e59079c",
    "bm_george": "f1bc812213dc59774769e5c80004b13eeb79bd78130b11b2d7f934542dab811b",
    "bm_lewis": None,
}
PIPER_VOICES = {  # name -> (folder in the repo, sha256 of the .onnx); the small .onnx.json is recorded on first fetch
    "en_US-libritts_r-medium": ("en/en_US/libritts_r/medium",
                                "10bb85e071d616fcf4071f369f1799d0491492ab3c5d552ec19fb548fac13195"),
}
LICENCES = {"kokoro-en": "Apache-2.0", "en_US-libritts_r-medium": "CC-BY-4.0 (LibriTTS-R); Piper MIT"}
LOCAL_HINT = ("pass local files instead: --kokoro-voices FILE.npz (or WB_KOKORO_VOICES) for Kokoro, "
              "--piper-voice FILE.onnx (or WB_PIPER_VOICES) for Piper")


@dataclasses.dataclass(frozen=True)
class RemoteFile:
    """One file of a voice pack on the Hub: where it is and the sha256 it must have (None: first-fetch record)."""

    repo: str
    filename: str
    revision: str
    sha256: str | None


def packs() -> dict[str, list[RemoteFile]]:
    """Every voice pack ``wb voices fetch`` knows, by name."""
    out = {"kokoro-en": [RemoteFile(KOKORO_REPO, f"voices/{name}.pt", KOKORO_REVISION, sha)
                         for name, sha in KOKORO_ENGLISH.items()]}
    for name, (folder, sha) in PIPER_VOICES.items():
        out[name] = [RemoteFile(PIPER_REPO, f"{folder}/{name}.onnx", PIPER_REVISION, sha),
                     RemoteFile(PIPER_REPO, f"{folder}/{name}.onnx.json", PIPER_REVISION, None)]
    return out


def hub_cache() -> Path:
    """huggingface_hub's cache folder, read at call time (``HF_HUB_CACHE``, else ``HF_HOME/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface") / "hub"


def cached_file(remote: RemoteFile) -> Path | None:
    """The file in the cache, or None; never touches the network."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(remote.repo, remote.filename, cache_dir=hub_cache(), revision=remote.revision)
    return Path(found) if isinstance(found, str) and Path(found).is_file() else None


def cached_kokoro_packs() -> dict[str, Path]:
    """Fetched Kokoro voices (name -> ``.pt``) found in the cache; empty when none are."""
    found = {Path(r.filename).stem: cached_file(r) for r in packs()["kokoro-en"]}
    return {name: path for name, path in found.items() if path is not None}


def cached_piper_voices() -> list[Path]:
    """Fetched Piper voices (``.onnx`` with its ``.onnx.json``) found in the cache."""
    out = []
    for name in PIPER_VOICES:
        model, config = (cached_file(r) for r in packs()[name])
        if model is not None and config is not None and Path(str(model) + ".json") == config:
            out.append(model)
    return out


def _record_path() -> Path:
    return cache_dir() / "voices" / "first-fetch.json"


def verify(remote: RemoteFile, path: Path) -> str:
    """Check ``path`` against the pinned sha256 (or the first fetch's record, written if absent).

    Raises:
        EngineUnavailableError: the sha256 differs; the file is removed from the cache's view first.
    """
    actual, key = file_sha256(str(path)), f"{remote.repo}@{remote.revision}/{remote.filename}"
    expected = remote.sha256
    if expected is None:
        record_file = _record_path()
        # Two fetches at once (two packs, two processes) would each write back what it read and lose the
        # other's record, silently resetting that file's trust on first use: read-modify-write under a lock.
        with waiting_lock(record_file.with_name(record_file.name + ".lock"), f"first-fetch record of {key}"):
            records = _read_records(record_file)
            if key not in records:
                records[key] = {"sha256": actual, "size": path.stat().st_size}
                atomic_write_bytes(record_file, json.dumps(records, indent=1, sort_keys=True).encode())
        expected = records[key]["sha256"]
    if actual != expected:
        path.unlink(missing_ok=True)
        raise EngineUnavailableError(f"{key}: sha256 {actual[:16]}... is not the pinned {expected[:16]}...; "
                                     "removed it from the cache, fetch again")
    return actual


def _read_records(record_file: Path) -> dict[str, dict[str, Any]]:
    """The first-fetch records (``{key: {"sha256", "size"}}``); empty when there are none yet.

    Raises:
        EngineUnavailableError: the file is not such a record (damaged or edited by hand).
    """
    if not record_file.is_file():
        return {}
    try:
        records = json.loads(record_file.read_text(encoding="utf-8"))
        if not isinstance(records, dict) or not all(isinstance(r, dict) and isinstance(r.get("sha256"), str)
                                                    for r in records.values()):
            raise ValueError("want {file: {sha256, size}}")
    except ValueError as err:  # JSONDecodeError and UnicodeDecodeError among them
        raise EngineUnavailableError(f"{record_file}: not a record of first fetches ({err}); remove it and fetch "
                                     "again (the files without a pinned sha256 are then trusted anew)") from err
    return records


def _reachable(url: str, timeout_s: float) -> bool:
    """Whether a TCP connection to ``url``'s host opens within ``timeout_s`` (name lookup included)."""
    parsed = urlparse(url)
    return reachable(parsed.hostname or "", parsed.port or (443 if parsed.scheme == "https" else 80), timeout_s)


def reachable(host: str, port: int, timeout_s: float) -> bool:
    """Whether a TCP connection to ``host:port`` opens within ``timeout_s``, the name lookup included."""
    import socket

    def connect() -> bool:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True

    try:
        return call_within(connect, timeout_s)  # a name lookup cannot be given a timeout itself
    except OSError:  # TimeoutError among them
        return False


def call_within(function: Callable[[], T], timeout_s: float) -> T:
    """``function()``'s value (or its exception), run in a daemon thread; TimeoutError after ``timeout_s``.

    For network calls that take no deadline of their own (a name lookup, a library's request): the call is
    left behind, not interrupted.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = function()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="wb-deadline", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        raise TimeoutError(f"no answer within {timeout_s:g} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def fetch(name: str) -> list[Path]:
    """Download voice pack ``name`` into the Hugging Face cache, verified; returns the local paths.

    Raises:
        ConfigError: ``name`` is not a known pack.
        EngineUnavailableError: offline (at once, saying how to pass local files), or a checksum failed.
    """
    known = packs()
    if name not in known:
        raise ConfigError(f"wb voices fetch {name!r}: unknown voice pack; choose from {', '.join(known)}")
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    missing = [r for r in known[name] if cached_file(r) is None]
    if missing and os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        raise EngineUnavailableError(f"cannot fetch {name}: HF_HUB_OFFLINE is set; {LOCAL_HINT}")
    if missing and not _reachable(endpoint, CONNECT_TIMEOUT_S):
        raise EngineUnavailableError(f"cannot fetch {name}: {urlparse(endpoint).hostname} unreachable "
                                     f"within {CONNECT_TIMEOUT_S:g} s (offline?); {LOCAL_HINT}")
    from huggingface_hub import hf_hub_download

    paths = []
    for remote in known[name]:
        local = cached_file(remote)
        if local is None:
            try:
                local = Path(hf_hub_download(remote.repo, remote.filename, revision=remote.revision,
                                             cache_dir=hub_cache(), endpoint=endpoint, etag_timeout=CONNECT_TIMEOUT_S))
            except Exception as err:  # huggingface_hub raises requests', httpx' and its own errors alike
                raise EngineUnavailableError(f"cannot fetch {remote.repo}/{remote.filename}: "
                                             f"{type(err).__name__}: {str(err)[:150]}; {LOCAL_HINT}") from err
        verify(remote, local)
        paths.append(local)
    return paths
