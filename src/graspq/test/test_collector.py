"""graspq.learning.collector: the trainer learning from episodes a robot runs (the ROS
backend's core), here the SimRobot driven as the ROS nodes drive it: the episodes train,
evaluate, checkpoint and resume, the replay holds every step the robot reported, and a
config that needs the simulator's privileged teacher is refused naming the key."""

import collections
import dataclasses
import itertools

import numpy as np
import pytest
import torch

from graspq.actions import Action
from graspq.config import ConfigError
from graspq.learning.agent import QAgent
from graspq.learning.collector import AgentGuard, ExploringPolicy, GreedyGuardedPolicy
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.learning.trainer import Trainer, read_log
from graspq.servo.runtime import ServoRuntime
from graspq.servo.settings import ServoConfig, SimDevicesConfig
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.robot import SimRobot
from graspq.sim.rollout import EpisodeRecord
from graspq.sim.settings import CameraConfig, EnvConfig

ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=8)
TRAINING = TrainingConfig(
    learner="ddqn", episodes=3, seed=4, batch_size=4, replay_capacity=200, learning_starts=4,
    eval_episodes=2, eval_every=3, checkpoint_every=3, torch_threads=1,
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))


class SimRobotCollector:
    """Episodes on a SimRobot run by the servo runtime (no ROS)."""

    def __init__(self, drive):
        self.robot = SimRobot(ENV, SimDevicesConfig(), seed=1)
        self.drive = drive
        self.steps_reported = 0

    def collect(self, env_seed, policy, on_step, idle, object_type=None):
        def count(step):
            self.steps_reported += 1
            on_step(step)

        runtime = ServoRuntime(ENV, ServoConfig(), policy, on_step=count)
        outcome, _ = self.drive(self.robot, runtime, env_seed, idle=idle,
                                object_type=object_type)
        status = runtime.status
        return EpisodeRecord(env_seed, self.robot.env.object_spec.kind, outcome.value,
                             status.step, status.episode_return)


def test_training_from_robot_episodes_learns_evaluates_checkpoints_and_resumes(
        tmp_path, drive_robot):
    collector = SimRobotCollector(drive_robot)
    try:
        trainer = Trainer(TRAINING, ENV, tmp_path, log=lambda _line: None, collector=collector)
        trainer.run()
        trainer.close()
        rows = read_log(tmp_path / "train.csv")
        assert [int(r["episode"]) for r in rows] == [1, 2, 3]
        assert trainer.env_steps == sum(int(r["steps"]) for r in rows)
        training_steps = collector.steps_reported - sum(  # eval episodes report too
            int(float(r["mean_steps"]) * TRAINING.eval_episodes)
            for r in read_log(tmp_path / "eval.csv"))
        assert len(trainer.replay) == trainer.env_steps == training_steps
        assert trainer.agent.updates > 0
        assert len(read_log(tmp_path / "eval.csv")) == 1
        resumed = Trainer(dataclasses.replace(TRAINING, episodes=4), ENV, tmp_path,
                          resume=True, log=lambda _line: None, collector=collector)
        resumed.run()
        resumed.close()
        assert [int(r["episode"]) for r in read_log(tmp_path / "train.csv")] == [1, 2, 3, 4]
    finally:
        collector.robot.close()


@pytest.mark.parametrize("key, value", [("demo_episodes", 2), ("expert_labels", True),
                                        ("pose_loss_weight", 0.5)])
def test_a_config_that_needs_the_oracle_is_refused_with_a_robot(tmp_path, key, value):
    training = dataclasses.replace(TRAINING, demo_margin=0.8, **{key: value})
    with pytest.raises(ConfigError, match=key):
        Trainer(training, ENV, tmp_path, log=lambda _line: None, collector=object())


def test_the_robots_exploring_policy_holds_its_random_streaks():
    """Robot episodes explore as simulated ones: the config's max_random_streak reaches
    ExploringPolicy."""
    agent = QAgent(TRAINING, TRAINING.network.gqn(32, "multi"), ENV.camera.depth_near_m,
                   ENV.camera.depth_far_m)
    env = BaxterGraspEnv(ENV)
    try:
        obs, _ = env.reset(seed=0)
    finally:
        env.close()

    def mean_run(streak):
        exploration = dataclasses.replace(TRAINING.exploration, max_random_streak=streak)
        policy = ExploringPolicy(AgentGuard(agent), exploration.for_episode(1.0),
                                 np.random.default_rng(2))
        actions = [int(policy.decide(obs).action) for _ in range(300)]
        return np.mean([len(list(run)) for _, run in itertools.groupby(actions)])

    assert mean_run(1) < 1.4 < 1.9 < mean_run(4)


def test_the_robots_exploring_policy_turns_instead_of_a_greedy_close():
    """turn_instead_of_close reaches ExploringPolicy (robot episodes explore as simulated
    ones); the greedy policy of evaluations never swaps."""
    agent = QAgent(TRAINING, TRAINING.network.gqn(32, "multi"), ENV.camera.depth_near_m,
                   ENV.camera.depth_far_m)
    with torch.no_grad():
        agent.online.head[-1].bias[Action.CLOSE] = 50.0  # greedy: close
    env = BaxterGraspEnv(ENV)
    try:
        obs, _ = env.reset(seed=0)
    finally:
        env.close()
    guard = AgentGuard(agent)
    exploration = dataclasses.replace(TRAINING.exploration, turn_instead_of_close=0.5)
    turning = ExploringPolicy(guard, exploration.for_episode(0.0), np.random.default_rng(2))
    chosen = collections.Counter(int(turning.decide(obs).action) for _ in range(400))
    assert set(chosen) == {Action.CLOSE, Action.PLUS_YAW, Action.MINUS_YAW}
    assert 0.4 < chosen[Action.CLOSE] / 400 < 0.6
    greedy = GreedyGuardedPolicy(guard, revisit_window=0)
    assert {greedy.decide(obs).action for _ in range(50)} == {Action.CLOSE}
