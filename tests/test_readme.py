"""The README promises only artifact files that the code writes."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILE_NAME = re.compile(r"`([A-Za-z_.]*\.(?:json|jsonl|png|onnx|pt|safetensors|zarr|h5))`")


def readme_artifacts() -> dict[str, list[str]]:
    """File names in backticks under each bullet of the README's Artifacts section, by the bullet's title."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Artifacts\n", 1)[1].split("\n## ", 1)[0]
    found: dict[str, list[str]] = {}
    for bullet in re.split(r"\n- ", "\n" + section)[1:]:
        title = re.match(r"\*\*(.+?)\*\*", bullet)
        if title:
            found[title.group(1)] = FILE_NAME.findall(bullet)
    return found


def test_the_artifacts_section_names_files() -> None:
    artifacts = readme_artifacts()
    assert {"Clip manifest", "Embedding store", "Model directory", "Export", "Recipe run"} <= set(artifacts)
    assert "calibration_det.png" in artifacts["Model directory"] and "NAME.head.onnx" in artifacts["Export"]


def test_every_promised_file_name_is_in_the_code() -> None:
    """Each name (or its suffix after NAME / PATH) is a string the package writes."""
    source = "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "wakebuilder").rglob("*.py"))
    missing = []
    for names in readme_artifacts().values():
        for name in names:
            literal = re.sub(r"^(NAME|PATH)", "", name)
            if f'"{literal}"' not in source and f"{literal}\"" not in source:
                missing.append(name)
    assert not missing, missing
