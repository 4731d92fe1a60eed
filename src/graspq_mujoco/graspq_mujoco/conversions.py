"""The robot node's numpy <-> message conversions: images, camera info, joint states,
trajectories and transforms."""

from __future__ import annotations

import mujoco
import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import TransformStamped
from sensor_msgs.msg import CameraInfo, Image, JointState
from trajectory_msgs.msg import JointTrajectory

from graspq.sim.cameras import camera_intrinsics

DEPTH_ENCODINGS = {"32FC1": np.float32, "16UC1": np.uint16}
_MM_PER_M = 1000.0


def seconds_to_stamp(seconds: float) -> Time:
    """Seconds (>= 0) as a ROS time stamp."""
    nanoseconds = max(0, round(seconds * 1e9))
    return Time(sec=nanoseconds // 1_000_000_000, nanosec=nanoseconds % 1_000_000_000)


def stamp_seconds(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def colour_message(rgb: np.ndarray, stamp: Time, frame_id: str) -> Image:
    """uint8 (H, W, 3) RGB as an ``rgb8`` image."""
    height, width = rgb.shape[:2]
    msg = Image(height=height, width=width, encoding="rgb8", is_bigendian=0, step=3 * width,
                data=np.ascontiguousarray(rgb, dtype=np.uint8).tobytes())
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def depth_message(depth_m: np.ndarray, encoding: str, stamp: Time, frame_id: str) -> Image:
    """Depth in metres as ``32FC1`` (metres) or ``16UC1`` (millimetres, 0 = no depth, as a
    RealSense sends it)."""
    depth = np.asarray(depth_m, dtype=np.float32)
    if encoding == "16UC1":
        valid = np.isfinite(depth) & (depth > 0)
        millimetres = np.zeros(depth.shape, dtype=np.uint16)
        millimetres[valid] = np.clip(np.rint(depth[valid] * _MM_PER_M), 0, 65535)
        data, item = millimetres.astype("<u2"), 2
    elif encoding == "32FC1":
        data, item = depth.astype("<f4"), 4
    else:
        raise ValueError(f"depth encoding {encoding!r} is not one of {sorted(DEPTH_ENCODINGS)}")
    height, width = depth.shape[:2]
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=0,
                step=item * width, data=data.tobytes())
    msg.header.stamp, msg.header.frame_id = stamp, frame_id
    return msg


def camera_info(fovy_deg: float, size: int, frame_id: str) -> CameraInfo:
    """The pinhole model of a square MuJoCo camera image (no distortion)."""
    fx, fy, cx, cy = camera_intrinsics(fovy_deg, size)
    info = CameraInfo(height=size, width=size, distortion_model="plumb_bob")
    info.header.frame_id = frame_id
    info.d = [0.0] * 5
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def joint_state(names: tuple[str, ...], positions: np.ndarray, stamp: Time) -> JointState:
    msg = JointState(name=list(names), position=[float(v) for v in positions])
    msg.header.stamp = stamp
    return msg


def trajectory_points(msg: JointTrajectory, arm_joints: tuple[str, ...]
                      ) -> list[tuple[float, np.ndarray]]:
    """``(time from start s, positions (7,) in arm order)`` of a trajectory that names all
    seven arm joints (in any order). Raises ValueError naming what is wrong."""
    missing = [name for name in arm_joints if name not in msg.joint_names]
    if missing:
        raise ValueError(f"trajectory lacks joint(s) {missing}")
    if not msg.points:
        raise ValueError("trajectory has no points")
    order = [list(msg.joint_names).index(name) for name in arm_joints]
    points = []
    for i, point in enumerate(msg.points):
        if len(point.positions) != len(msg.joint_names):
            raise ValueError(f"point {i} has {len(point.positions)} positions for "
                             f"{len(msg.joint_names)} joints")
        positions = np.array([point.positions[j] for j in order], dtype=float)
        if not np.all(np.isfinite(positions)):
            raise ValueError(f"point {i} has non-finite positions")
        t = point.time_from_start.sec + point.time_from_start.nanosec * 1e-9
        points.append((t, positions))
    return points


def optical_transform(parent: str, child: str, position: np.ndarray,
                      rotation: np.ndarray) -> TransformStamped:
    """The transform from ``parent`` to a camera's optical frame at ``position`` (m) with
    rotation matrix ``rotation`` (the optical frame's axes in ``parent``)."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, np.asarray(rotation, dtype=float).ravel())
    transform = TransformStamped()
    transform.header.frame_id, transform.child_frame_id = parent, child
    t = transform.transform
    t.translation.x, t.translation.y, t.translation.z = (float(v) for v in position)
    t.rotation.w, t.rotation.x, t.rotation.y, t.rotation.z = (float(v) for v in quat)
    return transform
