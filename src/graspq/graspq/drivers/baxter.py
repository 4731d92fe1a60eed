"""ROS-free logic of the Baxter driver bridge (``graspq_baxter``, issue #21 part 2).

Baxter's SDK (baxter_core_msgs, RethinkRobotics/baxter_common) speaks in its own units and
states; the bridge node converts them here, so that what it decides is testable without
ROS:

- the electric gripper's position, 0 (closed) .. 100 (open) percent of its stroke, as the
  pad separation in metres of the robot interface (the MuJoCo scene's
  :data:`~graspq.sim.scene.CLOSED_GAP_M` plus both fingers'
  :data:`~graspq.sim.scene.FINGER_STROKE_M`), and back;
- the grasp's success signal "not fully closed": the fingers stopped on something wider
  than the closed opening of the env's judge (``GripperConfig.closed_opening_m``);
- the faults that hold the arm: the robot's AssemblyState (no state, disabled, e-stop,
  error), the gripper's EndEffectorState (no state, not calibrated, error), joint states that
  stopped coming, and position commands the arm does not follow (e.g. the command stream no
  longer reaches the robot, which then stops the arm after its command timeout).

Plain dataclasses carry the messages' fields in; :class:`Fault` values name the causes that
the bridge reports in ``/diagnostics``.
"""

from __future__ import annotations

import dataclasses
import enum
import math

import numpy as np

from graspq.config import param
from graspq.sim.scene import CLOSED_GAP_M, FINGER_STROKE_M

POSITION_CLOSED, POSITION_OPEN = 0.0, 100.0
"""EndEffectorState.position / the ``go`` command's position: percent of the stroke."""
OPEN_GAP_M = CLOSED_GAP_M + 2.0 * FINGER_STROKE_M
"""Pad separation (m) of a fully open gripper."""
TRISTATE_FALSE, TRISTATE_TRUE, TRISTATE_UNKNOWN = 0, 1, 2
"""EndEffectorState's tri-state fields."""


ARM_LIMITS_RAD = np.array([
    (-1.70168, 1.70168), (-2.147, 1.047), (-3.05418, 3.05418), (-0.05, 2.618),
    (-3.059, 3.059), (-1.5708, 2.094), (-3.059, 3.059)])
"""Position limits (rad) of ``right_s0 .. right_w2`` (lower, upper), from
RethinkRobotics/baxter_common ``baxter_description/urdf/baxter.urdf``."""


def check_arm_positions(positions: np.ndarray) -> None:
    """Raise ValueError naming the joint if ``positions`` (7,) (rad, ``right_s0 ..
    right_w2``) is not finite or outside Baxter's limits."""
    values = np.asarray(positions, dtype=float)
    if values.shape != (7,) or not np.all(np.isfinite(values)):
        raise ValueError(f"arm positions must be 7 finite values, got {positions!r}")
    for index, (value, (low, high)) in enumerate(zip(values, ARM_LIMITS_RAD, strict=True)):
        if not low <= value <= high:
            raise ValueError(f"joint {index} ({('s0', 's1', 'e0', 'e1', 'w0', 'w1', 'w2')[index]})"
                             f" at {value:.4f} rad is outside Baxter's limits "
                             f"[{low:g}, {high:g}]")


def gripper_opening_m(position_pct: float) -> float:
    """Pad separation (m) for a gripper position (0 closed .. 100 open, clipped)."""
    share = min(max(float(position_pct), POSITION_CLOSED), POSITION_OPEN) / POSITION_OPEN
    return CLOSED_GAP_M + share * 2.0 * FINGER_STROKE_M


def gripper_position_pct(opening_m: float) -> float:
    """The gripper position (0 closed .. 100 open) for a pad separation (m, clipped to the
    stroke)."""
    share = (float(opening_m) - CLOSED_GAP_M) / (2.0 * FINGER_STROKE_M)
    return min(max(share, 0.0), 1.0) * POSITION_OPEN


def not_fully_closed(position_pct: float, closed_opening_m: float) -> bool:
    """The grasp's success signal: after closing, the fingers stopped wider apart than
    ``closed_opening_m`` (the env judge's "fully closed"), i.e. on an object."""
    return gripper_opening_m(position_pct) > closed_opening_m


class Fault(enum.Enum):
    """Why the bridge holds the arm and refuses motion (named in ``/diagnostics``)."""

    NO_ROBOT_STATE = "no_robot_state"
    DISABLED = "disabled"
    ESTOP = "estop"
    ROBOT_ERROR = "robot_error"
    NO_GRIPPER_STATE = "no_gripper_state"
    GRIPPER_NOT_CALIBRATED = "gripper_not_calibrated"
    GRIPPER_ERROR = "gripper_error"
    JOINT_STATES_STALE = "joint_states_stale"
    NOT_FOLLOWING = "not_following"


STOP_SENDING = frozenset({Fault.NO_ROBOT_STATE, Fault.DISABLED, Fault.ESTOP,
                          Fault.ROBOT_ERROR, Fault.JOINT_STATES_STALE})
"""Faults under which no JointCommand is sent at all (the robot would not take it, or where
the arm is is unknown): Baxter stops the arm itself when the stream stops. Under the other
faults the bridge commands the measured position."""
LATCHED = frozenset({Fault.NOT_FOLLOWING})
"""Faults that stay until the bridge is activated again (the others clear with their
cause; the arm still holds where it was measured until a new trajectory comes)."""


@dataclasses.dataclass(frozen=True)
class RobotState:
    """The fields of ``AssemblyState`` (``/robot/state``) the bridge reads."""

    enabled: bool
    stopped: bool
    error: bool
    estop_button: int = 0
    estop_source: int = 0


@dataclasses.dataclass(frozen=True)
class GripperState:
    """The fields of ``EndEffectorState`` the bridge reads (tri-states as 0/1/2)."""

    calibrated: int
    error: int
    position_pct: float
    gripping: int = TRISTATE_UNKNOWN
    moving: int = TRISTATE_UNKNOWN
    command_sequence: int = 0


_ESTOP_SOURCES = {0: "none", 1: "user (the red button)", 2: "unknown", 3: "joint fault",
                  4: "brain heartbeat lapse"}


def robot_faults(state: RobotState | None) -> dict[Fault, str]:
    """The faults in the robot's state, each with a line for people."""
    if state is None:
        return {Fault.NO_ROBOT_STATE: "no /robot/state received"}
    faults = {}
    if state.stopped:
        source = _ESTOP_SOURCES.get(state.estop_source, str(state.estop_source))
        faults[Fault.ESTOP] = f"e-stop asserted (source: {source}, button {state.estop_button})"
    if state.error:
        faults[Fault.ROBOT_ERROR] = "the robot reports an error"
    if not state.enabled:
        faults[Fault.DISABLED] = "the robot is disabled"
    return faults


def gripper_faults(state: GripperState | None) -> dict[Fault, str]:
    """The faults in the gripper's state, each with a line for people."""
    if state is None:
        return {Fault.NO_GRIPPER_STATE: "no end effector state received"}
    faults = {}
    if state.calibrated != TRISTATE_TRUE:
        faults[Fault.GRIPPER_NOT_CALIBRATED] = (
            f"the gripper is not calibrated (calibrated={state.calibrated})")
    if state.error == TRISTATE_TRUE:
        faults[Fault.GRIPPER_ERROR] = "the gripper reports an error"
    return faults


def joint_state_faults(last_s: float | None, now_s: float, max_age_s: float
                       ) -> dict[Fault, str]:
    """A fault if the newest joint state (received at ``last_s``) is older than
    ``max_age_s`` at ``now_s`` (all on one clock, s)."""
    if last_s is None:
        return {Fault.JOINT_STATES_STALE: "no /robot/joint_states with the right arm yet"}
    age = now_s - last_s
    if age > max_age_s:
        return {Fault.JOINT_STATES_STALE: f"newest joint state is {age:.3f} s old "
                                          f"(max {max_age_s:g} s)"}
    return {}


@dataclasses.dataclass(frozen=True)
class FollowConfig:
    """When position commands count as not followed."""

    tolerance_rad: float = param(0.15, "largest joint error between the commanded and the "
                                 "measured position that counts as following", unit="rad",
                                 gt=0.0)
    timeout_s: float = param(1.0, "how long the error may stay above the tolerance", unit="s",
                             gt=0.0)


class FollowWatch:
    """Watches the commanded against the measured arm position: "not following" when the
    largest joint error stays above ``tolerance_rad`` for longer than ``timeout_s`` (the arm
    moves at finite speed, so a new goal is some way off for a while)."""

    def __init__(self, config: FollowConfig = FollowConfig()) -> None:
        self.config = config
        self._since: float | None = None

    def reset(self) -> None:
        self._since = None

    def update(self, commanded: np.ndarray, measured: np.ndarray, now_s: float) -> str | None:
        """Returns a line naming the fault, or None while the arm follows."""
        error = np.abs(np.asarray(commanded, float) - np.asarray(measured, float))
        worst = float(np.max(error)) if error.size else 0.0
        if not math.isfinite(worst):
            return "commanded or measured joint positions are not finite"
        if worst <= self.config.tolerance_rad:
            self._since = None
            return None
        if self._since is None:
            self._since = now_s
        if now_s - self._since > self.config.timeout_s:
            return (f"the arm does not follow its commands: joint error {worst:.3f} rad for "
                    f"{now_s - self._since:.2f} s (tolerance {self.config.tolerance_rad:g} "
                    f"rad, {self.config.timeout_s:g} s)")
        return None
