"""Could PocketSphinx's real-speech acoustic model verify a detection? Its scores on realdev's confusable words.

A diagnostic of a second-stage verifier, never a recipe. PocketSphinx 5.1.1 (BSD, its US English acoustic model,
dictionary and language model inside the PyPI wheel) is the one speech recognizer trained on real speech whose
model is reachable here. Two scores of a clip for a word:
- ``llr``: the forced alignment's path score of the word's pronunciation minus a free phone loop's
  (``en-us-phone.lm.bin``), per 10 ms frame: the classic keyword-verification likelihood ratio;
- ``asr``: whether the word is in the 1-best transcript of the full decoder (its general language model).
For each word, the AUC of ``llr`` between realdev's clips of the word and clips of each word that the recipe's
models confuse with it most (``verifier_headroom.py``'s loudest false accepts), and how many of the word's clips
the decoder transcribes with the word. A verifier must keep the clips (high ``asr`` hits) and rank them above the
confusions (AUC near 1).

Not installed by the project. Usage:
  .venv/bin/pip install --no-deps --target /tmp/pslib pocketsphinx==5.1.1
  PYTHONPATH=/tmp/pslib:research .venv/bin/python research/phonetic_verifier.py --name r29
Writes research/results/phonetic_verifier_<name>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import real_transfer as rt  # noqa: E402

CONFUSIONS = {"forward": ["four", "on", "one", "follow"], "sheila": ["zero", "two"], "happy": ["up", "left"],
              "marvin": ["learn", "bird"], "house": ["no", "off", "down"], "visual": ["zero", "no"]}


def auc(pos: list[float], neg: list[float]) -> float:
    """Probability that a positive outscores a negative (ties count half)."""
    p, n = np.asarray(pos, dtype=float)[:, None], np.asarray(neg, dtype=float)[None]
    return float(((p > n) + 0.5 * (p == n)).mean())


class Sphinx:
    """PocketSphinx's three searches over one clip: forced alignment, phone loop and the full decoder."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder, get_model_path

        beams = {"beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80, "loglevel": "FATAL"}
        self.align = Decoder(**beams)
        self.phones = Decoder(allphone=os.path.join(get_model_path(), "en-us-phone.lm.bin"), lw=2.0, **beams)
        self.asr = Decoder(loglevel="FATAL")
        self.logmath = self.align.get_logmath()

    @staticmethod
    def _decode(decoder, pcm: bytes):
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        return decoder.hyp()

    def _log_score(self, decoder, pcm: bytes) -> float:
        hyp = self._decode(decoder, pcm)
        return self.logmath.log(hyp.score) if hyp is not None and hyp.score > 0 else -1e9

    def scores(self, path: Path, word: str) -> dict:
        import soundfile

        audio = soundfile.read(str(path), dtype="int16")[0]
        pcm, frames = audio.tobytes(), audio.shape[0] / 160
        self.align.set_align_text(word)
        llr = (self._log_score(self.align, pcm) - self._log_score(self.phones, pcm)) / frames
        hyp = self._decode(self.asr, pcm)
        text = hyp.hypstr if hyp is not None else ""
        return {"llr": llr, "asr": word in text.split(), "text": text}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--words", default=",".join(CONFUSIONS))
    p.add_argument("--name", required=True)
    args = p.parse_args(argv)
    files = rt.realdev_files(rt.REALDEV)
    sphinx = Sphinx()
    out = {}
    for word in args.words.split(","):
        pos = [sphinx.scores(path, word) for path in files[word]]
        row = {"clips": len(pos), "asr_hits": sum(s["asr"] for s in pos), "texts": [s["text"] for s in pos],
               "auc": {}}
        for other in CONFUSIONS[word]:
            neg = [sphinx.scores(path, word) for path in files["negative"] if path.name.startswith(f"{other}_")]
            row["auc"][other] = {"auc": auc([s["llr"] for s in pos], [s["llr"] for s in neg]), "clips": len(neg),
                                 "asr_hits": sum(s["asr"] for s in neg)}
        out[word] = row
        print(f"{word:8} transcribed {row['asr_hits']}/{row['clips']}; llr AUC " + ", ".join(
            f"{o} {v['auc']:.2f} ({v['asr_hits']}/{v['clips']} transcribed as {word})" for o, v in row["auc"].items()),
            flush=True)
    path = Path(__file__).resolve().parent / "results" / f"phonetic_verifier_{args.name}.json"
    path.write_text(json.dumps(out, indent=1) + "\n")
    print(path)


if __name__ == "__main__":
    main()
