"""launch/baxter.launch.py and config/baxter_ros1_bridge.yaml: the launch description loads
with its arguments; ``fake:=true autostart:=true`` brings baxter_bridge up to active against
fake_baxter (event-gated: the bridge's lifecycle state, not a sleep); without ros1_bridge it
stops with a line saying what to install; and the parameter_bridge YAML carries exactly the
Baxter topics (type and direction) and services that the bridge node uses."""

import importlib.util
import os
import subprocess
from pathlib import Path

import rclpy
import yaml
from lifecycle_msgs.srv import GetState
from rclpy.node import Node

from graspq_baxter.bridge_node import BAXTER_SERVICES, BAXTER_TOPICS
from graspq_servo.test_support import start_launch, stop_launch, wait_for

WORKSPACE = Path(__file__).resolve().parents[3]
LAUNCH = WORKSPACE / "launch" / "baxter.launch.py"
BRIDGE_YAML = WORKSPACE / "config" / "baxter_ros1_bridge.yaml"


def _ros2_type(msg_type):
    module = msg_type.__module__.split(".")
    return f"{module[0]}/{module[1]}/{msg_type.__name__}"


def test_the_parameter_bridge_yaml_carries_what_the_bridge_node_uses():
    config = yaml.safe_load(BRIDGE_YAML.read_text())
    topics = {t["topic"]: (t["type"], t["direction"]) for t in config["topics"]}
    assert len(topics) == len(config["topics"])  # no topic twice
    assert topics == {topic: (_ros2_type(msg_type), direction)
                      for topic, msg_type, direction in BAXTER_TOPICS.values()}
    assert all(t.get("reliable") is True for t in config["topics"])  # the node's QoS
    services = {s["service"]: s["type"] for s in config["services_1_to_2"]}
    assert services == {name: _ros2_type(srv) for name, srv in BAXTER_SERVICES.values()}
    assert "services_2_to_1" not in config


def test_the_launch_description_loads_with_its_arguments():
    spec = importlib.util.spec_from_file_location("baxter_launch", LAUNCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    names = {argument.name for argument in description.get_launch_arguments()}
    assert names == set(module.ARGUMENTS)


def test_without_ros1_bridge_it_says_what_to_install():
    result = subprocess.run(["ros2", "launch", str(LAUNCH)], capture_output=True, text=True,
                            timeout=120, check=False, env=dict(os.environ))
    out = result.stdout + result.stderr
    assert result.returncode != 0
    assert "ros1_bridge is not installed" in out, out


def test_fake_and_autostart_bring_the_bridge_up_to_active(tmp_path):
    process = start_launch([str(LAUNCH), "fake:=true", "autostart:=true"],
                           tmp_path / "launch.log")
    rclpy.init()
    node = Node("baxter_launch_test")
    try:
        client = node.create_client(GetState, "/baxter_bridge/get_state")
        assert client.wait_for_service(timeout_sec=60.0), (tmp_path / "launch.log").read_text()

        def active():
            future = client.call_async(GetState.Request())
            rclpy.spin_until_future_complete(node, future, timeout_sec=2.0)
            return future.done() and future.result().current_state.label == "active"

        assert wait_for(active, 30.0, period_s=0.2), (tmp_path / "launch.log").read_text()
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
        stop_launch(process)
    log = (tmp_path / "launch.log").read_text()
    assert "active: the arm follows" in log, log


def test_the_servo_launch_on_the_baxter_backend_brings_bridge_and_servo_up(trained_policy,
                                                                          tmp_path):
    """Only the launch argument changes: ``servo.launch.py backend:=baxter`` (fake_baxter
    here, no RealSense on these machines) brings the driver bridge and the servo node to
    active, the servo with the settings a real robot needs."""
    policy, env_file = trained_policy
    log = tmp_path / "servo.log"
    process = start_launch([str(WORKSPACE / "launch" / "servo.launch.py"),
                            f"policy:={policy}", f"env_config:={env_file}",
                            "backend:=baxter", "baxter_fake:=true", "realsense:=false",
                            "autostart:=true", f"log_dir:={tmp_path / 'episodes'}"], log)
    try:
        for node in ("/baxter_bridge", "/graspq_servo"):
            assert wait_for(lambda n=node: _ros2("lifecycle", "get", n).startswith("active"),
                            90.0, period_s=1.0), log.read_text()
        for name, value in (("native_input", "True"), ("qos.deadline_periods", "0.0"),
                            ("use_sim_time", "False")):
            out = _ros2("param", "get", "/graspq_servo", name)
            assert value in out, (name, out)
    finally:
        stop_launch(process)


def _ros2(*args):
    result = subprocess.run(["ros2", *args], capture_output=True, text=True, timeout=60,
                            check=False)
    return result.stdout + result.stderr
