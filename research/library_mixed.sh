#!/bin/bash
# The twenty-sixth round's library check (research/REAL_TRANSFER.md): for one word and data seed of a real_transfer
# run on word-embedding, the library's commands build a shrunk-discriminant centroids head beside the recipe's first
# network head, ensemble and export them; research/score_exports.py then scores the exports on realdev.
#   usage: research/library_mixed.sh RUN_DIR BANK_STORE OUT_DIR     (e.g. /tmp/rd/r23-word/forward-s0 <bank> /tmp/r26/lib/forward-s0)
# shrink/: wb fit --head centroids --shrinkage 0.2, calibrated as the recipe's heads (FA/h rule on the run's held-out
#          stream, not below best F1, 1 s refractory), no floor
# net/:    the run's head-0 model, recalibrated the same way with the recipe's floor (--min-threshold 0.8)
# mixed-rule/, export-rule/: wb ensemble of the two (mean of thresholds, not below the mean floor), wb export
set -euo pipefail
run=$1; bank=$2; out=$3
wb=${WB:-wb}
stream=$(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['streams'][0])" "$run/head-0/model/calibration.json")
calibrate() {
  $wb calibrate --model "$1" --store "$run/store.zarr" --store "$bank" --stream "$stream" --objective auto \
    --not-below-f1 --cache-streams --refractory-s 1.0 "${@:2}" >/dev/null
}
mkdir -p "$out"
if [ ! -f "$out/shrink/calibration.json" ]; then
  rm -rf "$out/shrink"
  $wb fit --store "$run/store.zarr" --store "$bank" --head centroids --shrinkage 0.2 --out "$out/shrink" >/dev/null
  calibrate "$out/shrink"
fi
if [ ! -f "$out/net/calibration.json" ]; then
  rm -rf "$out/net"; mkdir -p "$out/net"
  cp "$run"/head-0/model/{head.safetensors,model.json,split.json} "$out/net/"
  calibrate "$out/net" --min-threshold 0.8
fi
[ -d "$out/mixed-rule" ] || $wb ensemble --model "$out/shrink" --model "$out/net" --out "$out/mixed-rule" >/dev/null
[ -d "$out/export-rule" ] || $wb export --model "$out/mixed-rule" --out "$out/export-rule" >/dev/null
echo "$out"
