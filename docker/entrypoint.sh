#!/usr/bin/env bash
# Entry point of both GraspQ images (docker/sim.Dockerfile, docker/baxter.Dockerfile):
# source every ROS environment the image has, then run the command. ROS 1 comes first and
# ROS 2 after it, the order ros1_bridge's README gives for a shell that runs the bridge;
# the Baxter image has all six, the simulation image the last three.
for setup in /opt/ros/noetic/setup.bash \
    /opt/ros1_ws/install/setup.bash \
    /opt/ros/jazzy/setup.bash \
    /opt/underlay/install/setup.bash \
    /opt/bridge_ws/install/local_setup.bash \
    /ws/install/setup.bash; do
    if [[ -f $setup ]]; then
        # shellcheck disable=SC1090
        source "$setup"
    fi
done
exec "$@"
