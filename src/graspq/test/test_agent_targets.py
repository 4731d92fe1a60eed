"""The update's TD targets: next states evaluated only where the episode goes on, and
advantage learning's correction. Every agent here updates in float32: the expected values are
float32 sums, and `precision: auto` would round a bf16 CPU's update differently."""

import copy
import dataclasses

import numpy as np
import pytest
import torch

from graspq.actions import Action
from graspq.config import ConfigError
from graspq.learning.agent import QAgent
from graspq.learning.model import preprocess
from graspq.learning.replay import ReplayBuffer
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.learning.targets import q_of_actions, td_targets
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import CameraConfig, EnvConfig

ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=6)
SMALL = NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8)


@pytest.fixture(scope="module")
def replay() -> ReplayBuffer:
    """Short real episodes, most of them ended by a close."""
    camera = ENV.camera
    buffer = ReplayBuffer(200, camera.image_size, "multi", camera.depth_near_m,
                          camera.depth_far_m)
    env = BaxterGraspEnv(ENV)
    rng = np.random.default_rng(5)
    try:
        for episode in range(12):
            obs, _ = env.reset(seed=episode)
            done = False
            while not done:
                action = int(Action.CLOSE if rng.random() < 0.3 else rng.integers(0, 8))
                next_obs, reward, terminated, truncated, _ = env.step(action)
                buffer.add(obs, action, reward, next_obs, terminated, truncated)
                obs, done = next_obs, terminated or truncated
    finally:
        env.close()
    return buffer


@pytest.mark.parametrize("learner", ["ddqn", "dqn"])
def test_terminated_rows_skip_the_next_state_networks_and_keep_their_targets(replay, learner):
    config = TrainingConfig(learner=learner, batch_size=24, learning_starts=24, n_step=2,
                            torch_threads=1, hindsight_close_labels=False, precision="fp32",
                            network=SMALL)
    camera = ENV.camera
    torch.manual_seed(0)
    agent = QAgent(config, config.network.gqn(camera.image_size, "multi"),
                   camera.depth_near_m, camera.depth_far_m)
    batch = replay.sample(24, np.random.default_rng(1), config.n_step, config.gamma)
    terminated = np.asarray(batch.terminated, bool)
    assert 0 < terminated.sum() < len(terminated)  # both kinds of row in the batch

    # Expected targets: both networks on every next state, before the update changes them.
    online, target = copy.deepcopy(agent.online).eval(), copy.deepcopy(agent.target)
    bounds = (camera.depth_near_m, camera.depth_far_m)
    with torch.no_grad():
        next_inputs = preprocess(batch.next_obs, "cpu", *bounds)
        expected = td_targets(learner, torch.as_tensor(batch.rewards),
                              torch.as_tensor(batch.terminated), online(*next_inputs),
                              target(*next_inputs), config.gamma ** torch.as_tensor(batch.steps))
        online.train()
        q_taken = q_of_actions(online(*preprocess(batch.obs, "cpu", *bounds)),
                               torch.as_tensor(batch.actions))

    seen: list[int] = []
    hook = agent.target.register_forward_pre_hook(lambda _m, args: seen.append(len(args[0])))
    agent.update(batch)
    hook.remove()
    assert seen == [int((~terminated).sum())]
    np.testing.assert_allclose(agent.td_errors, (expected - q_taken).numpy(), atol=1e-5)


def test_a_batch_of_closes_alone_needs_no_next_state(replay):
    config = TrainingConfig(batch_size=8, learning_starts=8, torch_threads=1,
                            hindsight_close_labels=False, precision="fp32",
                            network=SMALL)
    camera = ENV.camera
    agent = QAgent(config, config.network.gqn(camera.image_size, "multi"),
                   camera.depth_near_m, camera.depth_far_m)
    closes = replay.sample(8, np.random.default_rng(2), only_action=Action.CLOSE)
    assert np.asarray(closes.terminated, bool).all()
    with torch.no_grad():  # a close's target is its reward alone
        q_close = q_of_actions(copy.deepcopy(agent.online).train()(
            *preprocess(closes.obs, "cpu", camera.depth_near_m, camera.depth_far_m)),
            torch.as_tensor(closes.actions))
    seen: list[int] = []
    hook = agent.target.register_forward_pre_hook(lambda _m, args: seen.append(len(args[0])))
    agent.update(closes)
    hook.remove()
    assert seen == []
    np.testing.assert_allclose(agent.td_errors, closes.rewards - q_close.numpy(), atol=1e-5)


def test_advantage_learning_lowers_each_target_by_the_target_networks_action_gap(replay):
    """Each row's target falls by alpha (V'(s) - Q'(s, a)), the target network at the state
    itself; the row whose action is the target network's best keeps its target."""
    camera = ENV.camera
    batch = replay.sample(24, np.random.default_rng(3), 2, 0.9)
    errors = {}
    for alpha in (0.0, 0.6):
        config = TrainingConfig(batch_size=24, learning_starts=24, n_step=2, gamma=0.9,
                                torch_threads=1, hindsight_close_labels=False, precision="fp32",
                                advantage_learning=alpha, network=SMALL)
        torch.manual_seed(0)  # the same weights for both
        agent = QAgent(config, config.network.gqn(camera.image_size, "multi"),
                       camera.depth_near_m, camera.depth_far_m)
        target = copy.deepcopy(agent.target)
        agent.update(batch)
        errors[alpha] = agent.td_errors
    with torch.no_grad():
        q = target(*preprocess(batch.obs, "cpu", camera.depth_near_m, camera.depth_far_m))
    gap = (q.max(1).values - q_of_actions(q, torch.as_tensor(batch.actions))).numpy()
    assert (gap >= 0).all() and (gap > 0).any() and (gap == 0).any()
    np.testing.assert_allclose(errors[0.6], errors[0.0] - 0.6 * gap, atol=1e-5)


def test_advantage_learning_needs_a_target_network():
    with pytest.raises(ConfigError, match="advantage_learning"):
        TrainingConfig(learner="qlearning", batch_size=1, learning_starts=1,
                       advantage_learning=0.5)
