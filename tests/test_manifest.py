from __future__ import annotations

import json
from pathlib import Path

import pytest

from wakebuilder.errors import ManifestError
from wakebuilder.manifest import ClipRecord, read_manifest, relative_clip_path, resolve_clip_path, write_manifest


def _record(**changes: object) -> ClipRecord:
    base = dict(id="abc123", path="clips/a.wav", label=1, kind="tts", group="espeak:en-us", text="hey jarvis")
    base.update(changes)
    return ClipRecord(**base)  # type: ignore[arg-type]


def test_round_trip(tmp_path: Path) -> None:
    records = [_record(), _record(id="def456", label=0, kind="hard_negative", params={"snr_db": 10.0})]
    path = write_manifest(tmp_path / "manifest.jsonl", records)
    assert read_manifest(path) == records


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({"id": "x", "path": "a.wav", "label": 1, "kind": "tts"}, "missing field"),
        ({"id": "x", "path": "a.wav", "label": 2, "kind": "tts", "group": "g"}, "label must be 0 or 1"),
        ({"id": "x", "path": "a.wav", "label": 1, "kind": "bogus", "group": "g"}, "kind 'bogus'"),
        ({"id": "x", "path": "a.wav", "label": 1, "kind": "tts", "group": "g", "extra": 1}, "unknown field"),
        ({"id": "x", "path": "a.wav", "label": 1, "kind": "tts", "group": "g", "duration_s": -1}, "duration_s"),
        ({"id": "x", "path": "a.wav", "label": 1, "kind": "tts", "group": "g", "duration_s": 10**400}, "duration_s"),
        ({"id": "", "path": "a.wav", "label": 1, "kind": "tts", "group": "g"}, "non-empty string"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, row: dict, message: str) -> None:
    path = tmp_path / "m.jsonl"
    good = json.dumps(_record(id="ok").to_dict())
    path.write_text(good + "\n" + json.dumps(row) + "\n")
    with pytest.raises(ManifestError, match=message) as info:
        read_manifest(path)
    assert f"{path}:2" in str(info.value)


def test_not_json_and_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text("{not json\n")
    with pytest.raises(ManifestError, match="not valid JSON"):
        read_manifest(path)
    row = json.dumps(_record().to_dict())
    path.write_text(row + "\n" + row + "\n")
    with pytest.raises(ManifestError, match="duplicate clip id"):
        read_manifest(path)
    with pytest.raises(ManifestError, match="not found"):
        read_manifest(tmp_path / "missing.jsonl")


def test_paths_cannot_escape_the_manifest_folder(tmp_path: Path) -> None:
    manifest = tmp_path / "data" / "manifest.jsonl"
    manifest.parent.mkdir()
    inside = resolve_clip_path(manifest, _record(path="clips/a.wav"))
    assert inside == (tmp_path / "data" / "clips" / "a.wav").resolve()
    with pytest.raises(ManifestError, match="escapes"):
        resolve_clip_path(manifest, _record(path="../../etc/passwd"))
    absolute = resolve_clip_path(manifest, _record(path=str(tmp_path / "elsewhere.wav")))
    assert absolute == tmp_path / "elsewhere.wav"
    assert relative_clip_path(manifest.parent, tmp_path / "data" / "clips" / "a.wav") == "clips/a.wav"
    assert relative_clip_path(manifest.parent, tmp_path / "other.wav") == str((tmp_path / "other.wav").resolve())


def test_binary_files_and_line_separators_in_texts(tmp_path: Path) -> None:
    """A binary file is a one-line ManifestError; a text holding U+2028 (written as is) reads back whole."""
    from wakebuilder.atomic import atomic_write_bytes, read_json
    from wakebuilder.errors import WakebuilderError

    path = atomic_write_bytes(tmp_path / "m.jsonl", b"\xff\xfe\x00x\n")
    with pytest.raises(ManifestError, match="not UTF-8 text"):
        read_manifest(path)
    with pytest.raises(WakebuilderError, match="not valid JSON .not UTF-8"):
        read_json(path)
    records = [_record(text="hey\u2028jarvis\u0085now")]
    assert read_manifest(write_manifest(tmp_path / "ok.jsonl", records)) == records


def test_json_nested_past_the_parser_is_one_line_naming_the_file(tmp_path: Path) -> None:
    """A line of 100,000 nested brackets (a damaged or hostile file) ended in a RecursionError traceback from
    json.loads, in a manifest and in every JSON file read_json reads (calibration.json, NAME.json); it is the
    file's one-line error now."""
    from wakebuilder.atomic import read_json
    from wakebuilder.errors import WakebuilderError

    deep = "[" * 100_000 + "]" * 100_000
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps(_record().to_dict()) + "\n" + deep + "\n")
    with pytest.raises(ManifestError, match=f"^{manifest}:2: not valid JSON .nested too deeply"):
        read_manifest(manifest)
    other = tmp_path / "calibration.json"
    other.write_text(deep)
    with pytest.raises(WakebuilderError, match=f"^{other}: not valid JSON .nested too deeply"):
        read_json(other)


def test_a_byte_order_mark_is_read_as_the_utf8_text_it_marks(tmp_path: Path) -> None:
    """A manifest or JSON file saved by an editor that starts UTF-8 with a byte order mark (Windows Notepad) was
    refused as 'not valid JSON (Unexpected UTF-8 BOM)' on its first line; it reads as the text it is."""
    from wakebuilder.atomic import read_json

    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b"\xef\xbb\xbf" + json.dumps(_record().to_dict()).encode() + b"\n")
    assert read_manifest(manifest) == [_record()]
    other = tmp_path / "calibration.json"
    other.write_bytes(b"\xef\xbb\xbf" + b'{"threshold": 0.5}')
    assert read_json(other) == {"threshold": 0.5}
