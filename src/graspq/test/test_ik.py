"""Damped-least-squares IK with the gripper pointing down."""

import math

import mujoco
import numpy as np
import pytest

from graspq.sim.ik import DownwardIK, down_rotation, orientation_error, tool_yaw
from graspq.sim.scene import build_scene
from graspq.sim.settings import EnvConfig


@pytest.fixture(scope="module")
def solver():
    config = EnvConfig()
    scene = build_scene(config)
    return config, scene, DownwardIK(scene, config.ik)


def test_reaches_random_reachable_targets_within_2mm(solver):
    config, scene, ik = solver
    layout = config.scene
    rng = np.random.default_rng(7)
    start_yaw = math.radians(layout.start_yaw_deg)
    home = ik.solve(np.array([0.75, -0.68, -0.4, 1.5, 0.42, 0.83, 0.0]),
                    np.array([*layout.workspace_center_xy_m, layout.table_top_z_m + 0.15]),
                    start_yaw)
    assert home.converged
    data = mujoco.MjData(scene.model)  # check with the simulator's own kinematics
    failures = 0
    for _ in range(200):
        target = np.array([
            *(layout.workspace_center_xy_m
              + rng.uniform(-layout.workspace_half_xy_m, layout.workspace_half_xy_m, 2)),
            layout.table_top_z_m + rng.uniform(layout.workspace_z_min_above_table_m,
                                               layout.workspace_z_max_above_table_m)])
        yaw = start_yaw + rng.uniform(-1, 1) * math.radians(layout.yaw_limit_deg)
        result = ik.solve(home.joints, target, yaw)
        if not result.converged:
            failures += 1
            continue
        data.qpos[scene.arm_qpos_adr] = result.joints
        mujoco.mj_kinematics(scene.model, data)
        reached = data.site_xpos[scene.tcp_site]
        assert np.linalg.norm(reached - target) < 0.002
        rotation = data.site_xmat[scene.tcp_site].reshape(3, 3)
        assert np.linalg.norm(orientation_error(rotation, down_rotation(yaw))) < 0.01
        assert np.all(result.joints >= scene.arm_range[:, 0])
        assert np.all(result.joints <= scene.arm_range[:, 1])
    assert failures <= 10, f"{failures} of 200 workspace targets did not converge"


def test_unreachable_target_does_not_converge(solver):
    config, _, ik = solver
    far_away = np.array([2.0, -0.4, 0.0])
    result = ik.solve(np.array([0.75, -0.68, -0.4, 1.5, 0.42, 0.83, 0.0]), far_away, 0.0)
    assert not result.converged
    assert result.position_error_m > 0.5


def test_tool_yaw_inverts_down_rotation():
    for yaw in np.linspace(-3.0, 3.0, 13):
        assert tool_yaw(down_rotation(yaw)) == pytest.approx(yaw)
        assert np.linalg.det(down_rotation(yaw)) == pytest.approx(1.0)


def test_orientation_error_is_bit_for_bit_the_cross_product_sum():
    # The written-out form (issue #25) must not move the IK's answers by a single ulp.
    rng = np.random.default_rng(3)
    for _ in range(2000):
        current = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        desired = down_rotation(rng.uniform(-math.pi, math.pi))
        expected = 0.5 * sum(np.cross(current[:, i], desired[:, i]) for i in range(3))
        np.testing.assert_array_equal(orientation_error(current, desired), expected)
