#!/bin/bash
# Smoke run of every setting through the real sweep runner, offline, on 2 CPU cores (~10 min):
#   - base-to-new on the embedded demo (committed demo CLIP), 5 trainers x 2 seeds;
#   - base-to-new, cross-dataset (miniature ImageNet -> DTD, EuroSAT, ImageNet-A, ImageNet-R) and
#     few-shot (1 and 2 shots) on miniature trees of the benchmarks with the tests' tiny CLIP;
#   - every sweep run a second time (everything is skipped), then all four tables.
# usage: bash scripts/smoke.sh [WORKDIR]   (default /tmp/sep_smoke)
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${1:-/tmp/sep_smoke}"
mkdir -p "$work"
export DATA="$work/data" OUTPUT="$work/output"
cd "$repo"
python -m tests.dataset_trees eurosat "$DATA" >/dev/null
python -m tests.dataset_trees dtd "$DATA" >/dev/null
python -m tests.dataset_trees imagenet "$DATA" >/dev/null
python -m tests.dataset_trees imagenet_a "$DATA" >/dev/null
python -m tests.dataset_trees imagenet_r "$DATA" >/dev/null
python -c "from tests.tiny_clip import save_tiny_clip; save_tiny_clip('$work/tiny.pt')"
tiny=(MODEL.BACKBONE.NAME "$work/tiny.pt" INPUT.SIZE "(32, 32)" OPTIM.MAX_EPOCH 1
      DATALOADER.NUM_WORKERS 0)
trainers=(ZeroshotCLIP CoOp CoCoOp KgCoOp SEP)

sweeps() {
  python scripts/sweep.py base2new --trainers "${trainers[@]}" --datasets demo --seeds 1 2 --jobs 2
  python scripts/sweep.py base2new --trainers "${trainers[@]}" --datasets eurosat dtd \
      --seeds 1 2 --jobs 2 -- "${tiny[@]}"
  python scripts/sweep.py xd --trainers "${trainers[@]}" --seeds 1 2 --jobs 2 \
      --datasets dtd eurosat imagenet_a imagenet_r -- "${tiny[@]}"
  python scripts/sweep.py fewshot --trainers CoOp CoCoOp KgCoOp SEP --datasets eurosat dtd \
      --shots 1 2 --seeds 1 2 --jobs 2 -- "${tiny[@]}"
}
time sweeps
echo "=== again: every job must be skipped ==="
time sweeps | grep -E "^\[|Sweep"
python parse_test_res.py "$OUTPUT"
