"""graspq.drivers.baxter: the gripper's scale and success signal, and the faults that hold
Baxter's arm."""

import numpy as np
import pytest

from graspq.drivers.baxter import (
    ARM_LIMITS_RAD,
    LATCHED,
    OPEN_GAP_M,
    STOP_SENDING,
    Fault,
    FollowConfig,
    FollowWatch,
    GripperState,
    RobotState,
    check_arm_positions,
    gripper_faults,
    gripper_opening_m,
    gripper_position_pct,
    joint_state_faults,
    not_fully_closed,
    robot_faults,
)
from graspq.sim.robot import finger_positions
from graspq.sim.scene import CLOSED_GAP_M, FINGER_STROKE_M, gripper_opening
from graspq.sim.settings import GripperConfig


def test_gripper_scale_spans_the_scenes_stroke_and_inverts():
    assert gripper_opening_m(0.0) == pytest.approx(CLOSED_GAP_M)
    assert gripper_opening_m(100.0) == pytest.approx(CLOSED_GAP_M + 2 * FINGER_STROKE_M)
    assert pytest.approx(gripper_opening_m(100.0)) == OPEN_GAP_M
    assert gripper_opening_m(-5.0) == gripper_opening_m(0.0)  # clipped
    assert gripper_opening_m(250.0) == gripper_opening_m(100.0)
    for pct in (0.0, 12.5, 50.0, 99.0, 100.0):
        opening = gripper_opening_m(pct)
        assert gripper_position_pct(opening) == pytest.approx(pct)
        # the finger joints published for it give back the same opening (servo's motor state)
        assert gripper_opening(np.array(finger_positions(opening))) == pytest.approx(opening)
    assert gripper_position_pct(1.0) == 100.0 and gripper_position_pct(0.0) == 0.0


def test_not_fully_closed_is_the_env_judges_closed_opening():
    closed = GripperConfig().closed_opening_m
    assert not not_fully_closed(0.0, closed)
    assert not not_fully_closed(gripper_position_pct(closed), closed)
    assert not_fully_closed(gripper_position_pct(closed + 0.001), closed)
    assert not_fully_closed(gripper_position_pct(0.03), closed)  # a 3 cm object


def test_robot_state_faults_name_each_cause():
    ok = RobotState(enabled=True, stopped=False, error=False)
    assert robot_faults(ok) == {}
    assert set(robot_faults(None)) == {Fault.NO_ROBOT_STATE}
    assert set(robot_faults(RobotState(False, False, False))) == {Fault.DISABLED}
    estop = robot_faults(RobotState(False, True, False, estop_button=1, estop_source=1))
    assert set(estop) == {Fault.ESTOP, Fault.DISABLED}
    assert "red button" in estop[Fault.ESTOP]
    assert set(robot_faults(RobotState(True, False, True))) == {Fault.ROBOT_ERROR}
    assert {Fault.ESTOP, Fault.DISABLED, Fault.ROBOT_ERROR, Fault.NO_ROBOT_STATE} <= STOP_SENDING


def test_gripper_state_faults():
    assert gripper_faults(GripperState(calibrated=1, error=0, position_pct=100.0)) == {}
    assert set(gripper_faults(None)) == {Fault.NO_GRIPPER_STATE}
    assert set(gripper_faults(GripperState(0, 0, 100.0))) == {Fault.GRIPPER_NOT_CALIBRATED}
    assert set(gripper_faults(GripperState(2, 0, 100.0))) == {Fault.GRIPPER_NOT_CALIBRATED}
    assert set(gripper_faults(GripperState(1, 1, 100.0))) == {Fault.GRIPPER_ERROR}
    assert not (STOP_SENDING & {Fault.GRIPPER_ERROR, Fault.GRIPPER_NOT_CALIBRATED})


def test_stale_joint_states():
    assert set(joint_state_faults(None, 1.0, 0.2)) == {Fault.JOINT_STATES_STALE}
    assert joint_state_faults(0.9, 1.0, 0.2) == {}
    line = joint_state_faults(0.5, 1.0, 0.2)[Fault.JOINT_STATES_STALE]
    assert "0.500 s old" in line


def test_follow_watch_tolerates_lag_but_not_an_arm_that_stays_away():
    watch = FollowWatch(FollowConfig(tolerance_rad=0.1, timeout_s=0.5))
    goal, here = np.full(7, 0.5), np.zeros(7)
    assert watch.update(goal, goal + 0.05, 0.0) is None  # within tolerance
    assert watch.update(goal, here, 1.0) is None  # away, but only just
    assert watch.update(goal, here, 1.4) is None
    line = watch.update(goal, here, 1.6)
    assert line is not None and "0.500 rad" in line
    assert watch.update(goal, goal, 1.7) is None  # caught up: the timer restarts
    assert watch.update(goal, here, 2.0) is None
    assert watch.update(goal, np.full(7, np.nan), 2.1) is not None  # never silent on NaN
    assert Fault.NOT_FOLLOWING in LATCHED


def test_arm_positions_outside_baxters_limits_are_refused_by_name():
    from graspq.servo.runtime import ServoRuntime
    from graspq.sim.settings import EnvConfig

    home = ServoRuntime(EnvConfig()).home_joints()
    check_arm_positions(home)  # the servo's home is reachable
    check_arm_positions(ARM_LIMITS_RAD[:, 0])
    too_far = home.copy()
    too_far[3] = 2.7
    with pytest.raises(ValueError, match=r"joint 3 \(e1\) at 2.7000 rad"):
        check_arm_positions(too_far)
    with pytest.raises(ValueError, match="finite"):
        check_arm_positions(np.full(7, np.nan))
    with pytest.raises(ValueError, match="7 finite"):
        check_arm_positions(np.zeros(6))
