"""Messages <-> the servo runtime's plain types (the only place that knows both).

- ``sensor_msgs/Image`` -> numpy: ``rgb8``/``bgr8`` colour (uint8 H x W x 3, RGB order),
  ``32FC1`` depth in metres (float32 H x W), ``16UC1`` depth in units (uint16 H x W; the
  runtime scales by ``servo.depth_unit_m``). Row padding (``step``) and big-endian data are
  handled; anything else is a :class:`FrameError` that names the problem.
- native camera frames (e.g. a RealSense's 640x480) -> the policy's square image: the square
  that shows the trained camera's view (:func:`graspq.sim.cameras.overhead_crop_box`, from
  the camera's CameraInfo), resized with OpenCV; ``16UC1`` millimetres to metres, with "no
  depth" (0) read as the far depth bound;
- ``sensor_msgs/JointState`` -> the runtime's motor state (8,): Baxter's right arm
  ``right_s0 .. right_w2`` (rad) picked by name, then the gripper opening (m) from the two
  finger joints.
- :class:`graspq.servo.runtime.ServoStatus` -> ``graspq_interfaces/ServoStatus``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from sensor_msgs.msg import Image, JointState

from graspq.actions import NUM_ACTIONS
from graspq.servo.runtime import ServoStatus
from graspq.sim.robot import JOINT_STATE_NAMES
from graspq.sim.scene import gripper_opening
from graspq_interfaces.msg import HoldCount
from graspq_interfaces.msg import ServoStatus as ServoStatusMsg

ARM_JOINT_NAMES = JOINT_STATE_NAMES[:7]
FINGER_JOINT_NAMES = JOINT_STATE_NAMES[7:]

_COLOUR = {"rgb8": False, "bgr8": True}  # encoding -> channels reversed
_DEPTH = {"32FC1": np.dtype(np.float32), "16UC1": np.dtype(np.uint16)}


class FrameError(ValueError):
    """A message that cannot become a frame; ``kind`` is the hold reason it maps to."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind = kind


def stamp_seconds(stamp: Time) -> float:
    """A ROS time stamp in seconds."""
    return stamp.sec + stamp.nanosec * 1e-9


def seconds_to_stamp(seconds: float) -> Time:
    """Seconds (>= 0) as a ROS time stamp."""
    nanoseconds = max(0, round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def _rows(msg: Image, channels: int, dtype: np.dtype) -> np.ndarray:
    row_bytes = msg.width * channels * dtype.itemsize
    if msg.step < row_bytes or len(msg.data) < msg.step * msg.height:
        raise FrameError("image_size", f"{msg.encoding} image {msg.width}x{msg.height} has "
                         f"step {msg.step} and {len(msg.data)} bytes, too few")
    raw = np.frombuffer(bytes(msg.data), dtype=np.uint8, count=msg.step * msg.height)
    rows = raw.reshape(msg.height, msg.step)[:, :row_bytes]
    order = ">" if msg.is_bigendian else "<"
    return np.ascontiguousarray(rows).view(dtype.newbyteorder(order)).astype(dtype)


def colour_image(msg: Image) -> np.ndarray:
    """An ``rgb8``/``bgr8`` image as uint8 (H, W, 3) RGB."""
    if msg.encoding not in _COLOUR:
        raise FrameError("encoding", f"colour image encoding {msg.encoding!r}, expected one "
                         f"of {sorted(_COLOUR)}")
    pixels = _rows(msg, 3, np.dtype(np.uint8)).reshape(msg.height, msg.width, 3)
    return pixels[..., ::-1].copy() if _COLOUR[msg.encoding] else pixels


def depth_image(msg: Image) -> np.ndarray:
    """A ``32FC1`` (metres) or ``16UC1`` (units) depth image as float32 or uint16 (H, W)."""
    dtype = _DEPTH.get(msg.encoding)
    if dtype is None:
        raise FrameError("encoding", f"depth image encoding {msg.encoding!r}, expected one "
                         f"of {sorted(_DEPTH)}")
    return _rows(msg, 1, dtype).reshape(msg.height, msg.width)


def fit_to_policy(image: np.ndarray, size: int, box: tuple[int, int, int] | None = None,
                  nearest: bool = False) -> np.ndarray:
    """A native camera frame cut to the policy's view: the square ``box`` = ``(top, left,
    side)`` in pixels (the centred square of the shorter side if None), resized to ``size``
    x ``size``. Colour is averaged (``INTER_AREA``); depth (``nearest``) takes the nearest
    pixel, so no depth between an object's edge and the table is made up. A frame already
    ``size`` square is returned as it is."""
    height, width = image.shape[:2]
    if (height, width) == (size, size):
        return image
    if box is None:
        side = min(height, width)
        box = ((height - side) // 2, (width - side) // 2, side)
    top, left, side = box
    square = image[top:top + side, left:left + side]
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(square, (size, size), interpolation=interpolation)


def depth_metres(depth: np.ndarray, unit_m: float, no_depth_m: float) -> np.ndarray:
    """A ``16UC1`` depth image in metres (float32), its zeros ("no depth", as a RealSense
    marks holes) set to ``no_depth_m``; a float image is returned as it is."""
    if depth.dtype != np.uint16:
        return depth
    metres = depth.astype(np.float32) * np.float32(unit_m)
    metres[depth == 0] = no_depth_m
    return metres


def motor_state(msg: JointState) -> np.ndarray:
    """The runtime's motor state (8,): arm angles (rad) by name, then the gripper opening
    (m). A missing joint gives NaN there (the runtime holds on it and names it)."""
    index = {name: i for i, name in enumerate(msg.name)}
    values = np.full(8, np.nan)
    positions = list(msg.position)
    for i, name in enumerate(ARM_JOINT_NAMES):
        j = index.get(name)
        if j is not None and j < len(positions):
            values[i] = positions[j]
    fingers = [index.get(name) for name in FINGER_JOINT_NAMES]
    if all(j is not None and j < len(positions) for j in fingers):
        values[7] = gripper_opening(np.array([positions[j] for j in fingers]))
    return values


def status_message(status: ServoStatus, stamp: Time) -> ServoStatusMsg:
    """The runtime's status snapshot as a message (NaN for latencies before a decision)."""
    msg = ServoStatusMsg()
    msg.header.stamp = stamp
    msg.state = status.state.value
    msg.episode = int(status.episode)
    msg.step = int(status.step)
    msg.last_action = "" if status.last_action is None else status.last_action.name
    zeros = np.zeros(NUM_ACTIONS, dtype=np.float32)
    msg.q_values = (zeros if status.q_values is None else status.q_values).astype(np.float32)
    msg.grasp_probabilities = (zeros if status.grasp_probabilities is None
                               else status.grasp_probabilities).astype(np.float32)
    msg.policy_latency_ms = (math.nan if status.policy_latency_ms is None
                             else float(status.policy_latency_ms))
    msg.cycle_ms = math.nan if status.cycle_ms is None else float(status.cycle_ms)
    msg.decisions = status.decisions
    msg.not_executed = status.not_executed
    msg.joint_steps_clamped = status.joint_steps_clamped
    msg.held_bad_input = [HoldCount(reason=reason, count=count)
                          for reason, count in sorted(status.held_bad_input.items())]
    msg.held_total = status.held_total
    msg.holding = status.holding or ""
    msg.dropped_stale = status.dropped_stale
    msg.outcome = status.outcome.value
    msg.episode_return = float(status.episode_return)
    msg.estop_reason = status.estop_reason or ""
    return msg

