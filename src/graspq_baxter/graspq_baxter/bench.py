"""``ros2 run graspq_baxter baxter_bench``: the fake Baxter loop, measured.

Starts ``fake_baxter``, ``baxter_bridge`` and the servo node (``graspq_servo``) as processes
of their own, activates the bridge and the servo over their lifecycle services, publishes
the overhead colour + aligned depth at 30 Hz (a rendered view of the scene at the policy's
size; the wrist frames are the fake hand camera's, through the bridge), runs ``--episodes``
Grasp goals one after another and reports:

- the servo's decision time (``ServoStatus.cycle_ms``: checks, policy, IK, clamps) and its
  policy inference time, p50 / p99 ms;
- the command latency: from the last overhead frame sent before a decision to the arrival
  of the trajectory it led to (as ``servo_bench``), p50 / p99 ms;
- the servo's holds (bad or stale input), by reason, and the bridge's faults and refused
  trajectories (target under steady input: none);
- JointCommands on ``/robot/limb/right/joint_command`` per second (the bridge re-sends the
  position command at ``command_rate_hz``, 100 by default), and the episodes' outcomes.
"""

from __future__ import annotations

import argparse
import bisect
import collections
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from ament_index_python.packages import get_package_prefix
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image
from trajectory_msgs.msg import JointTrajectory

from graspq.config import load_config
from graspq.servo.runtime import ServoRuntime
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig
from graspq_baxter_msgs.msg import JointCommand
from graspq_interfaces.action import Grasp
from graspq_interfaces.msg import ServoStatus

CAMERA_HZ = 30.0


class Driver(Node):
    """The overhead camera, the user who sends Grasp goals, and the recorder."""

    def __init__(self, frames: dict[str, Image]) -> None:
        super().__init__("baxter_bench_driver")
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.frames = {topic: msg for topic, msg in frames.items() if "overhead" in topic}
        self.images = {topic: self.create_publisher(Image, topic, qos) for topic in self.frames}
        self.lock = threading.Lock()
        self.sent: list[float] = []
        self.commands: list[tuple[float, float]] = []  # (arrival, decision stamp)
        self.joint_commands: list[float] = []
        self.decisions: dict[int, tuple[float, float]] = {}  # n -> (cycle, policy) ms
        self.status: ServoStatus | None = None
        self.bridge: dict[str, str] = {}
        self.bridge_faults: collections.Counter[str] = collections.Counter()
        self.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                 self._on_trajectory, 100)
        self.create_subscription(JointCommand, "/robot/limb/right/joint_command",
                                 self._on_joint_command, 100)
        self.create_subscription(ServoStatus, "/graspq_servo/status", self._on_status, 100)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.change = {name: self.create_client(ChangeState, f"/{name}/change_state")
                       for name in ("baxter_bridge", "graspq_servo")}
        self.grasp = ActionClient(self, Grasp, "/graspq_servo/grasp")
        self.create_timer(1.0 / CAMERA_HZ, self._publish)

    def _publish(self) -> None:
        now = self.get_clock().now()
        for topic, msg in self.frames.items():
            msg.header.stamp = now.to_msg()
            self.images[topic].publish(msg)
        with self.lock:
            self.sent.append(now.nanoseconds * 1e-9)

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        arrival = time.time()
        if len(msg.points) == 1 and msg.points[0].time_from_start.sec == 0:
            with self.lock:  # a decision's move (not the way home, not a lift)
                self.commands.append((arrival, msg.header.stamp.sec +
                                      msg.header.stamp.nanosec * 1e-9))

    def _on_joint_command(self, msg: JointCommand) -> None:
        with self.lock:
            self.joint_commands.append(time.monotonic())

    def _on_status(self, msg: ServoStatus) -> None:
        self.status = msg
        if msg.decisions and msg.decisions not in self.decisions and np.isfinite(msg.cycle_ms):
            self.decisions[msg.decisions] = (msg.cycle_ms, msg.policy_latency_ms)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if status.name.startswith("baxter_bridge"):
                self.bridge = {kv.key: kv.value for kv in status.values}
                for key in self.bridge:
                    if key not in ("active", "commands_sent", "trajectories_refused"):
                        self.bridge_faults[key] += 1

    def transition(self, node: str, transition: int, timeout_s: float = 30.0) -> None:
        client = self.change[node]
        if not client.wait_for_service(60.0):
            raise RuntimeError(f"{node} did not come up")
        future = client.call_async(ChangeState.Request(transition=Transition(id=transition)))
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not future.done() or not future.result().success:
            raise RuntimeError(f"{node}: lifecycle transition {transition} failed")

    def episode(self, max_steps: int, timeout_s: float = 120.0) -> str:
        future = self.grasp.send_goal_async(Grasp.Goal(max_steps=max_steps))
        deadline = time.monotonic() + timeout_s
        while not future.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        handle = future.result()
        if handle is None or not handle.accepted:
            return "refused"
        result = handle.get_result_async()
        while not result.done() and time.monotonic() < deadline:
            time.sleep(0.01)
        return result.result().result.outcome if result.done() else "no result"

    def latencies_ms(self) -> list[float]:
        with self.lock:
            sent, commands = sorted(self.sent), list(self.commands)
        out = []
        for arrival, decided in commands:
            i = bisect.bisect_right(sent, decided + 1e-6) - 1
            if i >= 0:
                out.append(1e3 * (arrival - sent[i]))
        return out


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 3) if values else None


def _executable(package: str, name: str) -> str:
    return str(Path(get_package_prefix(package)) / "lib" / package / name)


def run(policy: Path, env_path: Path | None, episodes: int, max_steps: int) -> dict[str, Any]:
    from graspq_servo.bench import scene_frames

    env_config = load_config(EnvConfig, env_path, ENV_NODE_NAME) if env_path else EnvConfig()
    home = ServoRuntime(env_config).home_joints()
    frames = scene_frames(env_config, native=False)
    logs = tempfile.mkdtemp(prefix="baxter_bench_")
    servo_args = [_executable("graspq_servo", "servo_node"), "--ros-args",
                  "-p", f"policy:={policy}", "-p", f"log_dir:={logs}",
                  "-p", "native_input:=true", "-p", "qos.deadline_periods:=0.0",
                  "-p", "home_duration_s:=0.5"]
    if env_path:
        servo_args += ["-p", f"env_config:={env_path}"]
    start = "[" + ",".join(f"{v:.6f}" for v in home) + "]"
    processes = [
        subprocess.Popen([_executable("graspq_baxter", "fake_baxter"), "--ros-args",
                          "-p", f"initial_positions:={start}", "-p", "object_width_m:=0.03"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen([_executable("graspq_baxter", "baxter_bridge")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
        subprocess.Popen(servo_args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    rclpy.init()
    driver = Driver(frames)
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(driver)
    threading.Thread(target=executor.spin, daemon=True).start()
    outcomes: collections.Counter[str] = collections.Counter()
    try:
        for node in ("baxter_bridge", "graspq_servo"):
            driver.transition(node, Transition.TRANSITION_CONFIGURE)
            driver.transition(node, Transition.TRANSITION_ACTIVATE)
        if not driver.grasp.wait_for_server(30.0):
            raise RuntimeError("no Grasp action server")
        time.sleep(1.0)  # discovery and the first frames
        with driver.lock:
            driver.sent.clear()
            driver.commands.clear()
            driver.joint_commands.clear()
        driver.decisions.clear()
        driver.bridge_faults.clear()
        first_status = driver.status
        wall_start = time.monotonic()
        for _ in range(episodes):
            outcomes[driver.episode(max_steps)] += 1
        wall = time.monotonic() - wall_start
        time.sleep(0.5)  # the last status and diagnostics
    finally:
        executor.shutdown()
        for process in reversed(processes):
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        driver.destroy_node()
        rclpy.try_shutdown()
    status = driver.status
    held_before = first_status.held_total if first_status is not None else 0
    cycles = [c for c, _ in driver.decisions.values()]
    policy_ms = [p for _, p in driver.decisions.values()]
    latency = driver.latencies_ms()
    with driver.lock:
        joint_commands = [t for t in driver.joint_commands
                          if wall_start <= t <= wall_start + wall]
    return {
        "episodes": episodes, "max_steps": max_steps, "seconds": round(wall, 1),
        "outcomes": dict(outcomes), "decisions": len(cycles),
        "decision_ms_p50": _percentile(cycles, 50), "decision_ms_p99": _percentile(cycles, 99),
        "policy_ms_p50": _percentile(policy_ms, 50), "policy_ms_p99": _percentile(policy_ms, 99),
        "command_latency_ms_p50": _percentile(latency, 50),
        "command_latency_ms_p99": _percentile(latency, 99),
        "servo_holds": (status.held_total - held_before) if status is not None else None,
        "servo_holds_by_reason": ({h.reason: h.count for h in status.held_bad_input}
                                  if status is not None else None),
        "bridge_faults_seen": dict(driver.bridge_faults),
        "bridge_trajectories_refused": driver.bridge.get("trajectories_refused"),
        "joint_commands_per_s": round(len(joint_commands) / wall, 1) if wall > 0 else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="baxter_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--policy", type=Path, required=True, help="ONNX policy file")
    parser.add_argument("--env-config", type=Path, help="the env file it was trained under")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--max-steps", type=int, default=8, help="decisions per episode")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(rclpy.utilities.remove_ros_args(argv or sys.argv)[1:])
    report = run(args.policy, args.env_config, args.episodes, args.max_steps)
    print(json.dumps(report) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
    return 0
