"""``mujoco_robot``: the embedded MuJoCo scene served as a ROS 2 robot.

A thin adapter over :class:`graspq.sim.robot.SimRobot`. A loop thread advances the simulated
clock in step with the wall clock (times ``real_time_factor``), publishes ``/clock``, and
publishes each captured frame when its device delivers it (capture stamp in the header):

- ``overhead/color/image_raw`` (rgb8) and ``overhead/aligned_depth_to_color/image_raw``
  (``32FC1`` metres, or ``16UC1`` millimetres as a RealSense sends it: ``depth_encoding``),
  each with its ``camera_info``; ``wrist/color/image_raw`` (rgb8) and its ``camera_info``;
- ``joint_states``: ``right_s0 .. right_w2`` and the two finger joints.

It takes ``arm_controller/joint_trajectory`` (``trajectory_msgs/JointTrajectory``: started
at ``header.stamp + devices.command_latency_s``, or on arrival if that has passed) and the
``gripper_controller/gripper_cmd`` action (``control_msgs/GripperCommand``: position 0
closes with ``max_effort`` N per finger, anything else opens). Services: ``~/reset_episode``
(``graspq_interfaces/ResetEpisode``) and, with ``enable_judge``, ``~/judge_grasp``
(``graspq_interfaces/JudgeGrasp``, the simulator's privileged judge, for training and
simulated evaluation). TF: ``base`` -> ``overhead_camera_optical_frame`` (static); the arm's
frames come from robot_state_publisher with the URDF of ``graspq_bringup``.
"""

from __future__ import annotations

import heapq
import itertools
import math
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

import rclpy
from control_msgs.action import GripperCommand
from geometry_msgs.msg import TransformStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from tf2_ros import StaticTransformBroadcaster
from trajectory_msgs.msg import JointTrajectory

from graspq.config import load_config
from graspq.servo.runtime import Stream
from graspq.servo.settings import SERVO_NODE_NAME, ServoSimConfig
from graspq.sim.cameras import fixed_camera_optical_pose
from graspq.sim.robot import JOINT_STATE_NAMES, SimRobot
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig
from graspq_interfaces.srv import JudgeGrasp, ResetEpisode
from graspq_mujoco import conversions

NODE_NAME = "mujoco_robot"
IMAGE_TOPICS = {
    Stream.OVERHEAD_COLOUR.value: "overhead/color",
    Stream.OVERHEAD_DEPTH.value: "overhead/aligned_depth_to_color",
    Stream.WRIST_COLOUR.value: "wrist/color",
}
OVERHEAD_FRAME = "overhead_camera_optical_frame"
WRIST_FRAME = "right_hand_camera_optical_frame"
_LOOP_PERIOD_S = 0.001  # wall time between loop iterations


def _parameter(node: Node, name: str, default: Any, text: str) -> Any:
    return node.declare_parameter(name, default, ParameterDescriptor(description=text)).value


class RobotNode(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        env_path = _parameter(self, "env_config", "", "config/env.yaml-style scene file ('' = "
                              "the defaults)")
        servo_path = _parameter(self, "servo_config", "", "config/servo.yaml-style file whose "
                                "devices section gives rates, latency and jitter ('' = the "
                                "defaults)")
        self.depth_encoding = _parameter(self, "depth_encoding", "32FC1",
                                         "32FC1 (metres) or 16UC1 (millimetres)")
        self.real_time_factor = _parameter(self, "real_time_factor", 1.0,
                                           "simulated seconds per wall second")
        seed = _parameter(self, "seed", 0, "seeds the sensor jitter and the first episode")
        enable_judge = _parameter(self, "enable_judge", True, "offer ~/judge_grasp "
                                  "(simulation and training only)")
        self.publish_clock = _parameter(self, "publish_clock", True, "publish /clock")
        if self.depth_encoding not in conversions.DEPTH_ENCODINGS:
            raise ValueError(f"parameter depth_encoding: {self.depth_encoding!r} is not one of "
                             f"{sorted(conversions.DEPTH_ENCODINGS)}")
        if not (math.isfinite(self.real_time_factor) and self.real_time_factor > 0):
            raise ValueError(f"parameter real_time_factor must be positive, got "
                             f"{self.real_time_factor!r}")
        env_config = load_config(EnvConfig, env_path, ENV_NODE_NAME) if env_path else EnvConfig()
        devices = (load_config(ServoSimConfig, servo_path, SERVO_NODE_NAME).devices
                   if servo_path else ServoSimConfig().devices)
        self.env_config = env_config
        self._lock = threading.RLock()
        self._pending: list[tuple[float, int, Any]] = []  # (delivery time, order, frame)
        self._order = itertools.count()
        # The scene's OpenGL context is current in one thread only: the loop thread builds the
        # robot and does everything that renders (advancing, resetting).
        self._in_loop: queue.Queue[tuple[Callable[[], Any], dict[str, Any]]] = queue.Queue()
        self._ready = threading.Event()  # the loop simulates only once this is set
        self._running = True
        self._thread = threading.Thread(target=self._loop, args=(env_config, devices, seed),
                                        name="mujoco_robot_loop", daemon=True)
        self._thread.start()
        self._run_in_loop(lambda: None)  # the robot is built once this returns

        sensor_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5,
                                reliability=ReliabilityPolicy.RELIABLE)
        periods = {Stream.OVERHEAD_COLOUR.value: 1.0 / devices.overhead_hz,
                   Stream.OVERHEAD_DEPTH.value: 1.0 / devices.overhead_hz,
                   Stream.WRIST_COLOUR.value: 1.0 / devices.wrist_hz,
                   Stream.JOINTS.value: 1.0 / devices.joints_hz}
        # Offer a deadline (one period plus the jitter) so that subscribers that request one,
        # as the servo node does, match; offered must not exceed requested.
        jitter = max(devices.overhead_jitter_s, devices.wrist_jitter_s,
                     devices.joints_jitter_s)

        def offered(stream: str) -> QoSProfile:
            qos = QoSProfile(history=sensor_qos.history, depth=sensor_qos.depth,
                             reliability=sensor_qos.reliability)
            qos.deadline = Duration(seconds=periods[stream] + 2 * jitter + 0.002)
            return qos

        size = env_config.camera.image_size
        self._images = {stream: self.create_publisher(Image, f"{topic}/image_raw",
                                                      offered(stream))
                        for stream, topic in IMAGE_TOPICS.items()}
        self._infos = {stream: self.create_publisher(CameraInfo, f"{topic}/camera_info",
                                                     sensor_qos)
                       for stream, topic in IMAGE_TOPICS.items()}
        overhead_info = conversions.camera_info(env_config.camera.overhead_fovy_deg, size,
                                                OVERHEAD_FRAME)
        wrist_info = conversions.camera_info(env_config.camera.wrist_fovy_deg, size,
                                             WRIST_FRAME)
        self._info_msgs = {Stream.OVERHEAD_COLOUR.value: overhead_info,
                           Stream.OVERHEAD_DEPTH.value: overhead_info,
                           Stream.WRIST_COLOUR.value: wrist_info}
        self._joints = self.create_publisher(JointState, "joint_states",
                                             offered(Stream.JOINTS.value))
        self._clock_publisher = self.create_publisher(Clock, "/clock", QoSProfile(
            depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        group = ReentrantCallbackGroup()
        self.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                 self._on_trajectory, 10, callback_group=group)
        self._gripper_server = ActionServer(
            self, GripperCommand, "gripper_controller/gripper_cmd",
            execute_callback=self._execute_gripper,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT, callback_group=group)
        self.create_service(ResetEpisode, "~/reset_episode", self._on_reset,
                            callback_group=group)
        if enable_judge:
            self.create_service(JudgeGrasp, "~/judge_grasp", self._on_judge,
                                callback_group=group)
        self._static_tf = StaticTransformBroadcaster(self)
        self._static_tf.sendTransform(self._overhead_transform())
        self._ready.set()
        self._run_in_loop(lambda: self._restart_clock(seed))  # the clock starts now

    # ------------------------------------------------------------------ clock and sensors
    def _run_in_loop(self, function: Callable[[], Any], timeout_s: float = 30.0) -> Any:
        """Run ``function`` in the loop thread and return its result (or raise its error)."""
        done: dict[str, Any] = {"event": threading.Event()}
        self._in_loop.put((function, done))
        if not done["event"].wait(timeout_s):
            raise TimeoutError("the simulation loop did not answer")
        if "error" in done:
            raise done["error"]
        return done.get("result")

    def _restart_clock(self, seed: int, object_type: str | None = None,
                       pose: tuple[float, float, float] | None = None) -> dict[str, Any]:
        """Reset the robot (loop thread only) and pace the simulated clock from now."""
        with self._lock:
            info = self.robot.reset(seed, object_type, pose)
            self._pending.clear()
            self._wall_start = time.monotonic()
            self._sim_start = self.robot.time_s
        return info

    def _loop(self, env_config: EnvConfig, devices: Any, seed: int) -> None:
        self.robot = SimRobot(env_config, devices, seed=seed)
        self.robot.reset(seed)
        self._wall_start, self._sim_start = time.monotonic(), self.robot.time_s
        while self._running:
            while not self._in_loop.empty():
                function, done = self._in_loop.get()
                try:
                    done["result"] = function()
                except Exception as exc:  # noqa: BLE001 - handed back to the caller
                    done["error"] = exc
                done["event"].set()
            if not self._running:
                break
            if not self._ready.is_set():  # __init__ is still making the publishers
                time.sleep(_LOOP_PERIOD_S)
                continue
            target = self._sim_start + (time.monotonic() - self._wall_start) * \
                self.real_time_factor
            due = []
            with self._lock:
                for delivery in self.robot.advance(target):
                    heapq.heappush(self._pending, (delivery.at_s, next(self._order),
                                                   delivery.frame))
                now = self.robot.time_s
                while self._pending and self._pending[0][0] <= now + 1e-9:
                    due.append(heapq.heappop(self._pending)[2])
            if self.publish_clock:
                self._clock_publisher.publish(Clock(clock=conversions.seconds_to_stamp(now)))
            for frame in due:
                self._publish(frame)
            time.sleep(_LOOP_PERIOD_S)

    def _publish(self, frame: Any) -> None:
        stamp = conversions.seconds_to_stamp(frame.stamp)
        if frame.stream == Stream.JOINTS.value:
            self.emit(frame.stream, self._joints,
                      conversions.joint_state(JOINT_STATE_NAMES, frame.data, stamp))
            return
        info = self._info_msgs[frame.stream]
        frame_id = info.header.frame_id
        if frame.stream == Stream.OVERHEAD_DEPTH.value:
            image = conversions.depth_message(frame.data, self.depth_encoding, stamp, frame_id)
        else:
            image = conversions.colour_message(frame.data, stamp, frame_id)
        self.emit(frame.stream, self._images[frame.stream], image)
        info.header.stamp = stamp
        self._infos[frame.stream].publish(info)

    def emit(self, stream: str, publisher: Any, msg: Any) -> None:
        """Publish one sensor message of ``stream`` (a fault-injecting subclass overrides
        this to drop or change messages)."""
        publisher.publish(msg)

    def _overhead_transform(self) -> TransformStamped:
        # A fresh MjData inside: the loop thread owns the robot's.
        position, rotation = fixed_camera_optical_pose(self.robot.env.model,
                                                       self.robot.env.scene.overhead_camera)
        return conversions.optical_transform("base", OVERHEAD_FRAME, position, rotation)

    # ------------------------------------------------------------------ commands
    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            points = conversions.trajectory_points(msg, JOINT_STATE_NAMES[:7])
        except ValueError as exc:
            self.get_logger().warning(f"joint trajectory refused, the arm holds: {exc}")
            return
        start = conversions.stamp_seconds(msg.header.stamp)
        with self._lock:
            now = self.robot.time_s
            begin = now if start == 0.0 else max(now, start +
                                                  self.robot.devices.command_latency_s)
            try:
                self.robot.follow(points, begin)
            except ValueError as exc:
                self.get_logger().warning(f"joint trajectory refused, the arm holds: {exc}")

    def _execute_gripper(self, goal_handle: Any) -> GripperCommand.Result:
        command = goal_handle.request.command
        close = command.position <= 0.0
        force = command.max_effort if command.max_effort > 0 else None
        result = GripperCommand.Result()
        try:
            with self._lock:
                self.robot.command_gripper(close, force)
        except ValueError as exc:
            self.get_logger().warning(f"gripper command refused: {exc}")
            goal_handle.abort()
            return result
        while rclpy.ok():
            with self._lock:
                done = self.robot.gripper_result()
            if done is not None:
                break
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return result
            time.sleep(0.002)
        result.position = float(done.opening_m)
        result.effort = float(force or self.env_config.gripper.force_n) if close else 0.0
        result.stalled = bool(done.stalled)
        result.reached_goal = not done.stalled
        goal_handle.succeed()
        return result

    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response
                  ) -> ResetEpisode.Response:
        pose = (request.x, request.y, request.yaw) if request.use_pose else None
        try:
            info = self._run_in_loop(lambda: self._restart_clock(
                int(request.seed), request.object_type or None, pose))
            home = self.robot.home_joints
        except (ValueError, KeyError) as exc:
            response.success, response.message = False, str(exc)
            return response
        response.success = True
        response.object_type = info["object"]
        response.position = [float(v) for v in info["position_m"]]
        response.yaw = float(info["yaw_rad"])
        response.home_joints = [float(v) for v in home]
        return response

    def _on_judge(self, request: JudgeGrasp.Request, response: JudgeGrasp.Response
                  ) -> JudgeGrasp.Response:
        with self._lock:
            response.outcome = self.robot.judge().value
            response.gripper_opening = float(self.robot.env.scene.gripper_opening(
                self.robot.env.data))
        return response

    def close(self) -> None:
        """Stop the loop; the robot (and its OpenGL context) is released in its thread."""
        def stop() -> None:
            self._running = False
            self.robot.close()

        if self._thread.is_alive():
            self._run_in_loop(stop, timeout_s=5.0)
            self._thread.join(timeout=5.0)



def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    try:
        node = RobotNode()
    except ValueError as exc:
        print(f"mujoco_robot: {exc}")
        rclpy.try_shutdown()
        raise SystemExit(2) from None
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.close()
        node.destroy_node()
        rclpy.try_shutdown()
