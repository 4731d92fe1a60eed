"""Auxiliary pose targets and loss: encoding, what the real env gives, and that it is learned."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from graspq.actions import Action
from graspq.learning.agent import QAgent
from graspq.learning.pose import (
    NO_POSE,
    POSE_TARGETS,
    POSITION_UNIT_M,
    YAW_RADIUS,
    decode_pose,
    encode_pose,
    pose_loss,
    pose_target,
)
from graspq.learning.replay import ReplayBuffer
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.sim.oracle import OraclePolicy


def test_offsets_are_in_position_units_and_the_yaw_wraps_with_the_cube() -> None:
    target = encode_pose(np.array([0.04, -0.01, -0.1]), 0.0)
    np.testing.assert_allclose(target, [2.0, -0.5, -5.0, YAW_RADIUS, 0.0], atol=1e-6)
    # +45 and -45 deg are the same cube turn: the encoding agrees there.
    np.testing.assert_allclose(encode_pose(np.zeros(3), math.radians(44.999)),
                               encode_pose(np.zeros(3), math.radians(-45.0)), atol=1e-3)
    # The direction of the turn is in the sign of the sine.
    plus, minus = (encode_pose(np.zeros(3), math.radians(d)) for d in (10.0, -10.0))
    assert plus[4] > 0 > minus[4] and plus[3] == pytest.approx(minus[3])
    for offset, yaw in ((np.zeros(2), 0.0), (np.array([0.0, np.nan, 0.0]), 0.0),
                        (np.zeros(3), float("inf"))):
        with pytest.raises(ValueError, match="pose needs"):
            encode_pose(offset, yaw)


def test_decoding_inverts_the_encoding_row_by_row() -> None:
    offsets = np.array([[0.04, -0.01, -0.1], [0.0, 0.03, -0.02], [-0.05, 0.0, 0.0]])
    yaws = np.radians([0.0, 30.0, -44.0])
    encoded = np.stack([encode_pose(o, y) for o, y in zip(offsets, yaws, strict=True)])
    offset_m, yaw_rad = decode_pose(encoded)
    np.testing.assert_allclose(offset_m, offsets, atol=1e-7)
    np.testing.assert_allclose(yaw_rad, yaws, atol=1e-6)
    # A turn past 45 deg reads as the same cube face turned the other way.
    assert math.degrees(decode_pose(encode_pose(np.zeros(3), math.radians(50.0)))[1]) \
        == pytest.approx(-40.0, abs=1e-4)


def test_loss_leaves_out_unlabelled_rows() -> None:
    predicted = torch.tensor([[1.0, 0, 0, 0, 0], [5.0, 5, 5, 5, 5], [0.0, 0, 0, 0, 2]])
    targets = torch.from_numpy(np.stack([np.zeros(POSE_TARGETS, np.float32), NO_POSE,
                                         np.zeros(POSE_TARGETS, np.float32)]))
    # Rows 0 and 2 only: squared errors 1 and 4 over 10 numbers.
    assert float(pose_loss(predicted, targets)) == pytest.approx(0.5)
    assert pose_loss(predicted[1:2], targets[1:2]) is None
    with pytest.raises(ValueError, match="differ in shape"):
        pose_loss(predicted[:, :4], targets)


def test_yaw_weight_scales_the_yaw_terms_only() -> None:
    predicted = torch.tensor([[1.0, 0, 0, 0, 0], [0.0, 0, 0, 0, 2]])  # an offset, a yaw error
    targets = torch.zeros(2, POSE_TARGETS)
    # Squared errors 1 (offset x) and 4 (yaw sin) over 10 numbers, the yaw's times the weight.
    assert float(pose_loss(predicted, targets, yaw_weight=4.0)) == pytest.approx(17 / 10)
    assert float(pose_loss(predicted[:1], targets[:1], yaw_weight=4.0)) == pytest.approx(0.2)
    assert float(pose_loss(predicted, targets, yaw_weight=0.0)) == pytest.approx(0.1)


def test_targets_follow_the_real_arm_and_cube(env) -> None:
    oracle = OraclePolicy(env)
    env.reset(seed=11, options={"object": "cube"})
    position, _ = env.fingertip_command
    before = pose_target(oracle)
    np.testing.assert_allclose(before[:3], (env.object_position() - position) / POSITION_UNIT_M,
                               atol=1e-5)
    env.step(int(Action.PLUS_X))  # one 1 cm step towards +x: the object is half a unit closer
    after = pose_target(oracle)
    assert after[0] == pytest.approx(before[0] - 0.01 / POSITION_UNIT_M, abs=0.02)
    env.step(int(Action.PLUS_YAW))  # 15 deg of turn: 60 deg on the encoded circle
    turned = pose_target(oracle)
    angle = math.degrees(math.atan2(turned[4], turned[3]) - math.atan2(after[4], after[3]))
    assert (angle + 180) % 360 - 180 == pytest.approx(-60.0, abs=2.0)
    assert np.hypot(turned[3], turned[4]) == pytest.approx(YAW_RADIUS)
    env.reset(seed=11, options={"object": "sphere"})  # nothing to turn
    np.testing.assert_allclose(pose_target(oracle)[3:], [YAW_RADIUS, 0.0], atol=1e-6)


def test_agent_learns_the_pose_of_real_states(env) -> None:
    """Updates with the pose loss on (real) oracle states bring the head's error down; the
    TD and margin losses stay part of the same step."""
    oracle = OraclePolicy(env)
    size = env.config.camera.image_size
    buffer = ReplayBuffer(200, size)
    for seed in range(4):
        obs, _ = env.reset(seed=seed, options={"object": "cube"})
        for _ in range(12):
            action, target = int(oracle.act()), pose_target(oracle)
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated, truncated,
                       expert_action=action, pose_target=target)
            obs = next_obs
            if terminated or truncated:
                break
    torch.manual_seed(0)
    config = TrainingConfig(pose_loss_weight=1.0, demo_margin=0.8, learning_rate=1e-3,
                            batch_size=32, learning_starts=32, torch_threads=1,
                            network=NetworkConfig(stream_channels=8, joint_channels=8,
                                                  fc_width=32, motor_width=16))
    camera = env.config.camera
    agent = QAgent(config, config.network.gqn(size, "multi"), camera.depth_near_m,
                   camera.depth_far_m)
    assert agent.online.config.pose_outputs == POSE_TARGETS
    batch = buffer.sample(48, np.random.default_rng(0))

    def pose_error() -> float:
        agent.online.eval()
        with torch.no_grad():
            _, predicted = agent.online.forward_with_pose(*agent._inputs(batch.obs))
        return float(pose_loss(predicted, torch.from_numpy(batch.pose_targets)))

    start = pose_error()
    for _ in range(60):
        agent.update(batch)
    assert pose_error() < 0.5 * start
    # Without the weight the agent has no head and the same update ignores the targets.
    plain = QAgent(dataclasses.replace(config, pose_loss_weight=0.0),
                   config.network.gqn(size, "multi"), camera.depth_near_m, camera.depth_far_m)
    assert plain.online.pose_head is None
    plain.update(batch)
    # pose_yaw_weight reaches the update: the logged pose term is the weighted loss of the
    # batch the update saw (train mode, no augmentation).
    # fp32: the check recomputes the loss outside the update, so both must run the same maths.
    yaw_heavy = QAgent(dataclasses.replace(config, pose_yaw_weight=4.0, precision="fp32"),
                       config.network.gqn(size, "multi"), camera.depth_near_m,
                       camera.depth_far_m)
    yaw_heavy.online.train()
    with torch.no_grad():
        _, predicted = yaw_heavy.online.forward_with_pose(*yaw_heavy._inputs(batch.obs))
    targets = torch.from_numpy(batch.pose_targets)
    yaw_heavy.update(batch)
    assert yaw_heavy.loss_parts["pose"] == pytest.approx(
        float(pose_loss(predicted, targets, yaw_weight=4.0)), rel=1e-4)
    assert yaw_heavy.loss_parts["pose"] > float(pose_loss(predicted, targets)) * 1.01
