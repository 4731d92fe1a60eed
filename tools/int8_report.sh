#!/usr/bin/env bash
# Issue #25: does the int8 policy grasp as well as the float32 one? Exports a trained run's
# policy as float32 and int8 ONNX (the int8 file only if it picks the float32 action on 99 % of
# 2,000 recorded observations), scores both in the scene on the same episodes (graspq eval's
# seeds, objects cycling) and prints success per object side by side. Target: int8 within
# 2 points of float32 over 300 episodes.
#   tools/int8_report.sh RUN_DIR [EPISODES]        (EPISODES: 300)
# Writes RUN_DIR/policy.onnx, RUN_DIR/policy.int8.onnx and RUN_DIR/int8_report/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-egl}"
run=${1:?usage: tools/int8_report.sh RUN_DIR [EPISODES]}
episodes=${2:-300}
out="$run/int8_report"
mkdir -p "$out"
# Exit status 3: the int8 copy was refused (the agreement figure is on stderr).
.venv/bin/graspq export --checkpoint "$run" --out "$run/policy.onnx" --quantize int8 --json \
    > "$out/export.json"
.venv/bin/graspq eval --policy "$run/policy.onnx" --episodes "$episodes" --json \
    > "$out/eval_float32.json"
.venv/bin/graspq eval --policy "$run/policy.int8.onnx" --episodes "$episodes" --json \
    > "$out/eval_int8.json"
.venv/bin/python - "$out" <<'PY'
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])
export = json.loads((out / "export.json").read_text())["int8"]
fp32, int8 = (json.loads((out / f"eval_{p}.json").read_text()) for p in ("float32", "int8"))
print(f"int8 agreement with float32: {export['agreement']:.2%} of "
      f"{export['agreement_observations']} recorded observations")
print(f"{fp32['episodes']} episodes each, seeds {fp32['seed']}.., revisit window "
      f"{fp32['revisit_window']}")
print(f"{'object':<10}{'float32':>9}{'int8':>9}{'diff (pts)':>12}")
rows = [(kind, fp32["per_object"][kind]["success_rate"],
         int8["per_object"][kind]["success_rate"]) for kind in sorted(fp32["per_object"])]
rows.append(("all", fp32["success_rate"], int8["success_rate"]))
for kind, a, b in rows:
    print(f"{kind:<10}{a:>9.1%}{b:>9.1%}{100 * (b - a):>+12.1f}")
gap = 100 * (int8["success_rate"] - fp32["success_rate"])
print(f"target (int8 within 2 points of float32): {'met' if abs(gap) <= 2 else 'NOT met'}")
PY
