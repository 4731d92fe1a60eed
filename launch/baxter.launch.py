"""GraspQ's robot on a Baxter: ros1_bridge to the Baxter SDK (ROS 1) and the ``baxter_bridge``
lifecycle node that serves the robot interface (docs/ros_interface.md) over it.

    ros2 launch launch/baxter.launch.py autostart:=true          # a Baxter on ROS_MASTER_URI
    ros2 launch launch/baxter.launch.py fake:=true autostart:=true   # fake_baxter, no ROS 1
    ros2 launch launch/servo.launch.py backend:=baxter ...       # the servo on top

- ``ros1_bridge`` (default true): loads ``bridge_config`` (config/baxter_ros1_bridge.yaml,
  the Baxter topics and services the node uses) into the ROS 1 parameter server with
  ``rosparam load`` and runs ros1_bridge's ``parameter_bridge``; both need ROS 1 and a
  ros1_bridge built with graspq_baxter_msgs sourced (docker/ builds one). False where the
  bridge runs elsewhere (its own container).
- ``fake`` (default false): runs ``fake_baxter`` (graspq_baxter) on Baxter's topic names
  instead of a robot; ros1_bridge is then not started.
- ``autostart`` (default false): configures, then activates ``baxter_bridge`` once
  configured (activation enables the robot and calibrates the gripper: the arm can move).
  Otherwise ``ros2 lifecycle set /baxter_bridge configure`` / ``activate`` by hand.
- ``bridge_parameters``: a ROS parameter file for ``baxter_bridge`` ('' = its defaults).

The servo node on this backend needs ``native_input:=true`` (the hand camera's frames are
320x200) and ``qos.deadline_periods:=0`` (the bridge's publishers offer no deadline).
"""

import shutil

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    ExecuteProcess,
    OpaqueFunction,
)
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from graspq_bringup import autostart
from graspq_bringup import share as bringup_share

ARGUMENTS = ("ros1_bridge", "bridge_config", "fake", "autostart", "bridge_parameters")


def share(relative: str) -> str:
    return bringup_share(__file__, relative)


def _ros1_bridge(config: str) -> list:
    try:
        get_package_share_directory("ros1_bridge")
    except PackageNotFoundError:
        raise RuntimeError("ros1_bridge is not installed: build it with ROS 1 and "
                           "graspq_baxter_msgs sourced (docker/ has an image), or run with "
                           "ros1_bridge:=false (bridge elsewhere) or fake:=true") from None
    if shutil.which("rosparam") is None:
        raise RuntimeError("rosparam not found: source ROS 1 (the bridge's parameters go to "
                           "Baxter's ROS master)")
    return [ExecuteProcess(
        name="ros1_bridge", output="screen",
        cmd=["bash", "-c", f"rosparam load '{config}' && exec ros2 run ros1_bridge "
                           "parameter_bridge"])]


def _nodes(context, *args, **kwargs):
    arg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    fake = arg["fake"].lower() == "true"
    actions = []
    if fake:
        actions.append(Node(package="graspq_baxter", executable="fake_baxter",
                            name="fake_baxter", output="screen"))
    elif arg["ros1_bridge"].lower() == "true":
        actions += _ros1_bridge(arg["bridge_config"])
    bridge = LifecycleNode(
        package="graspq_baxter", executable="baxter_bridge", name="baxter_bridge",
        namespace="", output="screen",
        parameters=[arg["bridge_parameters"]] if arg["bridge_parameters"] else [])
    actions.append(bridge)
    if arg["autostart"].lower() == "true":
        actions += autostart(bridge)
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("ros1_bridge", default_value="true",
                              description="start ros1_bridge's parameter_bridge here"),
        DeclareLaunchArgument("bridge_config",
                              default_value=share("config/baxter_ros1_bridge.yaml"),
                              description="parameter_bridge topics and services (YAML)"),
        DeclareLaunchArgument("fake", default_value="false",
                              description="fake_baxter instead of a Baxter (no ROS 1)"),
        DeclareLaunchArgument("autostart", default_value="false",
                              description="configure and activate baxter_bridge at once"),
        DeclareLaunchArgument("bridge_parameters", default_value="",
                              description="ROS parameter file for baxter_bridge"),
        OpaqueFunction(function=_nodes),
    ])
