"""Train a grasping policy with the training node.

    ros2 launch launch/training.launch.py config:=config/training_demos.yaml \
        learner:=ddqn views:=multi episodes:=1000 out:=runs/r7

Ctrl-C finishes the episode in progress, checkpoints and exits; ``resume:=true`` continues.
At the end the run holds ``policy.onnx``. ``backend:=mujoco`` (default) trains on the MuJoCo
scene in process; ``backend:=ros`` starts the MuJoCo robot node and trains through its ROS
topics, as on any robot that speaks docs/ros_interface.md (reward-only recipes: a robot has
no oracle).
"""

from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    IncludeLaunchDescription,
    OpaqueFunction,
    Shutdown,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from graspq_bringup import share as bringup_share


def share(relative: str) -> str:
    return bringup_share(__file__, relative)


def _node(context, *args, **kwargs):
    arg = {name: LaunchConfiguration(name).perform(context) for name in (
        "config", "env_config", "servo_config", "learner", "views", "episodes", "seed",
        "out", "resume", "backend", "real_time_factor", "gazebo_fake", "headless")}
    if arg["backend"] == "baxter":
        # Training needs episodes that restart by themselves (an object placed, the scene
        # reset): a simulator's reset_episode. A Baxter has none, and learning from scratch
        # on the arm moves it at random. The paper trains in simulation and runs there.
        raise ValueError("backend:=baxter trains on no real robot: train with backend:=mujoco, "
                         "ros or gazebo, then run the policy on Baxter with "
                         "servo.launch.py backend:=baxter")
    if arg["backend"] not in ("mujoco", "ros", "gazebo"):
        raise ValueError(f"backend:={arg['backend']}: one of mujoco, ros, gazebo")
    robot, through_ros = [], {}
    if arg["backend"] == "gazebo":
        robot = [IncludeLaunchDescription(
            PythonLaunchDescriptionSource(share("launch/gazebo.launch.py")),
            launch_arguments={"env_config": arg["env_config"], "fake": arg["gazebo_fake"],
                              "headless": arg["headless"]}.items())]
        # ros_gz_bridge's publishers offer no deadline: the servo asks for none.
        through_ros = {"reset_service": "/gazebo_robot/reset_episode",
                       "judge_service": "/gazebo_robot/judge_grasp", "deadline_periods": 0.0}
    if arg["backend"] == "ros":  # the robot: the MuJoCo robot node, on simulated time
        robot = [Node(
            package="graspq_mujoco", executable="robot_node", name="mujoco_robot",
            output="screen",
            parameters=[{"env_config": arg["env_config"], "servo_config": arg["servo_config"],
                         "real_time_factor": float(arg["real_time_factor"]),
                         "seed": max(0, int(arg["seed"]))}])]
    return robot + [Node(
        package="graspq_training", executable="training_node", name="graspq_training",
        output="screen", sigterm_timeout="600",
        parameters=[{"config": arg["config"], "env_config": arg["env_config"],
                     "learner": arg["learner"], "views": arg["views"],
                     "episodes": int(arg["episodes"]), "seed": int(arg["seed"]),
                     "out": arg["out"], "resume": arg["resume"].lower() == "true",
                     "backend": "mujoco" if arg["backend"] == "mujoco" else "ros",
                     "servo_config": arg["servo_config"], **through_ros}],
        # Training ends the launch (the robot node stops with it).
        on_exit=Shutdown())]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("config", default_value=share("config/training_demos.yaml"),
                              description="training config (config/training*.yaml)"),
        DeclareLaunchArgument("env_config", default_value=share("config/env.yaml")),
        DeclareLaunchArgument("learner", default_value="",
                              description="qlearning | dqn | ddqn ('' = the config's)"),
        DeclareLaunchArgument("views", default_value="",
                              description="multi | single ('' = the config's)"),
        DeclareLaunchArgument("episodes", default_value="-1",
                              description="-1 = the config's"),
        DeclareLaunchArgument("seed", default_value="-1", description="-1 = the config's"),
        DeclareLaunchArgument("out", default_value="",
                              description="run directory ('' = runs/<learner>-<views>-s<seed>)"),
        DeclareLaunchArgument("resume", default_value="false"),
        DeclareLaunchArgument("servo_config", default_value=share("config/servo.yaml"),
                              description="backend ros: the servo loop and robot devices"),
        DeclareLaunchArgument("backend", default_value="mujoco",
                              description="mujoco: in-process scene; ros: the MuJoCo robot "
                              "node over ROS topics; gazebo: Gazebo Harmonic over ROS topics"),
        DeclareLaunchArgument("gazebo_fake", default_value="false",
                              description="backend gazebo: fake_gazebo instead of Gazebo"),
        DeclareLaunchArgument("headless", default_value="false",
                              description="backend gazebo: no Gazebo GUI"),
        DeclareLaunchArgument("real_time_factor", default_value="1.0",
                              description="backend ros: the robot's simulated s per wall s"),
        OpaqueFunction(function=_node),
    ])
