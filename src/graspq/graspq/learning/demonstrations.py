"""Scripted-oracle episodes recorded into a replay buffer, every step labelled by the oracle.

The trainer's demonstrations (``demo_episodes``, ``demo_epsilon``) and
``tools/imitation_probe.py`` record through this one function.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from graspq.actions import epsilon_greedy
from graspq.learning.pose import pose_target
from graspq.learning.replay import ReplayBuffer
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy


def record_oracle_episodes(env: BaxterGraspEnv, buffer: ReplayBuffer, seeds: Iterable[int],
                           epsilon: float, rng: np.random.Generator) -> int:
    """One episode per env seed, acting like the oracle but taking a random action with
    probability ``epsilon`` (DART noise injection, Laskey et al. 2017: the episodes also show
    recoveries from wrong moves). Every transition is stored with the oracle's choice in its
    state as ``expert_action``, and the object's pose relative to the gripper as
    ``pose_target`` (:mod:`graspq.learning.pose`). Returns how many episodes ended in a
    successful pick."""
    oracle = OraclePolicy(env)
    successes = 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        done = False
        while not done:
            expert, pose = int(oracle.act()), pose_target(oracle)
            action = epsilon_greedy(lambda expert=expert: expert, epsilon, env.action_space.n,
                                    rng)
            next_obs, reward, terminated, truncated, info = env.step(action)
            buffer.add(obs, action, reward, next_obs, terminated, truncated,
                       expert_action=expert, pose_target=pose)
            obs, done = next_obs, terminated or truncated
        successes += info["outcome"] == "success"
    return successes
