"""``baxter_bridge``: GraspQ's robot interface (docs/ros_interface.md) on a Baxter, over the
Baxter SDK's topics (ROS 1, through ros1_bridge, with the ``graspq_baxter_msgs`` mirrors).

A lifecycle node: the arm never moves unless it is active.

- configure: parameters checked (a bad value fails the transition naming its key); the
  subscriptions to Baxter (``/robot/joint_states``, ``/robot/state``, the right gripper's
  ``state`` and ``properties``, the right hand camera) and the interface's outputs
  (``joint_states``: ``right_s0 .. right_w2`` filtered from all of Baxter's joints, plus the
  two finger joints from the gripper position; ``wrist/color/image_raw`` as ``rgb8`` and its
  ``camera_info``) start; ``arm_controller/joint_trajectory`` and the
  ``gripper_controller/gripper_cmd`` action are served but refuse motion until active.
- activate: the robot is enabled (``/robot/set_super_enable`` True until ``/robot/state``
  says enabled), ``joint_command_timeout`` and the speed ratio are set, the gripper is
  calibrated (``calibrate`` with the id of its properties, until its state says calibrated),
  the hand camera is opened at ``camera.width`` x ``camera.height`` (``/cameras/open``); any
  of these failing within its timeout fails the transition, names the cause and disables the
  robot again. Then a timer re-sends a POSITION_MODE JointCommand on
  ``/robot/limb/right/joint_command`` at ``command_rate_hz`` (above Baxter's command
  timeout, after which the robot stops the arm), following the interface's trajectories
  with :class:`graspq.drivers.trajectory.TrajectoryFollower`.
- deactivate / shutdown: commands stop, the robot is disabled.

Faults (:mod:`graspq.drivers.baxter`: the robot's state, the gripper's, stale joint states,
commands not followed) hold the arm: the bridge commands the measured position, or sends
nothing at all where the robot would not take a command or where the arm is unknown (it
then stops the arm itself after the timeout); trajectories and gripper goals are refused
while one lasts, and ``/diagnostics`` names each.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from typing import Any

import numpy as np
import rclpy
from control_msgs.action import GripperCommand
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.signals import SignalHandlerOptions
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64
from trajectory_msgs.msg import JointTrajectory

from graspq.drivers.baxter import (
    POSITION_CLOSED,
    POSITION_OPEN,
    STOP_SENDING,
    Fault,
    FollowConfig,
    FollowWatch,
    GripperState,
    RobotState,
    check_arm_positions,
    gripper_faults,
    gripper_opening_m,
    joint_state_faults,
    not_fully_closed,
    robot_faults,
)
from graspq.drivers.trajectory import TrajectoryFollower
from graspq.sim.settings import GripperConfig
from graspq_baxter import conversions
from graspq_baxter_msgs.msg import (
    AssemblyState,
    CameraSettings,
    EndEffectorCommand,
    EndEffectorProperties,
    EndEffectorState,
    JointCommand,
)
from graspq_baxter_msgs.srv import OpenCamera
from graspq_mujoco.conversions import trajectory_points

NODE_NAME = "baxter_bridge"
LIMB = "/robot/limb/right"
GRIPPER = "/robot/end_effector/right_gripper"
HAND_CAMERA = "right_hand_camera"
WRIST_FRAME = "right_hand_camera_optical_frame"
CAMERA_MODES = ((1280, 800), (960, 600), (640, 400), (480, 300), (384, 240), (320, 200))
"""The hand camera's modes (baxter_interface camera.py)."""
BAXTER_TOPICS = {
    "joint_command": (f"{LIMB}/joint_command", JointCommand, "2to1"),
    "joint_command_timeout": (f"{LIMB}/joint_command_timeout", Float64, "2to1"),
    "speed_ratio": (f"{LIMB}/set_speed_ratio", Float64, "2to1"),
    "enable": ("/robot/set_super_enable", Bool, "2to1"),
    "gripper_command": (f"{GRIPPER}/command", EndEffectorCommand, "2to1"),
    "joint_states": ("/robot/joint_states", JointState, "1to2"),
    "robot_state": ("/robot/state", AssemblyState, "1to2"),
    "gripper_state": (f"{GRIPPER}/state", EndEffectorState, "1to2"),
    "gripper_properties": (f"{GRIPPER}/properties", EndEffectorProperties, "1to2"),
    "hand_image": (f"/cameras/{HAND_CAMERA}/image", Image, "1to2"),
    "hand_camera_info": (f"/cameras/{HAND_CAMERA}/camera_info", CameraInfo, "1to2"),
}
"""Baxter's topics the bridge uses: name -> (topic, ROS 2 type, ros1_bridge direction:
``2to1`` the bridge publishes, ``1to2`` it subscribes). ros1_bridge must carry each
(config/baxter_ros1_bridge.yaml, checked by the tests)."""
BAXTER_SERVICES = {"open_camera": ("/cameras/open", OpenCamera)}
"""Baxter's services the bridge calls (ROS 1 servers: ros1_bridge's ``services_1_to_2``)."""


class Parameters:
    """The bridge's parameters (declared with ranges and units)."""

    FLOATS = {
        "command_rate_hz": (100.0, "rate at which the position command is re-sent [Hz]; "
                                   "above 1 / command_timeout_s", 1.0, 1000.0),
        "command_timeout_s": (0.2, "Baxter's joint_command_timeout: it stops the arm when "
                                   "no command came for this long [s]", 0.01, 5.0),
        "speed_ratio": (1.0, "Baxter's position-mode speed ratio (set_speed_ratio) [0-1]",
                        0.01, 1.0),
        "joint_state_max_age_s": (0.25, "joint states older than this hold the arm [s]",
                                  0.01, 10.0),
        "follow.tolerance_rad": (FollowConfig().tolerance_rad, "largest joint error that "
                                 "counts as following the commands [rad]", 0.001, 3.0),
        "follow.timeout_s": (FollowConfig().timeout_s, "how long a larger error may last "
                             "before the fault not_following [s]", 0.05, 30.0),
        "enable_timeout_s": (5.0, "time allowed for enabling on activate [s]", 0.1, 60.0),
        "calibrate_timeout_s": (10.0, "time allowed for the gripper's calibration [s]",
                                0.1, 60.0),
        "gripper_timeout_s": (3.0, "time allowed for a gripper move [s]", 0.1, 30.0),
        "closed_opening_m": (GripperConfig().closed_opening_m, "a pad separation at or below "
                             "this after closing is fully closed (no object) [m]", 0.0, 0.05),
        "camera.fps": (30.0, "hand camera frame rate [Hz]", 1.0, 60.0),
        "diagnostics_period_s": (0.5, "period of /diagnostics [s]", 0.05, 10.0),
    }
    INTS = {"camera.width": (320, "hand camera width [px]; one of Baxter's modes"),
            "camera.height": (200, "hand camera height [px]")}


class BaxterBridge(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        for name, (default, text, low, high) in Parameters.FLOATS.items():
            self.declare_parameter(name, default, ParameterDescriptor(
                description=text, floating_point_range=[FloatingPointRange(
                    from_value=low, to_value=high)]))
        for name, (default, text) in Parameters.INTS.items():
            self.declare_parameter(name, default, ParameterDescriptor(description=text))
        self.declare_parameter("stamp_on_arrival", True, ParameterDescriptor(
            description="stamp joint states and hand camera frames with this host's clock on "
                        "arrival (Baxter stamps with its own clock, which the overhead "
                        "camera's host may not share); false keeps Baxter's stamps",
            read_only=True))
        self._stamp_on_arrival = bool(self.get_parameter("stamp_on_arrival").value)
        self._lock = threading.RLock()
        self._sensor_group = ReentrantCallbackGroup()
        self._command_group = MutuallyExclusiveCallbackGroup()
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._enable_pub = None  # plain publishers: disabling must work in any state
        self._entities: list[tuple[str, Any]] = []
        self._command_timer: Any = None
        self._diagnostics_timer: Any = None
        self._action_server: ActionServer | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self.active = False
        self.arm: np.ndarray | None = None  # measured right arm (rad)
        self.arm_received_s: float | None = None
        self.robot: RobotState | None = None
        self.gripper: GripperState | None = None
        self.gripper_id: int | None = None
        self.faults: dict[Fault, str] = {}
        self.latched: dict[Fault, str] = {}
        self.follower: TrajectoryFollower | None = None
        self.commands_sent = 0
        self.refused = 0
        self._sequence = 0
        self._reported: frozenset[Fault] = frozenset()

    def _p(self, name: str) -> Any:
        return self.get_parameter(name).value

    # ------------------------------------------------------------------ lifecycle
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self._configure()
        except ValueError as exc:
            self.get_logger().error(f"configure refused: {exc}")
            self._release()
            return TransitionCallbackReturn.FAILURE
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        mode = (self._p("camera.width"), self._p("camera.height"))
        if mode not in CAMERA_MODES:
            raise ValueError(f"parameters camera.width/camera.height: {mode} is not one of "
                             f"the hand camera's modes {CAMERA_MODES}")
        if self._p("command_rate_hz") * self._p("command_timeout_s") < 2.0:
            raise ValueError("parameter command_rate_hz: commands must come at least twice "
                             "per command_timeout_s, or Baxter stops the arm between them")
        self._reset_state()
        self._watch = FollowWatch(FollowConfig(self._p("follow.tolerance_rad"),
                                               self._p("follow.timeout_s")))
        topic = {name: t for name, (t, _, _) in BAXTER_TOPICS.items()}
        # To Baxter. JointCommand is a lifecycle publisher: dropped unless active.
        self._command_pub = self.create_lifecycle_publisher(
            JointCommand, topic["joint_command"], 10)
        self._enable_pub = self.create_publisher(Bool, topic["enable"], 10)
        self._timeout_pub = self.create_publisher(Float64, topic["joint_command_timeout"], 10)
        self._speed_pub = self.create_publisher(Float64, topic["speed_ratio"], 10)
        self._gripper_pub = self.create_publisher(EndEffectorCommand,
                                                  topic["gripper_command"], 10)
        # The interface's outputs.
        self._joints_pub = self.create_publisher(JointState, "joint_states", 10)
        self._wrist_pub = self.create_publisher(Image, "wrist/color/image_raw", 5)
        self._wrist_info_pub = self.create_publisher(CameraInfo, "wrist/color/camera_info", 5)
        g = self._sensor_group
        self._entities = [
            ("sub", self.create_subscription(JointState, topic["joint_states"],
                                             self._on_joint_states, 10, callback_group=g)),
            ("sub", self.create_subscription(AssemblyState, topic["robot_state"],
                                             self._on_robot_state, 10, callback_group=g)),
            ("sub", self.create_subscription(EndEffectorState, topic["gripper_state"],
                                             self._on_gripper_state, 10, callback_group=g)),
            ("sub", self.create_subscription(EndEffectorProperties,
                                             topic["gripper_properties"],
                                             self._on_gripper_properties, 10,
                                             callback_group=g)),
            ("sub", self.create_subscription(Image, topic["hand_image"], self._on_image, 5,
                                             callback_group=g)),
            ("sub", self.create_subscription(CameraInfo, topic["hand_camera_info"],
                                             self._on_camera_info, 5, callback_group=g)),
            ("sub", self.create_subscription(JointTrajectory,
                                             "arm_controller/joint_trajectory",
                                             self._on_trajectory, 10,
                                             callback_group=self._command_group)),
            ("pub", self._enable_pub), ("pub", self._timeout_pub), ("pub", self._speed_pub),
            ("pub", self._gripper_pub), ("pub", self._joints_pub), ("pub", self._wrist_pub),
            ("pub", self._wrist_info_pub),
        ]
        self._open_camera = self.create_client(OpenCamera, BAXTER_SERVICES["open_camera"][0],
                                               callback_group=g)
        self._action_server = ActionServer(
            self, GripperCommand, "gripper_controller/gripper_cmd",
            execute_callback=self._execute_gripper, goal_callback=self._on_gripper_goal,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT, callback_group=g)
        # Made here and started on activate: a timer destroyed while the executor waits on
        # it leaves an unretrieved "destruction was requested" error behind.
        self._command_timer = self.create_timer(1.0 / self._p("command_rate_hz"),
                                                self._on_command_tick,
                                                callback_group=self._command_group)
        self._command_timer.cancel()
        self._diagnostics_timer = self.create_timer(self._p("diagnostics_period_s"),
                                                    self._publish_diagnostics,
                                                    callback_group=g)

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = super().on_activate(state)  # enables the JointCommand publisher
        try:
            self._activate()
        except RuntimeError as exc:
            self.get_logger().error(f"activate refused: {exc}")
            self._stop_commanding()
            super().on_deactivate(state)
            self._publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info("active: the arm follows arm_controller/joint_trajectory")
        return result

    def _activate(self) -> None:
        with self._lock:
            self.latched.clear()
            self._watch.reset()
            self.robot = None  # only a state that comes after the enable request counts
            self.faults, self._reported = {}, frozenset()
        self._timeout_pub.publish(Float64(data=float(self._p("command_timeout_s"))))
        self._speed_pub.publish(Float64(data=float(self._p("speed_ratio"))))
        # Enable until the robot says it is enabled (baxter_interface RobotEnable does so).
        deadline = time.monotonic() + self._p("enable_timeout_s")
        while not (self.robot is not None and self.robot.enabled and not self.robot.stopped):
            if time.monotonic() > deadline:
                raise RuntimeError("the robot did not enable: " + "; ".join(
                    robot_faults(self.robot).values()))
            self._enable_pub.publish(Bool(data=True))
            time.sleep(0.1)
        if not self._wait(lambda: self.arm is not None, 2.0):
            raise RuntimeError("no /robot/joint_states with the right arm")
        if not self._wait(lambda: self.gripper_id is not None and self.gripper is not None,
                          3.0):
            raise RuntimeError(f"no {GRIPPER}/properties or state: is the gripper attached?")
        deadline = time.monotonic() + self._p("calibrate_timeout_s")
        sent_at = -math.inf
        while self.gripper is None or self.gripper.calibrated != 1:
            if time.monotonic() > deadline:
                raise RuntimeError("the gripper did not calibrate: " + "; ".join(
                    gripper_faults(self.gripper).values()))
            if time.monotonic() - sent_at > 2.0:  # calibrating takes a while: ask again
                self._gripper_command(EndEffectorCommand.CMD_CALIBRATE)
                sent_at = time.monotonic()
            time.sleep(0.05)
        self._open_hand_camera()
        with self._lock:
            self.follower = TrajectoryFollower(self.arm)
            self.active = True
        self._command_timer.reset()

    def _open_hand_camera(self) -> None:
        if not self._open_camera.wait_for_service(timeout_sec=3.0):
            raise RuntimeError("service /cameras/open not available")
        request = OpenCamera.Request(name=HAND_CAMERA, settings=CameraSettings(
            width=int(self._p("camera.width")), height=int(self._p("camera.height")),
            fps=float(self._p("camera.fps"))))
        future = self._open_camera.call_async(request)
        if not self._wait(future.done, 5.0) or future.result() is None:
            raise RuntimeError("/cameras/open did not answer")
        if future.result().err != 0:
            raise RuntimeError(f"/cameras/open refused {HAND_CAMERA} at "
                               f"{request.settings.width}x{request.settings.height}: err "
                               f"{future.result().err}")

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding()
        return super().on_deactivate(state)

    def _stop_commanding(self) -> None:
        """No more commands (Baxter stops the arm after its timeout); the robot disabled."""
        with self._lock:
            self.active = False
        if self._command_timer is not None:
            self._command_timer.cancel()
        if self._enable_pub is not None:
            self._enable_pub.publish(Bool(data=False))

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._stop_commanding()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _release(self) -> None:
        for kind, entity in self._entities:
            (self.destroy_subscription if kind == "sub" else self.destroy_publisher)(entity)
        self._entities = []
        self._enable_pub = None
        if self._action_server is not None:
            self._action_server.destroy()
            self._action_server = None
        for timer in (self._diagnostics_timer, self._command_timer):
            if timer is not None:
                self.destroy_timer(timer)
        self._diagnostics_timer = self._command_timer = None

    # ------------------------------------------------------------------ from Baxter
    def _now(self) -> float:
        return time.monotonic()

    def _wait(self, condition: Any, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while not condition():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _on_joint_states(self, msg: JointState) -> None:
        arm = conversions.arm_positions(msg)
        if arm is None or not np.all(np.isfinite(arm)):
            return  # e.g. a message with the head only; stale if it lasts
        with self._lock:
            self.arm, self.arm_received_s = arm, self._now()
            gripper = self.gripper
        if gripper is not None:
            out = conversions.interface_joint_state(arm, gripper.position_pct, msg)
            self._restamp(out)
            self._joints_pub.publish(out)

    def _restamp(self, msg: Any) -> None:
        if self._stamp_on_arrival:
            msg.header.stamp = self.get_clock().now().to_msg()

    def _on_robot_state(self, msg: AssemblyState) -> None:
        with self._lock:
            self.robot = conversions.robot_state(msg)

    def _on_gripper_state(self, msg: EndEffectorState) -> None:
        with self._lock:
            self.gripper = conversions.gripper_state(msg)

    def _on_gripper_properties(self, msg: EndEffectorProperties) -> None:
        self.gripper_id = int(msg.id)

    def _on_image(self, msg: Image) -> None:
        try:
            image = conversions.rgb_image(msg, WRIST_FRAME)
            self._restamp(image)
            self._wrist_pub.publish(image)
        except ValueError as exc:
            self.get_logger().warning(f"hand camera frame dropped: {exc}",
                                      throttle_duration_sec=5.0)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        msg.header.frame_id = WRIST_FRAME
        self._restamp(msg)
        self._wrist_info_pub.publish(msg)

    # ------------------------------------------------------------------ faults and commands
    def current_faults(self, now_s: float) -> dict[Fault, str]:
        """Every fault now (the robot's, the gripper's, stale joint states, latched)."""
        with self._lock:
            faults = {**robot_faults(self.robot), **gripper_faults(self.gripper),
                      **joint_state_faults(self.arm_received_s, now_s,
                                           self._p("joint_state_max_age_s")),
                      **self.latched}
        return faults

    def _on_command_tick(self) -> None:
        now = self._now()
        faults = self.current_faults(now)
        with self._lock:
            if not self.active or self.follower is None:
                return
            if bool(faults) != bool(self.faults) and self.arm is not None:
                # A fault began (hold where measured; motion is refused while it lasts) or
                # ended (the arm may have been moved meanwhile, e.g. while disabled: hold
                # where it is now until a new trajectory comes).
                self.follower.hold(self.arm)
            target = self.follower.target(now)
            if not faults and self.arm is not None:
                line = self._watch.update(target, self.arm, now)
                if line is not None:
                    self.latched[Fault.NOT_FOLLOWING] = line
                    faults[Fault.NOT_FOLLOWING] = line
                    self.follower.hold(self.arm)
                    target = self.arm.copy()
            self.faults = faults
            send = not (set(faults) & STOP_SENDING)
            if faults:
                self._watch.reset()
        if frozenset(faults) != self._reported:
            self._reported = frozenset(faults)
            if faults:
                self.get_logger().error("the arm holds: " + "; ".join(
                    f"{f.value}: {line}" for f, line in faults.items()))
            else:
                self.get_logger().info("faults cleared; the arm holds until a new trajectory")
            self._publish_diagnostics()
        if send:
            self._command_pub.publish(conversions.position_command(target))
            self.commands_sent += 1

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        now = self._now()
        with self._lock:
            if not self.active or self.follower is None:
                self.refused += 1
                self.get_logger().warning("joint trajectory refused: the bridge is not "
                                          "active", throttle_duration_sec=2.0)
                return
        faults = self.current_faults(now)
        if faults:
            self.refused += 1
            self.get_logger().warning("joint trajectory refused, the arm holds: " + ", ".join(
                f.value for f in faults), throttle_duration_sec=1.0)
            return
        try:
            points = trajectory_points(msg, conversions.ARM_JOINTS)
            for _, positions in points:
                check_arm_positions(positions)
            with self._lock:
                # Baxter's stamps are not on this clock: a trajectory starts on arrival.
                self.follower.follow(points, now)
        except ValueError as exc:
            self.refused += 1
            self.get_logger().warning(f"joint trajectory refused, the arm holds: {exc}")

    # ------------------------------------------------------------------ gripper
    def _gripper_command(self, command: str, args: dict[str, Any] | None = None) -> int:
        self._sequence += 1
        self._gripper_pub.publish(EndEffectorCommand(
            id=self.gripper_id or 0, command=command, args=json.dumps(args or {}),
            sender=NODE_NAME, sequence=self._sequence))
        return self._sequence

    def _on_gripper_goal(self, goal: Any) -> GoalResponse:
        if not math.isfinite(goal.command.position):
            self.get_logger().warning(f"gripper goal refused: position "
                                      f"{goal.command.position!r}")
            return GoalResponse.REJECT
        faults = self.current_faults(self._now())
        if not self.active or faults:
            self.get_logger().warning("gripper goal refused: " + (
                ", ".join(f.value for f in faults) if self.active else "not active"))
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _execute_gripper(self, goal_handle: Any) -> GripperCommand.Result:
        request = goal_handle.request.command
        close = request.position <= 0.0
        goal_pct = POSITION_CLOSED if close else POSITION_OPEN
        result = GripperCommand.Result()
        sequence = self._gripper_command(EndEffectorCommand.CMD_GO, {"position": goal_pct})
        deadline = time.monotonic() + self._p("gripper_timeout_s")
        # Done once the gripper has handled this command and stopped moving.
        while True:
            with self._lock:
                state = self.gripper
            if (state is not None and state.command_sequence == sequence
                    and state.moving == 0):
                break
            if goal_handle.is_cancel_requested:
                self._gripper_command(EndEffectorCommand.CMD_STOP)
                goal_handle.canceled()
                return result
            if time.monotonic() > deadline or not self.active or not rclpy.ok():
                self.get_logger().warning("gripper move did not finish")
                goal_handle.abort()
                return result
            time.sleep(0.005)
        result.position = float(gripper_opening_m(state.position_pct))
        held = close and not_fully_closed(state.position_pct, self._p("closed_opening_m"))
        result.stalled = bool(held or (close and state.gripping == 1))
        result.reached_goal = not result.stalled
        result.effort = float(request.max_effort) if close else 0.0
        goal_handle.succeed()
        return result

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        now = self._now()
        faults = self.current_faults(now) if self.active else self.faults
        if not self.active and not faults:
            faults = {**robot_faults(self.robot), **gripper_faults(self.gripper)}
        status = DiagnosticStatus(name=f"{NODE_NAME}: Baxter right arm", hardware_id="baxter")
        if faults:
            status.level = DiagnosticStatus.ERROR
            status.message = "holding: " + ", ".join(f.value for f in faults)
        else:
            status.level = DiagnosticStatus.OK
            status.message = "following" if self.active else "inactive"
        status.values = [KeyValue(key=f.value, value=line) for f, line in faults.items()]
        status.values += [KeyValue(key="active", value=str(self.active)),
                          KeyValue(key="commands_sent", value=str(self.commands_sent)),
                          KeyValue(key="trajectories_refused", value=str(self.refused))]
        msg = DiagnosticArray(status=[status])
        msg.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(msg)


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(args: list[str] | None = None) -> None:
    # rclpy's own SIGINT handler would shut the context down before the robot is disabled:
    # Ctrl-C and SIGTERM (ros2 launch's escalation) raise here instead, and the disable
    # goes out on a live context.
    rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    node = BaxterBridge()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node._stop_commanding()  # disable the robot on the way out
        time.sleep(0.2)  # let the disable go out
        executor.shutdown(timeout_sec=1.0)
        node.destroy_node()
        rclpy.try_shutdown()
