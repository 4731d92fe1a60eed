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
# Alone on the machine, the run takes both cores: two torch threads (the config's one thread
# suits two runs side by side), two processes for the demonstrations (the config's).
.venv/bin/graspq train --config config/training_demos.yaml --out "$run" "${resume[@]}" \
    --set torch_threads=2 "$@"
.venv/bin/graspq eval --checkpoint "$run" --episodes 90
.venv/bin/graspq export --checkpoint "$run" --out "$run/policy.onnx"
.venv/bin/graspq plot "$run" --out "$run/figures"
echo "main: run directory $run (policy.onnx, figures/, train.csv, eval.csv, tensorboard/)"
