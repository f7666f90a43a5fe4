from __future__ import annotations

import contextlib
import hashlib
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wakebuilder.audio import load_audio
from wakebuilder.cli import main
from wakebuilder.data.synth import SynthConfig, plan_jobs, run_synth, synthesize_clips, text_variants
from wakebuilder.data.tts import Voice, get_engine
from wakebuilder.fingerprint import audio_id
from wakebuilder.manifest import read_manifest


def _digest(folder: Path) -> str:
    files = sorted((folder / "clips").glob("*.wav"))
    return hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


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
    command = [sys.executable, "-m", "wakebuilder.cli", "synth", "hey jarvis", "-n", "16"]
    command += ["--engine", "espeak"]
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        out = ["--out", str(tmp_path / name), "--seed", seed]
        subprocess.run([*command, *out], check=True, capture_output=True)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    manifests = [(tmp_path / name / "manifest.jsonl").read_bytes() for name in "ab"]
    assert manifests[0] == manifests[1]


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


def test_list_voices_with_json_prints_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """--list-voices --json printed the tab-separated listing, which a script's JSON reader fails on; it now prints
    one JSON object: per engine whether it can run here (why not), and its voices with their settings and licence."""
    import json

    monkeypatch.setattr(get_engine("piper"), "available", lambda: False)
    monkeypatch.setattr(get_engine("piper"), "why_unavailable", lambda: "not installed")
    result = CliRunner().invoke(main, ["synth", "--list-voices", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert listed["piper"] == {"available": False, "reason": "not installed", "non_commercial": False, "voices": []}
    espeak = listed["espeak"]
    assert espeak["available"] and espeak["reason"] is None and espeak["voices"]
    voice = espeak["voices"][0]
    assert voice["name"].startswith("espeak:") and voice["settings"] > 0 and voice["kind"] == "voice"
    assert "licence" in voice and espeak["non_commercial"] is False
    plain = CliRunner().invoke(main, ["synth", "--list-voices"]).stdout.splitlines()
    assert "piper\tunavailable: not installed" in plain
    assert sum(len(e["voices"]) + 1 for e in listed.values()) == len(plain)  # the same listing


def test_texts_form_with_given_voices_and_negative_labels(tmp_path: Path) -> None:
    voices = [Voice("espeak", "en-gb-scotland+m3", {"rate": 150, "pitch": 40}),
              Voice("espeak", "en-us", {"rate": 180})]
    records = synthesize_clips(["jar", "harvest"], out_dir=tmp_path, n=4, engines=voices, seed=3, label=0,
                               kind="hard_negative")
    assert len(records) == 4 and {r.group for r in records} == {v.key for v in voices}
    assert {r.label for r in records} == {0} and {r.kind for r in records} == {"hard_negative"}
    assert {r.text.lower().strip(".!?") for r in records} == {"jar", "harvest"}
    assert all((tmp_path / r.path).is_file() for r in records)


def test_missing_engine_noted_and_synth_runs_with_the_others(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(get_engine("piper"), "available", lambda: False)
    with caplog.at_level(logging.WARNING):
        records = synthesize_clips(SynthConfig(texts=("hey jarvis",), n=4, engines=("piper", "espeak")),
                                   out_dir=tmp_path)
    assert {r.source for r in records} == {"espeak"} and "piper unavailable" in caplog.text


@pytest.mark.parametrize("engine", ["flite", "festival"])
def test_deterministic_engines_give_distinct_clips_of_one_word(engine: str, tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    if not get_engine(engine).available():
        pytest.skip(f"{engine} not installed here")
    with caplog.at_level(logging.WARNING, logger="wakebuilder.data.synth"):
        records = synthesize_clips(["happy"], out_dir=tmp_path, n=80, engines=[engine])
    assert len(records) == 80 and "dropped" not in caplog.text


def test_exact_repeats_are_dropped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    if not get_engine("flite").available():
        pytest.skip("flite not installed here")
    voice = Voice("flite", "rms", {"duration_stretch": 1.0})  # deterministic, and deaf to casing
    with caplog.at_level(logging.WARNING, logger="wakebuilder.data.synth"):
        records = synthesize_clips(["happy"], out_dir=tmp_path, n=6, engines=[voice])
    assert 1 <= len(records) < 6 and "flite" in caplog.text and "dropped" in caplog.text


def test_plan_gives_each_speaker_an_equal_share() -> None:
    many = [Voice("a", "big", {"k": i}) for i in range(40)]
    few = [Voice("a", "small", {"k": i}) for i in range(4)]
    jobs = plan_jobs(SynthConfig(texts=("hi",), n=24), {"a": many + few})
    names = [voice.name for _, _, voice in jobs]
    assert names.count("big") == names.count("small") == 12  # not 40:4
    small = [voice.key for _, _, voice in jobs if voice.name == "small"]
    assert len(set(small[:4])) == 4  # a speaker's settings all come before any repeats


@pytest.mark.parametrize(("engine", "n"), [("flite", 300), ("festival", 200)])  # shares of 600 in the quick recipe
def test_quick_recipe_plan_never_repeats_a_setting(engine: str, n: int) -> None:
    voices = get_engine(engine).voices()
    if not voices:
        pytest.skip(f"{engine} not installed here")
    jobs = plan_jobs(SynthConfig(texts=("happy",), n=n), {engine: voices})
    assert len({voice.key for _, _, voice in jobs}) == n


def test_piper_clips_do_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    """Each clip's noise comes from (seed, job index), not from the clips its process made before: --workers 1
    and --workers 2 share the jobs out differently and give the same clips."""
    if not get_engine("piper").available():
        pytest.skip("no Piper voice here (pip install 'wakebuilder[piper]')")
    ids = {}
    for workers in (1, 2):
        config = SynthConfig(texts=("hey jarvis",), n=6, engines=("piper",), seed=3, workers=workers)
        ids[workers] = [r.id for r in synthesize_clips(config, out_dir=tmp_path / str(workers))]
    assert ids[1] == ids[2] and len(set(ids[1])) == 6


def test_espeak_clips_do_not_depend_on_the_number_of_workers(tmp_path: Path) -> None:
    """espeak-ng kept state from one utterance to the next (its pitch flutter), so a clip depended on the clips its
    worker made before it and --workers 1 and --workers 2 gave different clips. Each clip now starts afresh."""
    ids = {}
    for workers in (1, 2):
        config = SynthConfig(texts=("hey jarvis",), n=6, engines=("espeak",), seed=3, workers=workers)
        ids[workers] = [r.id for r in synthesize_clips(config, out_dir=tmp_path / str(workers))]
    assert ids[1] == ids[2] and len(set(ids[1])) == 6


def _partition_that_dies(args: tuple) -> list[dict]:
    """A synthesis partition whose process is killed (as by the OOM killer or a crash in a TTS library) when it
    holds job 0; run in the spawned worker, imported there by name."""
    import os
    import signal

    from wakebuilder.data import synth

    if any(index == 0 for index, _, _ in args[0]):
        os.kill(os.getpid(), signal.SIGKILL)
    return synth._synthesize_partition(args)


def test_a_killed_worker_is_a_one_line_error_not_a_hang(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from wakebuilder.data import synth
    from wakebuilder.errors import WakebuilderError

    monkeypatch.setattr(synth, "_synthesize_partition", _partition_that_dies)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            synthesize_clips(SynthConfig(texts=("hey jarvis",), n=4, engines=("espeak",), workers=2), out_dir=tmp_path)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - the test looks at it below
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(120)
    assert not thread.is_alive(), "synth waited forever for the killed worker's partition"
    assert isinstance(outcome[0], WakebuilderError) and "worker" in str(outcome[0])


@pytest.mark.parametrize("command", ["synth", "negatives"])
def test_a_second_writer_into_one_folder_is_refused(command: str, tmp_path: Path) -> None:
    """Two runs into one --out both passed the 'manifest exists' check; the last to finish replaced the other's
    manifest and left its clips unlisted. The second now fails at once, and nothing of it is written."""
    from wakebuilder.atomic import writer_lock
    from wakebuilder.data.negatives import NegativesConfig, make_negatives
    from wakebuilder.errors import LockedError

    with writer_lock(tmp_path / "out" / "manifest.jsonl"), pytest.raises(LockedError, match="another wakebuilder"):
        if command == "synth":
            run_synth(SynthConfig(texts=("hey jarvis",), n=2, engines=("espeak",)), out_dir=tmp_path / "out")
        else:
            make_negatives(NegativesConfig(phrase="hey jarvis", n=2, speech=0, words=0, engines=("espeak",)),
                           out_dir=tmp_path / "out")
    assert not (tmp_path / "out" / "clips").exists() and not (tmp_path / "out" / "manifest.jsonl").exists()


def _children(pid: int) -> set[int]:
    try:
        return {int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the worker processes")
def test_sigterm_to_wb_synth_stops_its_workers_too(tmp_path: Path) -> None:
    """`kill PID` (SIGTERM to the parent alone, as a service manager or a CI timeout sends it) killed wb synth
    but left its workers synthesizing into --out until their share was done."""
    import os
    import signal
    import time

    command = [sys.executable, "-m", "wakebuilder.cli", "synth", "hey jarvis", "-n", "3000", "--engine", "espeak",
               "--workers", "2", "--out", str(tmp_path / "out")]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while len(workers := _children(process.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(workers) >= 2, "the workers did not start"
        time.sleep(1.0)  # working
        os.kill(process.pid, signal.SIGTERM)
        assert process.wait(timeout=30) != 0
        deadline = time.monotonic() + 10
        def running() -> set[int]:  # a zombie has exited: only its parent (gone) would reap it
            return {w for w in workers if Path(f"/proc/{w}").exists()
                    and "Z" not in Path(f"/proc/{w}/stat").read_text().split()[2]}

        while (alive := running()) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not alive, f"workers {sorted(alive)} still run after wb synth was terminated"
    finally:
        for pid in workers | _children(process.pid) | {process.pid}:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


def _partition_interrupted(args: tuple) -> list[dict]:
    """The synthesis partition holding job 0 stops (as by Ctrl-C) when it is about to write its fourth clip; run
    in the spawned worker, imported there by name."""
    from wakebuilder.data import synth

    if all(index != 0 for index, _, _ in args[0]):
        return synth._synthesize_partition(args)

    real, written = synth.write_wav, []

    def write_then_stop(path: Path, samples: object) -> Path:
        if len(written) == 3:
            raise RuntimeError("interrupted")
        written.append(path)
        return real(path, samples)

    synth.write_wav = write_then_stop
    return synth._synthesize_partition(args)


def stop_in_pass(patch: pytest.MonkeyPatch, module: object, kind: str, *, partway: bool = True) -> None:
    """Make ``module.synthesize_clips`` (the one ``module`` calls) stop in its pass of clips of ``kind``: part way,
    as ``_partition_interrupted`` does (RuntimeError), or, ``partway`` False, as it starts (KeyboardInterrupt)."""
    from wakebuilder.data import synth

    real = module.synthesize_clips  # type: ignore[attr-defined]

    def stopping(synth_config: SynthConfig, **kwargs: object) -> object:
        if synth_config.kind == kind:
            if not partway:
                raise KeyboardInterrupt
            patch.setattr(synth, "_synthesize_partition", _partition_interrupted)  # stops at its 4th clip
        return real(synth_config, **kwargs)

    patch.setattr(module, "synthesize_clips", stopping)


@pytest.mark.parametrize("engines", [("espeak",), ("espeak", "flite")])
def test_resume_after_an_interrupt_equals_one_shot(engines: tuple[str, ...], tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed wb synth redid every clip when run again. It now keeps the finished clips (of every engine: none is
    run for them again) and ends with the manifest and clips of an uninterrupted run."""
    if any(not get_engine(e).available() for e in engines):
        pytest.skip(f"{', '.join(engines)} not all installed here")
    config = SynthConfig(texts=("hey jarvis",), n=12, engines=engines, workers=3)  # jobs 0, 3, 6 made by one
    run_synth(config, out_dir=tmp_path / "one")
    kept = _killed_run(config, tmp_path / "two", monkeypatch)
    run_synth(config, out_dir=tmp_path / "two")
    assert (tmp_path / "two" / "manifest.jsonl").read_bytes() == (tmp_path / "one" / "manifest.jsonl").read_bytes()
    assert _digest(tmp_path / "two") == _digest(tmp_path / "one")
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())
    records = read_manifest(tmp_path / "two" / "manifest.jsonl")
    assert len(records) == 12
    finished = [Path(records[index].path).name for index in (0, 3, 6)]  # the interrupted worker's three clips
    assert all((tmp_path / "two" / "clips" / name).stat().st_ino == kept[name] for name in finished)


def _killed_run(config: SynthConfig, out: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """A run of ``config`` into ``out`` killed part-way (one worker's partition interrupted): its finished clips'
    names and inodes, some but not all of the 12 jobs."""
    from wakebuilder.data import synth

    with monkeypatch.context() as patch:
        patch.setattr(synth, "_synthesize_partition", _partition_interrupted)
        with pytest.raises(RuntimeError, match="interrupted"):
            run_synth(config, out_dir=out)
    kept = {p.name: p.stat().st_ino for p in (out / "clips").glob("*.wav")}
    assert 3 <= len(kept) < 12
    return kept


def test_a_killed_run_resumes_with_another_number_of_workers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed wb synth run again with another --workers (fewer, after a kill for memory) was refused as a run of
    other settings ("workers: 3 there, 1 now"), and --overwrite threw its finished clips away, though clips do not
    depend on the number of workers. It now resumes, keeping them, and ends as a one-shot run; the finished run is
    kept as it is with any --workers."""
    from wakebuilder.data import synth
    from wakebuilder.data.synth import keep_or_run_synth

    config = SynthConfig(texts=("hey jarvis",), n=12, engines=("espeak",), workers=3)
    kept = _killed_run(config, tmp_path / "two", monkeypatch)
    manifest = run_synth(config.replace(workers=1), out_dir=tmp_path / "two")
    assert manifest.read_bytes() == run_synth(config, out_dir=tmp_path / "one").read_bytes()
    assert all((tmp_path / "two" / "clips" / name).stat().st_ino == ino for name, ino in kept.items())
    monkeypatch.setattr(synth, "synthesize_clips", lambda *args, **kwargs: pytest.fail("made again"))
    assert keep_or_run_synth(config.replace(workers=2), out_dir=tmp_path / "two") == manifest


def test_resume_with_another_config_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Clips of an unfinished run are not mixed with another config's: the run is refused, naming --overwrite;
    with --overwrite it starts afresh."""
    from wakebuilder.data import synth
    from wakebuilder.errors import ArtifactExistsError

    config = SynthConfig(texts=("hey jarvis",), n=10, engines=("espeak",), workers=2)
    monkeypatch.setattr(synth, "_synthesize_partition", _partition_interrupted)
    with pytest.raises(RuntimeError, match="interrupted"):
        run_synth(config, out_dir=tmp_path)
    monkeypatch.undo()
    before = sorted((tmp_path / "clips").iterdir())
    with pytest.raises(ArtifactExistsError, match="seed.*--overwrite"):
        run_synth(config.replace(seed=1), out_dir=tmp_path)
    assert sorted((tmp_path / "clips").iterdir()) == before and not (tmp_path / "manifest.jsonl").exists()
    records = read_manifest(run_synth(config.replace(seed=1), out_dir=tmp_path, overwrite=True))
    assert records[0].params["seed"] == 1


def test_overwrite_leaves_only_the_new_runs_clips(tmp_path: Path) -> None:
    """wb synth --overwrite into a folder of an earlier run left that run's clips in clips/, unlisted. They now go;
    nothing outside clips/ is deleted."""
    out = tmp_path / "out"
    run_synth(SynthConfig(texts=("hey jarvis",), n=6, engines=("espeak",)), out_dir=out)
    outside = [tmp_path / "mine.wav", out / "notes.wav", out / "clips" / "sub" / "kept.wav"]
    for path in outside:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"not ours")
    manifest = run_synth(SynthConfig(texts=("hey jarvis",), n=4, engines=("espeak",), seed=1), out_dir=out,
                         overwrite=True)
    listed = {out / r.path for r in read_manifest(manifest)}
    assert set((out / "clips").glob("*.wav")) == listed and len(listed) == 4
    assert all(path.read_bytes() == b"not ours" for path in outside)
    elsewhere, linked = tmp_path / "elsewhere", tmp_path / "linked"
    elsewhere.mkdir()
    outside[0].rename(elsewhere / "mine.wav")
    linked.mkdir()
    (linked / "clips").symlink_to(elsewhere, target_is_directory=True)  # clips/ on another disk: left alone
    run_synth(SynthConfig(texts=("hey",), n=2, engines=("espeak",)), out_dir=linked, overwrite=True)
    assert (elsewhere / "mine.wav").read_bytes() == b"not ours"


def fewer_voices(patch: pytest.MonkeyPatch) -> None:
    """espeak as if it found only its first speaker's voices, as Kokoro finds its five bundled voices until
    ``wb voices fetch kokoro-en``: the voices a run speaks with change while its config stays the same."""
    engine = get_engine("espeak")
    every = engine.voices
    first = every()[0].name
    patch.setattr(engine, "voices", lambda: [voice for voice in every() if voice.name == first])


def test_a_replacing_run_killed_before_its_manifest_leaves_no_record_of_it(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A run replacing a finished one (other voices found now) wrote its config and voices beside the manifest
    before the manifest: killed in between, the old voices' manifest was marked with the new voices, and a run
    again kept it. The record beside the manifest now goes as the run starts and is written last."""
    from wakebuilder.data import synth
    from wakebuilder.data.synth import keep_or_run_synth

    config = SynthConfig(texts=("hey jarvis",), n=4, engines=("espeak",), workers=1)
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        old = keep_or_run_synth(config, out_dir=tmp_path / "two").read_bytes()

    def killed(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(synth, "write_manifest", killed)
        with pytest.raises(KeyboardInterrupt):
            keep_or_run_synth(config, out_dir=tmp_path / "two")
    again = keep_or_run_synth(config, out_dir=tmp_path / "two").read_bytes()
    assert again != old and again == run_synth(config, out_dir=tmp_path / "one").read_bytes()


def test_resume_after_the_voices_changed_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A killed wb synth run again after the voices found here changed (voices fetched, an engine installed: not
    in its config) resumed, keeping clips of the old voices' jobs. It is now refused like another config, naming
    the voices and --overwrite; with --overwrite it ends as a one-shot run with the voices found now."""
    from wakebuilder.data import synth
    from wakebuilder.errors import ArtifactExistsError

    config = SynthConfig(texts=("hey jarvis",), n=10, engines=("espeak",), workers=2)
    with monkeypatch.context() as patch:
        fewer_voices(patch)
        patch.setattr(synth, "_synthesize_partition", _partition_interrupted)
        with pytest.raises(RuntimeError, match="interrupted"):
            run_synth(config, out_dir=tmp_path / "two")
    before = sorted((tmp_path / "two" / "clips").iterdir())
    with pytest.raises(ArtifactExistsError, match="voices.*--overwrite"):
        run_synth(config, out_dir=tmp_path / "two")
    assert sorted((tmp_path / "two" / "clips").iterdir()) == before
    assert not (tmp_path / "two" / "manifest.jsonl").exists()
    one = run_synth(config, out_dir=tmp_path / "one")
    assert run_synth(config, out_dir=tmp_path / "two", overwrite=True).read_bytes() == one.read_bytes()
    assert _digest(tmp_path / "two") == _digest(tmp_path / "one")
