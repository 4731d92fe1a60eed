#!/usr/bin/env bash
# Build and test the ROS 2 packages of the workspace against ROS 2 Jazzy at /opt/ros/jazzy:
# colcon build, colcon test and colcon test-result, on a build base of their own (.ros_ws/)
# so a developer's build/ install/ log/ are left alone. Run by tools/test.sh after the core
# suite; on its own: `tools/ros_test.sh [extra colcon test args]`.
#
# colcon runs from the project's .venv (its Python builds the nodes' entry points, so they
# import graspq, torch and onnxruntime); rclpy and the messages come from /opt/ros/jazzy on
# PYTHONPATH (same Python ABI). The ament_cmake interface package is generated with the
# Python that ROS itself was built with. Each test picks a ROS_DOMAIN_ID of its own and
# keeps discovery on this host.
set -euo pipefail
cd "$(dirname "$0")/.."
ROS_SETUP=/opt/ros/jazzy/setup.bash
if [[ ! -f $ROS_SETUP ]]; then
    echo "ROS 2 tests skipped: no ROS 2 Jazzy at /opt/ros/jazzy"
    exit 0
fi
source tools/bootstrap.sh

venv=.venv
stamp="$venv/.graspq-ros-reqs.sha256"
sum="$(sha256sum requirements-ros.txt | cut -d' ' -f1)"
if [[ ! -f $stamp || $(<"$stamp") != "$sum" ]]; then
    echo "ros_test: installing requirements-ros.txt into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -r requirements-ros.txt
    echo "$sum" >"$stamp"
fi

set +u  # setup.bash reads unset variables
# shellcheck disable=SC1090
source "$ROS_SETUP"
set -u
export PATH="$PWD/$venv/bin:$PATH"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST
ros_python="$(head -1 "$(command -v ros2)" | sed 's/^#!//')"

base=.ros_ws
packages=(graspq_interfaces graspq_mujoco graspq_servo graspq_training graspq_bringup graspq_gazebo graspq_baxter_msgs graspq_baxter)
colcon --log-base "$base/log" build --build-base "$base/build" --install-base "$base/install" \
    --symlink-install --packages-up-to "${packages[@]}" --event-handlers console_cohesion- \
    --cmake-args "-DPython3_EXECUTABLE=$ros_python" -DBUILD_TESTING=OFF
set +u
# shellcheck disable=SC1091
source "$base/install/setup.bash"
set -u
test_rc=0
# One package at a time: the loop tests measure timing, which two suites side by side on
# two cores would distort.
colcon --log-base "$base/log" test --build-base "$base/build" --install-base "$base/install" \
    --executor sequential --packages-select "${packages[@]}" --event-handlers console_direct+ \
    "$@" || test_rc=$?
colcon --log-base "$base/log" test-result --test-result-base "$base/build" --verbose \
    || test_rc=$?
exit "$test_rc"
