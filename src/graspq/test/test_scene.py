"""The compiled scene: Baxter's published kinematics, the gripper, clean physics."""

import math

import mujoco
import numpy as np
import pytest

from graspq.sim.scene import ARM_JOINTS, CLOSED_GAP_M, FINGER_STROKE_M, build_scene
from graspq.sim.settings import EnvConfig

# Joint limits (rad) of the right arm in baxter_description/urdf/baxter.urdf.
URDF_LIMITS = {
    "right_s0": (-1.70168, 1.70168), "right_s1": (-2.147, 1.047),
    "right_e0": (-3.05418, 3.05418), "right_e1": (-0.05, 2.618),
    "right_w0": (-3.059, 3.059), "right_w1": (-1.5708, 2.094), "right_w2": (-3.059, 3.059),
}
# Joint origins (m) of the same URDF, each in its parent link's frame.
URDF_OFFSETS = {
    "right_s0": (0.055695, 0, 0.011038), "right_s1": (0.069, 0, 0.27035),
    "right_e0": (0.102, 0, 0), "right_e1": (0.069, 0, 0.26242),
    "right_w0": (0.10359, 0, 0), "right_w1": (0.01, 0, 0.2707),
    "right_w2": (0.115975, 0, 0),
}


@pytest.fixture(scope="module")
def scene():
    return build_scene(EnvConfig())


def test_arm_matches_the_urdf(scene):
    model = scene.model
    for name in ARM_JOINTS:
        joint = model.joint(name)
        np.testing.assert_allclose(joint.range, URDF_LIMITS[name], err_msg=name)
        np.testing.assert_allclose(model.body_pos[joint.bodyid[0]], URDF_OFFSETS[name],
                                   atol=1e-9, err_msg=name)
        assert joint.type[0] == mujoco.mjtJoint.mjJNT_HINGE
        np.testing.assert_allclose(joint.axis, (0, 0, 1))


def test_gripper_stroke_and_force_are_the_real_grippers(scene):
    model = scene.model
    for adr in scene.finger_actuators:
        assert model.actuator_forcerange[adr][1] <= 20.0
    for name in ("right_gripper_l_finger_joint", "right_gripper_r_finger_joint"):
        np.testing.assert_allclose(model.joint(name).range, (0.0, FINGER_STROKE_M))
    assert 0.04 < CLOSED_GAP_M + 2 * FINGER_STROKE_M < 0.05


def test_scene_steps_without_mujoco_warnings(scene):
    data = mujoco.MjData(scene.model)
    data.qpos[scene.arm_qpos_adr] = [0.75, -0.68, -0.4, 1.5, 0.42, 0.83, 0.0]
    data.ctrl[scene.arm_actuators] = data.qpos[scene.arm_qpos_adr]
    mujoco.mj_step(scene.model, data, nstep=500)
    assert all(w.number == 0 for w in data.warning), [
        mujoco.mjtWarning(i).name for i, w in enumerate(data.warning) if w.number]
    assert np.all(np.isfinite(data.qpos))


def test_overhead_camera_is_configured_from_the_config():
    config = EnvConfig()
    scene = build_scene(config)
    model = scene.model
    assert model.cam_fovy[scene.overhead_camera] == pytest.approx(config.camera.overhead_fovy_deg)
    assert model.vis.global_.offwidth == 2 * config.camera.image_size
    # A 3 cm object must span several overhead pixels (design.md, "Pixels per object").
    assert 0.03 / config.camera.overhead_ground_m_per_px >= 5
    assert math.isclose(config.camera.overhead_distance_m, math.hypot(0.9, 0.45))
