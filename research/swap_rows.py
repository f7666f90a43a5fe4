"""One store's rows with some of them taken from another store: for finding which rows move a word's recall.

    python research/swap_rows.py --base /tmp/rd/r16-kk-fwd --donor /tmp/rd/r16-old-fwd --rows real_negative \
        --out /tmp/rd/r16-swap-oldwin
    python research/swap_rows.py --base /tmp/rd/r16-kk-s0 --words visual --drop-text visuals,visually --out DIR

For each ``WORD-sN`` run folder in ``--base``, writes ``OUT/WORD-sN/store.zarr``: the base store's rows, except those
whose kind is named in ``--rows``, which come from the donor's run of the same name instead. ``augmented`` label-0
rows count as the kind of the clip they were derived from (``parent_id``), so ``hard_negative`` takes the
sound-alikes with their augmented copies. ``--drop-text`` leaves out the rows (augmented copies included) whose
text is one of those given, with no donor. The base run's ``negatives`` folder is linked beside it, so that
``real_transfer.py --store-from OUT`` refits on the mixed store. Stores must share a backbone and a window.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from wakebuilder.store import open_store


def row_kinds(store) -> list[tuple[int, str]]:
    """(label, kind) per row, an augmented row taking the kind of its parent clip."""
    records = store.records()
    kind_of = {r.id: r.kind for r in records}
    return [(r.label, kind_of.get(r.parent_id, r.kind) if r.kind == "augmented" else r.kind) for r in records]


def take(store, keep: list[bool]):
    """The store's records and (pooled, sequence) rows where ``keep``."""
    arrays = store.load(pooled=True, sequence=True)
    mask = np.asarray(keep)
    records = [r for r, k in zip(store.records(), keep) if k]
    return records, arrays.pooled[mask], arrays.sequence[mask]


def spec_rows(spec, which: int) -> np.ndarray:
    """No rows, shaped as the store's pooled (0) or sequence (1) embeddings."""
    shape = (0, spec.dim) if which == 0 else (0, spec.seq_len, spec.dim)
    return np.zeros(shape, dtype=spec.dtype)


def swap(base_run: Path, donor_run: Path | None, kinds: set[str], out_run: Path, *, drop_texts: set[str]) -> dict:
    out_run.mkdir(parents=True, exist_ok=True)
    with open_store(base_run / "store.zarr") as base:
        texts = [r.text for r in base.records()]
        from_base = take(base, [k not in kinds and t not in drop_texts for (_, k), t in zip(row_kinds(base), texts)])
        spec = base.spec
        from_donor = ([], spec_rows(spec, 0), spec_rows(spec, 1))
        if donor_run is not None:
            with open_store(donor_run / "store.zarr") as donor:
                if donor.spec != spec:
                    raise SystemExit(f"{base_run} and {donor_run}: stores of different backbones or windows")
                from_donor = take(donor, [k in kinds for _, k in row_kinds(donor)])
    ids = {r.id for r in from_base[0]}
    donor_rows = [i for i, r in enumerate(from_donor[0]) if r.id not in ids]  # a clip in both stays once
    with open_store(out_run / "store.zarr", "a", spec=spec, overwrite=True) as out:
        out.append(*from_base)
        if donor_rows:
            out.append([from_donor[0][i] for i in donor_rows], from_donor[1][donor_rows], from_donor[2][donor_rows])
        total = len(out)
    link = out_run / "negatives"
    if not link.exists():
        link.symlink_to((base_run / "negatives").resolve())
    return {"run": out_run.name, "from_base": len(from_base[0]), "from_donor": len(donor_rows), "rows": total}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--base", type=Path, required=True, help="a real_transfer.py work folder (WORD-sN runs)")
    p.add_argument("--donor", type=Path, default=None, help="the folder whose runs give the --rows kinds")
    p.add_argument("--words", default=None, help="only these words' runs (comma-separated)")
    p.add_argument("--drop-text", default="", help="comma-separated texts whose rows are left out")
    p.add_argument("--rows", default="", help="comma-separated kinds taken from the donor (hard_negative, "
                   "real_negative, tts, ...)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    kinds, drop = set(filter(None, args.rows.split(","))), set(filter(None, args.drop_text.split(",")))
    if bool(kinds) != (args.donor is not None):
        raise SystemExit("--rows and --donor go together")
    words = set(args.words.split(",")) if args.words else None
    for run in sorted(d for d in args.base.iterdir() if (d / "store.zarr").is_dir()):
        if words is not None and run.name.rsplit("-s", 1)[0] not in words:
            continue
        donor = args.donor / run.name if args.donor else None
        if donor is not None and not (donor / "store.zarr").is_dir():
            raise SystemExit(f"{donor}: no store to take {args.rows} rows from")
        print(json.dumps(swap(run, donor, kinds, args.out / run.name, drop_texts=drop)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
