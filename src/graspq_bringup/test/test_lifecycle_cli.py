"""The servo node driven from the command line, as the README tells a user to:
``ros2 launch launch/servo.launch.py policy:=... autostart:=false``, then ``ros2 lifecycle
set ... configure / activate``, ``ros2 param set`` (a bad value refused with its reason),
``ros2 action send_goal`` for one grasp, and ``ros2 lifecycle set ... deactivate``."""

import re
import subprocess
from pathlib import Path

import pytest

from graspq_servo.test_support import (
    isolate_ros_graph,
    start_launch,
    stop_launch,
    tiny_policy,
    wait_for,
)

WORKSPACE = Path(__file__).resolve().parents[3]


def ros2(*args, timeout=60):
    result = subprocess.run(["ros2", *args], capture_output=True, text=True, timeout=timeout,
                            check=False)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def launched(tmp_path_factory):
    isolate_ros_graph()
    directory = tmp_path_factory.mktemp("lifecycle_cli")
    policy, env_file = tiny_policy(directory / "policy")
    process = start_launch(
        [str(WORKSPACE / "launch" / "servo.launch.py"), f"policy:={policy}",
         f"env_config:={env_file}", f"log_dir:={directory / 'episodes'}"],
        directory / "launch.log")
    try:
        assert wait_for(lambda: ros2("lifecycle", "get", "/graspq_servo", timeout=30)[1]
                        .startswith("unconfigured"), 90.0, period_s=1.0), (
            (directory / "launch.log").read_text())
        yield directory
    finally:
        stop_launch(process)


def test_a_user_configures_activates_grasps_and_deactivates_from_the_cli(launched):
    code, out = ros2("lifecycle", "set", "/graspq_servo", "configure")
    assert code == 0 and "Transitioning successful" in out, out
    assert ros2("lifecycle", "get", "/graspq_servo")[1].startswith("inactive")
    code, out = ros2("param", "set", "/graspq_servo", "servo.slop_s", "5.0")
    assert "Setting parameter failed" in out, out
    assert "slop_s" in out
    code, out = ros2("param", "get", "/graspq_servo", "servo.slop_s")
    assert "0.025" in out, out
    code, out = ros2("param", "set", "/graspq_servo", "rewards.step", "-0.05")
    assert "Set parameter successful" in out, out
    code, out = ros2("lifecycle", "set", "/graspq_servo", "activate")
    assert code == 0 and "Transitioning successful" in out, out
    code, out = ros2("service", "call", "/mujoco_robot/reset_episode",
                     "graspq_interfaces/srv/ResetEpisode", "{seed: 3, object_type: cube}")
    assert "success=True" in out, out
    code, out = ros2("action", "send_goal", "/graspq_servo/grasp",
                     "graspq_interfaces/action/Grasp", "{}", timeout=120)
    assert "Goal finished with status: SUCCEEDED" in out, out
    assert re.search(r"outcome[:=] ?'?(success|partial|miss|timeout)", out), out
    code, out = ros2("lifecycle", "set", "/graspq_servo", "deactivate")
    assert code == 0 and "Transitioning successful" in out, out
    episodes = list((launched / "episodes").glob("*.mcap"))
    assert len(episodes) == 1
