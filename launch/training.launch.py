"""Train a grasping policy with the training node.

    ros2 launch launch/training.launch.py config:=config/training_demos.yaml \
        learner:=ddqn views:=multi episodes:=1000 out:=runs/r7

Ctrl-C finishes the episode in progress, checkpoints and exits; ``resume:=true`` continues.
At the end the run holds ``policy.onnx``. The trainer runs the MuJoCo scene in process
(``backend:=mujoco``, the only backend built so far).
"""

from pathlib import Path

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

HERE = Path(__file__).resolve().parent.parent


def share(relative: str) -> str:
    for candidate in (HERE / relative, HERE / "src" / "graspq_bringup" / relative):
        if candidate.exists():
            return str(candidate)
    raise FileNotFoundError(f"{relative} not found under {HERE}")


def _node(context, *args, **kwargs):
    arg = {name: LaunchConfiguration(name).perform(context) for name in (
        "config", "env_config", "learner", "views", "episodes", "seed", "out", "resume",
        "backend")}
    return [Node(
        package="graspq_training", executable="training_node", name="graspq_training",
        output="screen", sigterm_timeout="600",
        parameters=[{"config": arg["config"], "env_config": arg["env_config"],
                     "learner": arg["learner"], "views": arg["views"],
                     "episodes": int(arg["episodes"]), "seed": int(arg["seed"]),
                     "out": arg["out"], "resume": arg["resume"].lower() == "true",
                     "backend": arg["backend"]}])]


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
        DeclareLaunchArgument("backend", default_value="mujoco"),
        OpaqueFunction(function=_node),
    ])
