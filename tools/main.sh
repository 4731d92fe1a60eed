#!/usr/bin/env bash
# The main job on the embedded MuJoCo scene (no ROS): for now the scripted-oracle demo,
# writing runs/demo/oracle.mp4; training replaces it once it lands. Extra arguments go
# to `graspq sim`. Paths are relative to the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bootstrap.sh

export MUJOCO_GL="${MUJOCO_GL:-egl}"  # headless rendering; set osmesa or glfw to override
mkdir -p runs/demo
exec .venv/bin/graspq sim --policy oracle --episodes 30 --seed 0 \
    --video runs/demo/oracle.mp4 "$@"
