"""``wb negatives --debian``: real music and game sound from Debian's archive, chunked into negatives.

Each package is fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x`` into the cache
folder (nothing is installed); its audio files are chunked by ``realchunks`` into ``--out``, each row
tagged ``music`` or ``noise`` by the package's rules and carrying the package, version and licence
(from its ``copyright`` file). Packages whose audio is the development measure (realdev's list), all
``wesnoth*`` packages and librosa's example data are reserved for evaluation and refused here.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from wakebuilder.atomic import atomic_write_json, refuse_existing, waiting_lock
from wakebuilder.audio import AUDIO_EXTENSIONS
from wakebuilder.data.realchunks import ChunkConfig, chunk_real_audio
from wakebuilder.bank.location import cache_dir
from wakebuilder.errors import BadAudioError, ConfigError, SourceUnavailableError
from wakebuilder.manifest import MANIFEST_NAME, ClipRecord, read_manifest, write_manifest

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DebianSource:
    """A package and how to read it: (glob, kind) rules, first match wins; files matching ``exclude`` are left out."""

    package: str
    rules: tuple[tuple[str, str], ...]
    exclude: tuple[str, ...] = ()

    def kind_of(self, path: str) -> str | None:
        """``music``/``noise`` for a path inside the package, or None when it is left out."""
        if any(fnmatch.fnmatch(path, pattern) for pattern in self.exclude):
            return None
        return next((kind for pattern, kind in self.rules if fnmatch.fnmatch(path, pattern)), None)


# Tried and decoding with libsndfile (see the project's NEGATIVE-SOURCES notes); none is used by realdev.
SOURCES = (
    DebianSource("hyperrogue-music", (("*/sounds/*", "noise"), ("*", "music"))),
    DebianSource("lbreakout2-data", (("*", "noise"),),
                 exclude=tuple(f"*/{w}.wav" for w in ("damn", "dammit", "excellent", "verygood", "wontgiveup"))),
    DebianSource("chromium-bsu-data", (("*/music_*", "music"), ("*", "noise"))),
    DebianSource("openssn-data", (("*", "noise"),)),
    DebianSource("pangzero", (("*", "music"),)),
    DebianSource("csmash-demosong", (("*", "music"),)),
    # Household and outdoor sound (water, fire, footsteps, doors, carts), instrument and drum samples, pads and
    # effects: realdev's false accepts on noise were hums, ventilation, water and ambience (research/NONSPEECH.md).
    DebianSource("minetest-data", (("*", "noise"),)),
    DebianSource("lmms-common", tuple((f"*/samples/{folder}/*", "noise") for folder in ("effects", "misc", "shapes",
                                                                                        "waveforms"))
                 + (("*/samples/*", "music"),)),
    DebianSource("hydrogen-data", (("*", "music"),)),
    DebianSource("alienblaster-data", (("*", "noise"),)),
)
# realdev's music and noise packages (its README), and what is reserved for the held-out evaluation
RESERVED = frozenset({
    "asc-music", "extremetuxracer-data", "fb-music-high", "fretsonfire-songs-sectoid", "frozen-bubble-data",
    "funnyboat", "gunroar-data", "heroes-sound-effects", "heroes-sound-tracks", "lincity-ng-data", "lomiri-sounds",
    "mu-cade-data", "noiz2sa-data", "openttd-opensfx", "parsec47-data", "pingus-data", "powermanga-data",
    "rrootage-data", "singularity-music", "solarwolf", "sonic-pi-samples", "sound-theme-freedesktop",
    "tecnoballz-data", "titanion-data", "torus-trooper-data", "tumiki-fighters-data", "tuxtype-data",
    "ufoai-sound", "wordwarvi-sound", "ktuberling", "klettres", "hedgewars", "warzone2100", "asterisk",
})
_LICENCE_HINT = re.compile(r"\b(GPL|LGPL|licen[cs]e|public domain|creative commons|CC-BY|BSD|MIT|Artistic)\b", re.I)


def is_reserved(package: str) -> bool:
    """Whether a package is kept for evaluation (realdev's packages, ``wesnoth*``, librosa's data)."""
    return package in RESERVED or package.startswith("wesnoth") or "librosa" in package


def licence_summary(copyright_text: str) -> str:
    """The licences a Debian ``copyright`` file names: the DEP-5 ``License:`` fields outside ``debian/*``
    stanzas, else the first line that names a licence."""
    licences, files = [], ""
    for line in copyright_text.splitlines():
        if line.startswith("Files:"):
            files = line.split(":", 1)[1].strip()
        elif line.startswith("License:") and not files.startswith("debian/"):
            name = line.split(":", 1)[1].strip()
            if name and name not in licences:
                licences.append(name)
    if licences:
        return "; ".join(licences)
    hint = next((line.strip() for line in copyright_text.splitlines() if _LICENCE_HINT.search(line)), "")
    return hint[:200] or "see copyright file"


def apt_available() -> str | None:
    """None when ``apt-get`` and ``dpkg-deb`` can run here, else why not."""
    missing = [tool for tool in ("apt-get", "dpkg-deb") if shutil.which(tool) is None]
    return f"{' and '.join(missing)} not found (not a Debian-based system)" if missing else None


def fetch_package(package: str, cache: Path) -> tuple[Path, str]:
    """Download and unpack ``package`` under ``cache`` (reused when already there); its root and version."""
    root = cache / "root" / package
    marker = root / ".wb-version"
    if marker.is_file():
        return root, marker.read_text(encoding="utf-8").strip()
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    for old in debs.glob(f"{package}_*.deb"):
        old.unlink()
    done = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True, check=False)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if done.returncode != 0 or not found:
        detail = (done.stderr.strip().splitlines() or ["no .deb written"])[-1]
        raise SourceUnavailableError(f"apt-get download {package} failed: {detail}; run 'apt-get update' or "
                                     "check the network to Debian's archive")
    version = subprocess.run(["dpkg-deb", "-f", str(found[0]), "Version"], capture_output=True, text=True,
                             check=False).stdout.strip() or found[0].name.split("_")[1]
    work = root.with_name(package + ".incomplete")
    for stale in (root, work):
        if stale.exists():
            shutil.rmtree(stale)
    work.mkdir(parents=True)
    unpacked = subprocess.run(["dpkg-deb", "-x", str(found[0]), str(work)], capture_output=True, text=True, check=False)
    if unpacked.returncode != 0:
        raise SourceUnavailableError(f"dpkg-deb -x {found[0]} failed: {unpacked.stderr.strip()[-200:]}")
    (work / ".wb-version").write_text(version + "\n", encoding="utf-8")
    os.replace(work, root)
    return root, version


def _copyright(root: Path, package: str) -> tuple[str, str]:
    path = root / "usr" / "share" / "doc" / package / "copyright"
    if not path.is_file():
        return "unknown (no copyright file)", ""
    return licence_summary(path.read_text(encoding="utf-8", errors="replace")), str(path)


def _stage(source: DebianSource, root: Path, staging: Path) -> dict[str, str]:
    """Links to the package's chosen audio files under ``staging``; their relative path -> kind."""
    if staging.exists():
        shutil.rmtree(staging)
    kinds = {}
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file()):
        inside = "/" + path.relative_to(root).as_posix()
        kind = source.kind_of(inside)
        if kind is None:
            continue
        link = staging / inside.lstrip("/")
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
        kinds[inside.lstrip("/")] = kind
    return kinds


def debian_negatives(
    *, out_dir: str | os.PathLike[str], packages: tuple[str, ...] = (), chunk: ChunkConfig | None = None,
    cache: str | os.PathLike[str] | None = None, overwrite: bool = False,
    sources: tuple[DebianSource, ...] = SOURCES,
) -> Path:
    """Fetch, unpack and chunk ``packages`` (default: all of ``sources``) into ``out_dir``; the manifest path.

    Raises:
        SourceUnavailableError: apt-get or dpkg-deb is missing, or a download fails.
        ConfigError: a reserved or unknown package, or an existing output without ``overwrite``.
    """
    known = {s.package: s for s in sources}
    chosen = packages or tuple(known)
    for package in chosen:
        if is_reserved(package):
            raise ConfigError(f"--debian-package {package}: reserved for evaluation (realdev, wesnoth*, librosa)")
        if package not in known:
            raise ConfigError(f"--debian-package {package}: not a known source; choose from {', '.join(known)}")
    chunk = chunk or ChunkConfig()
    chunk.check()  # before any download: a bad range would fail only after fetching every package
    out = Path(out_dir)
    refuse_existing(out / MANIFEST_NAME, overwrite=overwrite)
    why = apt_available()
    if why:
        raise SourceUnavailableError(f"Debian negatives skipped: {why}; chunk your own audio with --real DIR")
    base = Path(cache) if cache else cache_dir() / "debian"
    records, sources = [], {}
    for package in chosen:
        # the package's download, unpacked tree and staging links are shared by every process that uses the cache
        with waiting_lock(base / "locks" / f"{package}.lock", f"debian {package}"):
            root, version = fetch_package(package, base)
            licence, copyright_path = _copyright(root, package)
            kinds = _stage(known[package], root, base / "staging" / package)
            try:
                manifest = chunk_real_audio(base / "staging" / package, out_dir=out / package,
                                            config=chunk, overwrite=overwrite)
            except BadAudioError as exc:  # a new version whose files no longer decode: the others still serve
                log.warning("debian: %s=%s skipped: %s", package, version, exc)
                continue
        rows = read_manifest(manifest)
        sources[package] = {"version": version, "licence": licence, "copyright": copyright_path, "files": len(kinds),
                            "chunks": len(rows)}
        log.info("debian: %s=%s, %d files, %d chunks (%s)", package, version, len(kinds), len(rows), licence)
        for row in rows:
            records.append(ClipRecord(**{
                **row.to_dict(), "path": f"{package}/{row.path}", "kind": kinds[row.group],
                "group": f"debian:{package}:{row.group}", "source": f"debian:{package}={version}:/{row.group}",
                "params": {**row.params, "package": package, "version": version, "licence": licence,
                           "category": kinds[row.group]},
            }))
    atomic_write_json(out / "sources.json", sources)
    return write_manifest(out / MANIFEST_NAME, list({r.id: r for r in records}.values()))
