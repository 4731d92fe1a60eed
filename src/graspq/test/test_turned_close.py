"""Turned closes (``actions.close_yaw_turns``): closes that turn the gripper first, on the real
MuJoCo scene, through the learner, the replay, the CLI and the refusals of the robot side."""

import dataclasses
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from graspq.actions import (
    NUM_ACTIONS,
    Action,
    EpisodeExploration,
    GreedyChooser,
    action_count,
    action_name,
    close_actions,
    close_turn_steps,
    greedy_action,
)
from graspq.config import ConfigError, apply_overrides
from graspq.learning.agent import QAgent
from graspq.learning.model import GraspQNetwork
from graspq.learning.policy_io import load_agent
from graspq.learning.replay import ReplayBuffer
from graspq.learning.settings import ExplorationConfig, NetworkConfig, TrainingConfig
from graspq.policy.export import write_policy
from graspq.servo.runtime import ServoRuntime
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import EnvConfig

TURNED = apply_overrides(EnvConfig(), ["actions.close_mode=descend",
                                       "actions.close_yaw_turns=3", "camera.image_size=32"])
WIDTHS = NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8)


@pytest.fixture(scope="module")
def turned_env():
    environment = BaxterGraspEnv(TURNED)
    yield environment
    environment.close()


def _tool_yaw(env: BaxterGraspEnv) -> float:
    frame = env.data.site_xmat[env.scene.tcp_site].reshape(3, 3)
    return math.atan2(frame[1, 0], frame[0, 0])


def test_the_action_set_grows_by_two_closes_per_turn():
    assert action_count(0) == NUM_ACTIONS == 9
    assert action_count(3) == 15
    assert [close_turn_steps(a) for a in range(8, 15)] == [0, 1, -1, 2, -2, 3, -3]
    assert all(close_turn_steps(move) is None for move in range(Action.CLOSE))
    assert close_actions(13) == [8, 9, 10, 11, 12] and close_actions(9) == [8]
    assert [action_name(a) for a in (0, 8, 9, 12)] == ["PLUS_X", "CLOSE", "CLOSE_YAW+1",
                                                      "CLOSE_YAW-2"]
    with pytest.raises(ValueError, match="close_yaw_turns"):
        action_count(-1)


def test_greedy_choice_takes_a_turned_close_as_a_plain_index():
    q = np.zeros(13)
    q[11] = 1.0
    chooser = GreedyChooser(revisit_window=4)
    choice = chooser.choose(q)
    assert choice == 11 and not isinstance(choice, Action)
    q[11], q[Action.PLUS_X] = 0.0, 1.0
    assert greedy_action(q) is Action.PLUS_X


def test_random_steps_close_as_often_as_with_the_papers_set_at_any_yaw():
    rng = np.random.default_rng(0)
    exploration = EpisodeExploration(epsilon=1.0)
    drawn = np.array([exploration.choose(lambda: 0, 13, rng) for _ in range(18_000)])
    closing = np.isin(drawn, close_actions(13))
    assert closing.mean() == pytest.approx(1 / 9, abs=0.01)
    counts = np.bincount(drawn[closing], minlength=13)[close_actions(13)]
    assert counts.min() > 0.8 * counts.mean()  # every close's yaw, about evenly
    assert np.bincount(drawn, minlength=13)[:8].min() > 0.9 * 18_000 / 9  # every move


def test_the_default_scene_has_the_papers_nine_actions(env):
    assert env.action_space.n == NUM_ACTIONS
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"\[0, 9\)"):
        env.step(NUM_ACTIONS)


def test_a_turned_close_lifts_a_cube_the_plain_close_cannot(turned_env):
    # A 35 mm cube 45 deg off the fingers: its diagonal is wider than the open gripper, so a
    # plain close lands a finger on its top (test_descend_close); turned by 45 deg, either
    # way, the fingers meet two faces.
    config = dataclasses.replace(TURNED, objects=dataclasses.replace(
        TURNED.objects, cube_side_m=(0.035, 0.035)))
    env = BaxterGraspEnv(config)
    centre = config.scene.workspace_center_xy_m
    pose = {"object": "cube",
            "object_pose": (*centre, math.radians(config.scene.start_yaw_deg) + math.pi / 4)}
    step = math.radians(config.actions.yaw_step_deg)
    try:
        for action, outcome in ((Action.CLOSE, "partial"), (13, "success"), (14, "success")):
            env.reset(seed=0, options=pose)
            before = _tool_yaw(env)
            _, reward, terminated, _, info = env.step(action)
            turned = (_tool_yaw(env) - before + math.pi) % (2 * math.pi) - math.pi
            assert (info["outcome"], terminated, info["steps"]) == (outcome, True, 1), action
            assert turned == pytest.approx(close_turn_steps(action) * step, abs=0.1 * step)
            expected = config.rewards.success if outcome == "success" else config.rewards.partial
            assert reward == expected
    finally:
        env.close()


def test_a_turned_close_past_the_yaw_limit_is_not_executed(turned_env):
    env = turned_env
    env.reset(seed=0, options={"object": "sphere"})
    limit_turns = round(env.config.scene.yaw_limit_deg / env.config.actions.yaw_step_deg)
    for _ in range(limit_turns - 1):
        assert env.step(Action.PLUS_YAW)[4]["executed"]
    yaw = _tool_yaw(env)
    _, reward, terminated, truncated, info = env.step(11)  # two more steps: past the limit
    assert not info["executed"] and not (terminated or truncated)
    assert info["outcome"] == "running"
    assert reward == env.config.rewards.not_executed + env.config.rewards.step
    assert _tool_yaw(env) == pytest.approx(yaw, abs=1e-3)  # the arm stayed where it was
    _, _, terminated, _, info = env.step(10)  # one step back is within the limit: it closes
    assert terminated and info["executed"]


def test_the_replay_draws_among_every_close(turned_env):
    env = turned_env
    buffer = ReplayBuffer(64, 32, depth_near_m=TURNED.camera.depth_near_m,
                          depth_far_m=TURNED.camera.depth_far_m)
    obs, _ = env.reset(seed=1)
    for action in (Action.PLUS_X, Action.MINUS_Y, 9, Action.PLUS_X, 12):
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs, action, reward, next_obs, terminated, truncated)
        obs = next_obs if not terminated else env.reset(seed=2)[0]
    assert not buffer.holds_action(Action.CLOSE)
    assert buffer.holds_action(close_actions(13)) and buffer.holds_action(12)
    drawn = buffer.sample(64, np.random.default_rng(0), only_action=close_actions(13))
    assert set(drawn.actions.tolist()) == {9, 12}
    with pytest.raises(ValueError, match="no transition"):
        buffer.sample(4, np.random.default_rng(0), only_action=Action.CLOSE)


def test_a_hindsight_label_pulls_every_close_toward_it(turned_env):
    env = turned_env
    buffer = ReplayBuffer(64, 32, depth_near_m=TURNED.camera.depth_near_m,
                          depth_far_m=TURNED.camera.depth_far_m)
    obs, _ = env.reset(seed=3)
    slots = []
    for action in (Action.PLUS_X, Action.PLUS_Y, Action.MINUS_X, Action.MINUS_Y):
        next_obs, reward, terminated, truncated, _ = env.step(action)
        slots.append(buffer.add(obs, action, reward, next_obs, terminated, truncated))
        obs = next_obs
    buffer.set_close_labels(np.array(slots), np.full(len(slots), 5.0))
    config = TrainingConfig(batch_size=8, learning_rate=3e-3, network=WIDTHS, torch_threads=1,
                            precision="fp32")
    agent = QAgent(config, WIDTHS.gqn(32, "multi", action_count(3)),
                   TURNED.camera.depth_near_m, TURNED.camera.depth_far_m)
    batch = buffer.sample(8, np.random.default_rng(1))
    closes = close_actions(action_count(3))

    def close_q() -> np.ndarray:
        return np.mean([agent.q_values({k: v[i] for k, v in batch.obs.items()})[closes]
                        for i in range(8)], axis=0)

    before = close_q()
    for _ in range(30):
        agent.update(batch)
    after = close_q()
    assert (np.abs(after - 5.0) < np.abs(before - 5.0) / 2).all(), (before, after)


def test_a_run_with_turned_closes_trains_resumes_and_evaluates(tmp_path, train_run):
    env_config = apply_overrides(TURNED, ["max_steps=6"])
    training = TrainingConfig(
        learner="ddqn", episodes=3, seed=5, batch_size=8, replay_capacity=200,
        learning_starts=8, n_step=2, close_replay_rows=4, hindsight_close_labels=True,
        advantage_learning=0.5, eval_every=3, eval_episodes=3, checkpoint_every=3,
        torch_threads=1, exploration=ExplorationConfig(epsilon_decay_episodes=2),
        network=WIDTHS)
    run = train_run(tmp_path / "run", training, env_config)
    agent, stored_env, _ = load_agent(run)
    assert agent.online.config.num_actions == 15
    assert stored_env.actions.close_yaw_turns == 3
    result = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "eval", "--checkpoint", str(run), "--episodes",
         "3", "--seed", "7", "--json"], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["episodes"] == 3
    closed = sum(sum(counts.values()) for counts in report["closing_actions"].values())
    assert closed == sum(report["outcomes"].get(o, 0) for o in ("success", "partial", "miss"))


def test_the_robot_side_refuses_turned_closes_by_name(tmp_path):
    with pytest.raises(ConfigError, match="actions.close_yaw_turns"):
        ServoRuntime(TURNED)
    training = TrainingConfig(network=WIDTHS, torch_threads=1)
    network = GraspQNetwork(WIDTHS.gqn(32, "multi", action_count(3)))
    with pytest.raises(ValueError, match="close_yaw_turns 3"):
        write_policy(network, TURNED, training, tmp_path / "policy.onnx")
    assert not (tmp_path / "policy.onnx").exists()
