#!/usr/bin/env bash
# The main job: train a grasping policy on the embedded MuJoCo scene, then evaluate it,
# export it to ONNX and plot its learning curves. Resumable: run it again after an
# interruption (or Ctrl-C, which checkpoints) and it continues where it stopped.
# Extra arguments go to `graspq train`, e.g. `tools/main.sh --episodes 500 --seed 1`.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bootstrap.sh

export MUJOCO_GL="${MUJOCO_GL:-egl}"
run="${GRASPQ_RUN:-runs/main}"
resume=()
[[ -f "$run/checkpoints/latest.json" ]] && resume=(--resume)
.venv/bin/graspq train --config config/training_demos.yaml --out "$run" "${resume[@]}" "$@"
.venv/bin/graspq eval --checkpoint "$run" --episodes 90
.venv/bin/graspq export --checkpoint "$run" --out "$run/policy.onnx"
.venv/bin/graspq plot "$run" --out "$run/figures"
echo "main: run directory $run (policy.onnx, figures/, train.csv, eval.csv, tensorboard/)"
