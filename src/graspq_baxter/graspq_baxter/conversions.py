"""The Baxter bridge's message conversions: Baxter's messages <-> the core's plain types
(:mod:`graspq.drivers.baxter`) and the robot interface's messages."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image, JointState

from graspq.drivers.baxter import GripperState, RobotState, gripper_opening_m
from graspq.sim.robot import JOINT_STATE_NAMES, finger_positions
from graspq_baxter_msgs.msg import AssemblyState, EndEffectorState, JointCommand

ARM_JOINTS = JOINT_STATE_NAMES[:7]
FINGER_JOINTS = JOINT_STATE_NAMES[7:]
_CHANNELS = {"bgra8": (4, [2, 1, 0]), "bgr8": (3, [2, 1, 0]), "rgb8": (3, [0, 1, 2]),
             "rgba8": (4, [0, 1, 2])}
"""Colour encodings the hand camera may send: channels per pixel, where R, G, B are."""


def robot_state(msg: AssemblyState) -> RobotState:
    return RobotState(enabled=bool(msg.enabled), stopped=bool(msg.stopped),
                      error=bool(msg.error), estop_button=int(msg.estop_button),
                      estop_source=int(msg.estop_source))


def gripper_state(msg: EndEffectorState) -> GripperState:
    return GripperState(calibrated=int(msg.calibrated), error=int(msg.error),
                        position_pct=float(msg.position), gripping=int(msg.gripping),
                        moving=int(msg.moving), command_sequence=int(msg.command_sequence))


def arm_positions(msg: JointState) -> np.ndarray | None:
    """The right arm's positions (7,) in ``right_s0 .. right_w2`` order from Baxter's
    ``/robot/joint_states`` (all joints, any order); None if one is missing."""
    names = list(msg.name)
    if len(msg.position) != len(names):
        return None
    try:
        return np.array([msg.position[names.index(name)] for name in ARM_JOINTS], float)
    except ValueError:
        return None


def interface_joint_state(arm: np.ndarray, gripper_pct: float, msg: JointState
                          ) -> JointState:
    """The interface's ``joint_states``: the right arm, then both finger joints (m) from the
    gripper position; the stamp of Baxter's message."""
    out = JointState(name=list(JOINT_STATE_NAMES),
                     position=[*map(float, arm), *finger_positions(gripper_opening_m(
                         gripper_pct))])
    out.header.stamp = msg.header.stamp
    return out


def position_command(positions: np.ndarray) -> JointCommand:
    """A POSITION_MODE JointCommand for the right arm (rad)."""
    return JointCommand(mode=JointCommand.POSITION_MODE, command=[float(v) for v in positions],
                        names=list(ARM_JOINTS))


def rgb_image(msg: Image, frame_id: str) -> Image:
    """A colour image (``bgra8`` as Baxter's cameras send it, ``bgr8``, ``rgb8``, ``rgba8``)
    as ``rgb8`` with ``frame_id``. Raises ValueError for other encodings or a short
    buffer."""
    if msg.encoding not in _CHANNELS:
        raise ValueError(f"hand camera encoding {msg.encoding!r} is not one of "
                         f"{sorted(_CHANNELS)}")
    channels, order = _CHANNELS[msg.encoding]
    row = msg.width * channels
    if msg.step < row or len(msg.data) < msg.step * msg.height:
        raise ValueError(f"hand camera image of {len(msg.data)} bytes is too short for "
                         f"{msg.width}x{msg.height} {msg.encoding} (step {msg.step})")
    rows = np.frombuffer(msg.data, np.uint8, msg.step * msg.height).reshape(msg.height,
                                                                           msg.step)
    rgb = np.ascontiguousarray(rows[:, :row].reshape(msg.height, msg.width, channels)[
        ..., order])
    out = Image(height=msg.height, width=msg.width, encoding="rgb8", is_bigendian=0,
                step=3 * msg.width, data=rgb.tobytes())
    out.header.stamp, out.header.frame_id = msg.header.stamp, frame_id
    return out
