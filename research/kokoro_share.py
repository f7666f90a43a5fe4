"""Extra Kokoro positives per realdev word, as stores of their own for ``real_heads.py --extra-store``.

Question: does a larger Kokoro share of the positives raise recall on real speech? The recipe's positives
are 600 clips spread evenly over five engines (Kokoro 120, with 120 distinct voice settings; the other four
engines have 1-5 voices each). This makes ``-n`` more Kokoro positives of each word with another seed, with
the recipe's augmentation (its ``pos_copies`` copies of each, originals kept as the recipe keeps them), and
embeds them with the recipe's backbone and window, so head refits can add them to the twelfth round's stores.

Usage: WB_KOKORO_VOICES=../shared/voices/kokoro-v1.0-voices.npz .venv/bin/python research/kokoro_share.py \
       --out /tmp/ks --name k100 --seed 100 -n 120 [--words happy,sheila]
Writes <out>/<name>/<word>/store.zarr (and the clips beside it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_transfer import WORDS  # noqa: E402

from wakebuilder.embed import EmbedConfig, embed_manifests  # noqa: E402
from wakebuilder.recipe_config import RecipeConfig  # noqa: E402
from wakebuilder.recipe_data import augmented, synth  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("-n", type=int, default=120)
    p.add_argument("--words", default=",".join(WORDS))
    args = p.parse_args()
    for word in args.words.split(","):
        t0 = time.perf_counter()
        out = args.out / args.name / word
        config = RecipeConfig(phrase=word, seed=args.seed, engines=("kokoro",))
        pos = synth(config, out / "positives", args.n, args.seed)  # the recipe's positives, Kokoro's alone
        t1 = time.perf_counter()
        aug = augmented(config, pos, out / "positives-aug", config.pos_copies)
        embed = EmbedConfig(backbone=config.backbone, window_s=config.embed_window_s)
        embed_manifests([str(pos), str(aug)], store_path=out / "store.zarr", config=embed, threads=1)
        print(f"{word}: synth {t1 - t0:.0f} s, augment and embed {time.perf_counter() - t1:.0f} s", flush=True)


if __name__ == "__main__":
    main()
