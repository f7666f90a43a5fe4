"""The research scripts, loaded as modules for their tests."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

RESEARCH = Path(__file__).resolve().parents[1]


def load_script(name: str) -> ModuleType:
    """``research/<name>.py`` as the module ``name``, registered in ``sys.modules`` (its dataclasses look their
    module up), with ``research/`` on the path while it loads (the scripts import ``real_transfer`` beside them)."""
    sys.path.insert(0, str(RESEARCH))
    try:
        spec = importlib.util.spec_from_file_location(name, RESEARCH / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(RESEARCH))


@pytest.fixture(scope="module")
def real_transfer() -> ModuleType:
    return load_script("real_transfer")


@pytest.fixture(scope="module")
def real_heads() -> ModuleType:
    return load_script("real_heads")


@pytest.fixture(scope="module")
def real_ensemble() -> ModuleType:
    return load_script("real_ensemble")


@pytest.fixture(scope="module")
def ensemble_scores() -> ModuleType:
    return load_script("ensemble_scores")
