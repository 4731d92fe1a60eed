"""Hindsight close labels: the states a successful episode passed through, at least two steps
from where it closed, are labelled with the miss reward; closing there does fail."""

import dataclasses

import numpy as np
import pytest

from graspq.actions import Action
from graspq.learning.agent import QAgent
from graspq.learning.hindsight import HindsightCloseLabeller
from graspq.learning.replay import ReplayBuffer
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.learning.trainer import Trainer
from graspq.rewards import RewardConfig
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.settings import CameraConfig, EnvConfig

SCENE = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32),
                            actions=dataclasses.replace(EnvConfig().actions,
                                                        close_mode="descend"))
SEED = 4


def _options(env: BaxterGraspEnv) -> dict:
    cx, cy = env.config.scene.workspace_center_xy_m
    return {"object": "sphere", "object_pose": (cx + 0.042, cy - 0.033, 0.0)}


@pytest.fixture(scope="module")
def episode():
    """The oracle's episode, as the trainer stores it: slots, the labeller's output, the
    simulator's fingertip positions (for the test's own reference) and the actions."""
    env = BaxterGraspEnv(SCENE)
    buffer = ReplayBuffer(200, 32, depth_near_m=SCENE.camera.depth_near_m,
                          depth_far_m=SCENE.camera.depth_far_m)
    labeller = HindsightCloseLabeller(0.02, SCENE.rewards)
    obs, _ = env.reset(seed=SEED, options=_options(env))
    oracle = OraclePolicy(env)
    actions, tips, reward, done = [], [], 0.0, False
    while not done:
        action = int(oracle.act())
        tips.append(env.fingertip_position()[:2].copy())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        labeller.step(buffer.add(obs, action, reward, next_obs, terminated, truncated), obs)
        actions.append(action)
        obs, done = next_obs, terminated or truncated
    slots, values = labeller.finish(reward == SCENE.rewards.success)
    yield env, buffer, slots, values, np.array(tips), actions, reward
    env.close()


def test_a_successful_episode_labels_the_states_two_steps_away(episode):
    _, buffer, slots, values, tips, actions, reward = episode
    assert reward == SCENE.rewards.success and actions[-1] == Action.CLOSE
    offsets = np.abs(tips - tips[-1]).max(axis=1)
    expected = np.flatnonzero(offsets >= 0.018)
    assert 0 < expected.size < len(actions)  # some states were far, the last few were not
    np.testing.assert_array_equal(slots, expected)  # slots follow the steps in a new buffer
    assert (values == 0.0).all()  # a miss earns nothing
    buffer.set_close_labels(slots, values)
    batch = buffer.sample(256, np.random.default_rng(0))
    labelled = np.isfinite(batch.close_labels)
    assert set(batch.indices[labelled]) <= set(slots)
    assert not set(batch.indices[~labelled]) & set(slots)


def test_closing_in_a_labelled_state_does_fail(episode):
    env, _, slots, _, tips, actions, _ = episode
    offsets = np.abs(tips - tips[-1]).max(axis=1)
    nearest = slots[np.argmin(offsets[slots])]  # the hardest labelled state: two steps off
    for step in (nearest, slots[0]):
        env.reset(seed=SEED, options=_options(env))
        for action in actions[:step]:
            env.step(action)
        _, reward, terminated, _, _ = env.step(int(Action.CLOSE))
        assert terminated and reward < SCENE.rewards.success, step


def test_failed_episodes_label_nothing():
    labeller = HindsightCloseLabeller(0.02, RewardConfig())
    for slot in range(5):
        labeller.step(slot, {"motor": np.zeros(8, np.float32)})
    slots, values = labeller.finish(success=False)
    assert slots.size == values.size == 0
    assert labeller.finish(success=True)[0].size == 0  # and the episode's record is cleared


def test_the_label_pulls_q_close_toward_it(episode):
    _, buffer, slots, values, *_ = episode
    network = NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8)
    config = TrainingConfig(batch_size=16, learning_starts=16, learning_rate=3e-3,
                            network=network, torch_threads=1, precision="fp32")
    agent = QAgent(config, network.gqn(32, "multi"), SCENE.camera.depth_near_m,
                   SCENE.camera.depth_far_m)
    buffer.set_close_labels(slots, values + 5.0)  # a target far from where Q starts
    batch = buffer.sample(16, np.random.default_rng(1))
    rows = np.isfinite(batch.close_labels)
    assert rows.any()

    def close_q() -> float:
        return float(np.mean([agent.q_values({k: v[i] for k, v in batch.obs.items()})
                              [Action.CLOSE] for i in np.flatnonzero(rows)]))

    before = close_q()
    for _ in range(30):
        agent.update(batch)
    assert "hindsight" in agent.loss_parts
    assert abs(close_q() - 5.0) < abs(before - 5.0) / 2


def test_the_trainer_labels_its_replay_after_a_success(tmp_path):
    network = NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8)
    config = TrainingConfig(episodes=1, batch_size=8, learning_starts=500, network=network,
                            torch_threads=1, hindsight_close_labels=True)
    trainer = Trainer(config, SCENE, tmp_path / "run", log=lambda line: None)
    try:
        env = trainer.env
        for success_wanted in (False, True):
            obs, _ = env.reset(seed=SEED, options=_options(env))
            oracle, done = OraclePolicy(env), False
            while not done:
                action = int(oracle.act()) if success_wanted else int(Action.PLUS_X)
                next_obs, reward, terminated, truncated, _ = env.step(action)
                trainer._observe(obs, action, reward, next_obs, terminated, truncated)
                obs, done = next_obs, terminated or truncated
            labelled = np.isfinite(trainer.replay._close_label)
            # The walk along +x never closes (it times out or leaves the workspace):
            # nothing is labelled; the oracle's success labels its far states.
            assert labelled.any() == success_wanted
        assert trainer.hindsight_labels == int(labelled.sum())
    finally:
        trainer.close()
