#!/usr/bin/env bash
# Does adding non-speech negatives (synthesized noise/music/tones/... + Debian game music and sound)
# cut a model's false accepts on realdev's real music and noise? One word, one seed, a small
# quickstart-like recipe (speech-embedding, 2.5 s window), three models on the same synthetic data:
#   A  base:        TTS positives + sound-alikes + generic speech + isolated words + training-stream windows
#   B  +negatives:  A's store plus `wb negatives --nonspeech` and `wb negatives --debian` clips
#   C  +background: B plus positives augmented over music and noise backgrounds (wb augment --background)
# Each is calibrated on the same held-out synthetic speech stream (nothing from realdev), exported, and
# scored by research/score_realdev_nonspeech.py on realdev (never trained on).
#
#   research/nonspeech_negatives.sh [WORD] [WORKDIR]      (WORD: sheila; WORKDIR: /tmp/nsneg)
# FIT_ARGS adds options to wb fit (e.g. FIT_ARGS="--max-epochs 15" on a busy 2-core machine).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
word="${1:-sheila}"; work="${2:-/tmp/nsneg}"; seed=0
wb="$root/.venv/bin/wb"; eng=(--engine piper --engine flite)
mkdir -p "$work"; cd "$work"
start=$(date +%s); step() { echo "nsneg: [$(( $(date +%s) - start ))s] $*" >&2; }
have() { [[ -f "$1/manifest.jsonl" ]]; }

step "synth and negatives"
have pos || "$wb" synth "$word" --out pos -n 300 --seed $seed "${eng[@]}" >/dev/null
have neg || "$wb" negatives "$word" --out neg -n 600 --speech 400 --words 600 --seed $seed "${eng[@]}" >/dev/null
have cal || "$wb" negatives "$word" --out cal -n 150 --speech 250 --seed $((seed + 1000)) "${eng[@]}" >/dev/null
have pos-aug || "$wb" augment pos/manifest.jsonl --out pos-aug --copies 2 --seed $seed >/dev/null
have neg-aug || "$wb" augment neg/manifest.jsonl --out neg-aug --copies 1 --seed $seed >/dev/null
if ! have stream-chunks; then
  mkdir -p stream; "$wb" stream neg/manifest.jsonl --out stream/negatives.wav --duration-s 300 --seed $seed >/dev/null
  "$wb" negatives --real stream --out stream-chunks --min-s 2.5 --max-s 2.5 --hop-s 0.3 --overwrite >/dev/null
fi
[[ -f cal.wav ]] || "$wb" stream cal/manifest.jsonl --out cal.wav --duration-s 600 --seed $seed >/dev/null

step "non-speech negatives (offline generators, babble from the training speech negatives) and Debian sources"
have nonspeech || "$wb" negatives --nonspeech 1600 --kinds noise,music,tone,chirp,click,hum,room,babble \
  --babble-from neg/manifest.jsonl --out nonspeech --seed $seed >/dev/null
have debian || "$wb" negatives --debian --out debian >/dev/null
have pos-bg || "$wb" augment pos/manifest.jsonl --out pos-bg --copies 2 --seed $((seed + 1)) --background music,noise,hum,room \
  --background-manifest debian/manifest.jsonl --background-manifest nonspeech/manifest.jsonl --background-p 1 \
  --background-snr-db 0,20 >/dev/null

base=(pos/manifest.jsonl pos-aug/manifest.jsonl neg/manifest.jsonl neg-aug/manifest.jsonl stream-chunks/manifest.jsonl)
extra=(nonspeech/manifest.jsonl debian/manifest.jsonl)
embed() { "$wb" embed "$@" --backbone speech-embedding --window-s 2.5 --device cpu >/dev/null; }
step "embed A"; embed "${base[@]}" --store A.zarr
# B and C start as copies of A: embedding skips the clips a store already holds, so only the new ones run
step "embed B"; [[ -d B.zarr ]] || cp -r A.zarr B.zarr; embed "${base[@]}" "${extra[@]}" --store B.zarr
step "embed C"; [[ -d C.zarr ]] || cp -r B.zarr C.zarr; embed "${base[@]}" "${extra[@]}" pos-bg/manifest.jsonl --store C.zarr
for m in A B C; do
  step "fit, calibrate, export $m"
  # shellcheck disable=SC2086
  [[ -f export-$m/$word.onnx ]] || { "$wb" fit --store $m.zarr --out model-$m --seed $seed --device cpu --overwrite ${FIT_ARGS:-} >/dev/null
  "$wb" calibrate --model model-$m --store $m.zarr --stream cal.wav --device cpu >/dev/null
  "$wb" export --model model-$m --out export-$m --name "$word" --overwrite >/dev/null; }
done
step "done"
