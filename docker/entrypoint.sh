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
# An empty ROS_IP or ROS_HOSTNAME (compose passes them through unset as empty) would be
# taken by ROS 1 as the address itself; unset, ROS 1 falls back to the hostname.
for var in ROS_IP ROS_HOSTNAME; do
    if [[ -z ${!var-} ]]; then
        unset "$var"
    fi
done
exec "$@"
