"""Fingertip offset channels (``network.fingertip_offset_channels``): the overhead camera's
geometry against the real renderer, the channels against the scene's own object and
fingertip, the config's refusals, and a training run that saves and loads them."""

import dataclasses

import numpy as np
import pytest
import torch

from graspq.config import ConfigError, apply_overrides
from graspq.learning.fingertip import FingertipFeatures
from graspq.learning.model import GraspQNetwork, preprocess
from graspq.learning.offset_channels import overhead_rays
from graspq.learning.policy_io import load_agent
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.observation import MOTOR_KEY, OVERHEAD_KEY
from graspq.policy.export import write_policy
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import EnvConfig

from .test_grasp_diagnosis import TINY, TINY_ENV

OFFSETS = dataclasses.replace(TINY.network, fingertip_features=True,
                              fingertip_offset_channels=True)
# Off the centre both ways, so a mirrored or swapped axis would miss by centimetres.
PLACES = ((0.06, -0.05), (-0.07, 0.04), (0.0, 0.08))


@pytest.fixture(scope="module")
def scene():
    env = BaxterGraspEnv(TINY_ENV)
    yield env
    env.close()


def _cube_at(env, dx, dy, height=0.25, **options):
    """Reset with a cube at (dx, dy) from the workspace centre; ``options`` adds reset
    options (the glimpse's tests start the fingertip over the cube)."""
    centre = np.asarray(env.config.scene.workspace_center_xy_m)
    obs, _ = env.reset(seed=0, options={"object": "cube",
                                        "object_pose": (centre[0] + dx, centre[1] + dy, 0.3),
                                        "start_height_above_table_m": height, **options})
    return obs


def test_the_rays_put_the_rendered_depth_on_the_table_and_the_object_where_it_lies(scene):
    config = scene.config
    position, rays = overhead_rays(config.camera, config.scene, config.camera.image_size)
    for dx, dy in PLACES:
        depth = _cube_at(scene, dx, dy)[OVERHEAD_KEY][..., 3]
        points = position[:, None, None] + depth[None] * rays
        height = points[2] - config.scene.table_top_z_m
        assert np.mean(np.abs(height) < 0.003) > 0.9  # the table fills most of the view
        on_object = (height > 0.005) & (height < 0.06)  # the arm is higher up
        assert on_object.sum() >= 5
        seen = np.array([points[0][on_object].mean(), points[1][on_object].mean()])
        # The camera sees a side face too, so the points' mean is a little off the centre.
        np.testing.assert_allclose(seen, scene.object_position()[:2], atol=0.01)


def test_the_channels_give_the_object_s_offset_from_the_fingertip_where_it_is_seen(scene):
    net = GraspQNetwork(OFFSETS.gqn(TINY_ENV.camera.image_size, "single"))
    tip = FingertipFeatures(OFFSETS.fingertip_unit_m)
    for dx, dy in PLACES:
        obs = _cube_at(scene, dx, dy)  # high enough that the arm hides none of the cube
        inputs = preprocess(obs, "cpu", TINY_ENV.camera.depth_near_m, TINY_ENV.camera.depth_far_m)
        with torch.no_grad():
            channels = net.offset_channels(inputs.overhead[:, 3:4],
                                           tip(inputs.motor[:, :7]))[0].numpy()
        fingertip = scene.fingertip_position()
        wanted = (scene.object_position() - fingertip)[:2] / OFFSETS.fingertip_unit_m
        height = channels[2] + fingertip[2] / OFFSETS.fingertip_unit_m  # back to base z
        table = TINY_ENV.scene.table_top_z_m / OFFSETS.fingertip_unit_m
        on_object = (height > table + 0.5) & (height < table + 6)
        seen = np.array([channels[0][on_object].mean(), channels[1][on_object].mean()])
        np.testing.assert_allclose(seen, wanted, atol=1.0)  # 1 cm: the unit


def test_the_config_refuses_channels_without_the_fingertip_or_for_another_camera(tmp_path):
    with pytest.raises(ConfigError, match="network.fingertip_offset_channels"):
        TrainingConfig(network=dataclasses.replace(OFFSETS, fingertip_features=False))
    training = TrainingConfig(network=OFFSETS)
    moved = apply_overrides(EnvConfig(), ["camera.overhead_offset_x_m=0.3"])
    with pytest.raises(ConfigError, match="camera.overhead_offset_x_m"):
        training.network_shape(moved)
    network = GraspQNetwork(OFFSETS.gqn(TINY_ENV.camera.image_size, "single"))
    with pytest.raises(ValueError, match="fingertip_offset_channels"):
        write_policy(network, TINY_ENV, training, tmp_path / "policy.onnx")
    assert not (tmp_path / "policy.onnx").exists()


def test_a_run_with_the_channels_trains_and_its_checkpoint_acts_the_same(tmp_path, train_run,
                                                                         scene):
    training = dataclasses.replace(TINY, views="single", network=OFFSETS)
    run = train_run(tmp_path / "run", training, TINY_ENV)
    agent, env_config, loaded = load_agent(run)
    assert loaded.network.fingertip_offset_channels
    assert agent.online.overhead_stream[0].in_channels == 4 + 3
    obs = _cube_at(scene, 0.03, -0.02, height=0.12)
    inputs = preprocess({key: obs[key] for key in (OVERHEAD_KEY, MOTOR_KEY)}, "cpu",
                        env_config.camera.depth_near_m, env_config.camera.depth_far_m)
    again, _, _ = load_agent(run)
    agent.online.eval()
    again.online.eval()
    with torch.no_grad():
        first, second = agent.online(*inputs), again.online(*inputs)
        # The channels move the Q-values: a depth image without the object changes them.
        flat = inputs.overhead.clone()
        flat[:, 3] = flat[:, 3].max()
        moved = agent.online(flat, inputs.motor)
    torch.testing.assert_close(first, second)
    assert not torch.allclose(first, moved)
    assert NetworkConfig().fingertip_offset_channels is False
