"""``graspq_servo``: the ONNX policy in a closed visual-servoing loop, as a lifecycle node.

A thin adapter over :class:`graspq.servo.runtime.ServoRuntime` (the paper's Algorithm 1) and
:class:`graspq.policy.runtime.OnnxPolicy`:

- configure: parameters -> the core's config dataclasses (validated; a bad value names its
  key), the env config file, the ONNX policy (checked against it). Any refusal fails the
  transition with the reason and leaves the node unconfigured.
- activate: the four input subscriptions (explicit QoS: best effort, depth ``qos.depth``, a
  deadline from each stream's expected period, lifespan ``servo.max_age_s``), the core's
  synchroniser behind them, the command, status, marker and depth-for-people publishers
  (lifecycle publishers, made at configure), the watchdog and diagnostics timers, and
  ``~/grasp`` goals (its server refuses them unless active) and the ``~/estop`` service.
- deactivate: nothing is commanded from then on (the arm holds its last goal); an episode in
  progress ends as ``aborted``. cleanup and shutdown release everything.

Topics (relative; remap in launch): inputs ``overhead/color/image_raw`` (rgb8),
``overhead/aligned_depth_to_color/image_raw`` (32FC1 m or 16UC1 units), ``wrist/color/
image_raw`` (rgb8), ``joint_states``; outputs ``arm_controller/joint_trajectory``, the
``gripper_controller/gripper_cmd`` action, ``~/status``, ``~/markers``, ``~/depth_colour``,
``/diagnostics``. See docs/ros_interface.md.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import rclpy
from control_msgs.action import GripperCommand
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.action import ActionClient, ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.duration import Duration
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint
from visualization_msgs.msg import MarkerArray

from graspq.config import ConfigError, load_config
from graspq.rewards import Outcome, RewardConfig
from graspq.servo.episode_log import EpisodeLogger
from graspq.servo.policies import Policy
from graspq.servo.runtime import (
    CommandKind,
    HoldReason,
    ServoCommand,
    ServoRuntime,
    ServoState,
    ServoStatus,
    StepRecord,
    Stream,
)
from graspq.servo.settings import ServoConfig, SimDevicesConfig
from graspq.servo.sync import Frame
from graspq.sim.cameras import overhead_crop_box
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig
from graspq_interfaces.action import Grasp
from graspq_interfaces.msg import ServoStatus as ServoStatusMsg
from graspq_interfaces.srv import JudgeGrasp
from graspq_servo import conversions, ros_params
from graspq_servo.monitoring import StreamMonitor, depth_colour_image, grasp_markers

NODE_NAME = "graspq_servo"
TOPICS = {
    Stream.OVERHEAD_COLOUR: "overhead/color/image_raw",
    Stream.OVERHEAD_DEPTH: "overhead/aligned_depth_to_color/image_raw",
    Stream.WRIST_COLOUR: "wrist/color/image_raw",
    Stream.JOINTS: "joint_states",
}
OVERHEAD_CAMERA_INFO = "overhead/color/camera_info"
ARM_TRAJECTORY_TOPIC = "arm_controller/joint_trajectory"
GRIPPER_ACTION = "gripper_controller/gripper_cmd"
# Parameters read at configure only: a change needs cleanup + configure.
STATIC_PARAMETERS = {"policy", "env_config", "log_dir", "judge_service", "native_input",
                     "qos.depth", "qos.deadline_periods", "servo.queue_size",
                     "servo.policy_threads", "servo.depth_unit_m"}
HOME_TOLERANCE_RAD = 0.02


class ServoNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.declare_parameter("policy", "", _describe("the ONNX policy file from "
                                                       "`graspq export`"))
        self.declare_parameter("env_config", "", _describe(
            "config/env.yaml-style file the policy was trained under ('' = the defaults); "
            "its reward terms are replaced by the rewards.* parameters"))
        self.declare_parameter("log_dir", "graspq_episodes", _describe(
            "directory for the MCAP episode logs (one file per episode)"))
        self.declare_parameter("judge_service", "", _describe(
            "a graspq_interfaces/JudgeGrasp service that judges each grasp (a simulated "
            "robot's); '' judges from the gripper: held if not fully closed after the lift"))
        self.declare_parameter("home_duration_s", 2.0, _describe(
            "time given to a move home before an episode [s]"))
        self.declare_parameter("diagnostics_period_s", 1.0, _describe(
            "period of /diagnostics and of the status heartbeat [s]"))
        self.declare_parameter("native_input", False, _describe(
            "camera frames come at the camera's own size (e.g. a RealSense's 640x480): crop "
            "the overhead frames to the trained camera's view (scaled by the focal length "
            "of overhead/color/camera_info, centred on its principal point), the wrist "
            "frames to a centred square, resize both to the policy's size, and read 16UC1 "
            "zeros (no depth) as the far depth bound; false: frames of another size hold"))
        self.declare_parameter("qos.depth", 5, _describe("input subscriptions' queue depth"))
        self.declare_parameter("qos.deadline_periods", 3.0, _describe(
            "input deadline in expected periods of each stream (devices.*_hz); 0 sets no "
            "deadline (for publishers that offer none, e.g. realsense2_camera)"))
        ros_params.declare_config(self, ServoConfig(), "servo.")
        ros_params.declare_config(self, SimDevicesConfig(), "devices.")
        ros_params.declare_config(self, RewardConfig(), "rewards.")
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._lock = threading.RLock()
        self._runtime: ServoRuntime | None = None
        self._logger_file: EpisodeLogger | None = None
        self._env_config: EnvConfig | None = None
        self._devices: SimDevicesConfig | None = None
        self._active = False
        self._inputs: list[Any] = []
        self._loop_timers: list[Any] = []
        self._outputs: dict[str, Any] = {}
        self._action_server: ActionServer | None = None
        self._gripper_client: ActionClient | None = None
        self._judge_client: Any = None
        self._estop_service: Any = None
        self._monitor: StreamMonitor | None = None
        self._latencies: collections.deque[float] = collections.deque(maxlen=500)
        self._motor: np.ndarray | None = None
        self._grasp: dict[str, Any] | None = None  # the CLOSE being carried out
        self._episode_done = threading.Event()
        self._episode_busy = False
        self._abort_reason: str | None = None
        self._last_depth: np.ndarray | None = None
        self._native_input = False
        self._overhead_intrinsics: tuple[float, float, float] | None = None
        self._status_key: tuple[int, str | None] | None = None
        self.step_hook: Callable[[StepRecord], None] | None = None
        """Gets every finished step too (the training node learns from them)."""
        self._inputs_group = MutuallyExclusiveCallbackGroup()
        self._action_group = ReentrantCallbackGroup()

    # ------------------------------------------------------------------ parameters
    def _read_configs(self, changes: dict[str, Any] | None = None
                      ) -> tuple[ServoConfig, SimDevicesConfig, RewardConfig]:
        return (ros_params.read_config(self, ServoConfig, "servo.", changes),
                ros_params.read_config(self, SimDevicesConfig, "devices.", changes),
                ros_params.read_config(self, RewardConfig, "rewards.", changes))

    def _on_set_parameters(self, parameters: list[Any]) -> SetParametersResult:
        changes = {p.name: p.value for p in parameters}
        configured = self._runtime is not None
        frozen = sorted(set(changes) & STATIC_PARAMETERS)
        if configured and frozen:
            return SetParametersResult(successful=False, reason=(
                f"{', '.join(frozen)} take(s) effect at configure: deactivate, cleanup and "
                "configure again"))
        for name, value in changes.items():
            if isinstance(value, float) and not math.isfinite(value):
                return SetParametersResult(successful=False,
                                           reason=f"{name}: must be finite, got {value!r}")
        try:
            servo, _, rewards = self._read_configs(changes)
        except ConfigError as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        with self._lock:
            if self._runtime is not None:
                try:
                    self._runtime.reconfigure(servo, rewards)
                except ValueError as exc:
                    return SetParametersResult(successful=False, reason=str(exc))
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except Exception as exc:  # noqa: BLE001 - any refusal fails the transition, named
            self.get_logger().error(f"configure refused: {exc}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: policy {self.get_parameter('policy').value}")
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        servo, devices, rewards = self._read_configs()
        env_path = self.get_parameter("env_config").value
        env_config = load_config(EnvConfig, env_path, ENV_NODE_NAME) if env_path else EnvConfig()
        env_config = dataclasses.replace(env_config, rewards=rewards)
        policy_path = self.get_parameter("policy").value
        policy = self.make_policy(policy_path, env_config, servo)
        log_dir = Path(self.get_parameter("log_dir").value).expanduser()
        self._logger_file = EpisodeLogger(log_dir, env_config, {"policy": policy_path,
                                                                "runtime": "ros"})
        self._env_config, self._devices = env_config, devices
        self._native_input = bool(self.get_parameter("native_input").value)
        self._runtime = ServoRuntime(env_config, servo, policy, warn=self._warn,
                                     on_step=self._on_step)
        self._home = self._runtime.home_joints()
        self._outputs = {
            "arm": self.create_lifecycle_publisher(JointTrajectory, ARM_TRAJECTORY_TOPIC, 10),
            "status": self.create_lifecycle_publisher(ServoStatusMsg, "~/status", 10),
            "markers": self.create_lifecycle_publisher(MarkerArray, "~/markers", 10),
            "depth": self.create_lifecycle_publisher(Image, "~/depth_colour", 5),
            "diagnostics": self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics",
                                                           10),
        }
        self._gripper_client = ActionClient(self, GripperCommand, GRIPPER_ACTION,
                                            callback_group=self._action_group)
        # Goals are refused unless active; the server lives until cleanup so that a goal
        # ended by deactivate still gets its result.
        self._action_server = ActionServer(
            self, Grasp, "~/grasp", execute_callback=self._execute_grasp,
            goal_callback=self._on_goal, cancel_callback=lambda _goal: CancelResponse.ACCEPT,
            callback_group=self._action_group)
        judge = self.get_parameter("judge_service").value
        self._judge_client = (self.create_client(JudgeGrasp, judge,
                                                 callback_group=self._action_group)
                              if judge else None)

    def make_policy(self, path: str, env_config: EnvConfig, servo: ServoConfig) -> Policy:
        """The policy to run: the ONNX file at ``path``, checked against the env config (a
        subclass may run another, e.g. the training node's learning agent)."""
        from graspq.policy.runtime import OnnxPolicy, PolicyConfig

        if not path:
            raise ValueError("parameter 'policy' is empty: give the ONNX file to run")
        return OnnxPolicy(path, env_config,
                          config=PolicyConfig(intra_op_threads=servo.policy_threads))

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._activate()
        except Exception as exc:  # noqa: BLE001
            self.get_logger().error(f"activate refused: {exc}")
            self._deactivate()
            return TransitionCallbackReturn.FAILURE
        self._active = True
        return super().on_activate(state)

    def _activate(self) -> None:
        servo = self._runtime.config
        devices = self._devices
        rates = {Stream.OVERHEAD_COLOUR: devices.overhead_hz,
                 Stream.OVERHEAD_DEPTH: devices.overhead_hz,
                 Stream.WRIST_COLOUR: devices.wrist_hz, Stream.JOINTS: devices.joints_hz}
        self._monitor = StreamMonitor({s.value: hz for s, hz in rates.items()},
                                      servo.max_age_s)
        depth = self.get_parameter("qos.depth").value
        periods = self.get_parameter("qos.deadline_periods").value
        for stream, topic in TOPICS.items():
            qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth,
                             reliability=ReliabilityPolicy.BEST_EFFORT,
                             lifespan=Duration(seconds=servo.max_age_s))
            if periods > 0:
                qos.deadline = Duration(seconds=periods / rates[stream])
            events = SubscriptionEventCallbacks(
                deadline=lambda info, s=stream.value: self._monitor.deadline_missed(
                    s, info.total_count),
                incompatible_qos=lambda info, s=stream.value: self._monitor.incompatible(
                    s, info.last_policy_kind, info.total_count))
            msg_type = JointState if stream is Stream.JOINTS else Image
            self._inputs.append(self.create_subscription(
                msg_type, topic, lambda msg, s=stream: self._on_message(s, msg), qos,
                event_callbacks=events, callback_group=self._inputs_group))
        if self._native_input:  # the crop follows the real camera's intrinsics
            self._inputs.append(self.create_subscription(
                CameraInfo, OVERHEAD_CAMERA_INFO, self._on_camera_info, 10,
                callback_group=self._inputs_group))
        period = self.get_parameter("diagnostics_period_s").value
        self._loop_timers = [
            self.create_timer(0.01, self._on_watchdog, callback_group=self._inputs_group),
            self.create_timer(period, self._on_diagnostics, callback_group=self._inputs_group),
        ]
        self._estop_service = self.create_service(Trigger, "~/estop", self._on_estop,
                                                  callback_group=self._inputs_group)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        return super().on_deactivate(state)

    def _deactivate(self) -> None:
        with self._lock:
            self._active = False  # from here on nothing is commanded: the arm holds
            self._grasp = None
            if self._runtime is not None and self._runtime.state not in (
                    ServoState.IDLE, ServoState.DONE, ServoState.ESTOPPED):
                self._runtime.end_episode()
                self._abort_reason = "aborted"
                self._episode_done.set()
        for subscription in self._inputs:
            self.destroy_subscription(subscription)
        for timer in self._loop_timers:
            self.destroy_timer(timer)
        self._inputs, self._loop_timers = [], []
        if self._estop_service is not None:
            self.destroy_service(self._estop_service)
            self._estop_service = None

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.get_logger().error("error: holding the arm and releasing everything")
        self._deactivate()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        if self._action_server is not None:
            self._action_server.destroy()
            self._action_server = None
        with self._lock:
            for publisher in self._outputs.values():
                self.destroy_lifecycle_publisher(publisher)
            self._outputs = {}
            if self._gripper_client is not None:
                self._gripper_client.destroy()
                self._gripper_client = None
            if self._judge_client is not None:
                self.destroy_client(self._judge_client)
                self._judge_client = None
            if self._logger_file is not None:
                self._logger_file.close()
                self._logger_file = None
            self._runtime = None

    # ------------------------------------------------------------------ inputs
    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _on_message(self, stream: Stream, msg: Any) -> None:
        now = self._now()
        self._monitor.arrived(stream.value, time.monotonic())
        try:
            if stream is Stream.JOINTS:
                data = conversions.motor_state(msg)
                self._motor = data
            elif stream is Stream.OVERHEAD_DEPTH:
                data = self._fit(stream, conversions.depth_image(msg))
                self._last_depth = data
            else:
                data = self._fit(stream, conversions.colour_image(msg))
        except conversions.FrameError as exc:
            with self._lock:
                if self._runtime is not None:
                    self._runtime.refuse_input(HoldReason(exc.kind), f"{stream.value}: {exc}")
            return
        frame = Frame(stream.value, conversions.stamp_seconds(msg.header.stamp), data)
        with self._lock:
            if not self._active or self._runtime is None:
                return
            command = self._runtime.on_frame(frame, now)
            self._runtime.tick(now)
        if command is not None:
            self._send(command, now)
        self._publish_status_on_change(now)
        self._check_episode_end()

    def _fit(self, stream: Stream, image: np.ndarray) -> np.ndarray:
        if not self._native_input:
            return image
        camera = self._env_config.camera
        box = None
        if stream is not Stream.WRIST_COLOUR:
            height, width = image.shape[:2]
            if (height, width) != (camera.image_size,) * 2:
                if self._overhead_intrinsics is None:  # a crop must not guess the view
                    raise conversions.FrameError(
                        HoldReason.CAMERA_INFO.value, f"no {OVERHEAD_CAMERA_INFO} yet: the "
                        "crop of the trained view needs the camera's intrinsics")
                fx, cx, cy = self._overhead_intrinsics
                box = overhead_crop_box(camera, fx, cx, cy, width, height)
        if stream is Stream.OVERHEAD_DEPTH:
            image = conversions.depth_metres(image, self._runtime.config.depth_unit_m,
                                             camera.depth_far_m)
        return conversions.fit_to_policy(image, camera.image_size, box,
                                         nearest=stream is Stream.OVERHEAD_DEPTH)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """The overhead camera's intrinsics (fx, cx, cy), for the crop of native frames."""
        fx, cx, cy = float(msg.k[0]), float(msg.k[2]), float(msg.k[5])
        if not (np.isfinite([fx, cx, cy]).all() and fx > 0):
            self._warn(f"servo: overhead CameraInfo with fx {fx!r}: ignored")
            return
        if self._overhead_intrinsics is None:
            self.get_logger().info(f"overhead camera: fx {fx:.1f} px, principal point "
                                   f"({cx:.1f}, {cy:.1f})")
        self._overhead_intrinsics = (fx, cx, cy)

    def _on_watchdog(self) -> None:
        now = self._now()
        with self._lock:
            if self._runtime is None or not self._active:
                return
            self._runtime.tick(now)
            grasp = self._grasp
        self._publish_status_on_change(now)
        if grasp is not None and grasp.get("close_at") is not None and now >= grasp["close_at"]:
            grasp["close_at"] = None
            self._close_gripper(grasp["command"])
        if grasp is not None and grasp.get("judge_at") is not None and now >= grasp["judge_at"]:
            grasp["judge_at"] = None
            self._judge(grasp)
        self._check_episode_end()

    # ------------------------------------------------------------------ commands
    def _send(self, command: ServoCommand, now: float) -> None:
        if not self._active:
            return
        if command.kind is CommandKind.MOVE:
            self._publish_trajectory([(command.duration_s, command.joints)], now)
        elif command.kind is CommandKind.CLOSE:
            # The descend close goes down first; the watchdog closes the gripper once the
            # descent is over (in place: now).
            descent, duration = self._runtime.descent_trajectory(command)
            self._grasp = {"command": command, "judge_at": None, "close_at": None}
            if descent:
                self._publish_trajectory(descent, now)
                self._grasp["close_at"] = now + duration
            else:
                self._close_gripper(command)
        else:  # STOP: hold where the arm is measured to be
            if self._motor is not None and np.all(np.isfinite(self._motor[:7])):
                self._publish_trajectory([(0.0, self._motor[:7])], now)
        self._publish_markers(now)

    def _publish_trajectory(self, points: list[tuple[float, np.ndarray]], now: float) -> None:
        msg = JointTrajectory()
        msg.header.stamp = conversions.seconds_to_stamp(now)
        msg.header.frame_id = "base"
        msg.joint_names = list(conversions.ARM_JOINT_NAMES)
        for t, joints in points:
            point = JointTrajectoryPoint()
            point.positions = [float(v) for v in joints]
            point.time_from_start = Duration(seconds=float(t)).to_msg()
            msg.points.append(point)
        self._outputs["arm"].publish(msg)

    def _close_gripper(self, command: ServoCommand) -> None:
        goal = GripperCommand.Goal()
        goal.command.position = 0.0
        goal.command.max_effort = float(command.gripper_force_n)
        if not self._gripper_client.server_is_ready():
            self._warn(f"servo: gripper action {GRIPPER_ACTION} not available; the grasp "
                       "is lifted and judged without closing")
            self._after_close()
            return
        future = self._gripper_client.send_goal_async(goal)
        future.add_done_callback(self._on_gripper_goal)

    def _on_gripper_goal(self, future: Any) -> None:
        handle = future.result()
        if handle is None or not handle.accepted:
            self._warn("servo: the gripper refused the close; the grasp is judged as it is")
            self._after_close()
            return
        handle.get_result_async().add_done_callback(lambda _f: self._after_close())

    def _after_close(self) -> None:
        """The gripper has closed: lift as the env lifts, then judge."""
        with self._lock:
            grasp, runtime = self._grasp, self._runtime
            if grasp is None or runtime is None or not self._active:
                return
            points, judge_after = runtime.lift_trajectory(grasp["command"])
            now = self._now()
            self._publish_trajectory(points, now)
            grasp["judge_at"] = now + judge_after

    def _judge(self, grasp: dict[str, Any]) -> None:
        if self._judge_client is not None:
            if not self._judge_client.service_is_ready():
                self._warn("servo: judge service not available; judging from the gripper")
            else:
                future = self._judge_client.call_async(JudgeGrasp.Request())
                future.add_done_callback(
                    lambda f: self._report(Outcome(f.result().outcome)
                                           if f.result() is not None else Outcome.MISS))
                return
        closed = self._env_config.gripper.closed_opening_m
        held = self._motor is not None and self._motor[7] > closed
        self._report(Outcome.SUCCESS if held else Outcome.MISS)

    def _report(self, outcome: Outcome) -> None:
        with self._lock:
            if self._runtime is None or self._runtime.state is not ServoState.CLOSING:
                return
            self._runtime.report_outcome(outcome, self._now())
            self._grasp = None

    # ------------------------------------------------------------------ episodes
    def _on_goal(self, goal: Grasp.Goal) -> GoalResponse:
        if not self._active or self._episode_busy:
            self.get_logger().warning("grasp goal refused: " + (
                "an episode is running" if self._episode_busy else "the node is not active"))
            return GoalResponse.REJECT
        self._episode_busy = True
        return GoalResponse.ACCEPT

    def _execute_grasp(self, goal_handle: Any) -> Grasp.Result:
        try:
            return self._run_episode(goal_handle)
        finally:
            self._episode_busy = False

    def _run_episode(self, goal_handle: Any) -> Grasp.Result:
        def feedback(status: ServoStatus) -> None:
            goal_handle.publish_feedback(Grasp.Feedback(
                step=status.step, action=status.last_action.name,
                top_grasp_probability=float(np.max(status.grasp_probabilities))))

        outcome, status = self.run_episode(goal_handle.request.max_steps or None,
                                           lambda: goal_handle.is_cancel_requested,
                                           feedback=feedback)
        result = Grasp.Result(outcome=outcome)
        if status is not None:
            result.episode_return = float(status.episode_return)
            result.steps = int(status.step)
        if outcome == "canceled":
            goal_handle.canceled()
        elif outcome in ("aborted", "estopped"):
            goal_handle.abort()
        else:
            goal_handle.succeed()
        return result

    def run_episode(self, max_steps: int | None = None,
                    cancel_requested: Callable[[], bool] = lambda: False,
                    idle: Callable[[], None] | None = None,
                    feedback: Callable[[ServoStatus], None] | None = None
                    ) -> tuple[str, ServoStatus | None]:
        """One episode from the arm's current pose, on the calling thread (the executor
        must spin elsewhere): the arm goes home, then the loop runs until the episode ends,
        is cancelled or the node deactivates. ``idle`` is called every few ms meanwhile;
        ``feedback`` after each decision. Returns the outcome (an Outcome value, or
        aborted, canceled, estopped) and the final status."""
        if not self._go_home():
            return "aborted", None
        with self._lock:
            self._episode_done.clear()
            self._abort_reason = None
            self._grasp = None
            self._runtime.reset(self._home, self._now(), max_steps)
        reported = 0
        started = self._now()
        limit = self._devices.episode_time_limit_s
        while not self._episode_done.wait(0.005 if idle is not None else 0.02):
            if self._now() - started > limit:  # e.g. held on bad input all along
                with self._lock:
                    self._runtime.end_episode()
                    self._abort_reason = "aborted"
                self._warn(f"servo: episode not over after {limit:g} s; aborted")
                break
            if idle is not None:
                idle()
            with self._lock:
                status = self._runtime.status if self._runtime is not None else None
            if (feedback is not None and status is not None and status.step != reported
                    and status.last_action):
                reported = status.step
                feedback(status)
            if cancel_requested():
                with self._lock:
                    self._runtime.end_episode()
                    self._abort_reason = "canceled"
                break
            if not rclpy.ok():
                break
        with self._lock:
            runtime = self._runtime
            status = runtime.status if runtime is not None else None
            outcome = self._abort_reason or (
                "estopped" if status.state is ServoState.ESTOPPED else status.outcome.value)
            if self._logger_file is not None and status is not None:
                self._logger_file.finish(outcome, status.episode_return,
                                         {"episode": status.episode})
        return outcome, status

    def _go_home(self) -> bool:
        """Send the arm home unless it is there; wait (on the node's clock) until it is."""
        duration = self.get_parameter("home_duration_s").value
        motor = self._motor
        if motor is None or not np.all(np.isfinite(motor)):
            # Never move an arm whose position is unknown.
            self._warn("servo: joint states missing or not finite; episode refused, the arm "
                       "holds")
            return False
        if np.all(np.abs(motor[:7] - self._home) < HOME_TOLERANCE_RAD):
            return True
        self._publish_trajectory([(duration, self._home)], self._now())
        deadline = time.monotonic() + 10.0 * duration + 5.0
        while time.monotonic() < deadline and self._active:
            motor = self._motor
            if motor is not None and np.all(np.abs(motor[:7] - self._home) < HOME_TOLERANCE_RAD):
                return True
            time.sleep(0.02)
        self._warn("servo: the arm did not reach home; episode aborted")
        return False

    def _check_episode_end(self) -> None:
        # Under the lock: run_episode clears the event and resets the runtime under it too,
        # so a check of the last episode's state never ends the next one.
        with self._lock:
            runtime = self._runtime
            if runtime is not None and runtime.state in (ServoState.DONE,
                                                         ServoState.ESTOPPED):
                self._episode_done.set()

    def _on_step(self, record: StepRecord) -> None:
        self._latencies.append(record.policy_latency_ms)
        if self._logger_file is not None:
            self._logger_file.write(record)
        if self.step_hook is not None:
            self.step_hook(record)

    def _on_estop(self, request: Trigger.Request, response: Trigger.Response
                  ) -> Trigger.Response:
        with self._lock:
            if self._runtime is None:
                response.success, response.message = False, "not configured"
                return response
            command = self._runtime.estop("e-stop service called", self._now())
            self._grasp = None
        self._send(command, self._now())
        self._episode_done.set()
        response.success, response.message = True, "stopped; the next Grasp goal resets"
        return response

    # ------------------------------------------------------------------ outputs for people
    def _publish_status_on_change(self, now: float) -> None:
        """Publish the status after a decision, and when a hold starts, changes or ends."""
        with self._lock:
            if self._runtime is None:
                return
            status = self._runtime.status
        key = (status.decisions, status.holding)
        if key != self._status_key:
            self._status_key = key
            self._publish_status(now)

    def _publish_status(self, now: float) -> None:
        with self._lock:
            if self._runtime is None or "status" not in self._outputs:
                return
            status = self._runtime.status
        stamp = conversions.seconds_to_stamp(now)
        self._outputs["status"].publish(conversions.status_message(status, stamp))

    def _publish_markers(self, now: float) -> None:
        with self._lock:
            if self._runtime is None:
                return
            position, _ = self._runtime.commanded_pose
            status = self._runtime.status
        text = (f"{status.state.value}  episode {status.episode}  step {status.step}  "
                f"{status.last_action.name if status.last_action else ''}  "
                f"return {status.episode_return:+.3f}")
        if status.holding:
            text += f"\nholding: {status.holding}"
        stamp = conversions.seconds_to_stamp(now)
        self._outputs["markers"].publish(
            grasp_markers(position, status.grasp_probabilities, stamp, text))

    def _on_diagnostics(self) -> None:
        now = self._now()
        with self._lock:
            if self._runtime is None:
                return
            status = self._runtime.status
        stamp = conversions.seconds_to_stamp(now)
        self._outputs["diagnostics"].publish(self._monitor.diagnostics(
            time.monotonic(), stamp, list(self._latencies), status))
        self._outputs["status"].publish(conversions.status_message(status, stamp))
        if self._last_depth is not None:
            near, far = self._env_config.camera.depth_near_m, self._env_config.camera.depth_far_m
            depth = self._last_depth
            if depth.dtype == np.uint16:
                depth = depth * np.float32(self._runtime.config.depth_unit_m)
            self._outputs["depth"].publish(depth_colour_image(depth, near, far, stamp))

    def _warn(self, line: str) -> None:
        self.get_logger().warning(line)


def _describe(text: str) -> Any:
    from rcl_interfaces.msg import ParameterDescriptor

    return ParameterDescriptor(description=text)


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = ServoNode()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._deactivate()
        node._release()
        node.destroy_node()
        rclpy.try_shutdown()
