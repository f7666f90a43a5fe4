"""The versions of the code that made a kept output, recorded in its identity.

A run again keeps a step that finished with the same recorded identity (settings and inputs: ``recipe_keep``,
``synth_finished.finished_run``, the bank's and the held-out stream's ``complete.json``). The code that made an
output is one of its inputs too: each stage owns one small integer (``VERSION`` in its module, bumped when its
output for the same settings changes), and an identity records those of the stages that made its output under
``KEY`` ({stage: version}). An output recorded without them (made before they were recorded) or with another is
not the same identity, so it is made again, once, and ``version_change`` says why in the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

KEY = "stage_version"


def versioned(identity: Mapping[str, Any], versions: Mapping[str, int]) -> dict[str, Any]:
    """``identity`` with the ``versions`` ({stage: version}) of the stages that made the output, under ``KEY``."""
    return {**identity, KEY: dict(sorted(versions.items()))}


def version_change(recorded: Any, wanted: Mapping[str, Any]) -> str:
    """Why an output recorded with ``recorded`` (an identity as read back) is not this version's ``wanted``:
    'made by an older version of augment' (or a newer one); '' when their stage versions are the same, or
    ``wanted`` records none."""
    want = wanted.get(KEY)
    if not isinstance(want, Mapping):
        return ""
    had = recorded.get(KEY) if isinstance(recorded, Mapping) else None
    had = had if isinstance(had, Mapping) else {}
    older = [stage for stage, version in want.items() if not isinstance(had.get(stage), int) or had[stage] < version]
    newer = [stage for stage, version in want.items() if isinstance(had.get(stage), int) and had[stage] > version]
    reasons = [f"made by {age} version of {', '.join(stages)}"
               for age, stages in (("an older", older), ("a newer", newer)) if stages]
    return "; ".join(reasons)
