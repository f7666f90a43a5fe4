"""research/asr_verifier.py: which events a rule keeps, and the speaker-fold choice of a rule."""

from __future__ import annotations

import numpy as np


def test_an_event_counts_where_the_verifier_and_the_weighted_detector_score_clear_c(asr_verifier) -> None:
    is_word = np.array([True, True, False, False])
    rows = [(0, 0.9, -2.0), (0, 0.5, -8.0), (1, 0.3, -7.0), (2, 0.9, -5.0), (3, 0.05, -1.0), (3, 0.6, -6.5)]
    assert asr_verifier.counts(rows, is_word, (0.0, -np.inf)) == (2, 3)  # no verifier: every event
    assert asr_verifier.counts(rows, is_word, (0.0, -6.0)) == (1, 2)  # file 1 (-7) and the -6.5 event are rejected
    # + 2 log(detector): the 0.05 event drops below -6 (-1 - 5.99), the 0.9 one stays (-5 - 0.21)
    assert asr_verifier.counts(rows, is_word, (2.0, -6.0)) == (1, 1)
    assert asr_verifier.counts(rows, is_word, (0.0, -6.0), files=np.array([False, True, True, False])) == (0, 1)


def test_each_fold_is_counted_at_the_rule_chosen_on_the_other_folds(asr_verifier) -> None:
    """Two models of word w; files 0 and 2 in fold 0, files 1, 3 and 4 in fold 1. On fold 1's files the lax rule
    (c = -9) finds two clips a model with one false accept, the strict one (c = -6) one: fold 0 is counted at -9. On
    fold 0's files the lax rule accepts file 2 twice: fold 1 is counted at -6."""
    labels = np.array(["w", "w", "x", "x", "w"])
    folds = np.array([0, 1, 0, 1, 1])
    rows = [(0, 0.9, -7.0), (1, 0.9, -5.0), (4, 0.9, -7.5), (2, 0.9, -8.0), (2, 0.8, -8.5), (3, 0.9, -3.0)]
    models = [{"word": "w", "rows": {0.2: rows}}, {"word": "w", "rows": {0.2: rows[1:]}}]
    grid = [(0.2, (0.0, c)) for c in (-9.0, -6.0)]
    out = asr_verifier.speaker_validation(models, labels, folds, grid)
    assert [c["rule"] for c in out["chosen"]] == [[0.0, -9.0], [0.0, -6.0]]
    # fold 0 at -9: the first model finds clip 0, both accept file 2 twice; fold 1 at -6: both find clip 1 (clip 4's
    # -7.5 is rejected) and accept file 3 once
    assert (out["found"], out["false_accepts"], out["within_one"]) == (3, 6, 0)


def test_the_events_written_are_read_back_as_the_count_needs_them(asr_verifier, tmp_path) -> None:
    """A model's events (file, peak frame, detector peak) by threshold, each file's label and seconds: what counting
    needs of the exports, so that it can run again without them."""
    traces = [np.array([0.0, 0.3, 0.9, 0.1, 0.0, 0.0]), np.array([0.25, 0.1, 0.0])]
    rows = asr_verifier.event_rows(traces, 0.2)
    assert [(i, f) for i, f, _ in rows] == [(0, 2), (1, 0)] and rows[0][2] == 0.9
    strict = asr_verifier.event_rows(traces, 0.8)
    models = [{"word": "w", "seed": 1, "calibrated": 0.8, "events": {0.2: rows, 0.8: strict}}]
    labels, seconds = np.array(["w", "negative"]), np.array([0.6, 0.3])
    asr_verifier.write_events(tmp_path / "events.json", models, labels, seconds, ["a.wav", "b.wav"])
    back, labels_back, seconds_back, names = asr_verifier.read_events(tmp_path / "events.json")
    assert back == models and list(labels_back) == list(labels) and list(seconds_back) == list(seconds)
    assert names == ["a.wav", "b.wav"] and back[0]["events"][back[0]["calibrated"]] == [(0, 2, 0.9)]
