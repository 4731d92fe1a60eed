#!/usr/bin/env bash
# Lint and test the workspace: ruff over the repo, then pytest over src/ (pytest.ini).
# Extra arguments go to pytest, e.g. `tools/test.sh -m "not slow"`. Both always run; the
# exit status is pytest's if it failed, else ruff's. pytest's 5 (no tests collected)
# stays a failure: this repo has tests, so collecting none means something broke.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bootstrap.sh

export MUJOCO_GL="${MUJOCO_GL:-egl}"
lint_rc=0
.venv/bin/ruff check . || lint_rc=$?
test_rc=0
.venv/bin/python -m pytest src -q -ra "$@" || test_rc=$?

if ((test_rc == 5)); then
    echo "test.sh: pytest collected no tests (exit 5); treating that as a failure" >&2
fi
if ((lint_rc != 0)); then
    echo "test.sh: ruff found problems (exit $lint_rc)" >&2
fi
if ((test_rc != 0)); then
    exit "$test_rc"
fi
exit "$lint_rc"
