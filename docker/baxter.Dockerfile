# GraspQ Baxter image: ROS 1 Noetic with Baxter's messages (baxter_core_msgs), ROS 2 Jazzy,
# ros1_bridge built from source against both and against graspq_baxter_msgs (the mirrored
# messages, paired by its mapping_rules.yaml), and this workspace; it runs
# `ros2 launch launch/baxter.launch.py`: the ros1_bridge parameter bridge and the
# graspq_baxter driver bridge, talking to the Baxter's ROS 1 master (ROS_MASTER_URI).
# Build from the repository root (the bridge's compile needs about 1 GB of memory per job;
# BRIDGE_JOBS sets how many, default 4):
#     docker build -f docker/baxter.Dockerfile -t graspq-baxter:jazzy-noetic .
# Not built on the machines GraspQ is developed on (they reach no container registry);
# tools/lint_docker.sh lints it. docker/README.md says what is and is not verified.
#
# Why this way: Noetic is released for Ubuntu 20.04 only and Jazzy for 24.04 only, and no
# binary ros1_bridge exists for Jazzy. One of the two must be rebuilt for the other's
# Ubuntu. Noetic's side is the smaller one (the bridge needs roscpp, rosmsg, rosparam,
# roslaunch, actionlib and the message generators), so the image is Ubuntu 24.04 with
# Jazzy from packages.ros.org and Noetic from the community Launchpad archive
# ppa:ros-for-jammy/noble (Noetic rebuilt for 24.04, amd64 only), the approach of the
# community ros-jazzy-ros1-bridge-builder. The bridge source is the ros1_bridge fork that
# builder uses (smith-doug/ros1_bridge, branch action_bridge_humble, pinned below): upstream
# ros1_bridge has no Jazzy branch, and the fork builds against Humble-era rclcpp_action, the
# API Jazzy kept. Stages:
#   base       Jazzy + Noetic from apt, the pinned numpy and the numpy-2 message underlay
#   ros1-msgs  baxter_core_msgs in a catkin workspace, ROS 1 only (/opt/ros1_ws)
#   bridge     graspq_baxter_msgs, then ros1_bridge with ROS 1 and ROS 2 sourced
#              (/opt/bridge_ws), as ros1_bridge's README orders it
#   runtime    base + the two installs + the pinned Python stack + this workspace (/ws)

FROM ros:jazzy-ros-base-noble AS base
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ARG DEBIAN_FRONTEND=noninteractive

# Not version-pinned: packages.ros.org and the PPA keep only the newest build of each
# package, so an exact pin breaks at the next sync; the base image's tag fixes the rest.
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends software-properties-common \
    && add-apt-repository -y ppa:ros-for-jammy/noble \
    && apt-get update && apt-get install -y --no-install-recommends \
        ros-noetic-ros-base ros-noetic-sensor-msgs ros-noetic-geometry-msgs \
        ros-jazzy-rmw-cyclonedds-cpp ros-jazzy-robot-state-publisher ros-jazzy-control-msgs \
        python3-pip git pkg-config libboost-dev \
        libegl1 libgl1 libopengl0 libegl-mesa0 libgl1-mesa-dri \
    && rm -rf /var/lib/apt/lists/*

# The same numpy-2 underlay as docker/sim.Dockerfile (keep the two in step): the pinned
# numpy first, then the message packages the stack uses rebuilt against it. ros1_bridge is
# built on top of it too, so the bridge and the Python nodes load the same message
# libraries.
WORKDIR /tmp/reqs
COPY requirements.txt ./
RUN pip install --break-system-packages --ignore-installed --no-cache-dir \
        "$(grep -E '^numpy==' requirements.txt)"
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


FROM base AS ros1-msgs
# (SHELL is inherited from base; repeated so each stage reads, and lints, on its own.)
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# Only baxter_core_msgs of baxter_common (tag v1.2.0, its last release); its other packages
# are descriptions and need xacro. ROS 1 alone is sourced here.
ARG BAXTER_COMMON_REF=v1.2.0
WORKDIR /opt/ros1_ws/src
RUN git clone --depth 1 -b "${BAXTER_COMMON_REF}" \
        https://github.com/RethinkRobotics/baxter_common.git /tmp/baxter_common \
    && mv /tmp/baxter_common/baxter_core_msgs . \
    && rm -rf /tmp/baxter_common
WORKDIR /opt/ros1_ws
RUN . /opt/ros/noetic/setup.bash \
    && catkin_make_isolated --install --install-space /opt/ros1_ws/install \
        -DCMAKE_BUILD_TYPE=Release \
    && rm -rf build_isolated devel_isolated


FROM base AS bridge
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# g++-11: the community builder found Noetic's headers and the bridge's generated code
# build with it on 24.04 (whose default is g++-13).
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends g++-11 gcc-11 \
    && rm -rf /var/lib/apt/lists/*
COPY --from=ros1-msgs /opt/ros1_ws/install /opt/ros1_ws/install
COPY src/graspq_baxter_msgs /opt/bridge_ws/src/graspq_baxter_msgs
ARG ROS1_BRIDGE_REPO=https://github.com/smith-doug/ros1_bridge.git
ARG ROS1_BRIDGE_COMMIT=8f1b7e903e1fb4462218db659bb4981228c12206
WORKDIR /opt/bridge_ws/src/ros1_bridge
RUN git init -q . && git remote add origin "${ROS1_BRIDGE_REPO}" \
    && git fetch -q --depth 1 origin "${ROS1_BRIDGE_COMMIT}" \
    && git checkout -q FETCH_HEAD && rm -rf .git
WORKDIR /opt/bridge_ws
# 1. The ROS 2 messages, with ROS 2 alone sourced (ros1_bridge's README: ROS 1 paths must
#    not overlay ROS 2 packages).
RUN . /opt/ros/jazzy/setup.bash && . /opt/underlay/install/setup.bash \
    && colcon build --packages-select graspq_baxter_msgs --cmake-args -DBUILD_TESTING=OFF
# 2. The bridge: ROS 1 (Noetic, then baxter_core_msgs) first, ROS 2 and its overlays after.
#    It generates conversions for every message pair it finds on both sides, among them
#    baxter_core_msgs <-> graspq_baxter_msgs through the mapping rules. ROS_DISTRO=humble
#    picks the fork's rclcpp_action callback signature that Humble and Jazzy share.
ARG BRIDGE_JOBS=4
RUN . /opt/ros/noetic/setup.bash && . /opt/ros1_ws/install/setup.bash \
    && . /opt/ros/jazzy/setup.bash && . /opt/underlay/install/setup.bash \
    && . /opt/bridge_ws/install/local_setup.bash \
    && ROS_DISTRO=humble MAKEFLAGS="-j${BRIDGE_JOBS}" colcon build \
        --packages-select ros1_bridge --cmake-force-configure \
        --event-handlers console_cohesion- \
        --cmake-args -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
        -DCMAKE_C_COMPILER=gcc-11 -DCMAKE_CXX_COMPILER=g++-11 \
    && . /opt/bridge_ws/install/local_setup.bash \
    && ros2 run ros1_bridge dynamic_bridge --print-pairs | tee /opt/bridge_ws/pairs.txt \
    && grep -q "graspq_baxter_msgs/msg/JointCommand' (ROS 2) <=> 'baxter_core_msgs/JointCommand" \
        /opt/bridge_ws/pairs.txt \
    && rm -rf build log


FROM base AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
# No g++-11 here: 24.04's libstdc++ is newer than g++-11's and runs what it built.
COPY --from=ros1-msgs /opt/ros1_ws/install /opt/ros1_ws/install
COPY --from=bridge /opt/bridge_ws/install /opt/bridge_ws/install
COPY --from=bridge /opt/bridge_ws/pairs.txt /opt/bridge_ws/pairs.txt

# The pinned Python stack: graspq_baxter imports the core (graspq.drivers, graspq.sim).
# torch from the CPU index (the bridge computes no gradients; the CUDA build is GBs).
WORKDIR /ws
COPY requirements.txt ./
RUN pip install --break-system-packages --ignore-installed --no-cache-dir \
        --extra-index-url https://download.pytorch.org/whl/cpu -r requirements.txt

# The workspace on top of the bridge's (graspq_baxter_msgs is taken from there, so the
# bridge and the nodes share one build of it).
COPY . .
RUN . /opt/ros/jazzy/setup.bash && . /opt/underlay/install/setup.bash \
    && . /opt/bridge_ws/install/local_setup.bash \
    && colcon build --symlink-install --packages-skip graspq_baxter_msgs \
        --cmake-args -DBUILD_TESTING=OFF \
    && rm -rf log

COPY docker/entrypoint.sh /usr/local/bin/graspq-entrypoint
ENV MUJOCO_GL=egl \
    RMW_IMPLEMENTATION=rmw_cyclonedds_cpp \
    CYCLONEDDS_URI=file:///ws/config/cyclonedds.xml \
    ROS_MASTER_URI=http://baxter.local:11311
ENTRYPOINT ["/usr/local/bin/graspq-entrypoint"]
CMD ["ros2", "launch", "launch/baxter.launch.py"]
