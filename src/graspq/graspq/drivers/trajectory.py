"""The joint trajectory of the robot interface, as a driver that streams position commands
follows it.

``arm_controller/joint_trajectory`` means (docs/ros_interface.md): one point, move there
over its ``time_from_start`` with the env's ramp (the targets go from the last goal to the
new one over the first :data:`RAMP_FRACTION` of the time, then hold); several points, hold
each point's positions from its time on (the grasp's lift). A driver asks
:meth:`TrajectoryFollower.target` for the position to command at each tick of its own
(Gazebo's joint controllers, Baxter's position-mode JointCommand), so the motion is the one
the MuJoCo scene plays.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

RAMP_FRACTION = 0.4
"""Share of a one-point move's duration over which the joint targets ramp (the env's too)."""


def _checked(points: list[tuple[float, np.ndarray]], joints: int
             ) -> tuple[list[float], list[np.ndarray]]:
    if not points:
        raise ValueError("a trajectory needs at least one point")
    times = [float(t) for t, _ in points]
    goals = [np.asarray(p, dtype=float) for _, p in points]
    if any(g.shape != (joints,) or not np.all(np.isfinite(g)) for g in goals):
        raise ValueError(f"trajectory points must hold {joints} finite joint positions")
    if any(not math.isfinite(t) or t < 0 for t in times) or times != sorted(times):
        raise ValueError(f"trajectory times must be finite, >= 0 and increasing: {times}")
    return times, goals


class TrajectoryFollower:
    """The commanded joint positions over time (see the module docstring).

    Args:
        start: the positions commanded before any trajectory (the measured or home pose).
    """

    def __init__(self, start: np.ndarray) -> None:
        self._last = np.array(start, dtype=float)
        if self._last.ndim != 1 or not np.all(np.isfinite(self._last)):
            raise ValueError(f"start positions must be a finite vector, got {start!r}")
        self._times: list[float] = []  # absolute times of the points (s)
        self._goals: list[np.ndarray] = []
        self._ramp: tuple[float, float, np.ndarray, np.ndarray] | None = None

    @property
    def goal(self) -> np.ndarray:
        """Where the arm is going: the last point of the trajectory being followed."""
        if self._ramp is not None:
            return self._ramp[3].copy()
        return (self._goals[-1] if self._goals else self._last).copy()

    def follow(self, points: list[tuple[float, np.ndarray]], start_s: float) -> None:
        """Follow ``points`` (``(time from start s, positions)``, times increasing) from
        ``start_s``; replaces what is left of the last trajectory. Raises ValueError (and
        keeps the last trajectory) if a point is malformed."""
        times, goals = _checked(points, self._last.size)
        if not math.isfinite(start_s):
            raise ValueError(f"trajectory start must be finite, got {start_s!r}")
        origin = self.target(start_s)
        self._last = origin
        if len(goals) == 1:
            self._times, self._goals = [], []
            self._ramp = (start_s, start_s + RAMP_FRACTION * times[0], origin, goals[0])
        else:
            self._ramp = None
            self._times = [start_s + t for t in times]
            self._goals = goals

    def hold(self, positions: np.ndarray) -> None:
        """Drop the trajectory and command ``positions`` (where the arm is measured to be)."""
        held = np.array(positions, dtype=float)
        if held.shape != self._last.shape or not np.all(np.isfinite(held)):
            raise ValueError(f"hold positions must be {self._last.size} finite values")
        self._last, self._times, self._goals, self._ramp = held, [], [], None

    def target(self, now_s: float) -> np.ndarray:
        """The positions to command at time ``now_s``."""
        if self._ramp is not None:
            begin, end, origin, goal = self._ramp
            if now_s >= end:
                return goal.copy()
            share = 0.0 if now_s <= begin else (now_s - begin) / (end - begin)
            return origin + share * (goal - origin)
        index = bisect.bisect_right(self._times, now_s) - 1
        return (self._goals[index] if index >= 0 else self._last).copy()
