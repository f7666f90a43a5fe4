"""research/real_ceiling.py: speaker folds, the real rows of a fold, and the mixed discriminant."""

from __future__ import annotations

import numpy as np


def test_a_speakers_files_share_one_fold(real_ceiling) -> None:
    names = ["3b4f8f24_nohash_2.wav", "4c6167ca_nohash_4.wav", "4c6167ca_nohash_5.wav",
             "four_3b4f8f24_nohash_0.wav", "four_aaaa0000_nohash_1.wav", "arctic_a0001.wav", "music_x.flac"]
    assert real_ceiling.speaker(names[3]) == "3b4f8f24" == real_ceiling.speaker(names[0])
    assert real_ceiling.speaker(names[5]) == names[5]  # read speech: the file is its own speaker
    folds = real_ceiling.speaker_folds(names, 3)
    assert folds[1] == folds[2] and folds[0] == folds[3]
    assert set(folds) == {0, 1, 2}  # five speakers dealt over three folds
    assert np.array_equal(folds, real_ceiling.speaker_folds(list(reversed(names)), 3)[::-1])  # not order-bound


def test_real_rows_take_the_middle_of_positives_and_all_of_the_rest(real_ceiling) -> None:
    file_index = np.repeat([0, 1, 2], [10, 7, 4])
    starts, ends = real_ceiling.file_spans(file_index)
    assert starts.tolist() == [0, 10, 17] and ends.tolist() == [10, 17, 21]
    labels = np.array(["forward", "negative", "forward"])
    pos, neg = real_ceiling.real_rows(np.array([0, 1]), labels, "forward", starts, ends, 5)
    assert pos.tolist() == [3, 4, 5, 6, 7] and neg.tolist() == list(range(10, 17))
    pos, _ = real_ceiling.real_rows(np.array([2]), labels, "forward", starts, ends, 5)
    assert pos.tolist() == [17, 18, 19, 20]  # a short file gives what it has


def stats_of(real_ceiling, parts):
    """``(positives, negatives)`` row sets as ``direction_from_stats`` reads them."""
    return [(real_ceiling.class_stats(p), real_ceiling.class_stats(n)) for p, n in parts]


def test_the_mixed_direction_is_the_shrunk_discriminant_at_either_end(real_ceiling, linear_scores) -> None:
    rng = np.random.default_rng(0)
    a = (rng.normal(1.0, 1.0, (40, 6)), rng.normal(0.0, 1.0, (60, 6)))
    b = (rng.normal(-1.0, 1.0, (30, 6)), rng.normal(2.0, 1.0, (50, 6)))
    x, y = np.concatenate([a[0], a[1]]), np.r_[np.ones(40), np.zeros(60)].astype(int)
    alone = real_ceiling.direction_from_stats(stats_of(real_ceiling, [a, b]), [1.0, 0.0], 0.2)
    assert np.allclose(alone, linear_scores.shrunk_direction(x, y, 0.2), atol=1e-5)
    mixed = real_ceiling.direction_from_stats(stats_of(real_ceiling, [a, b]), [0.5, 0.5], 0.2)
    assert not np.allclose(mixed, alone, atol=1e-2)  # the second source moves both means and the covariance


def test_each_fold_is_counted_at_the_threshold_of_the_other_folds(real_calibration) -> None:
    # two folds; the word's files score 0.9 (fold 0) and 0.5 (fold 1); the false-accept files peak at 0.6 (fold 0)
    # and 0.4 (fold 1)
    traces = [np.array([0.1, 0.9]), np.array([0.5, 0.2]), np.array([0.6, 0.1]), np.array([0.4])]
    is_word = np.array([True, True, False, False])
    folds = np.array([0, 1, 0, 1])
    got = real_calibration.fold_counts(traces, is_word, folds, 0, 0.0, 2)
    # fold 0 at just above 0.4 (fold 1's negative): its word file found, its 0.6 negative a false accept;
    # fold 1 at just above 0.6: its 0.5 word file missed, its 0.4 negative silent
    assert got["detected"] == 1 and got["false_accepts"] == 1 and got["n_clips"] == 2
    assert 0.4 < got["thresholds"][0] < 0.41 and 0.6 < got["thresholds"][1] < 0.61
    floored = real_calibration.fold_counts(traces, is_word, folds, 0, 0.95, 2)
    assert floored["thresholds"] == [0.95, 0.95] and floored["detected"] == 0 and floored["false_accepts"] == 0


def test_summed_statistics_give_the_direction_of_the_rows_together(real_ceiling) -> None:
    rng = np.random.default_rng(1)
    pos, neg = rng.normal(0.5, 1.0, (30, 5)), rng.normal(0.0, 1.0, (70, 5))
    together = real_ceiling.direction_from_stats(stats_of(real_ceiling, [(pos, neg)]), [1.0], 0.3)
    split = [(real_ceiling.class_stats(pos[:10]), real_ceiling.class_stats(neg[:40])),
             (real_ceiling.class_stats(pos[10:]), real_ceiling.class_stats(neg[40:]))]
    pooled = (real_ceiling.summed([s[0] for s in split]), real_ceiling.summed([s[1] for s in split]))
    assert np.allclose(real_ceiling.direction_from_stats([pooled], [1.0], 0.3), together, atol=1e-6)


def test_the_network_head_learns_the_weighted_groups(real_ceiling_mlp) -> None:
    rng = np.random.default_rng(2)
    pos, neg = rng.normal(1.0, 0.5, (60, 8)), rng.normal(-1.0, 0.5, (90, 8))
    other = rng.normal(1.0, 0.5, (40, 8))  # positives' look-alikes labelled negative in a second source
    head = real_ceiling_mlp.fit_network([(pos, 1), (neg, 0), (other, 0)], [0.5, 0.5, 0.0], epochs=20)
    assert head(pos).min() > head(neg).max()  # a source of weight 0 does not pull the positives down
    heavy = real_ceiling_mlp.fit_network([(pos, 1), (neg, 0), (other, 0)], [0.25, 0.25, 0.5], epochs=20)
    assert np.median(heavy(pos)) < np.median(head(pos))  # weighted, the look-alikes do
