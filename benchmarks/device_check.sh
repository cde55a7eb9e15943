#!/bin/bash
# The CUDA checks, as one short script for a lent GPU machine (see README, Development):
#   1. a ViT-B/16-size step and evaluation per method in fp16, amp and fp32 (speed, peak memory);
#   2. SEP and CoOp base-to-new on the demo through the real scripts on CUDA in fp16 and amp
#      (every CUDA path of the trainers: fp16 weights, GradScaler, autocast);
#   3. the release-checkpoint and trainer tests (they run on the CPU wherever they are).
# Usage: bash benchmarks/device_check.sh [OUT_DIR]   (writes OUT_DIR/device_check.txt)
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
out=${1:-${OUT:-/tmp/device_check}}
mkdir -p "$out"
log="$out/device_check.txt"
python -m pip install -q -r requirements.txt -r requirements-dev.txt >/dev/null 2>&1
{
  nvidia-smi --query-gpu=name,memory.total --format=csv
  python benchmarks/bench_step.py --size vit_b16 --device cuda --prec fp16 amp fp32 \
      --methods CoOp SEP --batch 32 --eval-batch 500 --classes 100 --repeats 5 2>&1 | tail -8
  for prec in fp16 amp; do
    OUTPUT="$out/runs_$prec" bash scripts/sep/base2new_train.sh demo 1 USE_CUDA True \
        TRAINER.SEP.PREC "$prec" 2>&1 | grep -E "accuracy|Error|error" | tail -3
    OUTPUT="$out/runs_$prec" bash scripts/sep/base2new_test.sh demo 1 USE_CUDA True \
        TRAINER.SEP.PREC "$prec" 2>&1 | grep -E "accuracy|Error|error" | tail -3
    OUTPUT="$out/runs_$prec" bash scripts/coop/base2new_train.sh demo 1 USE_CUDA True \
        TRAINER.COOP.PREC "$prec" 2>&1 | grep -E "accuracy|Error|error" | tail -3
    python parse_test_res.py "$out/runs_$prec" 2>&1 | head -8
  done
  python -m pytest -q -p no:cacheprovider tests/trainers 2>&1 | tail -2
} 2>&1 | tee "$log"
