"""``ros2 run graspq_servo servo_bench``: the servo node's latency through DDS on this host.

Starts the servo node as its own process (configured and activated over its lifecycle
services), publishes overhead colour + aligned depth and wrist colour at 30 Hz and joint
states at 100 Hz, as a camera driver and Baxter do, keeps Grasp goals running, and measures:

- latency: from the last input message sent before a decision (the one that completed the
  synchronised set) to the arrival of the command it led to, p50 and p99, ms;
- the core's own decision time in the same run (``ServoStatus.cycle_ms``: checks, policy,
  IK and clamps), p50 and p99, so the transport's share is the difference;
- the loop rate (decisions per second), the camera rate the servo measured, and the servo
  process's CPU share (user + system time over wall time, from /proc).

``--native`` publishes 640x480 frames (a RealSense's), which the node crops and resizes
(``native_input``); otherwise frames come at the policy's size. Frames are a rendered view
of the scene (upscaled for --native); the joint states follow each command at once (a
perfect arm) while the images stay the same: the bench measures the loop, not grasping.
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import cv2
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
from sensor_msgs.msg import Image, JointState
from trajectory_msgs.msg import JointTrajectory

from graspq.config import load_config
from graspq.servo.runtime import ServoRuntime
from graspq.sim.robot import JOINT_STATE_NAMES, SimRobot, finger_positions
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig
from graspq_interfaces.action import Grasp
from graspq_interfaces.msg import ServoStatus

NATIVE_SIZE = (640, 480)  # width, height of a RealSense D435 colour / aligned depth stream
CAMERA_HZ, JOINTS_HZ = 30.0, 100.0
EPISODE_STEPS = 6


def _image(array: np.ndarray, encoding: str) -> Image:
    height, width = array.shape[:2]
    data = np.ascontiguousarray(array)
    return Image(height=height, width=width, encoding=encoding, is_bigendian=0,
                 step=data.strides[0], data=data.tobytes())


def scene_frames(env_config: EnvConfig, native: bool) -> dict[str, Image]:
    """One rendered view of the scene as the three image messages (upscaled for native)."""
    robot = SimRobot(env_config)
    try:
        robot.reset(1)
        frames = robot.advance(robot.time_s + 0.1)
    finally:
        robot.close()
    latest = {d.frame.stream: d.frame.data for d in frames}
    colour, depth, wrist = (latest["overhead_colour"], latest["overhead_depth"],
                            latest["wrist_colour"])
    if native:
        colour = cv2.resize(colour, NATIVE_SIZE, interpolation=cv2.INTER_NEAREST)
        depth = cv2.resize(depth, NATIVE_SIZE, interpolation=cv2.INTER_NEAREST)
        wrist = cv2.resize(wrist, NATIVE_SIZE, interpolation=cv2.INTER_NEAREST)
    return {"overhead/color/image_raw": _image(colour, "rgb8"),
            "overhead/aligned_depth_to_color/image_raw": _image(depth.astype(np.float32),
                                                                "32FC1"),
            "wrist/color/image_raw": _image(wrist, "rgb8")}


class Driver(Node):
    """Publishes the sensor streams, keeps episodes going and records what comes back."""

    def __init__(self, frames: dict[str, Image], home: np.ndarray) -> None:
        super().__init__("servo_bench_driver")
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.frames = frames
        self.images = {topic: self.create_publisher(Image, topic, qos) for topic in frames}
        self.joints_pub = self.create_publisher(JointState, "joint_states", qos)
        self.joints = JointState(name=list(JOINT_STATE_NAMES),
                                 position=[*map(float, home), *finger_positions(0.046)])
        self.sent: list[float] = []  # wall time of every input message sent, in order
        self.camera_sends: list[float] = []
        self.commands: list[tuple[float, float]] = []  # (arrival, decision stamp)
        self.cycles: list[float] = []
        self.decisions: list[tuple[float, int]] = []
        self.lock = threading.Lock()
        self.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                 self._on_command, 100)
        self.create_subscription(ServoStatus, "/graspq_servo/status", self._on_status, 100)
        self.received_hz: dict[str, list[float]] = {}  # the servo's own measure, per stream
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.change = self.create_client(ChangeState, "/graspq_servo/change_state")
        self.grasp = ActionClient(self, Grasp, "/graspq_servo/grasp")
        self._goal: Any = None
        self._tick = 0
        self.create_timer(1.0 / JOINTS_HZ, self._publish)

    def _stamp(self) -> tuple[Any, float]:
        now = self.get_clock().now()
        return now.to_msg(), now.nanoseconds * 1e-9

    def _publish(self) -> None:
        self._tick += 1
        stamp, sent = self._stamp()
        self.joints.header.stamp = stamp
        self.joints_pub.publish(self.joints)
        with self.lock:
            self.sent.append(sent)
        if self._tick % round(JOINTS_HZ / CAMERA_HZ) == 0:  # ~30 Hz cameras
            stamp, sent = self._stamp()
            for topic, msg in self.frames.items():
                msg.header.stamp = stamp
                self.images[topic].publish(msg)
            with self.lock:
                self.sent.append(self._stamp()[1])
                self.camera_sends.append(sent)

    def _on_command(self, msg: JointTrajectory) -> None:
        arrival = time.time()
        decided = msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9
        if len(msg.points) == 1 and msg.points[0].time_from_start.sec == 0:
            with self.lock:  # a decision's move (not the way home, not a lift)
                self.commands.append((arrival, decided))
        # A perfect arm: it is where it was sent, so the next moves stay executable.
        goal = msg.points[-1].positions
        self.joints.position = [*map(float, goal), *self.joints.position[7:]]

    def _on_status(self, msg: ServoStatus) -> None:
        if msg.decisions and (not self.decisions or msg.decisions != self.decisions[-1][1]):
            self.decisions.append((time.time(), msg.decisions))
            if np.isfinite(msg.cycle_ms):
                self.cycles.append(msg.cycle_ms)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        for status in msg.status:
            if " stream " in status.name:
                stream = status.name.rsplit(" ", 1)[-1]
                values = {kv.key: kv.value for kv in status.values}
                self.received_hz.setdefault(stream, []).append(float(values["rate_hz"]))

    def keep_an_episode_running(self) -> None:
        if self._goal is not None and not self._goal.done():
            return
        if self.grasp.server_is_ready():
            # Short episodes: with still images the policy soon walks into the workspace's
            # bound, where a move is refused and nothing is commanded.
            self._goal = self.grasp.send_goal_async(Grasp.Goal(max_steps=EPISODE_STEPS))
            self._goal.add_done_callback(self._on_accepted)

    def _on_accepted(self, future: Any) -> None:
        handle = future.result()
        if handle is not None and handle.accepted:
            self._goal = handle.get_result_async()

    def latencies_ms(self) -> list[float]:
        """Command arrival minus the last input sent at or before its decision."""
        with self.lock:
            sent, commands = list(self.sent), list(self.commands)
        sent.sort()
        out = []
        for arrival, decided in commands:
            i = bisect.bisect_right(sent, decided + 1e-6) - 1
            if i >= 0:
                out.append(1e3 * (arrival - sent[i]))
        return out


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def run(policy: Path, env_path: Path | None, native: bool, seconds: float) -> dict[str, Any]:
    env_config = load_config(EnvConfig, env_path, ENV_NODE_NAME) if env_path else EnvConfig()
    home = ServoRuntime(env_config).home_joints()
    frames = scene_frames(env_config, native)
    executable = Path(get_package_prefix("graspq_servo")) / "lib" / "graspq_servo" / "servo_node"
    logs = tempfile.mkdtemp(prefix="servo_bench_")
    args = [str(executable), "--ros-args", "-p", f"policy:={policy}",
            "-p", f"log_dir:={logs}", "-p", f"native_input:={'true' if native else 'false'}",
            "-p", "qos.deadline_periods:=0.0"]
    if env_path:
        args += ["-p", f"env_config:={env_path}"]
    servo = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    driver = Driver(frames, home)
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(driver)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        if not driver.change.wait_for_service(60.0):
            raise RuntimeError("the servo node did not come up")
        for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            future = driver.change.call_async(ChangeState.Request(
                transition=Transition(id=transition)))
            while not future.done():
                time.sleep(0.01)
            if not future.result().success:
                raise RuntimeError(f"lifecycle transition {transition} failed")
        time.sleep(1.0)  # discovery and the first frames
        with driver.lock:
            driver.sent.clear()
            driver.commands.clear()
            driver.camera_sends.clear()
        driver.cycles.clear()
        driver.decisions.clear()
        driver.received_hz.clear()
        cpu_start, wall_start = _cpu_seconds(servo.pid), time.time()
        while time.time() - wall_start < seconds:
            driver.keep_an_episode_running()
            time.sleep(0.05)
        wall = time.time() - wall_start
        cpu = _cpu_seconds(servo.pid) - cpu_start
    finally:
        servo.terminate()
        servo.wait(timeout=30)
        executor.shutdown()
        driver.destroy_node()
        rclpy.try_shutdown()
    latency = driver.latencies_ms()
    cycles = driver.cycles
    sends = driver.camera_sends
    camera_hz = (len(sends) - 1) / (sends[-1] - sends[0]) if len(sends) > 1 else 0.0
    return {
        "input": "640x480 native (cropped and resized by the node)" if native
        else f"{env_config.camera.image_size}x{env_config.camera.image_size}",
        "seconds": round(wall, 1), "commands": len(latency),
        "latency_ms_p50": _percentile(latency, 50), "latency_ms_p99": _percentile(latency, 99),
        "core_decision_ms_p50": _percentile(cycles, 50),
        "core_decision_ms_p99": _percentile(cycles, 99),
        "transport_ms_p99": (None if not latency or not cycles
                             else _percentile(latency, 99) - _percentile(cycles, 99)),
        "decisions_per_s": (len(driver.decisions) - 1) / wall if driver.decisions else 0.0,
        "camera_hz_sent": camera_hz,
        "hz_received_by_servo": {stream: float(np.median(rates[1:] or rates))
                                 for stream, rates in sorted(driver.received_hz.items())},
        "servo_cpu_share": cpu / wall,
    }


def conversion(frames: int = 500) -> dict[str, Any]:
    """The node's RealSense conversion alone, on one core: a 640x480 ``rgb8`` frame and a
    ``16UC1`` aligned depth frame (message -> array, crop to the trained view, resize, depth
    in metres), ms per frame."""
    from graspq.sim.cameras import overhead_crop_box
    from graspq_servo import conversions

    cv2.setNumThreads(1)
    camera = EnvConfig().camera
    rng = np.random.default_rng(0)
    colour = _image(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8), "rgb8")
    depth = _image(rng.integers(0, 1200, (480, 640)).astype(np.uint16), "16UC1")
    box = overhead_crop_box(camera, 615.0, 319.5, 239.5, 640, 480)
    times: dict[str, list[float]] = {"colour": [], "depth": []}
    for _ in range(frames):
        start = time.perf_counter()
        conversions.fit_to_policy(conversions.colour_image(colour), camera.image_size, box)
        middle = time.perf_counter()
        metres = conversions.depth_metres(conversions.depth_image(depth), 0.001,
                                          camera.depth_far_m)
        conversions.fit_to_policy(metres, camera.image_size, box, nearest=True)
        end = time.perf_counter()
        times["colour"].append(1e3 * (middle - start))
        times["depth"].append(1e3 * (end - middle))
    return {f"{kind}_ms_{name}": _percentile(values, q) for kind, values in times.items()
            for name, q in (("p50", 50), ("p99", 99))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="servo_bench", description=__doc__.split("\n")[0])
    parser.add_argument("--policy", type=Path, help="ONNX policy file")
    parser.add_argument("--conversion", action="store_true", help="time only the RealSense "
                        "conversion (640x480 colour and 16UC1 depth to the policy's view)")
    parser.add_argument("--env-config", type=Path, help="the env file it was trained under")
    parser.add_argument("--native", action="store_true", help="publish 640x480 frames")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(rclpy.utilities.remove_ros_args(argv or sys.argv)[1:])
    if args.conversion:
        report = conversion()
    elif args.policy is None:
        parser.error("--policy is needed (or --conversion)")
    else:
        report = run(args.policy, args.env_config, args.native, args.seconds)
    print(json.dumps(report) if args.json else "\n".join(f"{k}: {v}" for k, v in report.items()))
    return 0
