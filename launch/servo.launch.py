"""The closed grasp loop on the MuJoCo robot: robot node, robot_state_publisher and the servo
lifecycle node.

    ros2 launch launch/servo.launch.py policy:=runs/r7/policy.onnx            # then:
    ros2 lifecycle set /graspq_servo configure && ros2 lifecycle set /graspq_servo activate
    ros2 action send_goal /graspq_servo/grasp graspq_interfaces/action/Grasp '{}'

``autostart:=true`` emits configure, then activate once configure has succeeded. The robot
runs on simulated time (``/clock``), which every node uses. Works from a checkout (paths
relative to this file) and from an installed workspace (share/graspq_bringup).
"""

import yaml
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from graspq_bringup import share as bringup_share


def share(relative: str) -> str:
    return bringup_share(__file__, relative)


def reward_parameters(env_config: str) -> dict:
    """The env file's reward terms as the servo node's rewards.* parameters."""
    with open(env_config) as handle:
        rewards = yaml.safe_load(handle)["graspq_env"]["ros__parameters"]["rewards"]
    return {f"rewards.{key}": float(value) for key, value in rewards.items()}


def _nodes(context, *args, **kwargs):
    arg = {name: LaunchConfiguration(name).perform(context) for name in (
        "policy", "autostart", "env_config", "servo_config", "use_sim_time",
        "real_time_factor", "depth_encoding", "log_dir", "seed", "backend")}
    if arg["backend"] != "mujoco":
        raise ValueError(f"backend:={arg['backend']}: only 'mujoco' is built so far")
    sim_time = arg["use_sim_time"].lower() == "true"
    robot = Node(
        package="graspq_mujoco", executable="robot_node", name="mujoco_robot", output="screen",
        parameters=[{"env_config": arg["env_config"], "servo_config": arg["servo_config"],
                     "depth_encoding": arg["depth_encoding"], "seed": int(arg["seed"]),
                     "real_time_factor": float(arg["real_time_factor"]),
                     "publish_clock": True}])
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
            "judge_service": "/mujoco_robot/judge_grasp", "log_dir": arg["log_dir"],
            "use_sim_time": sim_time, **reward_parameters(arg["env_config"])}])
    actions = [robot, state_publisher, servo]
    if arg["autostart"].lower() == "true":
        actions += [
            RegisterEventHandler(OnStateTransition(
                target_lifecycle_node=servo, start_state="configuring", goal_state="inactive",
                entities=[EmitEvent(event=ChangeState(
                    lifecycle_node_matcher=matches_action(servo),
                    transition_id=Transition.TRANSITION_ACTIVATE))])),
            EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(servo),
                                        transition_id=Transition.TRANSITION_CONFIGURE)),
        ]
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
                              description="the robot: mujoco (the others are not built yet)"),
        OpaqueFunction(function=_nodes),
    ])
