"""Tests for graspq.learning.model: shapes, gradients, readout, config validation, inputs."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from graspq.learning.model import (
    GQNConfig,
    GraspQNetwork,
    SpatialSoftmax,
    grasp_probabilities,
    preprocess,
)
from graspq.learning.pose import POSE_TARGETS
from graspq.observation import encode_overhead

SMALL = dict(image_size=16, stream_channels=4, joint_channels=8, fc_width=16, motor_width=8)


def random_obs(rng: np.random.Generator, n: int, size: int) -> dict[str, np.ndarray]:
    rgbd = rng.random((n, size, size, 4), dtype=np.float32)
    rgbd[..., 3] = rng.uniform(0.4, 1.2, (n, size, size))  # also outside the bounds
    return {"overhead_rgbd": rgbd,
            "wrist_rgb": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
            "motor": rng.standard_normal((n, 8)).astype(np.float32)}


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.mark.parametrize("views", ["multi", "single"])
@pytest.mark.parametrize("batch", [1, 5])
def test_output_shape(views: str, batch: int) -> None:
    net = GraspQNetwork(GQNConfig(views=views, **SMALL))
    q = net(*preprocess(random_obs(np.random.default_rng(0), batch, 16)))
    assert q.shape == (batch, 9) and q.dtype == torch.float32
    assert torch.isfinite(q).all()


@pytest.mark.parametrize("views", ["multi", "single"])
def test_default_config_runs_at_64(views: str) -> None:
    net = GraspQNetwork(GQNConfig(views=views)).eval()
    assert net.config.image_size == 64 and net.config.num_actions == 9
    with torch.inference_mode():
        q = net(*preprocess(random_obs(np.random.default_rng(1), 1, 64)))
    assert q.shape == (1, 9)


def test_single_view_has_no_wrist_stream_and_ignores_wrist() -> None:
    net = GraspQNetwork(GQNConfig(views="single", **SMALL)).eval()
    assert net.wrist_stream is None
    assert not any(name.startswith("wrist") for name, _ in net.named_parameters())
    obs = random_obs(np.random.default_rng(2), 3, 16)
    with torch.no_grad():
        with_wrist = net(*preprocess(obs))
        without = net(*preprocess({k: v for k, v in obs.items() if k != "wrist_rgb"}))
    torch.testing.assert_close(with_wrist, without)


def test_multi_view_needs_the_wrist_image() -> None:
    net = GraspQNetwork(GQNConfig(**SMALL))
    obs = random_obs(np.random.default_rng(3), 2, 16)
    inputs = preprocess({k: v for k, v in obs.items() if k != "wrist_rgb"})
    with pytest.raises(ValueError, match="wrist"):
        net(*inputs)
    with pytest.raises(ValueError, match="overhead must be"):
        net(inputs.overhead[:, :3], inputs.motor)


def test_gradients_reach_both_streams_and_motor() -> None:
    net = GraspQNetwork(GQNConfig(**SMALL)).train()
    q = net(*preprocess(random_obs(np.random.default_rng(4), 4, 16)))
    q[:, 3].sum().backward()
    for module in (net.overhead_stream, net.wrist_stream, net.motor_stream, net.joint, net.head):
        grads = [p.grad for p in module.parameters()]
        assert all(g is not None for g in grads)
        assert sum(g.abs().sum().item() for g in grads) > 0


def test_q_values_are_unbounded_and_softmax_readout_sums_to_one() -> None:
    net = GraspQNetwork(GQNConfig(**SMALL))
    # Q is a plain linear output: scaling the last layer scales Q beyond any softmax range.
    with torch.no_grad():
        net.head[-1].bias.fill_(10.0)
        q = net(*preprocess(random_obs(np.random.default_rng(5), 5, 16)))
    assert (q > 1).all()
    p = grasp_probabilities(q)
    assert p.shape == q.shape and (p >= 0).all()
    torch.testing.assert_close(p.sum(dim=-1), torch.ones(5))
    torch.testing.assert_close(grasp_probabilities(torch.zeros(1, 9)), torch.full((1, 9), 1 / 9))


@pytest.mark.parametrize(("field", "value"), [
    ("image_size", 60), ("image_size", 0), ("stream_channels", 0), ("joint_channels", -1),
    ("fc_width", 2.5), ("motor_width", True), ("num_actions", 0), ("views", "stereo"),
    ("fingertip_features", 1), ("fingertip_unit_m", 0.0), ("spatial_keypoints", "yes"),
])
def test_invalid_config_names_the_field(field: str, value: object) -> None:
    with pytest.raises(ValueError, match=f"GQNConfig.{field}"):
        GQNConfig(**{field: value})


def test_fingertip_features_feed_the_motor_stream_and_travel_with_the_weights() -> None:
    net = GraspQNetwork(GQNConfig(fingertip_features=True, **SMALL)).eval()
    assert net.motor_stream[0].in_features == 8 + 5
    state = net.state_dict()
    assert {"fingertip.joint_rotations", "fingertip.reference"} <= set(state)
    with pytest.raises(RuntimeError):
        GraspQNetwork(GQNConfig(**SMALL)).load_state_dict(state)
    copy = GraspQNetwork(GQNConfig(fingertip_features=True, **SMALL)).eval()
    copy.load_state_dict(state)
    obs = random_obs(np.random.default_rng(3), 4, 16)
    with torch.no_grad():
        torch.testing.assert_close(copy(*preprocess(obs)), net(*preprocess(obs)))
        # The joint angles now reach the head along a second path: changing one joint
        # changes the features, not only the raw motor input.
        moved = dict(obs, motor=obs["motor"].copy())
        moved["motor"][:, 1] += 0.05
        features = net.fingertip(torch.from_numpy(obs["motor"][:, :7]))
        assert not torch.allclose(net.fingertip(torch.from_numpy(moved["motor"][:, :7])),
                                  features)


def test_spatial_softmax_finds_the_hot_cell_and_sharpens_with_temperature() -> None:
    keypoints = SpatialSoftmax(4)
    maps = torch.zeros(2, 3, 4, 4)
    maps[0, 0, 1, 3] = 50.0  # row 1, column 3: x = 1, y = -1/3 on the [-1, 1] grid
    maps[0, 1, 0, 0] = 50.0
    maps[1, 2, 3, 1] = 50.0
    with torch.no_grad():
        points = keypoints(maps).reshape(2, 3, 2)
    torch.testing.assert_close(points[0, 0], torch.tensor([1.0, -1 / 3]))
    torch.testing.assert_close(points[0, 1], torch.tensor([-1.0, -1.0]))
    torch.testing.assert_close(points[1, 2], torch.tensor([-1 / 3, 1.0]))
    # A flat map has its expectation at the centre.
    torch.testing.assert_close(points[0, 2], torch.zeros(2))
    # A mild peak pulls the point towards it; a lower temperature pulls it further.
    mild = torch.zeros(1, 1, 4, 4)
    mild[0, 0, 0, 3] = 2.0
    with torch.no_grad():
        warm = keypoints(mild)[0]
        keypoints.log_temperature.fill_(-2.0)
        cold = keypoints(mild)[0]
    assert 0 < warm[0] < cold[0] < 1 and -1 < cold[1] < warm[1] < 0


@pytest.mark.parametrize("views", ["multi", "single"])
def test_spatial_keypoints_reach_the_head_and_carry_image_position(views: str) -> None:
    config = GQNConfig(views=views, spatial_keypoints=True, pose_outputs=POSE_TARGETS, **SMALL)
    streams = 2 if views == "multi" else 1
    assert config.keypoint_features == 2 * SMALL["stream_channels"] * streams
    net = GraspQNetwork(config).eval()
    joined = SMALL["fc_width"] + SMALL["motor_width"] + config.keypoint_features
    assert net.head[0].in_features == joined and net.pose_head.in_features == joined
    assert (net.wrist_keypoints is None) == (views == "single")
    obs = random_obs(np.random.default_rng(2), 3, 16)
    with torch.no_grad():
        features = net._joined_features(*preprocess(obs))
        assert features.shape == (3, joined)
        keypoints = features[:, -config.keypoint_features:]
        assert keypoints.abs().max() <= 1.0
        # Moving a bright square across the overhead image moves the overhead keypoints
        # (with BatchNorm statistics from one training batch, as after the first update).
        net.train()(*preprocess(obs))
        net.eval()
        left, right = (dict(obs, overhead_rgbd=obs["overhead_rgbd"].copy()) for _ in range(2))
        for image, columns in ((left, slice(0, 4)), (right, slice(12, 16))):
            image["overhead_rgbd"][:] = 0.5
            image["overhead_rgbd"][:, 6:10, columns, :3] = 1.0
        first = joined - config.keypoint_features  # the overhead stream's keypoints come first
        overhead = slice(first, first + 2 * SMALL["stream_channels"])
        moved = (net._joined_features(*preprocess(right))[:, overhead]
                 - net._joined_features(*preprocess(left))[:, overhead])
        assert moved.abs().max() > 0.05
    # The keypoints train: the temperature gets a gradient from the Q-values.
    net.train()
    net(*preprocess(obs)).sum().backward()
    assert net.overhead_keypoints.log_temperature.grad is not None
    state = net.state_dict()
    assert "overhead_keypoints.log_temperature" in state
    assert not any(key.endswith(".grid") for key in state)  # rebuilt, never stored
    with pytest.raises(RuntimeError):
        GraspQNetwork(GQNConfig(views=views, pose_outputs=POSE_TARGETS, **SMALL)
                      ).load_state_dict(state)


def test_forward_with_pose_shares_the_q_pass_and_only_exists_with_a_head() -> None:
    net = GraspQNetwork(GQNConfig(pose_outputs=POSE_TARGETS, **SMALL)).eval()
    obs = random_obs(np.random.default_rng(0), 3, 16)
    with torch.no_grad():
        q, pose = net.forward_with_pose(*preprocess(obs))
        torch.testing.assert_close(q, net(*preprocess(obs)))
    assert pose.shape == (3, POSE_TARGETS)
    plain = GraspQNetwork(GQNConfig(**SMALL))
    assert not any(name.startswith("pose_head") for name in plain.state_dict())
    with pytest.raises(ValueError, match="no pose head"):
        plain.forward_with_pose(*preprocess(obs))
    with pytest.raises(ValueError, match="GQNConfig.pose_outputs"):
        GQNConfig(pose_outputs=-1)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        GQNConfig().image_size = 32  # type: ignore[misc]


def test_preprocess_normalises_float_and_uint8_alike() -> None:
    rng = np.random.default_rng(6)
    near, far = 0.5, 1.1
    obs = random_obs(rng, 2, 16)
    live = preprocess(obs, depth_near_m=near, depth_far_m=far)
    stored = dict(obs, overhead_rgbd=np.stack([encode_overhead(x, near, far)
                                               for x in obs["overhead_rgbd"]]))
    decoded = preprocess(stored, depth_near_m=near, depth_far_m=far)
    assert live.overhead.shape == (2, 4, 16, 16) and live.wrist.shape == (2, 3, 16, 16)
    assert live.overhead.is_contiguous(memory_format=torch.channels_last)
    assert live.overhead.min() >= 0.0 and live.overhead.max() <= 1.0
    # The uint8 storage form differs from the live frame by at most half a quantisation step.
    assert (live.overhead - decoded.overhead).abs().max().item() <= 0.5 / 255 + 1e-6
    # Known depth values: near -> 0, far -> 1, midpoint -> 0.5, beyond -> clipped.
    depth = np.array([near, far, (near + far) / 2, 2.0], np.float32)
    rgbd = np.zeros((1, 1, 4, 4), np.float32)
    rgbd[0, 0, :, 3] = depth
    single = {"overhead_rgbd": rgbd[0], "motor": np.arange(8, dtype=np.float32)}
    got = preprocess(single, depth_near_m=near, depth_far_m=far)  # no batch axis -> N = 1
    torch.testing.assert_close(got.overhead[0, 3, 0], torch.tensor([0.0, 1.0, 0.5, 1.0]))
    torch.testing.assert_close(got.motor, torch.arange(8.0)[None])
    assert got.wrist is None
    torch.testing.assert_close(live.wrist, torch.from_numpy(obs["wrist_rgb"]).permute(
        0, 3, 1, 2).float() / 255)


def test_preprocess_layouts_give_the_same_q() -> None:
    net = GraspQNetwork(GQNConfig(**SMALL)).eval()
    obs = random_obs(np.random.default_rng(7), 3, 16)
    with torch.no_grad():
        a = net(*preprocess(obs, memory_format=torch.channels_last))
        b = net(*preprocess(obs, memory_format=torch.contiguous_format))
    torch.testing.assert_close(a, b)


def test_preprocess_rejects_bad_input() -> None:
    obs = random_obs(np.random.default_rng(8), 2, 16)
    with pytest.raises(ValueError, match="motor"):
        preprocess({"overhead_rgbd": obs["overhead_rgbd"]})
    with pytest.raises(ValueError, match="4 channels"):
        preprocess(dict(obs, overhead_rgbd=obs["overhead_rgbd"][..., :3]))
    with pytest.raises(ValueError, match="depth_far_m"):
        preprocess(obs, depth_near_m=1.0, depth_far_m=0.5)
