"""An Intel RealSense D435 as GraspQ's overhead RGB-D camera.

    ros2 launch launch/realsense.launch.py                 # beside servo/training launches
    ros2 launch launch/servo.launch.py ... (servo node: native_input:=true)

Includes realsense2_camera's ``rs_launch.py`` with colour and depth at 640x480 and 30 Hz,
depth aligned to colour, in the namespace ``camera_namespace`` (default ``camera``), and
remaps its topics onto GraspQ's overhead interface (docs/ros_interface.md):
``color/image_raw`` and ``color/camera_info`` -> ``overhead/color/...``,
``aligned_depth_to_color/image_raw`` and ``.../camera_info`` ->
``overhead/aligned_depth_to_color/...``. The camera sends ``rgb8`` and ``16UC1``
millimetres (0 = no depth); the servo node with ``native_input`` crops the trained view
using this camera's CameraInfo, resizes it and converts the depth. realsense2_camera
publishes without a deadline, so run the servo node with ``qos.deadline_periods:=0``; for
640x480 at 30 Hz use ``CYCLONEDDS_URI=file://$PWD/config/cyclonedds.xml``
(docs/performance.md).
"""

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory
from launch import LaunchDescription
from launch.actions import (
    DeclareLaunchArgument,
    GroupAction,
    IncludeLaunchDescription,
    OpaqueFunction,
)
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import SetRemap

PROFILE = "640x480x30"  # WIDTHxHEIGHTxFPS, colour and depth
STREAMS = ("color/image_raw", "color/camera_info", "aligned_depth_to_color/image_raw",
           "aligned_depth_to_color/camera_info")


def _camera(context, *args, **kwargs):
    try:
        share = get_package_share_directory("realsense2_camera")
    except PackageNotFoundError:
        raise RuntimeError("realsense2_camera is not installed: apt install "
                           "ros-jazzy-realsense2-camera (or build realsense-ros)") from None
    namespace = LaunchConfiguration("camera_namespace").perform(context)
    name = LaunchConfiguration("camera_name").perform(context)
    remaps = [SetRemap(src=f"/{namespace}/{name}/{stream}", dst=f"/overhead/{stream}")
              for stream in STREAMS]
    camera = IncludeLaunchDescription(
        PythonLaunchDescriptionSource(f"{share}/launch/rs_launch.py"),
        launch_arguments={
            "camera_namespace": namespace, "camera_name": name,
            "serial_no": LaunchConfiguration("serial_no").perform(context),
            "enable_color": "true", "enable_depth": "true",
            "rgb_camera.color_profile": PROFILE, "depth_module.depth_profile": PROFILE,
            "rgb_camera.color_format": "RGB8", "align_depth.enable": "true",
            "enable_sync": "true", "pointcloud.enable": "false",
        }.items())
    return [GroupAction([*remaps, camera])]


def generate_launch_description() -> LaunchDescription:
    return LaunchDescription([
        DeclareLaunchArgument("camera_namespace", default_value="camera"),
        DeclareLaunchArgument("camera_name", default_value="camera"),
        DeclareLaunchArgument("serial_no", default_value="''",
                              description="the camera's serial number ('' = the first)"),
        OpaqueFunction(function=_camera),
    ])
