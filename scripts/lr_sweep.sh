#!/usr/bin/env bash
# The learning-rate sweep behind the CPU profile's default learning rates (src/peft_imdb/config.py):
# the offline default model, 1000 train / 1000 test reviews, 1 epoch, max length 128, seed 0.
# Writes results/sweeps/lr_cpu/ (run records + summary.md); about 15 minutes on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=results/sweeps/lr_cpu
declare -A GRID=(
  [full]="2e-5 5e-5 1e-4"
  [lora]="5e-4 2e-3 5e-3"
  [qlora]="5e-4 2e-3 5e-3"
  [ia3]="1e-2 3e-2 6e-2"
)
for method in full lora qlora ia3; do
  for lr in ${GRID[$method]}; do
    $PY -m peft_imdb matrix --profile cpu --methods "$method" --lr "$lr" --results-dir "$OUT" "$@"
  done
done
$PY -m peft_imdb report --results-dir "$OUT" --figures-dir "$OUT/figures"
