"""Auxiliary pose loss: the network also predicts where the object is relative to the gripper.

An option (``pose_loss_weight``) beside the paper's TD loss. At training time the simulator
knows the object's pose (the privileged state the oracle reads), so every stored state can
carry a *pose target*: the object's offset from the commanded fingertip and the yaw the
gripper still has to turn. A small linear head on the GQN's joined features regresses it, and
its loss shapes the shared camera streams towards what the grasp decisions need: the cube's
yaw relative to the fingers, the object's offset, the height above it. This is an auxiliary
task with privileged targets (as in "asymmetric" or "privileged-information" training); the
head is never used to act and is not exported, so the policy's inputs stay the paper's.

Why it is needed: the diagnosis of recipe 3 (docs/results_fingertip.md) found the cube's
failures to be yaw and centring mistakes of a few degrees or millimetres. The oracle's turn
label (2 % of states) is the only signal about the cube's yaw, and it says only "more than
7.5 deg"; the pose target says how much, in every state.

Encoding, :data:`POSE_TARGETS` numbers per state:
- offset x, y, z in units of :data:`POSITION_UNIT_M` (the object is within a few units);
- cos and sin of 4x the yaw still to turn, times :data:`YAW_RADIUS`: a cube's faces repeat
  every 90 deg, so 4x the error is a full turn and the encoding is continuous where +45 deg
  meets -45 deg; spheres and cylinders need no turn (error 0). The radius makes a cube's turn
  weigh in the loss about as much as its offset (variance 2 per component against 5-9 for
  the offsets), instead of a twentieth of it.
Unlabelled states carry NaN and are left out of the loss. ``pose_yaw_weight`` scales the two
yaw terms against the three offset terms: traces of the cube's partial grasps found the head
reading a cube turned 36-44 deg as turned 1-10 deg at the height where the oracle turns, and
the policy descending without a turn. A weight of 4 cut the head's rms yaw error on the cube
by 16-28 % but left the cube's success where it was (docs/results_hour.md).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:  # the replay buffer imports this module; it must not pull in MuJoCo
    from graspq.sim.oracle import OraclePolicy

POSE_TARGETS = 5
OFFSET_COLUMNS = slice(0, 3)
YAW_COLUMNS = slice(3, 5)
POSITION_UNIT_M = 0.02
"""Offsets are regressed in units of 2 cm: the workspace spans about +-5 of them."""
YAW_RADIUS = 2.0
NO_POSE = np.full(POSE_TARGETS, np.nan, np.float32)
"""Pose target of a state nobody labelled."""


def encode_pose(offset_m: np.ndarray, yaw_error_rad: float) -> np.ndarray:
    """The pose target, float32 (POSE_TARGETS,), of an object offset (m, (3,)) and the yaw
    still to turn (rad)."""
    offset = np.asarray(offset_m, np.float64)
    if offset.shape != (3,) or not np.isfinite(offset).all() or not math.isfinite(yaw_error_rad):
        raise ValueError(f"pose needs a finite (3,) offset and yaw, got {offset_m!r}, "
                         f"{yaw_error_rad!r}")
    turns = 4.0 * yaw_error_rad
    return np.array([*(offset / POSITION_UNIT_M), YAW_RADIUS * math.cos(turns),
                     YAW_RADIUS * math.sin(turns)], np.float32)  # OFFSET_COLUMNS, YAW_COLUMNS


def decode_pose(encoded: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`encode_pose` for rows (..., POSE_TARGETS), targets or the head's
    predictions: offsets (..., 3) in m and the yaw still to turn (...) in rad, in [-45, 45) deg
    (a cube's yaw repeats every 90 deg)."""
    encoded = np.asarray(encoded, np.float64)
    offset_m = encoded[..., OFFSET_COLUMNS] * POSITION_UNIT_M
    cos4, sin4 = encoded[..., YAW_COLUMNS.start], encoded[..., YAW_COLUMNS.start + 1]
    return offset_m, np.arctan2(sin4, cos4) / 4.0


def pose_target(oracle: OraclePolicy) -> np.ndarray:
    """The pose target of the env's current state, read through the oracle's privileged
    view."""
    return encode_pose(oracle.object_offset(), oracle.yaw_error())


def pose_loss(predicted: torch.Tensor, targets: torch.Tensor,
              yaw_weight: float = 1.0) -> torch.Tensor | None:
    """Mean squared error over the rows whose targets are known (finite); None if none are.
    predicted, targets: (B, POSE_TARGETS). ``yaw_weight`` scales the two yaw terms' squared
    errors (``pose_yaw_weight``; 1 is the plain mean over all terms)."""
    if predicted.shape != targets.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} and targets "
                         f"{tuple(targets.shape)} differ in shape")
    known = torch.isfinite(targets).all(dim=1)
    if not bool(known.any()):
        return None
    weights = torch.ones(POSE_TARGETS, dtype=predicted.dtype)
    weights[YAW_COLUMNS] = yaw_weight
    return ((predicted[known] - targets[known]) ** 2 * weights).mean()
