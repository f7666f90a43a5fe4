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


def script_fixture(name: str):
    """A module-scoped fixture named ``name`` that gives ``research/<name>.py`` (``load_script``)."""

    @pytest.fixture(scope="module", name=name)
    def fixture() -> ModuleType:
        return load_script(name)

    return fixture


real_transfer = script_fixture("real_transfer")
real_heads = script_fixture("real_heads")
real_ensemble = script_fixture("real_ensemble")
ensemble_scores = script_fixture("ensemble_scores")
backbone_fusion = script_fixture("backbone_fusion")
linear_scores = script_fixture("linear_scores")
centroid_head = script_fixture("centroid_head")
recalibrate_runs = script_fixture("recalibrate_runs")
head_seeds = script_fixture("head_seeds")
real_ceiling = script_fixture("real_ceiling")
real_calibration = script_fixture("real_calibration")
real_ceiling_mlp = script_fixture("real_ceiling_mlp")
verifier_headroom = script_fixture("verifier_headroom")
asr_verifier = script_fixture("asr_verifier")
