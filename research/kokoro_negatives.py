"""Kokoro's voices saying generic speech (isolated words, sentences) as a negative store for ``real_heads.py``.

The recipe's positives take 120 of their 600 clips from Kokoro's many voices, while its generic speech negatives
(the bank) come from the dozen voices of piper, flite, pico and RHVoice. This store, added with
``real_heads.py --extra-store``, measures whether negatives in Kokoro's voices move recall on real speech. No
text says a realdev word. One augmented copy of each clip (the recipe's ``neg_copies``), originals kept.

Usage: WB_KOKORO_VOICES=../shared/voices/kokoro-v1.0-voices.npz .venv/bin/python research/kokoro_negatives.py \
       --out /tmp/kkw2 --seed 98 --words 1200 [--sentences 0]
Writes <out>/store.zarr (and the clips beside it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_transfer import WORDS  # noqa: E402

from wakebuilder.bank.negatives import _any_words as any_words  # noqa: E402
from wakebuilder.data.negatives import says  # noqa: E402
from wakebuilder.data.synth import SynthConfig, synthesize_clips  # noqa: E402
from wakebuilder.data.wordlists import random_sentences  # noqa: E402
from wakebuilder.embed import EmbedConfig, embed_manifests  # noqa: E402
from wakebuilder.manifest import write_manifest  # noqa: E402
from wakebuilder.recipe_config import RecipeConfig  # noqa: E402
from wakebuilder.recipe_data import augmented  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--words", type=int, default=1200)
    p.add_argument("--sentences", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    t0 = time.perf_counter()
    config = RecipeConfig(phrase="negatives", seed=args.seed)
    manifests = []
    for name, n, make, kind in (("words", args.words, lambda k: any_words(k, seed=args.seed), "word_negative"),
                                ("speech", args.sentences, lambda k: random_sentences(k, seed=args.seed),
                                 "speech_negative")):
        if n == 0:
            continue
        texts = [t for t in make(2 * n) if not any(says(t, w) for w in WORDS)][:n]
        synth = SynthConfig(texts=tuple(texts), n=len(texts), engines=("kokoro",), seed=args.seed, label=0,
                            kind=kind, variants=False, workers=args.workers)
        records = synthesize_clips(synth, out_dir=args.out / name)
        manifest = write_manifest(args.out / name / "manifest.jsonl", records)
        manifests += [manifest, augmented(config, manifest, args.out / f"{name}-aug", config.neg_copies)]
    t1 = time.perf_counter()
    embed = EmbedConfig(backbone=config.backbone, window_s=config.embed_window_s)
    embed_manifests([str(m) for m in manifests], store_path=args.out / "store.zarr", config=embed, threads=1)
    print(f"synth {t1 - t0:.0f} s, augment and embed {time.perf_counter() - t1:.0f} s", flush=True)


if __name__ == "__main__":
    main()
