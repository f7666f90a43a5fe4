"""Stage versions in a kept output's identity, and the reason a run gives for making one again."""

from __future__ import annotations

from wakebuilder.stage_version import KEY, version_change, versioned


def test_version_change_names_the_stages_of_another_version() -> None:
    wanted = versioned({"seed": 1}, {"synth": 2, "negatives": 1})
    assert wanted == {"seed": 1, KEY: {"negatives": 1, "synth": 2}}
    assert version_change(wanted, wanted) == ""
    assert version_change({"seed": 1}, wanted) == "made by an older version of negatives, synth"  # before versions
    assert version_change(versioned({}, {"synth": 1, "negatives": 1}), wanted) == "made by an older version of synth"
    assert version_change(versioned({}, {"synth": 3, "negatives": 0}), wanted) == (
        "made by an older version of negatives; made by a newer version of synth")
    assert version_change({KEY: "garbled"}, wanted) == "made by an older version of negatives, synth"
    assert version_change(None, wanted) == "made by an older version of negatives, synth"
    assert version_change({"seed": 2}, {"seed": 1}) == ""  # an identity without versions: nothing to say
