"""launch/gazebo.launch.py and ``backend:=gazebo`` as a user runs them. With ros_gz
installed it starts gz sim on the generated world, spawns the Gazebo URDF and bridges the
YAML and the world's services (checked against stand-ins of ros_gz_sim and ros_gz_bridge
that log what they are given: no Gazebo on these machines); without ros_gz it says what to
install; and the servo launch with ``backend:=gazebo gazebo_fake:=true`` grasps through the
driver on fake_gazebo, only the launch argument changed."""

import os
import re
import stat
import subprocess
import textwrap
from pathlib import Path

import pytest

from graspq_servo.test_support import isolate_ros_graph, start_launch, stop_launch, wait_for

WORKSPACE = Path(__file__).resolve().parents[3]
GAZEBO = WORKSPACE / "launch" / "gazebo.launch.py"
SERVO = WORKSPACE / "launch" / "servo.launch.py"
GZ_SIM_STAND_IN = textwrap.dedent('''
    from launch import LaunchDescription
    from launch.actions import DeclareLaunchArgument, LogInfo
    from launch.substitutions import LaunchConfiguration

    def generate_launch_description():
        return LaunchDescription([
            DeclareLaunchArgument("gz_args", default_value="unset"),
            LogInfo(msg=["gz_sim gz_args=", LaunchConfiguration("gz_args")])])
''')
# An executable that logs its arguments and the parameter files it is given, then exits.
EXECUTABLE_STAND_IN = textwrap.dedent('''\
    #!/bin/sh
    echo "STAND-IN $0 $*"
    next=""
    for arg in "$@"; do
        [ "$next" = params ] && cat "$arg"
        next=""; [ "$arg" = --params-file ] && next=params
    done
''')

pytest.importorskip("ros_gz_interfaces", reason="ros_gz_interfaces (gazebosim/ros_gz) is not "
                    "built into this ROS 2 install")


def _stand_in_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    (prefix / "share" / "ros_gz_sim" / "launch").mkdir(parents=True)
    (prefix / "share" / "ros_gz_sim" / "launch" / "gz_sim.launch.py").write_text(
        GZ_SIM_STAND_IN)
    for package, executable in (("ros_gz_sim", "create"), ("ros_gz_bridge",
                                                            "parameter_bridge")):
        (index / package).write_text("")
        (prefix / "share" / package).mkdir(parents=True, exist_ok=True)
        (prefix / "share" / package / "package.xml").write_text(
            f"<package format='3'><name>{package}</name><version>0.0.0</version>"
            "<description>stand-in</description><maintainer email='a@b.c'>x</maintainer>"
            "<license>none</license></package>")
        lib = prefix / "lib" / package
        lib.mkdir(parents=True)
        (lib / executable).write_text(EXECUTABLE_STAND_IN)
        (lib / executable).chmod(stat.S_IRWXU)
    return prefix


def test_it_runs_gz_sim_on_the_world_spawns_the_robot_and_bridges_topics_and_services(
        tmp_path):
    isolate_ros_graph()
    prefix = _stand_in_prefix(tmp_path)
    env = dict(os.environ, AMENT_PREFIX_PATH=f"{prefix}:{os.environ['AMENT_PREFIX_PATH']}")
    log = tmp_path / "launch.log"
    with open(log, "w") as handle:
        process = subprocess.Popen(["ros2", "launch", str(GAZEBO), "headless:=true"],
                                   stdout=handle, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    try:
        assert wait_for(lambda: log.read_text().count("STAND-IN") >= 2
                        and "gz_sim gz_args=" in log.read_text(), 60.0, period_s=0.5), (
            log.read_text())
    finally:
        stop_launch(process)
    out = log.read_text()
    gz_args = re.search(r"gz_sim gz_args=(.*)", out).group(1).split()
    assert gz_args[:2] == ["-r", "-s"] and gz_args[2].endswith("graspq_table.sdf")
    assert Path(gz_args[2]).is_file()
    create = re.search(r"STAND-IN \S*/create (.*)", out).group(1).split()
    assert create[create.index("-world") + 1] == "graspq"
    assert create[create.index("-name") + 1] == "graspq_baxter"
    assert create[create.index("-file") + 1].endswith("graspq_baxter_gazebo.urdf")
    bridge = re.search(r"STAND-IN \S*/parameter_bridge (.*)", out).group(1)
    for service in ("create@ros_gz_interfaces/srv/SpawnEntity",
                    "remove@ros_gz_interfaces/srv/DeleteEntity",
                    "set_pose@ros_gz_interfaces/srv/SetEntityPose",
                    "control@ros_gz_interfaces/srv/ControlWorld"):
        assert f"/world/graspq/{service}" in bridge, bridge
    assert re.search(r"config_file: \S*graspq_table_bridge.yaml", out), out
    assert "use_sim_time: true" in out


def test_without_ros_gz_it_says_what_to_install(tmp_path):
    result = subprocess.run(["ros2", "launch", str(GAZEBO)], capture_output=True, text=True,
                            timeout=120, check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ros_gz_sim is not installed" in out and "fake:=true" in out, out


def ros2(*args, timeout=60):
    result = subprocess.run(["ros2", *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    return result.returncode, result.stdout + result.stderr


def test_the_servo_launch_grasps_through_the_gazebo_backend(trained_policy, tmp_path):
    isolate_ros_graph()
    policy, env_file = trained_policy
    log = tmp_path / "launch.log"
    process = start_launch([str(SERVO), f"policy:={policy}", f"env_config:={env_file}",
                            "backend:=gazebo", "gazebo_fake:=true", "autostart:=true",
                            f"log_dir:={tmp_path / 'episodes'}"], log)
    try:
        assert wait_for(lambda: ros2("lifecycle", "get", "/graspq_servo", timeout=30)[1]
                        .startswith("active"), 90.0, period_s=1.0), log.read_text()
        code, out = ros2("service", "call", "/gazebo_robot/reset_episode",
                         "graspq_interfaces/srv/ResetEpisode", "{seed: 5}")
        assert code == 0 and "success=True" in out, out
        code, out = ros2("action", "send_goal", "/graspq_servo/grasp",
                         "graspq_interfaces/action/Grasp", "{max_steps: 4}", timeout=120)
        assert code == 0 and "SUCCEEDED" in out, out + log.read_text()
        assert re.search(r"outcome: (success|partial|miss|timeout)", out), out
    finally:
        stop_launch(process)
    assert list((tmp_path / "episodes").glob("*.mcap"))
