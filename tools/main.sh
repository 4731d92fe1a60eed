#!/usr/bin/env bash
# The main job: train a grasping policy on the embedded MuJoCo scene, then evaluate it,
# export it to ONNX and plot its learning curves. Resumable: run it again after an
# interruption (or Ctrl-C, which checkpoints) and it continues where it stopped.
# Extra arguments go to `graspq train`, e.g. `tools/main.sh --episodes 500 --seed 1`.
# Where the time went: $run/main_times.tsv (each step) and $run/timing.json (training's phases).
set -euo pipefail
cd "$(dirname "$0")/.."
started=$EPOCHREALTIME
source tools/bootstrap.sh

export MUJOCO_GL="${MUJOCO_GL:-egl}"
run="${GRASPQ_RUN:-runs/main}"
resume=()
[[ -f "$run/checkpoints/latest.json" ]] && resume=(--resume)
mkdir -p "$run"
times="$run/main_times.tsv"
timed() {  # timed STEP COMMAND...: run it, then append "STEP<TAB>seconds" to $times
    local name=$1 t0=$EPOCHREALTIME
    shift
    "$@"
    printf '%s\t%.1f\n' "$name" "$(awk "BEGIN {print $EPOCHREALTIME - $t0}")" >> "$times"
}
printf 'bootstrap\t%.1f\n' "$(awk "BEGIN {print $EPOCHREALTIME - $started}")" >> "$times"
# Alone on the machine, the run takes both cores: two torch threads (the config's one thread
# suits two runs side by side), two processes for the demonstrations (the config's). The
# config's precision (auto) trains in bf16 where the CPU runs it natively.
timed train .venv/bin/graspq train --config config/training_demos.yaml --out "$run" \
    "${resume[@]}" --set torch_threads=2 "$@"
timed eval .venv/bin/graspq eval --checkpoint "$run" --episodes 90
timed export .venv/bin/graspq export --checkpoint "$run" --out "$run/policy.onnx"
timed plot .venv/bin/graspq plot "$run" --out "$run/figures"
echo "main: run directory $run (policy.onnx, figures/, train.csv, eval.csv, tensorboard/)"
echo "main: seconds per step (this invocation last):"
cat "$times"
.venv/bin/python - "$run" <<'PY'
import sys

from graspq.learning.timing import read_sessions

for session in read_sessions(sys.argv[1])[-1:]:
    phases = ", ".join(f"{name} {value:.0f} s" for name, value in session["phases_s"].items())
    print(f"main: training's last session: {phases}; total {session['total_s']:.0f} s "
          f"({session['precision']}, {session['torch_threads']} threads)")
PY
