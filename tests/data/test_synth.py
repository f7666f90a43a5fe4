from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from wakebuilder.audio import load_audio
from wakebuilder.cli import main
from wakebuilder.data.synth import SynthConfig, plan_jobs, run_synth, text_variants
from wakebuilder.data.tts import Voice
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import read_manifest


def _digest(folder: Path) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted((folder / "clips").glob("*.wav")))).hexdigest()


def test_synth_espeak_manifest(tmp_path: Path) -> None:
    manifest = run_synth(SynthConfig(texts=("hey jarvis",), n=24, engines=("espeak",)), out_dir=tmp_path)
    records = read_manifest(manifest)
    assert len(records) == 24 and len({r.group for r in records}) == 24
    for record in records[:5]:
        audio = load_audio(tmp_path / record.path)
        assert audio_id(audio) == record.id and record.label == 1 and record.kind == "tts"
        assert record.params["voice"]["engine"] == "espeak" and record.source == "espeak"
    assert {r.text for r in records} <= set(text_variants("hey jarvis"))


def test_same_seed_identical_bytes_other_seed_differs(tmp_path: Path) -> None:
    command = [sys.executable, "-m", "wakebuilder.cli", "synth", "hey jarvis", "-n", "16", "--engine", "espeak"]
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        subprocess.run([*command, "--out", str(tmp_path / name), "--seed", seed], check=True, capture_output=True)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert (tmp_path / "a" / "manifest.jsonl").read_bytes() == (tmp_path / "b" / "manifest.jsonl").read_bytes()


def test_plan_spreads_engines_and_voices() -> None:
    voices = {"a": [Voice("a", f"v{i}") for i in range(3)], "b": [Voice("b", f"w{i}") for i in range(50)]}
    jobs = plan_jobs(SynthConfig(texts=("hi there",), n=40), voices)
    engines = [voice.engine for _, _, voice in jobs]
    assert engines.count("a") == engines.count("b") == 20
    assert len({voice.key for _, _, voice in jobs if voice.engine == "b"}) == 20
    assert "hi, there" in text_variants("hi there")


def test_cli_errors(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["synth", "hey"])
    assert result.exit_code != 0 and "--out" in result.output
    listed = CliRunner().invoke(main, ["synth", "--list-voices"])
    assert listed.exit_code == 0 and "espeak" in listed.output
