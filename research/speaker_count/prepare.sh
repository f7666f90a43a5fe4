#!/usr/bin/env bash
# Data for the recall-vs-speaker-count curve: positives of one word from 75 distinct base voices (3 each), TTS
# negatives from fast engines, augmented, embedded once into one store. realdev is not touched here.
# Usage: research/speaker_count/prepare.sh WORD WORKDIR
set -euo pipefail
word="$1"; work="$2"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
wb="$root/.venv/bin/wb"
voices="$root/../shared/voices/kokoro-v1.0-voices.npz"
per=3
mkdir -p "$work"
synth() {  # engine, number of base voices, voice pattern
  local out="$work/pos-$1"
  [[ -f "$out/manifest.jsonl" ]] || "$wb" synth "$word" --engine "$1" -n $(( $2 * per )) --voices "$3" \
    --kokoro-voices "$voices" --seed 0 --workers 2 --out "$out" >/dev/null
  echo "$out/manifest.jsonl"
}
pos=(
  "$(synth kokoro 54 '^[a-z]{2}_(?!mix)')"   # the 54 voices, no blends
  "$(synth flite 5 '.')" "$(synth festival 3 '.')" "$(synth piper 1 '.')"
  "$(synth pico 2 '.')" "$(synth rhvoice 6 '.')" "$(synth mbrola 4 '.')"
)
neg="$work/neg"
[[ -f "$neg/manifest.jsonl" ]] || "$wb" negatives "$word" -n 800 --speech 600 --engine flite --engine espeak \
  --engine pico --seed 0 --out "$neg" >/dev/null
manifests=("${pos[@]}" "$neg/manifest.jsonl")
for m in "${pos[@]}"; do
  name="$(basename "$(dirname "$m")")"
  [[ -f "$work/$name-aug/manifest.jsonl" ]] || "$wb" augment "$m" --out "$work/$name-aug" --copies 4 --seed 0 >/dev/null
  manifests+=("$work/$name-aug/manifest.jsonl")
done
[[ -f "$work/neg-aug/manifest.jsonl" ]] || "$wb" augment "$neg/manifest.jsonl" --out "$work/neg-aug" --copies 1 \
  --seed 0 >/dev/null
manifests+=("$work/neg-aug/manifest.jsonl")
"$wb" embed "${manifests[@]}" --store "$work/store.zarr" --backbone speech-embedding --window-s 2.5 --device cpu
