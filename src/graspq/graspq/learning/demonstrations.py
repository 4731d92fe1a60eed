"""Scripted-oracle episodes recorded into a replay buffer, every step labelled by the oracle.

The trainer's demonstrations (``demo_episodes``, ``demo_epsilon``,
``demo_unturned_branches``) and ``tools/imitation_probe.py`` record through this module; the
trainer's labels of the agent's own states come from :func:`oracle_labels` too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

import numpy as np

from graspq.actions import TURNS, Action, epsilon_greedy
from graspq.learning.pose import pose_target
from graspq.learning.replay import NO_EXPERT, ReplayBuffer
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy


class OracleLabels(NamedTuple):
    """What the oracle says about the current state, as the replay buffer stores it."""

    expert: int  # its choice
    tie: int  # another action as good (the other turn, with expert_turn_ties), or NO_EXPERT
    pose: np.ndarray  # the pose target (graspq.learning.pose)


def oracle_labels(oracle: OraclePolicy, turn_ties: bool) -> OracleLabels:
    """The oracle's labels of the env's current state; ``turn_ties`` also names the turn
    opposite its own where that one is as good (:meth:`OraclePolicy.tied_turn`)."""
    expert = oracle.act()
    tie = oracle.tied_turn(expert) if turn_ties else None
    return OracleLabels(int(expert), NO_EXPERT if tie is None else int(tie), pose_target(oracle))


class _StoredStep(NamedTuple):
    expert: int  # the oracle's choice in the state the step left
    action: int  # the action taken
    next_obs: dict[str, np.ndarray]
    done: bool
    info: dict


def _store_labelled_step(env: BaxterGraspEnv, oracle: OraclePolicy, buffer: ReplayBuffer,
                         obs: dict[str, np.ndarray], choose: Callable[[int], int],
                         turn_ties: bool) -> _StoredStep:
    """Ask the oracle for its labels of the current state (:func:`oracle_labels`), take
    ``choose(expert)``, and store the transition with the labels."""
    labels = oracle_labels(oracle, turn_ties)
    action = choose(labels.expert)
    next_obs, reward, terminated, truncated, info = env.step(action)
    buffer.add(obs, action, reward, next_obs, terminated, truncated,
               expert_action=labels.expert, pose_target=labels.pose, expert_tie=labels.tie)
    return _StoredStep(labels.expert, action, next_obs, terminated or truncated, info)


class DemoCounts(NamedTuple):
    """What a recording produced: the episodes that picked their object, the unturned
    branches recorded and the branches that picked it all the same."""

    successes: int
    branches: int = 0
    branch_successes: int = 0


def demo_capacity(episodes: int, max_steps: int, unturned_branches: bool) -> int:
    """Transitions a buffer needs for ``episodes`` demonstrations: a branch replays a prefix
    of its episode and stops at ``max_steps`` in all, so an episode and its branch together
    fit in two episodes' room."""
    return (2 if unturned_branches else 1) * episodes * (max_steps + 1)


def record_oracle_episodes(env: BaxterGraspEnv, buffer: ReplayBuffer,
                           episodes: Iterable[tuple[int, np.random.Generator]],
                           epsilon: float, unturned_branches: bool = False,
                           turn_ties: bool = False) -> DemoCounts:
    """One episode per ``(env seed, noise generator)`` pair, acting like the oracle but taking
    a random action, drawn from the pair's generator, with probability ``epsilon`` (DART
    noise injection, Laskey et al. 2017: the episodes also show recoveries from wrong moves).
    Pairs may share one generator (the trainer's ``demo_noise_per_episode: false``). Every
    transition is stored with the oracle's choice in its state as ``expert_action``, and the
    object's pose relative to the gripper as ``pose_target`` (:mod:`graspq.learning.pose`).

    With ``unturned_branches``, each episode in which the oracle asks for a turn is followed
    by a branch from that state (:func:`record_unturned_branch`). With ``turn_ties``, a
    turn label also names the opposite turn where that one is as good (``expert_tie``)."""
    oracle = OraclePolicy(env)
    successes = branches = branch_successes = 0
    for seed, rng in episodes:

        def noisy(expert: int, rng: np.random.Generator = rng) -> int:
            return int(epsilon_greedy(lambda: expert, epsilon, env.action_space.n, rng))

        obs, _ = env.reset(seed=seed)
        actions: list[int] = []
        first_turn: int | None = None  # steps taken before the oracle first asked to turn
        done = False
        while not done:
            step = _store_labelled_step(env, oracle, buffer, obs, noisy, turn_ties)
            if first_turn is None and step.expert in TURNS:
                first_turn = len(actions)
            actions.append(step.action)
            obs, done = step.next_obs, step.done
        successes += step.info["outcome"] == "success"
        if unturned_branches and first_turn is not None:
            outcome = record_unturned_branch(env, oracle, buffer, seed, actions[:first_turn],
                                             turn_ties)
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
                           seed: int, prefix: list[int], turn_ties: bool = False) -> str:
    """Replay an episode's first ``len(prefix)`` actions (reset and physics are deterministic,
    so this returns to the state where the oracle first asked to turn), then go on without
    ever turning: the oracle's moves with each turn replaced by a descent, and a close at
    the bottom (:func:`unturned_action`). The trained policy's commonest cube failure is
    this path (docs/results_branches.md); the demonstrations alone show it only where their
    noise happens to skip a turn. Each branch transition is stored as its own episode's,
    labelled with the oracle's real choice (a turn, while the yaw is off) and the pose (and
    with ``turn_ties``, the tied turn). Returns the branch's outcome."""
    obs, _ = env.reset(seed=seed)
    for action in prefix:
        obs, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:  # cannot happen if the replay is faithful
            raise RuntimeError(f"replaying demonstration seed {seed} ended early: the "
                               "environment is not deterministic")
    while True:
        step = _store_labelled_step(env, oracle, buffer, obs,
                                    lambda expert: unturned_action(env, expert), turn_ties)
        if step.done:
            return step.info["outcome"]
        obs = step.next_obs
