#!/usr/bin/env bash
# Lint and test the workspace: ruff over the repo, pytest over the core (src/graspq), then
# the ROS 2 packages with colcon (tools/ros_test.sh; it says so and skips where ROS 2 Jazzy
# is not installed). Extra arguments go to the core's pytest, e.g. `tools/test.sh -m "not
# slow"`. All always run; the exit status is the first failure's (pytest, colcon, ruff).
# pytest's 5 (no tests collected) stays a failure: collecting none means something broke.
set -euo pipefail
cd "$(dirname "$0")/.."
source tools/bootstrap.sh

export MUJOCO_GL="${MUJOCO_GL:-egl}"
lint_rc=0
.venv/bin/ruff check . || lint_rc=$?
tools/lint_docker.sh || lint_rc=$?  # hadolint + compose schema over docker/ (docker/README.md)
test_rc=0
.venv/bin/python -m pytest src/graspq -q -ra "$@" || test_rc=$?
ros_rc=0
tools/ros_test.sh || ros_rc=$?

if ((test_rc == 5)); then
    echo "test.sh: pytest collected no tests (exit 5); treating that as a failure" >&2
fi
if ((lint_rc != 0)); then
    echo "test.sh: ruff found problems (exit $lint_rc)" >&2
fi
if ((ros_rc != 0)); then
    echo "test.sh: the ROS 2 packages' build or tests failed (exit $ros_rc)" >&2
fi
if ((test_rc != 0)); then
    exit "$test_rc"
fi
if ((ros_rc != 0)); then
    exit "$ros_rc"
fi
exit "$lint_rc"
