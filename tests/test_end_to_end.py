"""The whole pipeline through the CLI, offline, on the shipped speech-embedding backbone.

Train on espeak-ng voices of some accents; the exported ONNX must then find the
phrase spoken by voices of other accents (held out) and stay quiet on held-out
negatives and on continuous non-wake-word audio.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from wakebuilder.cli import main

TRAIN_VOICES = r"^espeak:(en-us|en|en-gb-x-rp|en-gb-x-gbclan)[+:]"
HELD_OUT_VOICES = r"^espeak:(en-gb-scotland|en-029|en-gb-x-gbcwmd)[+:]"


def wb(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_phrase_to_exported_detector(tmp_path: Path) -> None:
    phrase = "hey jarvis"
    common = ("--engine", "espeak")
    positives = wb("synth", phrase, "--out", str(tmp_path / "pos"), "-n", "800", "--voices", TRAIN_VOICES, *common)
    negatives = wb("negatives", phrase, "--out", str(tmp_path / "neg"), "-n", "600", "--speech", "600",
                   "--voices", TRAIN_VOICES, *common)
    held_pos = wb("synth", phrase, "--out", str(tmp_path / "held-pos"), "-n", "60", "--voices", HELD_OUT_VOICES,
                  "--seed", "7", *common)
    held_neg = wb("negatives", phrase, "--out", str(tmp_path / "held-neg"), "-n", "100", "--speech", "200",
                  "--voices", HELD_OUT_VOICES, "--seed", "7", *common)
    pos_aug = wb("augment", positives, "--out", str(tmp_path / "pos-aug"), "--copies", "2")
    neg_aug = wb("augment", negatives, "--out", str(tmp_path / "neg-aug"), "--copies", "1")
    (tmp_path / "train-stream").mkdir()
    wb("stream", negatives, "--out", str(tmp_path / "train-stream" / "neg.wav"), "--duration-s", "600", "--seed", "3")
    windows = wb("negatives", "--real", str(tmp_path / "train-stream"), "--out", str(tmp_path / "windows"),
                 "--min-s", "2.5", "--max-s", "2.5", "--hop-s", "0.3")
    stream = wb("stream", held_neg, "--out", str(tmp_path / "stream.wav"), "--duration-s", "300")
    store = wb("embed", positives, pos_aug, negatives, neg_aug, windows, "--store", str(tmp_path / "store.zarr"),
               "--backbone", "speech-embedding", "--window-s", "2.5")
    model = wb("fit", "--store", store, "--out", str(tmp_path / "model"))
    wb("calibrate", "--model", model, "--store", store, "--stream", stream)
    export_dir = Path(wb("export", "--model", model, "--out", str(tmp_path / "export"), "--name", "hey_jarvis"))
    onnx = export_dir / "hey_jarvis.onnx"
    assert onnx.is_file() and (export_dir / "hey_jarvis.json").is_file()

    (result,) = json.loads(wb("eval", str(onnx), held_pos, held_neg, stream, "--json"))
    text = json.dumps({k: result[k] for k in ("threshold", "metrics", "false_accepts", "fa_per_hour")})
    print("end-to-end eval:", text)
    # held-out voices say the phrase. Recall moves with the draw of the espeak clips: 46, 51, 53, 57 and 58 of 60 on
    # five draws of the same code paths (the state carried from clip to clip with 1 and 2 workers, before each clip
    # was made from a fresh state; a fresh state; a fresh state with the seeded warm-up, and with another salt of
    # its hash), so the bound catches a pipeline that fails, not a draw.
    assert result["metrics"]["recall"] >= 0.7, text
    # held-out sound-alikes and speech stay quiet. FAR of the 300 held-out clips moves with the augmentation
    # draws: 0.030 with one generator per chain; with one generator per transform, 0.063 (19 clips) at augment
    # seed 0 and 0.033 at seed 2 (recall 0.98 and 1.0), so the bound leaves room for that spread.
    assert result["metrics"]["far"] <= 0.08, text
    # 5 minutes of held-out sound-alikes and speech: measured 1 false accept (12 FA/h; recall 0.933, FAR 0.03)
    # after the per-clip mel fix; with 1.5 s stream windows in a 2.5 s embedding, recall fell to 0.867
    assert result["fa_per_hour"] <= 60.0, text
