"""Scripted-oracle episodes recorded into a replay buffer, every step labelled by the oracle.

The trainer's demonstrations (``demo_episodes``, ``demo_epsilon``,
``demo_unturned_branches``) and ``tools/imitation_probe.py`` record through this module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from graspq.actions import Action, epsilon_greedy
from graspq.learning.pose import pose_target
from graspq.learning.replay import ReplayBuffer
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy

TURNS = (Action.PLUS_YAW, Action.MINUS_YAW)


class _StoredStep(NamedTuple):
    expert: int  # the oracle's choice in the state the step left
    action: int  # the action taken
    next_obs: dict[str, np.ndarray]
    done: bool
    info: dict


def _store_labelled_step(env: BaxterGraspEnv, oracle: OraclePolicy, buffer: ReplayBuffer,
                         obs: dict[str, np.ndarray],
                         choose: Callable[[int], int]) -> _StoredStep:
    """Ask the oracle for its choice and the pose in the current state, take
    ``choose(expert)``, and store the transition with both labels."""
    expert, pose = int(oracle.act()), pose_target(oracle)
    action = choose(expert)
    next_obs, reward, terminated, truncated, info = env.step(action)
    buffer.add(obs, action, reward, next_obs, terminated, truncated,
               expert_action=expert, pose_target=pose)
    return _StoredStep(expert, action, next_obs, terminated or truncated, info)


class DemoCounts(NamedTuple):
    """What a recording produced: the episodes that picked their object, the unturned
    branches recorded and the branches that picked it all the same."""

    successes: int
    branches: int = 0
    branch_successes: int = 0


def record_oracle_episodes(env: BaxterGraspEnv, buffer: ReplayBuffer, seeds: Iterable[int],
                           epsilon: float, rng: np.random.Generator,
                           unturned_branches: bool = False) -> DemoCounts:
    """One episode per env seed, acting like the oracle but taking a random action with
    probability ``epsilon`` (DART noise injection, Laskey et al. 2017: the episodes also show
    recoveries from wrong moves). Every transition is stored with the oracle's choice in its
    state as ``expert_action``, and the object's pose relative to the gripper as
    ``pose_target`` (:mod:`graspq.learning.pose`).

    With ``unturned_branches``, each episode in which the oracle asks for a turn is followed
    by a branch from that state (:func:`record_unturned_branch`)."""
    oracle = OraclePolicy(env)

    def noisy(expert: int) -> int:
        return int(epsilon_greedy(lambda: expert, epsilon, env.action_space.n, rng))

    successes = branches = branch_successes = 0
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        actions: list[int] = []
        first_turn: int | None = None  # steps taken before the oracle first asked to turn
        done = False
        while not done:
            step = _store_labelled_step(env, oracle, buffer, obs, noisy)
            if first_turn is None and step.expert in TURNS:
                first_turn = len(actions)
            actions.append(step.action)
            obs, done = step.next_obs, step.done
        successes += step.info["outcome"] == "success"
        if unturned_branches and first_turn is not None:
            outcome = record_unturned_branch(env, oracle, buffer, seed, actions[:first_turn])
            branches += 1
            branch_successes += outcome == "success"
    return DemoCounts(successes, branches, branch_successes)


def unturned_action(env: BaxterGraspEnv, expert: int) -> int:
    """The oracle's action ``expert`` with a turn replaced by what a policy that skips the
    turn does: descend, or close once it cannot descend further."""
    if expert not in TURNS:
        return expert
    position, yaw_offset = env.fingertip_command
    below = position - [0.0, 0.0, env.config.actions.translation_step_m]
    return int(Action.MINUS_Z if env.in_workspace(below, yaw_offset) else Action.CLOSE)


def record_unturned_branch(env: BaxterGraspEnv, oracle: OraclePolicy, buffer: ReplayBuffer,
                           seed: int, prefix: list[int]) -> str:
    """Replay an episode's first ``len(prefix)`` actions (reset and physics are deterministic,
    so this returns to the state where the oracle first asked to turn), then go on without
    ever turning: the oracle's moves with each turn replaced by a descent, and a close at
    the bottom (:func:`unturned_action`). The trained policy's commonest cube failure is
    this path (docs/results_branches.md); the demonstrations alone show it only where their
    noise happens to skip a turn. Each branch transition is stored as its own episode's,
    labelled with the oracle's real choice (a turn, while the yaw is off) and the pose.
    Returns the branch's outcome."""
    obs, _ = env.reset(seed=seed)
    for action in prefix:
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:  # cannot happen if the replay is faithful
            raise RuntimeError(f"replaying demonstration seed {seed} ended early: the "
                               "environment is not deterministic")
    while True:
        step = _store_labelled_step(env, oracle, buffer, obs,
                                    lambda expert: unturned_action(env, expert))
        if step.done:
            return step.info["outcome"]
        obs = step.next_obs
