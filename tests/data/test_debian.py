from __future__ import annotations

import os
import shutil
import stat
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.conftest import chirp, noise, tone
from wakebuilder.audio import write_wav
from wakebuilder.cli import main
from wakebuilder.data import debian
from wakebuilder.data.debian import DebianSource, debian_negatives, is_reserved, licence_summary
from wakebuilder.errors import ArtifactExistsError, ConfigError, SourceUnavailableError
from wakebuilder.manifest import read_manifest, resolve_clip_path

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Files: *
Copyright: 2001 Someone
License: GPL-2+
 This program is free software...

Files: data/wav/*
License: Expat

Files: debian/*
License: BSD-3-Clause
"""
FAKE = DebianSource("wb-test-sounds", (("*/music/*", "music"), ("*", "noise")), exclude=("*/speech/*",))


def test_licence_summary() -> None:
    assert licence_summary(DEP5) == "GPL-2+; Expat"  # the packaging's own licence is not the audio's
    free = "Copyright (C) 2001 Someone\n\nThis song is distributed under the EFF Open Audio License version 1.0.\n"
    assert licence_summary(free).startswith("This song is distributed under the EFF Open Audio License")
    assert licence_summary("nothing here") == "see copyright file"


def test_rules_and_reserved_packages() -> None:
    assert FAKE.kind_of("/usr/share/x/music/a.ogg") == "music"
    assert FAKE.kind_of("/usr/share/x/boom.wav") == "noise"
    assert FAKE.kind_of("/usr/share/x/speech/hello.wav") is None
    assert all(is_reserved(p) for p in ("wesnoth-1.16-music", "ufoai-sound", "asc-music", "python3-librosa-data"))
    assert not any(is_reserved(s.package) for s in debian.SOURCES)
    with pytest.raises(ConfigError, match="reserved"):
        debian_negatives(out_dir="/nonexistent", packages=("wesnoth-music",))
    with pytest.raises(ConfigError, match="not a known source"):
        debian_negatives(out_dir="/nonexistent", packages=("no-such-package",))


def test_skipped_with_a_clear_message_without_apt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(debian.shutil, "which", lambda tool: None)
    with pytest.raises(SourceUnavailableError, match="apt-get and dpkg-deb not found"):
        debian_negatives(out_dir=tmp_path / "deb")
    result = CliRunner().invoke(main, ["negatives", "--debian", "--out", str(tmp_path / "deb")])
    assert result.exit_code != 0 and "Debian negatives skipped" in result.output


def fake_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, delay_s: float = 0.0) -> Path:
    """A local .deb of FAKE's package and an ``apt-get`` on PATH whose ``download`` copies it (after ``delay_s``)."""
    tree = tmp_path / "pkg"
    write_wav(tree / "usr/share/games/wb/music/theme.wav", chirp(200, 800, 7.0, amplitude=0.3))
    write_wav(tree / "usr/share/games/wb/boom.wav", noise(1.5, amplitude=0.3))
    write_wav(tree / "usr/share/games/wb/speech/hello.wav", tone(300, 1.0))
    (tree / "usr/share/doc/wb-test-sounds").mkdir(parents=True)
    (tree / "usr/share/doc/wb-test-sounds/copyright").write_text(DEP5)
    (tree / "DEBIAN").mkdir()
    (tree / "DEBIAN/control").write_text("Package: wb-test-sounds\nVersion: 1.2-3\nArchitecture: all\n"
                                          "Maintainer: t <t@t>\nDescription: test\n")
    repo = tmp_path / "repo"
    repo.mkdir()
    subprocess.run(["dpkg-deb", "--root-owner-group", "-b", str(tree), str(repo / "wb-test-sounds_1.2-3_all.deb")],
                   check=True, capture_output=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "apt-get"  # `apt-get download NAME` copies NAME's .deb from the local repo
    copy = f'sleep {delay_s} && cp {repo}/"$2"_*.deb .'
    fake.write_text(f'#!/bin/sh\n[ "$1" = download ] && {copy} && exit 0\nexit 100\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return fake


needs_dpkg = pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="needs dpkg-deb to build a package")


@needs_dpkg
def test_fetch_unpack_and_chunk_a_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = fake_archive(tmp_path, monkeypatch)
    manifest = debian_negatives(out_dir=tmp_path / "out", sources=(FAKE,), cache=tmp_path / "cache")
    rows = read_manifest(manifest)
    kinds = {r.params["package"] + ":" + r.kind for r in rows}
    assert kinds == {"wb-test-sounds:music", "wb-test-sounds:noise"}
    assert all(r.params["version"] == "1.2-3" and r.params["licence"] == "GPL-2+; Expat" for r in rows)
    assert all(r.params["category"] == r.kind for r in rows)  # eval and calibration count them per category
    assert not any("speech" in r.source for r in rows)
    assert sum(r.kind == "music" for r in rows) == 3  # 7 s cut into 3 s chunks
    assert all(resolve_clip_path(manifest, r).is_file() for r in rows)
    assert len({r.group for r in rows}) == 2
    with pytest.raises(ArtifactExistsError, match="already exists"):
        debian_negatives(out_dir=tmp_path / "out", sources=(FAKE,), cache=tmp_path / "cache")
    fake.write_text("#!/bin/sh\nexit 100\n")  # the unpacked package is reused, not fetched again
    again = debian_negatives(out_dir=tmp_path / "out", sources=(FAKE,), cache=tmp_path / "cache", overwrite=True)
    assert [r.id for r in read_manifest(again)] == [r.id for r in rows]
    with pytest.raises(SourceUnavailableError, match="apt-get download other-sounds failed"):
        debian_negatives(out_dir=tmp_path / "o2", sources=(DebianSource("other-sounds", (("*", "noise"),)),),
                         cache=tmp_path / "cache")


@needs_dpkg
def test_two_processes_fetching_into_one_empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two recipes (or wb negatives runs) on an empty cache: each waits for the other's download, unpacking and
    staging of a package instead of deleting its half-unpacked tree or staging links under it."""
    fake_archive(tmp_path, monkeypatch, delay_s=0.3)
    barrier = threading.Barrier(4)

    def run(i: int) -> list[str]:
        barrier.wait()
        manifest = debian_negatives(out_dir=tmp_path / f"out{i}", sources=(FAKE,), cache=tmp_path / "cache")
        return [r.id for r in read_manifest(manifest)]

    with ThreadPoolExecutor(4) as pool:
        ids = list(pool.map(run, range(4)))
    assert ids[0] and all(i == ids[0] for i in ids)


def test_a_bad_chunk_range_is_refused_before_any_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--min-s above --max-s was found only after every package was fetched (minutes, hundreds of MB)."""
    from wakebuilder.data.realchunks import ChunkConfig

    def _no_fetch(*_: object) -> None:
        raise AssertionError("fetched before the chunk range was checked")

    monkeypatch.setattr(debian, "fetch_package", _no_fetch)
    monkeypatch.setattr(debian, "apt_available", lambda: None)
    with pytest.raises(ConfigError, match="min_s <= max_s"):
        debian_negatives(out_dir=tmp_path / "deb", sources=(FAKE,), chunk=ChunkConfig(min_s=5.0, max_s=2.0))
    result = CliRunner().invoke(main, ["negatives", "--debian", "--out", str(tmp_path / "deb"),
                                       "--min-s", "5", "--max-s", "2"])
    assert result.exit_code == 2 and "--min-s 5" in result.output and "above --max-s" in result.output
