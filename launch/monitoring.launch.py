"""rviz2 with graspq.rviz: the robot model, TF, the three camera images, the servo node's
colourised depth, its target and grasp-probability markers and its status.

    ros2 launch launch/monitoring.launch.py      # beside servo.launch.py
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from graspq_bringup import share as bringup_share


def share(relative: str) -> str:
    return bringup_share(__file__, relative)


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("use_sim_time", default_value="true"),
        Node(package="rviz2", executable="rviz2", name="rviz2", output="screen",
             arguments=["-d", share("rviz/graspq.rviz")],
             parameters=[{"use_sim_time": LaunchConfiguration("use_sim_time")}]),
    ])
