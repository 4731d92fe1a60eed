"""Safety limits of the servo runtime, as pure functions over a frozen limits object.

The runtime refuses a move whose target leaves the workspace box or yaw range (as the env
does: "not executed"), and then still passes every command through these clamps, the last
line before the arm: whatever happened upstream, the commanded fingertip pose stays in the
box, no joint command changes by more than ``max_joint_step_rad`` per decision cycle or leaves
the joint limits, and the gripper force stays under its limit.

Frames: positions in metres in the robot's base frame; yaw offsets in radians from the
episode's start yaw (``scene.start_yaw_deg``), as in :mod:`graspq.sim.env`.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from graspq.servo.settings import ServoConfig
from graspq.sim.settings import EnvConfig

# Repeated 1 cm steps land on the box's faces only up to rounding; the env accepts targets
# this far outside (BaxterGraspEnv.in_workspace), and so must the box check and clamp here,
# or a move the env executes would be refused or nudged (and the IK target change).
BOX_TOLERANCE = 1e-9


@dataclasses.dataclass(frozen=True)
class SafetyLimits:
    """Workspace box, yaw range, joint limits and per-cycle steps the commands must respect."""

    center_xy_m: tuple[float, float]
    """Centre of the fingertip workspace box in x and y, m."""
    half_xy_m: float
    """Half width of the box in x and y, m."""
    table_z_m: float
    """Table top height (base frame z), m."""
    z_min_above_table_m: float
    """Lowest fingertip height above the table, m."""
    z_max_above_table_m: float
    """Highest fingertip height above the table, m."""
    yaw_limit_rad: float
    """Largest yaw offset either way from the start yaw, rad."""
    joint_lower_rad: np.ndarray
    """(7,) lower joint limits, rad (arm order s0..w2)."""
    joint_upper_rad: np.ndarray
    """(7,) upper joint limits, rad."""
    max_joint_step_rad: float
    """Largest change of any joint command per decision cycle, rad."""
    gripper_force_limit_n: float
    """Largest closing force per finger, N."""

    @classmethod
    def build(cls, env: EnvConfig, servo: ServoConfig, joint_range_rad: np.ndarray
              ) -> SafetyLimits:
        """Limits from the env config (box, yaw), the servo config (steps, force) and the
        arm's joint limits ``joint_range_rad`` (7, 2) (from the robot model)."""
        scene = env.scene
        ranges = np.asarray(joint_range_rad, dtype=float)
        if ranges.shape != (7, 2) or np.any(ranges[:, 0] > ranges[:, 1]):
            raise ValueError(f"joint_range_rad must be (7, 2) lower/upper pairs, got {ranges}")
        return cls(
            center_xy_m=tuple(scene.workspace_center_xy_m),
            half_xy_m=scene.workspace_half_xy_m,
            table_z_m=scene.table_top_z_m,
            z_min_above_table_m=scene.workspace_z_min_above_table_m,
            z_max_above_table_m=scene.workspace_z_max_above_table_m,
            yaw_limit_rad=math.radians(scene.yaw_limit_deg),
            joint_lower_rad=ranges[:, 0].copy(),
            joint_upper_rad=ranges[:, 1].copy(),
            max_joint_step_rad=servo.max_joint_step_rad,
            gripper_force_limit_n=servo.gripper_force_limit_n,
        )

    # ------------------------------------------------------------------ fingertip pose
    @property
    def z_min_m(self) -> float:
        """Lowest fingertip z in the base frame, m."""
        return self.table_z_m + self.z_min_above_table_m

    @property
    def z_max_m(self) -> float:
        """Highest fingertip z in the base frame, m."""
        return self.table_z_m + self.z_max_above_table_m

    def contains(self, position: np.ndarray, yaw_offset: float) -> bool:
        """Whether a fingertip target is allowed: the env's ``in_workspace`` test, operation
        for operation, so both accept exactly the same targets."""
        position = np.asarray(position, dtype=float)
        offset_xy = np.abs(position[:2] - np.asarray(self.center_xy_m))
        height = position[2] - self.table_z_m
        return bool(
            np.all(offset_xy <= self.half_xy_m + BOX_TOLERANCE)
            and self.z_min_above_table_m - BOX_TOLERANCE <= height
            <= self.z_max_above_table_m + BOX_TOLERANCE
            and abs(yaw_offset) <= self.yaw_limit_rad + BOX_TOLERANCE
        )

    def clamp_pose(self, position: np.ndarray, yaw_offset: float) -> tuple[np.ndarray, float]:
        """The nearest pose inside the box and yaw range; a target :meth:`contains` accepts
        comes back unchanged (so a move the env executes is not nudged). NaN coordinates
        become the box centre / zero yaw."""
        position = np.array(position, dtype=float)
        yaw = float(yaw_offset)
        if np.all(np.isfinite(position)) and math.isfinite(yaw) and self.contains(position, yaw):
            return position, yaw
        center = np.array([*self.center_xy_m, 0.5 * (self.z_min_m + self.z_max_m)])
        position = np.where(np.isfinite(position), position, center)
        low = np.array([self.center_xy_m[0] - self.half_xy_m,
                        self.center_xy_m[1] - self.half_xy_m, self.z_min_m])
        high = np.array([self.center_xy_m[0] + self.half_xy_m,
                         self.center_xy_m[1] + self.half_xy_m, self.z_max_m])
        yaw = yaw if math.isfinite(yaw) else 0.0
        limit = self.yaw_limit_rad
        return np.clip(position, low, high), min(max(yaw, -limit), limit)

    # ------------------------------------------------------------------ joints, gripper
    def clamp_joint_step(self, previous: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The joint command (7,) rad closest to ``goal`` that is inside the joint limits and
        within ``max_joint_step_rad`` of ``previous`` (the last command) for every joint.

        Both hold whenever ``previous`` is inside the limits. If it is not (a measured state
        slightly past a limit), the step limit wins: the joint moves back towards its range by
        at most the step, never jumps. A NaN goal entry keeps the previous command.
        """
        previous = np.asarray(previous, dtype=float)
        goal = np.asarray(goal, dtype=float)
        if previous.shape != (7,) or goal.shape != (7,):
            raise ValueError(f"joint commands must be (7,), got {previous.shape} and "
                             f"{goal.shape}")
        if not np.all(np.isfinite(previous)):
            raise ValueError(f"the previous joint command must be finite, got {previous}")
        goal = np.where(np.isfinite(goal), goal, previous)
        inside = np.clip(goal, self.joint_lower_rad, self.joint_upper_rad)
        step = np.clip(inside - previous, -self.max_joint_step_rad, self.max_joint_step_rad)
        # A joint whose step is within the limit gets the goal itself: previous + (goal -
        # previous) can differ from goal in the last bit, which would read as a clamp.
        command = np.where(np.abs(inside - previous) <= self.max_joint_step_rad, inside,
                           previous + step)
        # previous + (limit - previous) can round past the limit; clipping a joint that
        # started inside its range only shortens its step, so both guarantees still hold.
        started_inside = (previous >= self.joint_lower_rad) & (previous <= self.joint_upper_rad)
        return np.where(started_inside,
                        np.clip(command, self.joint_lower_rad, self.joint_upper_rad), command)

    def clamp_gripper_force(self, force_n: float) -> float:
        """A closing force per finger (N) within [0, ``gripper_force_limit_n``]."""
        if not math.isfinite(force_n):
            return 0.0
        return min(max(float(force_n), 0.0), self.gripper_force_limit_n)
