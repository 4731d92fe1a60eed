"""The closed grasp loop: a robot, robot_state_publisher and the servo lifecycle node.

    ros2 launch launch/servo.launch.py policy:=runs/r7/policy.onnx            # then:
    ros2 lifecycle set /graspq_servo configure && ros2 lifecycle set /graspq_servo activate
    ros2 action send_goal /graspq_servo/grasp graspq_interfaces/action/Grasp '{}'

``backend`` picks the robot; the servo node is the same on each: ``mujoco`` (default) the
MuJoCo robot node, ``gazebo`` launch/gazebo.launch.py (Gazebo Harmonic, or its stand-in
with ``gazebo_fake:=true``), ``baxter`` launch/baxter.launch.py (ros1_bridge and the Baxter
driver bridge; ``baxter_fake:=true`` for fake_baxter) with launch/realsense.launch.py as
the overhead camera (``realsense:=false`` to leave it out). ``robot:=false`` leaves the
robot side to another launch or container. ``autostart:=true`` emits configure, then
activate once configure has succeeded (on Baxter, the driver bridge's too). Simulated robots
run on simulated time (``/clock``), which every node then uses; Baxter runs on wall time.
Works from a checkout (paths relative to this file) and from an installed workspace
(share/graspq_bringup).
"""

import yaml
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    OpaqueFunction,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node

from graspq_bringup import autostart
from graspq_bringup import share as bringup_share

BACKENDS = ("mujoco", "gazebo", "baxter")


def share(relative: str) -> str:
    return bringup_share(__file__, relative)


def reward_parameters(env_config: str) -> dict:
    """The env file's reward terms as the servo node's rewards.* parameters."""
    with open(env_config) as handle:
        rewards = yaml.safe_load(handle)["graspq_env"]["ros__parameters"]["rewards"]
    return {f"rewards.{key}": float(value) for key, value in rewards.items()}


def _include(launch_file: str, arguments: dict) -> IncludeLaunchDescription:
    return IncludeLaunchDescription(PythonLaunchDescriptionSource(share(launch_file)),
                                    launch_arguments=arguments.items())


def _robot(arg: dict) -> tuple[list, dict, bool]:
    """The backend's robot: its launch actions (none with ``robot:=false``: it runs
    elsewhere), the servo parameters it needs, and whether the nodes run on simulated time."""
    sim_time = arg["use_sim_time"].lower() == "true"
    here = arg["robot"].lower() == "true"
    if arg["backend"] == "mujoco":
        robot = Node(
            package="graspq_mujoco", executable="robot_node", name="mujoco_robot",
            output="screen",
            parameters=[{"env_config": arg["env_config"], "servo_config": arg["servo_config"],
                         "depth_encoding": arg["depth_encoding"], "seed": int(arg["seed"]),
                         "real_time_factor": float(arg["real_time_factor"]),
                         "publish_clock": True}])
        return [robot] if here else [], {"judge_service": "/mujoco_robot/judge_grasp"}, \
            sim_time
    if arg["backend"] == "gazebo":
        gazebo = _include("launch/gazebo.launch.py", {
            "env_config": arg["env_config"], "fake": arg["gazebo_fake"],
            "headless": arg["headless"]})
        # ros_gz_bridge's publishers offer no deadline: the servo asks for none.
        return [gazebo] if here else [], {"judge_service": "/gazebo_robot/judge_grasp",
                                          "qos.deadline_periods": 0.0}, sim_time
    if arg["backend"] == "baxter":
        actions = [_include("launch/baxter.launch.py", {
            "fake": arg["baxter_fake"], "autostart": arg["autostart"]})] if here else []
        if arg["realsense"].lower() == "true":
            actions.append(_include("launch/realsense.launch.py", {}))
        # A real robot: wall time, no judge (held = not fully closed after the lift), the
        # cameras' own frames (RealSense 640x480, hand camera 320x200) cropped by the servo,
        # publishers (ros1_bridge, realsense2_camera) that offer no deadline.
        return actions, {"judge_service": "", "native_input": True,
                         "qos.deadline_periods": 0.0}, False
    raise ValueError(f"backend:={arg['backend']}: one of {', '.join(BACKENDS)}")


def _nodes(context, *args, **kwargs):
    arg = {name: LaunchConfiguration(name).perform(context) for name in (
        "policy", "autostart", "env_config", "servo_config", "use_sim_time",
        "real_time_factor", "depth_encoding", "log_dir", "seed", "backend", "robot",
        "gazebo_fake", "headless", "baxter_fake", "realsense")}
    robot, servo_overrides, sim_time = _robot(arg)
    with open(share("urdf/graspq_baxter.urdf")) as handle:
        description = handle.read()
    state_publisher = Node(
        package="robot_state_publisher", executable="robot_state_publisher",
        name="robot_state_publisher", output="screen",
        parameters=[{"robot_description": description, "use_sim_time": sim_time}])
    servo = LifecycleNode(
        package="graspq_servo", executable="servo_node", name="graspq_servo", namespace="",
        output="screen",
        parameters=[arg["servo_config"], {
            "policy": arg["policy"], "env_config": arg["env_config"],
            "log_dir": arg["log_dir"], "use_sim_time": sim_time,
            **reward_parameters(arg["env_config"]), **servo_overrides}])
    actions = [*robot, state_publisher, servo]
    if arg["autostart"].lower() == "true":
        actions += autostart(servo)
    return actions


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("policy", description="ONNX policy file from `graspq export`"),
        DeclareLaunchArgument("autostart", default_value="false",
                              description="configure and activate the servo node at once"),
        DeclareLaunchArgument("env_config", default_value=share("config/env.yaml")),
        DeclareLaunchArgument("servo_config", default_value=share("config/servo.yaml")),
        DeclareLaunchArgument("use_sim_time", default_value="true"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0",
                              description="simulated seconds per wall second"),
        DeclareLaunchArgument("depth_encoding", default_value="32FC1",
                              description="32FC1 (m) or 16UC1 (mm, as a RealSense)"),
        DeclareLaunchArgument("log_dir", default_value="graspq_episodes",
                              description="MCAP episode logs"),
        DeclareLaunchArgument("seed", default_value="0"),
        DeclareLaunchArgument("backend", default_value="mujoco",
                              description="the robot: " + " | ".join(BACKENDS)),
        DeclareLaunchArgument("robot", default_value="true",
                              description="start the backend's robot side here (false: it "
                              "runs elsewhere, e.g. the Baxter bridge's container)"),
        DeclareLaunchArgument("gazebo_fake", default_value="false",
                              description="backend gazebo: fake_gazebo instead of Gazebo"),
        DeclareLaunchArgument("headless", default_value="false",
                              description="backend gazebo: no Gazebo GUI"),
        DeclareLaunchArgument("baxter_fake", default_value="false",
                              description="backend baxter: fake_baxter instead of a Baxter"),
        DeclareLaunchArgument("realsense", default_value="true",
                              description="backend baxter: the RealSense D435 overhead "
                              "(launch/realsense.launch.py)"),
        OpaqueFunction(function=_nodes),
    ])
