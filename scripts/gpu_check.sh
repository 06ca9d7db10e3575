#!/usr/bin/env bash
# Device check for a CUDA machine with no internet: all four methods for a few steps each on the
# offline model (or --model tiny), printing precision, peak allocated/reserved memory, samples/s,
# QLoRA's Linear4bit layers, and whether peak memory orders full > lora >= qlora.
#   bash scripts/gpu_check.sh            # on the GPU
#   bash scripts/gpu_check.sh --dry-run  # anywhere: one step per method, says what it would check
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
exec "$PY" -m peft_imdb.gpucheck "$@"
