"""``fake_baxter``: a stand-in Baxter that speaks the Baxter SDK's topics with the mirrored
messages (``graspq_baxter_msgs``), for the bridge's tests and benches.

What it models, after baxter_interface and the robot's documented behaviour:

- ``/robot/set_super_enable`` (``std_msgs/Bool``) enables and disables the robot (not while
  e-stopped); ``/robot/state`` (``AssemblyState``) reports it at ``state_rate_hz``;
- ``/robot/limb/right/joint_command`` (``JointCommand``, POSITION_MODE only): each joint moves
  towards its commanded position at most at its velocity limit (the URDF's, times the speed
  ratio of ``/robot/limb/right/set_speed_ratio``), only while enabled; when no command has
  come for ``joint_command_timeout`` (``/robot/limb/right/joint_command_timeout``, 0.2 s by
  default) the arm stops where it is, as Baxter does;
- ``/robot/joint_states``: both arms, the head and the torso, by name, at ``rate_hz``;
- the electric gripper on ``/robot/end_effector/right_gripper/{command,state,properties}``:
  ``calibrate`` is needed before ``go`` moves it; ``go`` ``{"position": p}`` moves to p
  (0 closed .. 100 open) at ``gripper_speed_pct_s``, stopping on an object ``object_width_m``
  wide (``gripping``); commands with another id are ignored;
- the cameras: ``/cameras/list``, ``/cameras/open`` (only Baxter's modes) and
  ``/cameras/close``; once open, ``/cameras/right_hand_camera/image`` (``bgra8``, as Baxter
  sends it, synthetic) and ``camera_info`` at the opened size and rate.

Faults for the tests, as parameters (settable at run time): ``drop_commands`` (joint
commands stop reaching the robot), ``estop`` (the e-stop button: stopped, disabled),
``refuse_enable``, ``refuse_calibration``, ``gripper_error``. ``clear_calibration`` works as
on the robot.
"""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import numpy as np
import rclpy
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Bool, Float64

from graspq.drivers.baxter import gripper_opening_m, gripper_position_pct
from graspq_baxter_msgs.msg import (
    AssemblyState,
    EndEffectorCommand,
    EndEffectorProperties,
    EndEffectorState,
    JointCommand,
)
from graspq_baxter_msgs.srv import CloseCamera, ListCameras, OpenCamera

NODE_NAME = "fake_baxter"
JOINTS = ("s0", "s1", "e0", "e1", "w0", "w1", "w2")
RIGHT = tuple(f"right_{j}" for j in JOINTS)
ALL_JOINTS = ("head_nod", "head_pan", *(f"left_{j}" for j in JOINTS), *RIGHT, "torso_t0")
VELOCITY_LIMITS = np.array([2.5, 2.5, 2.5, 2.5, 5.0, 5.0, 5.0])  # rad/s, baxter.urdf
NEUTRAL = (0.0, -0.55, 0.0, 0.75, 0.0, 1.26, 0.0)  # baxter_interface move_to_neutral
CAMERA_MODES = ((1280, 800), (960, 600), (640, 400), (480, 300), (384, 240), (320, 200))
CAMERAS = ("head_camera", "left_hand_camera", "right_hand_camera")
GRIPPER = "/robot/end_effector/right_gripper"


class FakeBaxter(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)

        def declare(name: str, default: Any, text: str) -> Any:
            return self.declare_parameter(name, default,
                                          ParameterDescriptor(description=text)).value

        start = declare("initial_positions", list(NEUTRAL), "right arm s0..w2 at start (rad)")
        self.rate_hz = declare("rate_hz", 100.0, "joint states and integration rate (Hz)")
        state_hz = declare("state_rate_hz", 20.0, "/robot/state and properties rate (Hz)")
        self.gripper_id = declare("gripper_id", 131073, "the gripper's hardware id")
        self.gripper_speed = declare("gripper_speed_pct_s", 250.0,
                                     "gripper speed (% of the stroke per s)")
        self.faults: dict[str, Any] = {}
        for name, default, text in (
                ("object_width_m", 0.0, "width of the object between the fingers (0: none)"),
                ("drop_commands", False, "joint commands no longer reach the robot"),
                ("estop", False, "the e-stop button is pressed"),
                ("refuse_enable", False, "enabling does nothing"),
                ("refuse_calibration", False, "calibrate does nothing"),
                ("gripper_error", False, "the gripper reports an error")):
            self.faults[name] = declare(name, default, text)
        self.add_on_set_parameters_callback(self._on_parameters)
        if len(start) != 7:
            raise ValueError(f"parameter initial_positions needs 7 values, got {len(start)}")
        self.lock = threading.Lock()
        self.positions = {name: 0.0 for name in ALL_JOINTS}
        self.positions.update(zip(RIGHT, map(float, start), strict=True))
        self.target = np.array(start, dtype=float)
        self.enabled = False
        self.speed_ratio = 1.0
        self.command_timeout_s = 0.2
        self.last_command_s: float | None = None
        self.commands_received = 0  # JointCommands that arrived (taken or not)
        self.commands_taken = 0
        self.gripper = {"calibrated": 0, "position": 0.0, "goal": 0.0, "moving": 0,
                        "gripping": 0, "sequence": 0, "command": "", "sender": "",
                        "calibrate_at": None}
        self.camera: tuple[int, int, float] | None = None  # width, height, fps once open
        self._camera_timer: Any = None

        self._state_pub = self.create_publisher(AssemblyState, "/robot/state", 10)
        self._joints_pub = self.create_publisher(JointState, "/robot/joint_states", 10)
        self._gripper_state_pub = self.create_publisher(EndEffectorState, f"{GRIPPER}/state",
                                                        10)
        self._properties_pub = self.create_publisher(EndEffectorProperties,
                                                     f"{GRIPPER}/properties", 10)
        self._image_pub = self.create_publisher(Image, "/cameras/right_hand_camera/image", 5)
        self._info_pub = self.create_publisher(CameraInfo,
                                               "/cameras/right_hand_camera/camera_info", 5)
        self.create_subscription(Bool, "/robot/set_super_enable", self._on_enable, 10)
        self.create_subscription(JointCommand, "/robot/limb/right/joint_command",
                                 self._on_command, 10)
        self.create_subscription(Float64, "/robot/limb/right/joint_command_timeout",
                                 self._on_timeout, 10)
        self.create_subscription(Float64, "/robot/limb/right/set_speed_ratio",
                                 self._on_speed_ratio, 10)
        self.create_subscription(EndEffectorCommand, f"{GRIPPER}/command", self._on_gripper,
                                 10)
        self.create_service(ListCameras, "/cameras/list", self._on_list)
        self.create_service(OpenCamera, "/cameras/open", self._on_open)
        self.create_service(CloseCamera, "/cameras/close", self._on_close)
        self._last_tick = time.monotonic()
        self.create_timer(1.0 / self.rate_hz, self._tick)
        self.create_timer(1.0 / state_hz, self._publish_state)

    def _on_parameters(self, parameters: list[Any]) -> SetParametersResult:
        for parameter in parameters:
            if parameter.name in self.faults:
                self.faults[parameter.name] = parameter.value
                if parameter.name == "estop" and parameter.value:
                    with self.lock:
                        self.enabled = False  # Baxter disables on an e-stop
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ robot
    def _on_enable(self, msg: Bool) -> None:
        with self.lock:
            if not msg.data:
                self.enabled = False
            elif not self.faults["estop"] and not self.faults["refuse_enable"]:
                self.enabled = True

    def _on_timeout(self, msg: Float64) -> None:
        if msg.data > 0:
            self.command_timeout_s = float(msg.data)

    def _on_speed_ratio(self, msg: Float64) -> None:
        self.speed_ratio = min(max(float(msg.data), 0.0), 1.0)

    def _on_command(self, msg: JointCommand) -> None:
        with self.lock:
            self.commands_received += 1
            if (self.faults["drop_commands"] or not self.enabled or self.faults["estop"]
                    or msg.mode != JointCommand.POSITION_MODE
                    or len(msg.names) != len(msg.command)):
                return
            for name, value in zip(msg.names, msg.command, strict=True):
                if name in RIGHT and np.isfinite(value):
                    self.target[RIGHT.index(name)] = float(value)
            self.last_command_s = time.monotonic()
            self.commands_taken += 1

    def arm(self) -> np.ndarray:
        with self.lock:
            return np.array([self.positions[name] for name in RIGHT])

    def _tick(self) -> None:
        now = time.monotonic()
        dt, self._last_tick = now - self._last_tick, now
        with self.lock:
            current = np.array([self.positions[name] for name in RIGHT])
            timed_out = (self.last_command_s is None
                         or now - self.last_command_s > self.command_timeout_s)
            if not self.enabled or self.faults["estop"] or timed_out:
                self.target = current.copy()  # the arm stops where it is
            step = VELOCITY_LIMITS * self.speed_ratio * dt
            moved = current + np.clip(self.target - current, -step, step)
            self.positions.update(zip(RIGHT, moved.tolist(), strict=True))
            self._tick_gripper(dt)
            msg = JointState(name=list(ALL_JOINTS),
                             position=[self.positions[name] for name in ALL_JOINTS])
            state = self._gripper_state()
        stamp = self.get_clock().now().to_msg()
        msg.header.stamp = stamp
        state.timestamp = stamp
        self._joints_pub.publish(msg)
        self._gripper_state_pub.publish(state)

    def _publish_state(self) -> None:
        estop = bool(self.faults["estop"])
        with self.lock:
            enabled = self.enabled
        self._state_pub.publish(AssemblyState(
            ready=enabled, enabled=enabled, stopped=estop, error=False,
            estop_button=(AssemblyState.ESTOP_BUTTON_PRESSED if estop
                          else AssemblyState.ESTOP_BUTTON_UNPRESSED),
            estop_source=(AssemblyState.ESTOP_SOURCE_USER if estop
                          else AssemblyState.ESTOP_SOURCE_NONE)))
        self._properties_pub.publish(EndEffectorProperties(
            id=self.gripper_id, ui_type=EndEffectorProperties.ELECTRIC_GRIPPER,
            manufacturer="Rethink Research Robot", product="Electric Parallel Gripper",
            has_calibration=True, controls_grip=True, senses_grip=True, controls_force=True,
            senses_force=True, controls_position=True, senses_position=True))

    # ------------------------------------------------------------------ gripper
    def _on_gripper(self, msg: EndEffectorCommand) -> None:
        if msg.id != self.gripper_id:
            self.get_logger().warning(f"gripper command for id {msg.id} ignored (this gripper "
                                      f"is {self.gripper_id})")
            return
        g = self.gripper
        with self.lock:
            g["sequence"], g["command"], g["sender"] = msg.sequence, msg.command, msg.sender
            if msg.command == EndEffectorCommand.CMD_CALIBRATE:
                if not self.faults["refuse_calibration"]:
                    g["calibrate_at"] = time.monotonic() + 0.2  # calibrating takes a while
                    g["moving"] = 1
            elif msg.command == EndEffectorCommand.CMD_CLEAR_CALIBRATION:
                g["calibrated"], g["moving"], g["calibrate_at"] = 0, 0, None
            elif msg.command == EndEffectorCommand.CMD_GO and g["calibrated"] == 1:
                try:
                    goal = float(json.loads(msg.args or "{}")["position"])
                except (ValueError, KeyError, TypeError):
                    self.get_logger().warning(f"gripper go with bad args {msg.args!r} ignored")
                    return
                g["goal"] = min(max(goal, 0.0), 100.0)
                g["moving"], g["gripping"] = 1, 0
            elif msg.command == EndEffectorCommand.CMD_STOP:
                g["goal"], g["moving"] = g["position"], 0

    def _tick_gripper(self, dt: float) -> None:
        g = self.gripper
        if g["calibrate_at"] is not None:
            if time.monotonic() >= g["calibrate_at"]:
                g.update(calibrated=1, position=100.0, goal=100.0, moving=0,
                         calibrate_at=None)
            return
        if not g["moving"]:
            return
        width = float(self.faults["object_width_m"])
        stop_at = gripper_position_pct(width) if width > 0 else 0.0
        step = self.gripper_speed * dt
        if g["goal"] < g["position"]:  # closing: an object between the fingers stops them
            blocked = width > 0 and g["goal"] < stop_at <= g["position"]
            floor = stop_at if blocked else g["goal"]
            g["position"] = max(g["position"] - step, floor)
            if g["position"] <= floor:
                g["moving"], g["gripping"] = 0, int(blocked)
        else:
            g["position"] = min(g["position"] + step, g["goal"])
            g["moving"] = int(g["position"] < g["goal"])

    def _gripper_state(self) -> EndEffectorState:
        g = self.gripper
        return EndEffectorState(
            id=self.gripper_id, enabled=1, calibrated=g["calibrated"],
            ready=int(not g["moving"]), moving=g["moving"], gripping=g["gripping"], missed=0,
            error=int(bool(self.faults["gripper_error"])), reverse=0,
            position=float(g["position"]), force=30.0 if g["gripping"] else 0.0,
            state=json.dumps({"opening_m": gripper_opening_m(g["position"])}),
            command=g["command"], command_sender=g["sender"],
            command_sequence=int(g["sequence"]))

    # ------------------------------------------------------------------ cameras
    def _on_list(self, request: ListCameras.Request, response: ListCameras.Response
                 ) -> ListCameras.Response:
        response.cameras = list(CAMERAS)
        return response

    def _on_open(self, request: OpenCamera.Request, response: OpenCamera.Response
                 ) -> OpenCamera.Response:
        mode = (request.settings.width, request.settings.height)
        fps = float(request.settings.fps) or 20.0
        if request.name != "right_hand_camera" or mode not in CAMERA_MODES or not 0 < fps <= 60:
            self.get_logger().warning(f"cannot open {request.name} at {mode} {fps} fps")
            response.err = -1
            return response
        if self._camera_timer is not None:
            self.destroy_timer(self._camera_timer)
        rng = np.random.default_rng(0)
        width, height = mode
        bgra = rng.integers(0, 256, (height, width, 4), dtype=np.uint8)
        bgra[..., 3] = 255
        self._frame = Image(width=width, height=height, encoding="bgra8", is_bigendian=0,
                            step=4 * width, data=bgra.tobytes())
        self._frame.header.frame_id = "right_hand_camera"
        focal = 0.5 * width  # about Baxter's hand camera's field of view
        self._info = CameraInfo(width=width, height=height, distortion_model="plumb_bob",
                                d=[0.0] * 5, k=[focal, 0.0, width / 2, 0.0, focal, height / 2,
                                                0.0, 0.0, 1.0])
        self._info.header.frame_id = "right_hand_camera"
        self.camera = (width, height, fps)
        self._camera_timer = self.create_timer(1.0 / fps, self._publish_image)
        response.err = 0
        return response

    def _on_close(self, request: CloseCamera.Request, response: CloseCamera.Response
                  ) -> CloseCamera.Response:
        if request.name == "right_hand_camera" and self._camera_timer is not None:
            self.destroy_timer(self._camera_timer)
            self._camera_timer, self.camera = None, None
        response.err = 0
        return response

    def _publish_image(self) -> None:
        stamp = self.get_clock().now().to_msg()
        self._frame.header.stamp = stamp
        self._info.header.stamp = stamp
        self._image_pub.publish(self._frame)
        self._info_pub.publish(self._info)


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    try:
        node = FakeBaxter()
    except ValueError as exc:
        print(f"fake_baxter: {exc}")
        rclpy.try_shutdown()
        raise SystemExit(2) from None
    executor = MultiThreadedExecutor(num_threads=2)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
