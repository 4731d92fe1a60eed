# GraspQ simulation image: ROS 2 Jazzy, Gazebo Harmonic with ros_gz, the pinned Python stack
# and this workspace built by colcon in /ws. Build from the repository root:
#     docker build -f docker/sim.Dockerfile -t graspq-sim:jazzy .
# or `docker compose -f docker/compose.yaml build`. Not built on the machines GraspQ is
# developed on (they reach no container registry); tools/lint_docker.sh lints it.
# docker/README.md says what is and is not verified.
FROM ros:jazzy-ros-base-noble

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive

# ros-jazzy-ros-gz brings Gazebo Harmonic (as Jazzy's gz_*_vendor packages, gz-sim 8 and
# sdformat 14, from packages.ros.org: no OSRF repository needed) and ros_gz_bridge/_sim; robot-state-publisher and control-msgs the servo launch;
# rmw-cyclonedds-cpp the middleware the stack is tested with (config/cyclonedds.xml); the
# EGL/Mesa libraries let MuJoCo render headless (software llvmpipe without a GPU);
# liburdfdom-tools gives check_urdf; realsense2-camera the D435 overhead camera on the real
# robot (launch/realsense.launch.py; pass the camera in with --device or /dev/bus/usb).
# Not version-pinned: packages.ros.org keeps only the newest build of each package, so an
# exact pin breaks at the next sync; the base image's tag fixes the distribution instead.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends \
        ros-jazzy-ros-gz ros-jazzy-robot-state-publisher ros-jazzy-control-msgs \
        ros-jazzy-rmw-cyclonedds-cpp ros-jazzy-rviz2 ros-jazzy-realsense2-camera \
        python3-pip git liburdfdom-tools \
        libegl1 libgl1 libopengl0 libegl-mesa0 libgl1-mesa-dri \
    && rm -rf /var/lib/apt/lists/*

# Requirements first, so editing sources does not redo the pip layer. The runtime pins
# (requirements.txt) and the servo node's OpenCV pin; not requirements-ros.txt as a whole:
# colcon comes from apt here, and its empy 4 pin would replace the empy 3 that Jazzy's
# rosidl generators need. torch from PyPI is the CUDA build: it uses a GPU when the
# container is given one (docker/compose.yaml, profile gpu) and the CPU otherwise.
# --ignore-installed: pip cannot uninstall Debian's python3-yaml/-numpy (no RECORD file);
# the pinned versions go to /usr/local and take precedence over them.
WORKDIR /ws
COPY requirements.txt requirements-ros.txt ./
RUN pip install --break-system-packages --ignore-installed --no-cache-dir \
        -r requirements.txt "$(grep -E '^opencv-python-headless==' requirements-ros.txt)"

# The pinned numpy is 2.x; the message packages from apt are compiled against Ubuntu's
# numpy 1.26, and their array fields fail to import under numpy 2. Rebuild the message
# packages the stack uses, from source (the jazzy branches), against the numpy now
# installed: an underlay at /opt/underlay between /opt/ros/jazzy and the workspace.
WORKDIR /opt/underlay/src
RUN for repo in ros2/common_interfaces ros2/rcl_interfaces ros2/geometry2 \
                ros-controls/control_msgs ros2/unique_identifier_msgs; do \
        git clone --depth 1 -b jazzy "https://github.com/${repo}.git"; \
    done
WORKDIR /opt/underlay
RUN . /opt/ros/jazzy/setup.bash \
    && colcon build --merge-install --event-handlers console_cohesion- \
        --packages-up-to sensor_msgs geometry_msgs trajectory_msgs diagnostic_msgs \
        visualization_msgs std_msgs tf2_msgs control_msgs lifecycle_msgs rcl_interfaces \
        action_msgs \
        --cmake-args -DBUILD_TESTING=OFF \
    && rm -rf build log

WORKDIR /ws
COPY . .
RUN . /opt/ros/jazzy/setup.bash && . /opt/underlay/install/setup.bash \
    && colcon build --symlink-install --cmake-args -DBUILD_TESTING=OFF \
    && rm -rf log

COPY docker/entrypoint.sh /usr/local/bin/graspq-entrypoint
ENV MUJOCO_GL=egl \
    RMW_IMPLEMENTATION=rmw_cyclonedds_cpp \
    CYCLONEDDS_URI=file:///ws/config/cyclonedds.xml
ENTRYPOINT ["/usr/local/bin/graspq-entrypoint"]
CMD ["bash"]
