"""graspq.servo.safety: the clamps hold for any input (hypothesis property tests)."""

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from graspq.servo.safety import BOX_TOLERANCE, SafetyLimits
from graspq.servo.settings import ServoConfig
from graspq.sim.scene import build_scene
from graspq.sim.settings import EnvConfig

CONFIG = EnvConfig()
JOINT_RANGE = build_scene(CONFIG).arm_range
LIMITS = SafetyLimits.build(CONFIG, ServoConfig(), JOINT_RANGE)

anything = st.floats(allow_nan=True, allow_infinity=True)
near = st.floats(-3.0, 3.0)
joint_angles = st.lists(st.floats(-10.0, 10.0), min_size=7, max_size=7).map(np.array)
inside_angles = st.lists(st.floats(0.0, 1.0), min_size=7, max_size=7).map(
    lambda u: JOINT_RANGE[:, 0] + np.array(u) * (JOINT_RANGE[:, 1] - JOINT_RANGE[:, 0]))
steps = st.floats(0.001, 1.0)


def _limits(max_step: float) -> SafetyLimits:
    return SafetyLimits.build(CONFIG, ServoConfig(max_joint_step_rad=max_step), JOINT_RANGE)


@settings(max_examples=300, deadline=None)
@given(st.tuples(anything, anything, anything), anything)
def test_a_clamped_pose_is_always_inside_the_box_and_yaw_range(position, yaw):
    clamped, clamped_yaw = LIMITS.clamp_pose(np.array(position), yaw)
    assert np.all(np.isfinite(clamped)) and math.isfinite(clamped_yaw)
    assert LIMITS.contains(clamped, clamped_yaw)


@settings(max_examples=300, deadline=None)
@given(st.tuples(near, near, near), near)
def test_a_pose_inside_the_box_is_left_exactly_as_it_is(position, yaw):
    position = np.array(position)
    if LIMITS.contains(position, yaw):
        clamped, clamped_yaw = LIMITS.clamp_pose(position, yaw)
        assert np.array_equal(clamped, position) and clamped_yaw == yaw


@settings(max_examples=300, deadline=None)
@given(inside_angles, joint_angles, steps)
@example(previous=np.array([-1.70168, -2.147, -3.05418, 0.617, -3.059, -1.5708, -3.059]),
         goal=np.array([0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0]), max_step=1.0)  # rounding, CI
# previous + (goal - previous) != goal in the last bit here: once reported as a clamp.
@example(previous=np.array([-1.595591, -0.7438, 2.30745, 0.140476, 2.016427, 0.39402, 2.3416]),
         goal=np.array([-1.681759, -0.554197, 2.341587, -0.05, 1.837076, 0.67624, 2.224194]),
         max_step=0.35)
def test_no_joint_steps_further_than_its_limit_or_leaves_its_range(previous, goal, max_step):
    limits = _limits(max_step)
    command = limits.clamp_joint_step(previous, goal)
    assert np.all(np.abs(command - previous) <= max_step + 1e-12)
    assert np.all(command >= JOINT_RANGE[:, 0]) and np.all(command <= JOINT_RANGE[:, 1])
    within_range = np.all((goal >= JOINT_RANGE[:, 0]) & (goal <= JOINT_RANGE[:, 1]))
    if within_range and np.all(np.abs(goal - previous) <= max_step):
        # Such a goal is not touched, to the bit: the runtime counts any change as a clamp.
        assert np.array_equal(command, goal)


@settings(max_examples=200, deadline=None)
@given(joint_angles, joint_angles, steps)
def test_from_outside_the_range_a_joint_steps_back_without_jumping(previous, goal, max_step):
    command = _limits(max_step).clamp_joint_step(previous, goal)
    assert np.all(np.abs(command - previous) <= max_step + 1e-12)
    lower, upper = JOINT_RANGE[:, 0], JOINT_RANGE[:, 1]
    excess_before = np.maximum(lower - previous, 0) + np.maximum(previous - upper, 0)
    excess_after = np.maximum(lower - command, 0) + np.maximum(command - upper, 0)
    assert np.all(excess_after <= excess_before + 1e-12)


def test_a_nan_goal_keeps_the_previous_command_and_bad_shapes_are_refused():
    previous = JOINT_RANGE.mean(axis=1)
    goal = previous + 0.01
    goal[2] = np.nan
    command = LIMITS.clamp_joint_step(previous, goal)
    assert command[2] == previous[2] and command[0] == pytest.approx(previous[0] + 0.01)
    with pytest.raises(ValueError, match=r"\(7,\)"):
        LIMITS.clamp_joint_step(previous[:6], goal)
    with pytest.raises(ValueError, match="finite"):
        LIMITS.clamp_joint_step(np.full(7, np.nan), goal)


@settings(max_examples=200, deadline=None)
@given(anything)
def test_gripper_force_stays_within_zero_and_the_limit(force):
    clamped = LIMITS.clamp_gripper_force(force)
    assert 0.0 <= clamped <= ServoConfig().gripper_force_limit_n


def test_the_gripper_limit_comes_from_the_servo_config():
    limits = SafetyLimits.build(CONFIG, ServoConfig(gripper_force_limit_n=5.0), JOINT_RANGE)
    assert limits.clamp_gripper_force(CONFIG.gripper.force_n) == 5.0


@settings(max_examples=300, deadline=None)
@given(st.floats(-0.2, 0.2), st.floats(-0.2, 0.2), st.floats(-0.1, 0.4), st.floats(-2.0, 2.0))
def test_the_box_test_is_the_envs(env, dx, dy, height, yaw):
    """The runtime refuses exactly the moves the env refuses (same targets accepted)."""
    scene = CONFIG.scene
    position = np.array([scene.workspace_center_xy_m[0] + dx,
                         scene.workspace_center_xy_m[1] + dy, scene.table_top_z_m + height])
    assert LIMITS.contains(position, yaw) == env.in_workspace(position, yaw)


def test_box_faces_reached_by_repeated_steps_are_inside():
    scene = CONFIG.scene
    x = scene.workspace_center_xy_m[0]
    for _ in range(round(scene.workspace_half_xy_m / CONFIG.actions.translation_step_m)):
        x += CONFIG.actions.translation_step_m
    position = np.array([x, scene.workspace_center_xy_m[1], LIMITS.z_max_m])
    assert abs(x - (scene.workspace_center_xy_m[0] + scene.workspace_half_xy_m)) < BOX_TOLERANCE
    assert LIMITS.contains(position, 0.0)
    assert not LIMITS.contains(position + [CONFIG.actions.translation_step_m, 0, 0], 0.0)


def test_joint_range_must_be_seven_pairs():
    with pytest.raises(ValueError, match=r"\(7, 2\)"):
        SafetyLimits.build(CONFIG, ServoConfig(), JOINT_RANGE[:6])
