"""A CI-sized training run that must clearly beat the random policy.

The task is reduced so that a few hundred updates suffice: the object (sphere or cylinder,
random size, mass, friction, colour) always stands under the start pose, so the policy must
learn from pixels and motor state to descend the right number of steps and close. The full
task's numbers are in docs/results.md; this test guards the learning machinery end to end
(demonstrations, pre-training, DDQN updates, greedy evaluation) on real MuJoCo.
"""

import dataclasses

import numpy as np

from graspq.learning.settings import ExplorationConfig, NetworkConfig, TrainingConfig
from graspq.learning.trainer import Trainer
from graspq.sim.rollout import make_policy, run_episodes
from graspq.sim.settings import CameraConfig, EnvConfig, ObjectConfig

BASE = EnvConfig()
CENTRED = dataclasses.replace(
    BASE, camera=CameraConfig(image_size=32), max_steps=30,
    scene=dataclasses.replace(BASE.scene, spawn_half_xy_m=0.0),
    objects=ObjectConfig(types=("sphere", "cylinder")))
CONFIG = TrainingConfig(
    learner="ddqn", episodes=20, seed=0, demo_episodes=20, pretrain_updates=1000,
    demo_margin=0.8, n_step=3, batch_size=32, learning_starts=64, target_update_every=100,
    learning_rate=1e-3, eval_every=10**6, checkpoint_every=10**6, torch_threads=1,
    exploration=ExplorationConfig(epsilon_start=0.1, epsilon_end=0.05,
                                  epsilon_decay_episodes=20),
    network=NetworkConfig(stream_channels=8, joint_channels=8, fc_width=32, motor_width=32))


def test_short_training_run_beats_the_random_policy(tmp_path):
    trainer = Trainer(CONFIG, CENTRED, tmp_path / "run", log=lambda line: None)
    try:
        trainer.run()
        env = trainer.env
        greedy = run_episodes(env, lambda obs: int(np.argmax(trainer.agent.q_values(obs))),
                              20, seed=777).as_dict()
        random = run_episodes(env, make_policy("random", env, 0), 20, seed=777).as_dict()
    finally:
        trainer.close()
    assert random["success_rate"] <= 0.1
    assert greedy["success_rate"] >= 0.5, greedy
    assert greedy["success_rate"] >= random["success_rate"] + 0.4
