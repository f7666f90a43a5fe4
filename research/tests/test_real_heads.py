"""research/real_heads.py: leaving one voice's positives out."""

from __future__ import annotations

import numpy as np
import pytest

from wakebuilder.store.base import StoreArrays


def test_drop_positives_keeps_negatives_and_other_voices(real_heads) -> None:
    groups = np.array(["piper:joe:a", "flite:kal:b", "piper:joe:c", "flite:slt:d", "piper:x", "negatives.wav"])
    labels = np.array([1, 1, 1, 1, 0, 0])
    arrays = StoreArrays(pooled=None, sequence=np.arange(6 * 2 * 3, dtype=np.float16).reshape(6, 2, 3),
                         label=labels, id=np.array([f"c{i}" for i in range(6)]), kind=np.array(["tts"] * 6),
                         group=groups)
    kept = real_heads.drop_positives(arrays, "piper")
    assert list(kept.id) == ["c1", "c3", "c4", "c5"]  # the piper negative stays
    assert kept.sequence.shape == (4, 2, 3) and kept.pooled is None
    np.testing.assert_array_equal(kept.sequence[0], arrays.sequence[1])
    assert list(real_heads.drop_positives(arrays, "flite:kal").id) == ["c0", "c2", "c3", "c4", "c5"]
    with pytest.raises(ValueError, match="espeak"):
        real_heads.drop_positives(arrays, "espeak")


def test_extra_stores_add_their_rows(real_heads) -> None:
    def arrays(n: int, label: int, prefix: str) -> StoreArrays:
        return StoreArrays(pooled=None, sequence=np.full((n, 2, 3), label, np.float16), label=np.full(n, label),
                           id=np.array([f"{prefix}{i}" for i in range(n)]), kind=np.array(["tts"] * n),
                           group=np.array([f"{prefix}:g{i}" for i in range(n)]))

    both = real_heads.concatenate(arrays(3, 1, "w"), arrays(2, 0, "real"))
    assert list(both.id) == ["w0", "w1", "w2", "real0", "real1"] and list(both.label) == [1, 1, 1, 0, 0]
    assert both.sequence.shape == (5, 2, 3) and both.pooled is None and both.group[-1] == "real:g1"
    no_sequence = StoreArrays(pooled=np.zeros((1, 3)), sequence=None, label=np.zeros(1), id=np.array(["x"]),
                              kind=np.array(["tts"]), group=np.array(["x"]))
    with pytest.raises(ValueError, match="sequence"):
        real_heads.concatenate(arrays(1, 1, "w"), no_sequence)


def test_half_the_sound_alikes_go_with_their_copies(real_heads) -> None:
    from wakebuilder.manifest import ClipRecord

    def row(i: str, kind: str, parent: str | None = None, label: int = 0) -> ClipRecord:
        return ClipRecord(id=i, path=f"{i}.wav", label=label, kind=kind, group="g", parent_id=parent)

    records = [row("h0", "hard_negative"), row("h1", "hard_negative"), row("h2", "hard_negative"),
               row("h3", "hard_negative"), row("a2", "augmented", "h2"), row("a0", "augmented", "h0"),
               row("p0", "tts", label=1), row("w0", "word_negative")]
    mask = real_heads.drop_mask(records, "soundalikes-half")
    assert [r.id for r, gone in zip(records, mask) if gone] == ["h2", "h3", "a2"]


def test_half_of_each_named_engines_positives_go_with_their_copies(real_heads) -> None:
    from wakebuilder.manifest import ClipRecord

    def row(i: str, group: str, kind: str = "tts", parent: str | None = None, label: int = 1) -> ClipRecord:
        return ClipRecord(id=i, path=f"{i}.wav", label=label, kind=kind, group=group, parent_id=parent)

    records = [row("p0", "piper:joe"), row("k0", "kokoro:af"), row("p1", "piper:joe"), row("f0", "flite:kal"),
               row("f1", "flite:slt"), row("k1", "kokoro:bm"), row("a1", "piper:joe", "augmented", "p1"),
               row("a0", "piper:joe", "augmented", "p0"), row("n0", "piper:joe", "hard_negative", label=0),
               row("n1", "piper:joe", "hard_negative", label=0)]
    mask = real_heads.drop_mask(records, "positives-half:piper,flite")
    assert [r.id for r, gone in zip(records, mask) if gone] == ["p1", "f1", "a1"]
    with pytest.raises(SystemExit, match="pico"):
        real_heads.drop_mask(records, "positives-half:pico")
