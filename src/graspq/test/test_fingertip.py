"""Fingertip features: Baxter's chain read off the MuJoCo model, evaluated in numpy and torch,
against MuJoCo's own forward kinematics; and what the features say after real env steps."""

import dataclasses

import mujoco
import numpy as np
import pytest
import torch

from graspq.actions import Action
from graspq.learning.fingertip import DEFAULT_UNIT_M, FingertipFeatures
from graspq.sim.kinematics import arm_chain, default_arm_chain
from graspq.sim.scene import build_scene
from graspq.sim.settings import EnvConfig, SceneConfig


@pytest.fixture(scope="module")
def scene():
    return build_scene(EnvConfig())


def _mujoco_pose(scene, joints):
    data = mujoco.MjData(scene.model)
    data.qpos[scene.arm_qpos_adr] = joints
    mujoco.mj_kinematics(scene.model, data)
    return (data.site_xpos[scene.tcp_site].copy(),
            data.site_xmat[scene.tcp_site].reshape(3, 3).copy())


def _random_joints(scene, count, seed):
    low, high = scene.arm_range[:, 0], scene.arm_range[:, 1]
    return np.random.default_rng(seed).uniform(low, high, (count, 7))


def test_chain_matches_mujoco_across_the_joint_ranges(scene):
    """The chain read off the model, evaluated in float64: exactly MuJoCo's kinematics."""
    kinematics = FingertipFeatures(chain=arm_chain(scene.model), dtype=torch.float64)
    joint_sets = _random_joints(scene, 200, seed=0)
    with torch.no_grad():
        positions, rotations = kinematics.pose(torch.from_numpy(joint_sets))
    for joints, position, rotation in zip(joint_sets, positions.numpy(), rotations.numpy(),
                                          strict=True):
        expected_position, expected_rotation = _mujoco_pose(scene, joints)
        np.testing.assert_allclose(position, expected_position, atol=1e-12)
        np.testing.assert_allclose(rotation, expected_rotation, atol=1e-12)


def test_torch_features_match_mujoco(scene):
    joints = _random_joints(scene, 64, seed=1)
    with torch.no_grad():
        features = FingertipFeatures()(torch.tensor(joints, dtype=torch.float32)).numpy()
    assert features.shape == (64, 5) and features.dtype == np.float32
    reference = SceneConfig().workspace_center_on_table_m
    for row, q in zip(features, joints, strict=True):
        position, rotation = _mujoco_pose(scene, q)
        np.testing.assert_allclose(row[:3], (position - reference) / DEFAULT_UNIT_M,
                                   atol=2e-4)
        np.testing.assert_allclose(row[3:], rotation[:2, 0], atol=2e-6)


def test_a_step_down_and_a_turn_show_in_the_features(env):
    """On the real scene: one -z move lowers the height feature by one step (1 cm = 1 unit),
    one turn rotates the yaw features by the yaw step; what the seven joint angles only
    imply."""
    features = FingertipFeatures()

    def read(obs):
        with torch.no_grad():
            return features(torch.tensor(obs["motor"][None, :7])).numpy()[0]

    obs, _ = env.reset(seed=4, options={"object": "sphere", "object_pose": (0.62, -0.50, 0)})
    before = read(obs)
    height = before[2] * DEFAULT_UNIT_M
    start = env.config.scene.start_height_above_table_m
    assert abs(height - start) < 0.003  # the arm settles within a few mm of its command
    obs, *_ = env.step(Action.MINUS_Z)
    lowered = read(obs)
    assert abs((before[2] - lowered[2]) - 1.0) < 0.2
    assert np.all(np.abs(lowered[:2] - before[:2]) < 0.2)
    obs, *_ = env.step(Action.PLUS_YAW)
    turned = read(obs)
    angle = np.degrees(np.arctan2(turned[4], turned[3]) - np.arctan2(lowered[4], lowered[3]))
    assert abs((angle + 180) % 360 - 180) == pytest.approx(env.config.actions.yaw_step_deg,
                                                           abs=1.0)
    # The gripper points down, so the tool's x axis lies flat: a unit vector in the xy plane.
    assert np.hypot(*turned[3:]) == pytest.approx(1.0, abs=0.01)


def test_the_unit_scales_the_position_not_the_yaw(scene):
    joints = torch.tensor(_random_joints(scene, 8, seed=2), dtype=torch.float32)
    with torch.no_grad():
        fine, coarse = FingertipFeatures(0.01)(joints), FingertipFeatures(0.1)(joints)
    torch.testing.assert_close(fine[:, :3], 10 * coarse[:, :3])
    torch.testing.assert_close(fine[:, 3:], coarse[:, 3:])


def test_default_chain_is_built_once():
    assert default_arm_chain() is default_arm_chain()


def test_a_loaded_chain_is_the_one_evaluated(scene):
    """The transform terms are derived from the chain's buffers, not saved: loading the state
    of a module built on another chain (here the fingertip 5 cm further out, the reference
    point moved) must evaluate that chain, as torch.load of a checkpoint does."""
    chain = default_arm_chain()
    longer = dataclasses.replace(chain, tip_offset=chain.tip_offset + np.array([0.0, 0.0, 0.05]))
    saved = FingertipFeatures(chain=longer, reference_m=np.array([0.5, -0.4, -0.1]))
    loaded = FingertipFeatures()
    joints = torch.tensor(_random_joints(scene, 16, seed=3), dtype=torch.float32)
    with torch.no_grad():
        before = loaded(joints)
        loaded.load_state_dict(saved.state_dict())
        torch.testing.assert_close(loaded(joints), saved(joints))
    assert not torch.allclose(before, loaded(joints), atol=1.0)  # 5 cm is 5 units
