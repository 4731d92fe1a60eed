"""launch/realsense.launch.py: with realsense2_camera installed it includes its rs_launch.py
with 640x480 at 30 Hz, aligned depth and the namespace asked for (checked here against a
stand-in rs_launch.py that logs what it is given; a D435 is not on these machines); without
it, it stops with a line saying what to install."""

import os
import subprocess
import textwrap
from pathlib import Path

WORKSPACE = Path(__file__).resolve().parents[3]
LAUNCH = WORKSPACE / "launch" / "realsense.launch.py"
STAND_IN = textwrap.dedent('''
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, LogInfo
    from launch.substitutions import LaunchConfiguration

    NAMES = ("camera_namespace", "camera_name", "rgb_camera.color_profile",
             "depth_module.depth_profile", "align_depth.enable", "rgb_camera.color_format")

    def generate_launch_description():
        return LaunchDescription(
            [DeclareLaunchArgument(n, default_value="unset") for n in NAMES]
            + [LogInfo(msg=["rs_launch ", n, "=", LaunchConfiguration(n)]) for n in NAMES])
''')


def _launch(env, *args):
    return subprocess.run(["ros2", "launch", str(LAUNCH), *args], capture_output=True,
                          text=True, timeout=120, env=env, check=False)


def test_it_includes_realsense2_camera_with_the_profile_alignment_and_namespace(tmp_path):
    prefix = tmp_path / "prefix"
    share = prefix / "share" / "realsense2_camera"
    (share / "launch").mkdir(parents=True)
    (share / "launch" / "rs_launch.py").write_text(STAND_IN)
    marker = prefix / "share" / "ament_index" / "resource_index" / "packages"
    marker.mkdir(parents=True)
    (marker / "realsense2_camera").write_text("")
    env = dict(os.environ, AMENT_PREFIX_PATH=f"{prefix}:{os.environ['AMENT_PREFIX_PATH']}")
    result = _launch(env, "camera_namespace:=overhead_cam")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for expected in ("camera_namespace=overhead_cam", "camera_name=camera",
                     "rgb_camera.color_profile=640x480x30",
                     "depth_module.depth_profile=640x480x30", "align_depth.enable=true",
                     "rgb_camera.color_format=RGB8"):
        assert f"rs_launch {expected}" in out, out


def test_without_realsense2_camera_it_says_what_to_install():
    result = _launch(dict(os.environ))
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "realsense2_camera is not installed" in out, out
