"""GraspQ's robot on Gazebo Harmonic: gz sim on the generated world, the robot spawned from
its Gazebo URDF, ros_gz_bridge and the driver node ``gazebo_robot``.

    ros2 launch launch/gazebo.launch.py                      # then servo or training on it:
    ros2 launch launch/servo.launch.py backend:=gazebo policy:=runs/r7/policy.onnx

Runs ros_gz_sim's ``gz_sim.launch.py`` with ``-r`` on ``worlds/graspq_table.sdf``
(``headless:=true`` adds ``-s``, server only), ``ros_gz_sim create`` with
``urdf/graspq_baxter_gazebo.urdf``, ros_gz_bridge's ``parameter_bridge`` with
``worlds/graspq_table_bridge.yaml`` and the world's create/remove/set_pose/control services,
and ``gazebo_robot`` on Gazebo's clock. The world, URDF and bridge are written by
``graspq gazebo`` from ``env_config``'s scene: pass the same file here. ``fake:=true`` runs
``fake_gazebo`` (a stand-in for Gazebo and the bridge, graspq_gazebo; its ``/clock`` is the
wall clock) instead, for machines without Gazebo.
"""

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, IncludeLaunchDescription, OpaqueFunction
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from graspq_bringup import share as bringup_share

WORLD = "graspq"
ROBOT = "graspq_baxter"
SERVICES = (f"/world/{WORLD}/create@ros_gz_interfaces/srv/SpawnEntity",
            f"/world/{WORLD}/remove@ros_gz_interfaces/srv/DeleteEntity",
            f"/world/{WORLD}/set_pose@ros_gz_interfaces/srv/SetEntityPose",
            f"/world/{WORLD}/control@ros_gz_interfaces/srv/ControlWorld")


def share(relative: str) -> str:
    return bringup_share(__file__, relative)


def _package_share(name: str) -> str:
    try:
        return get_package_share_directory(name)
    except PackageNotFoundError:
        raise RuntimeError(f"{name} is not installed: apt install ros-jazzy-ros-gz (Gazebo "
                           "Harmonic and ros_gz; docker/ has an image), or run with "
                           "fake:=true") from None


def _nodes(context, *args, **kwargs):
    arg = {name: LaunchConfiguration(name).perform(context) for name in (
        "world", "bridge", "robot", "env_config", "headless", "fake")}
    if arg["fake"].lower() == "true":  # the stand-in serves the bridge's side and /clock
        simulator = [Node(package="graspq_gazebo", executable="fake_gazebo",
                          name="fake_gazebo", output="screen",
                          parameters=[{"env_config": arg["env_config"]}])]
    else:
        gz_sim = _package_share("ros_gz_sim")
        _package_share("ros_gz_bridge")
        server = "-s " if arg["headless"].lower() == "true" else ""
        simulator = [
            IncludeLaunchDescription(
                PythonLaunchDescriptionSource(f"{gz_sim}/launch/gz_sim.launch.py"),
                launch_arguments={"gz_args": f"-r {server}{arg['world']}"}.items()),
            Node(package="ros_gz_sim", executable="create", name="spawn_robot",
                 output="screen",
                 arguments=["-world", WORLD, "-file", arg["robot"], "-name", ROBOT]),
            Node(package="ros_gz_bridge", executable="parameter_bridge", name="gz_bridge",
                 output="screen", arguments=list(SERVICES),
                 parameters=[{"config_file": arg["bridge"], "use_sim_time": True}]),
        ]
    driver = Node(package="graspq_gazebo", executable="gazebo_robot", name="gazebo_robot",
                  output="screen",
                  parameters=[{"env_config": arg["env_config"], "world": WORLD,
                               "use_sim_time": True}])
    return [*simulator, driver]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("world", default_value=share("worlds/graspq_table.sdf")),
        DeclareLaunchArgument("bridge", default_value=share("worlds/graspq_table_bridge.yaml"),
                              description="ros_gz_bridge topics (YAML)"),
        DeclareLaunchArgument("robot", default_value=share("urdf/graspq_baxter_gazebo.urdf"),
                              description="the robot Gazebo spawns"),
        DeclareLaunchArgument("env_config", default_value=share("config/env.yaml"),
                              description="the scene the world was generated from"),
        DeclareLaunchArgument("headless", default_value="false",
                              description="Gazebo server only, no GUI"),
        DeclareLaunchArgument("fake", default_value="false",
                              description="fake_gazebo instead of Gazebo and the bridge"),
        OpaqueFunction(function=_nodes),
    ])
