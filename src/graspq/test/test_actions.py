"""Greedy action choice: plain argmax, or never undoing the previous move."""

import dataclasses
import itertools

import numpy as np
import pytest

from graspq.actions import NUM_ACTIONS, REVERSE, Action, GreedyChooser, greedy_action
from graspq.learning.trainer import GreedyPolicy
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.rollout import run_episodes
from graspq.sim.settings import CameraConfig, EnvConfig


def _q(**values):
    q = np.zeros(NUM_ACTIONS)
    for name, value in values.items():
        q[Action[name]] = value
    return q


def test_reverse_pairs_every_move_with_its_opposite():
    assert len(REVERSE) == NUM_ACTIONS - 1 and Action.CLOSE not in REVERSE
    for move, back in REVERSE.items():
        assert REVERSE[back] is move and move is not back


def test_greedy_action_skips_only_the_reverse_of_the_previous_move():
    q = _q(MINUS_X=3.0, MINUS_Z=2.0, PLUS_X=1.0)
    assert greedy_action(q) is Action.MINUS_X
    assert greedy_action(q, previous=Action.PLUS_X) is Action.MINUS_Z  # best other action
    assert greedy_action(q, previous=Action.MINUS_X) is Action.MINUS_X  # going on is fine
    assert greedy_action(q, previous=Action.PLUS_Y) is Action.MINUS_X
    assert greedy_action(q, previous=Action.CLOSE) is Action.MINUS_X
    assert greedy_action(_q(PLUS_YAW=1.0), previous=Action.MINUS_YAW) is not Action.PLUS_YAW
    assert q[Action.MINUS_X] == 3.0  # the caller's Q-values are left as they were


@pytest.mark.parametrize("block", [False, True])
def test_chooser_remembers_its_last_choice_until_reset(block):
    chooser = GreedyChooser(block_reversal=block)
    toward_minus_x = _q(MINUS_X=1.0, CLOSE=0.5)
    assert chooser.choose(_q(PLUS_X=1.0)) is Action.PLUS_X
    assert chooser.choose(toward_minus_x) is (Action.CLOSE if block else Action.MINUS_X)
    chooser.choose(_q(PLUS_X=1.0))
    chooser.reset()
    assert chooser.choose(toward_minus_x) is Action.MINUS_X


class _OvershootingQ:
    """Q-values of a servo rule that always steps toward the object's x, in 1 cm steps, so it
    overshoots and comes back (a two-step loop), with descending as its second choice."""

    def __init__(self, env: BaxterGraspEnv) -> None:
        self.oracle = OraclePolicy(env)

    def q_values(self, obs):
        toward = "PLUS_X" if self.oracle.object_offset()[0] > 0 else "MINUS_X"
        return _q(**{toward: 1.0, "MINUS_Z": 0.5})


class _Recorded:
    """A policy whose actions are kept, one list per episode."""

    def __init__(self, policy) -> None:
        self.policy, self.episodes = policy, []

    def reset(self) -> None:
        self.episodes.append([])
        self.policy.reset()

    def __call__(self, obs) -> int:
        action = self.policy(obs)
        self.episodes[-1].append(action)
        return action


def _episodes(env, policy, episodes):
    recorded = _Recorded(policy)
    summary = run_episodes(env, recorded, episodes, seed=40, object_type="cube")
    return recorded.episodes, summary


def _reversals(actions):
    return sum(REVERSE[Action(a)] == b for a, b in itertools.pairwise(actions))


def test_blocking_reversal_breaks_a_real_two_step_loop():
    env = BaxterGraspEnv(dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32),
                                             max_steps=9))
    try:
        scripted = _OvershootingQ(env)
        looping, summary = _episodes(env, GreedyPolicy(scripted), 2)
        assert summary.as_dict()["outcomes"] == {"timeout": 2}
        for actions in looping:  # -x, +x, -x, ... until the time-out, never lower
            assert set(actions) == {Action.PLUS_X, Action.MINUS_X}
            assert _reversals(actions) == len(actions) - 1
        blocked, _ = _episodes(env, GreedyPolicy(scripted, block_reversal=True), 2)
        for actions in blocked:  # every step back became a descent
            assert _reversals(actions) == 0
            assert actions.count(Action.MINUS_Z) == 4
        # Episode 2 starts with the reverse of episode 1's last move: the policy was reset, so
        # that first move is the plain greedy one, not blocked.
        assert REVERSE[Action(blocked[0][-1])] == blocked[1][0] == looping[1][0]
    finally:
        env.close()
