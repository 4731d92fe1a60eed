"""Fingertip glimpse (``network.fingertip_glimpse``): the glimpse against the real renderer,
the config's refusals, and a training run that saves and loads it."""

import dataclasses

import numpy as np
import pytest
import torch

from graspq.config import ConfigError, apply_overrides
from graspq.learning.fingertip import FingertipFeatures
from graspq.learning.glimpse import FingertipGlimpse
from graspq.learning.model import GraspQNetwork, preprocess
from graspq.learning.offset_channels import overhead_rays
from graspq.learning.policy_io import load_agent
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.observation import MOTOR_KEY, OVERHEAD_KEY
from graspq.policy.export import write_policy
from graspq.sim.settings import EnvConfig

from . import test_offset_channels
from .test_grasp_diagnosis import TINY, TINY_ENV
from .test_offset_channels import _cube_at

GLIMPSE = dataclasses.replace(TINY.network, fingertip_features=True, fingertip_glimpse=True)
# Off the centre both ways, so a mirrored or swapped axis would miss by many pixels.
PLACES = ((0.06, -0.05), (-0.07, 0.04), (0.0, 0.08), (0.0, 0.0))
SIZE = TINY_ENV.camera.image_size
CENTRE = (SIZE - 1) / 2.0
scene = test_offset_channels.scene  # the same module-scoped scene fixture


def _over_cube(env, dx, dy, height=0.15):
    """Reset with a cube at (dx, dy) from the workspace centre and the fingertip above it."""
    return _cube_at(env, dx, dy, height, start_offset_half_xy_m=0.0)


def _object_mask(env, obs) -> np.ndarray:
    """(S, S) 1 where the rendered depth puts a surface 0.5-6 cm above the table."""
    config = env.config
    position, rays = overhead_rays(config.camera, config.scene, SIZE)
    points = position[:, None, None] + obs[OVERHEAD_KEY][..., 3][None] * rays
    height = points[2] - config.scene.table_top_z_m
    return ((height > 0.005) & (height < 0.06)).astype(np.float32)


def _centroid(mask: np.ndarray) -> np.ndarray:
    rows, cols = np.nonzero(mask > 0.5)
    return np.array([cols.mean(), rows.mean()])


def _glimpse_of(env, obs, mask, zoom=1.0) -> np.ndarray:
    """The object mask, resampled as the glimpse resamples the image."""
    inputs = preprocess(obs, "cpu", TINY_ENV.camera.depth_near_m, TINY_ENV.camera.depth_far_m)
    tip = FingertipFeatures(GLIMPSE.fingertip_unit_m)(inputs.motor[:, :7])
    glimpse = FingertipGlimpse(SIZE, GLIMPSE.fingertip_unit_m, zoom)
    stacked = torch.as_tensor(np.repeat(mask[None, None], 4, axis=1))
    with torch.no_grad():
        return glimpse(stacked, tip)[0, 0].numpy()


def test_the_glimpse_puts_the_object_below_the_fingertip_at_its_centre(scene):
    """Wherever the object and the fingertip above it are, the rendered object lies at the
    glimpse's centre (to a pixel), though in the full image it moves by many pixels; at zoom
    2 it covers about four times the pixels."""
    full, centred = [], []
    for dx, dy in PLACES:
        obs = _over_cube(scene, dx, dy)
        mask = _object_mask(scene, obs)
        assert mask.sum() >= 5  # the object is in view below the gripper
        full.append(_centroid(mask))
        glimpse = _glimpse_of(scene, obs, mask)
        centred.append(_centroid(glimpse))
        zoomed = _glimpse_of(scene, obs, mask, zoom=2.0)
        assert 3.0 < (zoomed > 0.5).sum() / (glimpse > 0.5).sum() < 5.0
        np.testing.assert_allclose(_centroid(zoomed), CENTRE, atol=1.5)
    full, centred = np.array(full), np.array(centred)
    assert np.ptp(full, axis=0).max() > SIZE / 4  # the object moves across the image
    np.testing.assert_allclose(centred, CENTRE, atol=1.0)


def test_the_glimpse_moves_with_the_fingertip_not_the_image(scene):
    """The same image with the fingertip 4 cm further along x: the object leaves the
    glimpse's centre by as many pixels as the fingertip's place moves the other way."""
    obs = _over_cube(scene, 0.03, -0.02)
    mask = _object_mask(scene, obs)
    over = _centroid(_glimpse_of(scene, obs, mask))
    inputs = preprocess(obs, "cpu", TINY_ENV.camera.depth_near_m, TINY_ENV.camera.depth_far_m)
    tip = FingertipFeatures(GLIMPSE.fingertip_unit_m)(inputs.motor[:, :7])
    glimpse = FingertipGlimpse(SIZE, GLIMPSE.fingertip_unit_m)
    shifted = tip.clone()
    shifted[:, 0] += 4.0  # 4 cm in fingertip units
    stacked = torch.as_tensor(np.repeat(mask[None, None], 4, axis=1))
    with torch.no_grad():
        away = _centroid(glimpse(stacked, shifted)[0, 0].numpy())
        step = glimpse.tip_pixel(shifted) - glimpse.tip_pixel(tip)
    assert np.linalg.norm(away - over) > 3.0  # pixels: the object is off centre now
    np.testing.assert_allclose(away - over, -step[0].numpy(), atol=1.0)


def test_the_config_refuses_a_glimpse_without_the_fingertip_or_for_another_camera(tmp_path):
    with pytest.raises(ConfigError, match="network.fingertip_glimpse"):
        TrainingConfig(network=dataclasses.replace(GLIMPSE, fingertip_features=False))
    training = TrainingConfig(network=GLIMPSE)
    moved = apply_overrides(EnvConfig(), ["camera.overhead_offset_x_m=0.3"])
    with pytest.raises(ConfigError, match="camera.overhead_offset_x_m") as error:
        training.network_shape(moved)
    assert "network.fingertip_glimpse" in str(error.value)
    with pytest.raises(ConfigError, match="network.glimpse_zoom"):
        apply_overrides(TrainingConfig(), ["network.glimpse_zoom=0.5"])
    network = GraspQNetwork(GLIMPSE.gqn(SIZE, "single"))
    with pytest.raises(ValueError, match="fingertip_glimpse"):
        write_policy(network, TINY_ENV, training, tmp_path / "policy.onnx")
    assert not (tmp_path / "policy.onnx").exists()


def test_a_run_with_the_glimpse_trains_and_its_checkpoint_acts_the_same(tmp_path, train_run,
                                                                        scene):
    training = dataclasses.replace(TINY, views="single", network=GLIMPSE)
    run = train_run(tmp_path / "run", training, TINY_ENV)
    agent, env_config, loaded = load_agent(run)
    assert loaded.network.fingertip_glimpse
    assert agent.online.joint[0].in_channels == 2 * GLIMPSE.stream_channels
    obs = _over_cube(scene, 0.03, -0.02, height=0.12)
    inputs = preprocess({key: obs[key] for key in (OVERHEAD_KEY, MOTOR_KEY)}, "cpu",
                        env_config.camera.depth_near_m, env_config.camera.depth_far_m)
    again, _, _ = load_agent(run)
    agent.online.eval()
    again.online.eval()
    with torch.no_grad():
        first, second = agent.online(*inputs), again.online(*inputs)
        # The glimpse stream counts: with its weights zeroed the Q-values change.
        for parameter in agent.online.glimpse_stream.parameters():
            parameter.zero_()
        without = agent.online(*inputs)
    torch.testing.assert_close(first, second)
    assert not torch.allclose(first, without)
    assert NetworkConfig().fingertip_glimpse is False
