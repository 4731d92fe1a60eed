#!/usr/bin/env bash
# Held-out object shapes (issue #22, part 4): the scripted oracle on every held-out type, and a
# trained run's greedy policy on every held-out type and on the three training types.
#
# Usage: tools/heldout_report.sh RUN [EPISODES] [OUT] [ORACLE_OUT]
#   RUN       a training run directory or checkpoint (graspq eval --checkpoint), or "-" to
#             measure the oracle alone
#   EPISODES  episodes per type (default 200); seeds 0.. for the oracle (graspq sim), 2000000..
#             for the policy (graspq eval's default evaluation seeds)
#   OUT       where each measurement's JSON goes (default: RUN/heldout, or runs/heldout_oracle)
#   ORACLE_OUT  where the oracle's JSONs are read, or measured into where missing (default:
#             OUT); point it at an earlier OUT to report a new policy beside the same oracle
#             rows without measuring them again (the oracle does not depend on RUN)
#
# One process at a time (2-core machines). A type whose JSON already exists is not measured
# again: rerun to resume, delete OUT to start over. The Markdown table of docs/results_heldout.md
# goes to stdout; progress to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
export MUJOCO_GL="${MUJOCO_GL:-egl}"
RUN="${1:?usage: tools/heldout_report.sh RUN [EPISODES] [OUT]}"
EPISODES="${2:-200}"
if [[ "$RUN" == "-" ]]; then OUT="${3:-runs/heldout_oracle}"; else OUT="${3:-$RUN/heldout}"; fi
ORACLE_OUT="${4:-$OUT}"
GRASPQ=.venv/bin/graspq
PY=.venv/bin/python
TYPES=$($PY -c 'from graspq.sim.settings import HELDOUT_OBJECT_TYPES as t; print(*t)')
TRAINING=$($PY -c 'from graspq.sim.settings import TRAINING_OBJECT_TYPES as t; print(*t)')
mkdir -p "$OUT" "$ORACLE_OUT"

measure() {  # measure FILE COMMAND...: run COMMAND (one JSON object on stdout) into FILE
  local file="$1"; shift
  if [[ -s "$file" ]]; then return; fi
  echo "$*" >&2
  "$@" > "$file.tmp"
  mv "$file.tmp" "$file"
}

for type in $TYPES; do
  measure "$ORACLE_OUT/oracle_$type.json" $GRASPQ sim --policy oracle --object "$type" \
    --episodes "$EPISODES" --seed 0 --json
done
if [[ "$RUN" != "-" ]]; then
  for type in $TYPES $TRAINING; do
    measure "$OUT/policy_$type.json" $GRASPQ eval --checkpoint "$RUN" --object "$type" \
      --episodes "$EPISODES" --seed 2000000 --json
  done
fi

$PY - "$OUT" "$ORACLE_OUT" "$RUN" $TYPES -- $TRAINING <<'PY'
import json, sys
from pathlib import Path
out, oracle_out, run, *rest = sys.argv[1:]
split = rest.index("--")
heldout, training = rest[:split], rest[split + 1:]

def cell(path: Path) -> str:
    if not path.exists():
        return "not measured"
    report = json.loads(path.read_text())
    outcomes = report["outcomes"]
    detail = ", ".join(f"{outcomes[k]} {k}" for k in ("partial", "miss", "timeout")
                       if outcomes.get(k))
    return (f"{report['success_rate']:.1%} of {report['episodes']}"
            + (f" ({detail})" if detail else ""))

print("| object | held out | oracle | policy (" + run + ") | best reward-only policy |")
print("|---|---|---|---|---|")
for kind in heldout + training:
    oracle = cell(Path(oracle_out) / f"oracle_{kind}.json") if kind in heldout else "docs/oracle.md"
    print(f"| {kind} | {'yes' if kind in heldout else 'no (training)'} | {oracle} | "
          f"{cell(Path(out) / f'policy_{kind}.json') if run != '-' else 'not measured'} | "
          "pending |")
PY
