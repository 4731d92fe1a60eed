"""Action choice: plain argmax, never back to a pose of the last few moves, and exploration
(epsilon-greedy with random streaks, turns instead of greedy closes)."""

import collections
import dataclasses
import itertools

import numpy as np
import pytest

from graspq.actions import (
    GRID_STEP,
    NUM_ACTIONS,
    Action,
    EpisodeExploration,
    GreedyChooser,
    epsilon_greedy,
    greedy_action,
)
from graspq.learning.settings import ExplorationConfig
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


# The move that undoes each move, written out (CLOSE has none).
REVERSE = {
    Action.PLUS_X: Action.MINUS_X, Action.MINUS_X: Action.PLUS_X,
    Action.PLUS_Y: Action.MINUS_Y, Action.MINUS_Y: Action.PLUS_Y,
    Action.PLUS_Z: Action.MINUS_Z, Action.MINUS_Z: Action.PLUS_Z,
    Action.PLUS_YAW: Action.MINUS_YAW, Action.MINUS_YAW: Action.PLUS_YAW,
}


def test_every_move_is_one_grid_step_that_its_reverse_undoes():
    assert set(GRID_STEP) == set(REVERSE) and Action.CLOSE not in GRID_STEP
    for move, back in REVERSE.items():
        assert sum(abs(unit) for unit in GRID_STEP[move]) == 1
        assert [a + b for a, b in zip(GRID_STEP[move], GRID_STEP[back], strict=True)] == [0] * 4


def test_greedy_action_is_the_argmax_over_the_actions_not_excluded():
    q = _q(MINUS_X=3.0, MINUS_Z=2.0, PLUS_X=1.0)
    assert greedy_action(q) is Action.MINUS_X
    assert greedy_action(q, [Action.MINUS_X]) is Action.MINUS_Z  # best other action
    assert greedy_action(q, [Action.MINUS_X, Action.MINUS_Z]) is Action.PLUS_X
    assert greedy_action(q, [Action.PLUS_Y]) is Action.MINUS_X
    assert q[Action.MINUS_X] == 3.0  # the caller's Q-values are left as they were


def _never_undo(q_sequence):
    """The rule a window of 1 must be, written out: argmax, except the reverse of the move
    chosen just before."""
    previous, chosen = None, []
    for q in q_sequence:
        q = q.copy()
        if previous in REVERSE:
            q[REVERSE[previous]] = -np.inf
        previous = Action(int(np.argmax(q)))
        chosen.append(previous)
    return chosen


def test_a_window_of_one_never_undoes_the_previous_move_and_nothing_more():
    rng = np.random.default_rng(0)
    for _ in range(200):
        q_sequence = list(rng.normal(size=(12, NUM_ACTIONS)))
        chooser = GreedyChooser(1)
        assert [chooser.choose(q) for q in q_sequence] == _never_undo(q_sequence)
    assert [GreedyChooser(0).choose(q) for q in q_sequence] == [
        Action(int(np.argmax(q))) for q in q_sequence]


def _preferring(*names, second="MINUS_Z"):
    """Q-values whose best action is each name in turn, ``second`` always next best."""
    return [_q(**{name: 1.0, second: 0.5}) for name in names]


CYCLE = ("PLUS_X", "MINUS_Y", "MINUS_X", "PLUS_Y")  # four moves back to the start


@pytest.mark.parametrize(("window", "fourth"), [(0, Action.PLUS_Y), (1, Action.PLUS_Y),
                                                 (2, Action.PLUS_Y), (3, Action.MINUS_Z),
                                                 (4, Action.MINUS_Z)])
def test_a_window_of_three_or_more_ends_a_four_move_cycle(window, fourth):
    # The fourth move would return to the start, the pose before the last three moves.
    chooser = GreedyChooser(window)
    taken = [chooser.choose(q) for q in _preferring(*CYCLE)]
    assert taken == [Action.PLUS_X, Action.MINUS_Y, Action.MINUS_X, fourth]


def test_the_window_holds_the_poses_before_the_last_moves_only():
    chooser = GreedyChooser(2)
    for q in _preferring("PLUS_X", "PLUS_Y", "PLUS_Z"):
        chooser.choose(q)
    # At (1, 1, 1, 0): back down to (1, 1, 0, 0) is blocked; -y to (1, 0, 1, 0) was never
    # held; -x to (0, 1, 1, 0) neither.
    assert chooser.excluded() == [Action.MINUS_Z]
    chooser.choose(_q(PLUS_YAW=1.0))
    # At (1, 1, 1, 1) the window holds (1, 1, 0, 0) and (1, 1, 1, 0): turning back is
    # blocked, descending is not (it leads to (1, 1, 0, 1)).
    assert chooser.excluded() == [Action.MINUS_YAW]
    assert chooser.choose(_q(MINUS_YAW=1.0, MINUS_Z=0.5)) is Action.MINUS_Z


def test_the_chooser_forgets_the_episode_on_reset_and_refuses_a_negative_window():
    chooser = GreedyChooser(1)
    assert chooser.choose(_q(PLUS_X=1.0)) is Action.PLUS_X
    toward_minus_x = _q(MINUS_X=1.0, CLOSE=0.5)
    assert chooser.choose(toward_minus_x) is Action.CLOSE
    chooser.reset()
    assert chooser.choose(toward_minus_x) is Action.MINUS_X
    with pytest.raises(ValueError, match="revisit_window must be >= 0"):
        GreedyChooser(-1)


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
        blocked, _ = _episodes(env, GreedyPolicy(scripted, revisit_window=1), 2)
        for actions in blocked:  # every step back became a descent
            assert _reversals(actions) == 0
            assert actions.count(Action.MINUS_Z) == 4
        # Episode 2 starts with the reverse of episode 1's last move: the policy was reset, so
        # that first move is the plain greedy one, not blocked.
        assert REVERSE[Action(blocked[0][-1])] == blocked[1][0] == looping[1][0]
    finally:
        env.close()


def _explore(steps, epsilon, max_streak, seed=0):
    """Actions of ``steps`` choices of one episode's exploration whose greedy action is
    always CLOSE; ``max_streak`` None is plain :func:`epsilon_greedy`."""
    rng = np.random.default_rng(seed)
    if max_streak is None:
        actions = [epsilon_greedy(lambda: Action.CLOSE, epsilon, NUM_ACTIONS, rng)
                   for _ in range(steps)]
    else:
        exploration = EpisodeExploration(epsilon, max_streak)
        actions = [exploration.choose(lambda: Action.CLOSE, NUM_ACTIONS, rng)
                   for _ in range(steps)]
    return actions, rng


def _runs(actions):
    """Lengths of the runs of equal consecutive actions."""
    return [len(list(group)) for _, group in itertools.groupby(actions)]


def test_a_streak_of_one_draws_exactly_as_plain_epsilon_greedy():
    plain, plain_rng = _explore(500, 0.3, None)
    streaked, streak_rng = _explore(500, 0.3, 1)
    assert streaked == plain
    assert streak_rng.random() == plain_rng.random()  # the generators are in the same state


def test_a_random_action_is_held_for_one_to_max_length_steps():
    actions, _ = _explore(3000, 1.0, 3)  # every choice explores
    exploration, greedy_calls = EpisodeExploration(1.0, 3), []
    rng = np.random.default_rng(1)
    for _ in range(200):
        exploration.choose(lambda: greedy_calls.append(1) or 0, NUM_ACTIONS, rng)
    assert not greedy_calls  # exploring never asks the network
    # Held actions make runs longer than independent draws do: streaks of 1-3 steps (mean 2),
    # and the next streak repeats the action with probability 1/9: mean run 2 x 9/8 = 2.25.
    runs = _runs(actions)
    assert 1.9 < np.mean(runs) < 2.5
    assert max(runs) >= 4  # two streaks of one action can meet
    plain_runs = _runs(_explore(3000, 1.0, None)[0])
    assert np.mean(plain_runs) < 1.2


def test_a_streak_is_taken_only_when_exploring_and_never_replaces_the_greedy_choice():
    actions, _ = _explore(300, 0.0, 5)
    assert actions == [Action.CLOSE] * 300
    # A streak drawn once is held, then the greedy choice comes back.
    exploration = EpisodeExploration(1.0, 4)
    rng = np.random.default_rng(5)
    first = exploration.choose(lambda: Action.CLOSE, NUM_ACTIONS, rng)
    held = exploration.streak_steps_left
    assert 0 <= held <= 3 and exploration.streak_action == first
    exploration.epsilon = 0.0  # from here on only the streak explores
    following = [exploration.choose(lambda: Action.CLOSE, NUM_ACTIONS, rng)
                 for _ in range(held + 2)]
    assert following == [first] * held + [Action.CLOSE] * 2


def test_a_streak_shorter_than_one_step_is_refused():
    with pytest.raises(ValueError, match="max_random_streak must be at least 1, got 0"):
        EpisodeExploration(0.1, 0)


def test_an_episodes_exploration_comes_from_its_config():
    config = ExplorationConfig(max_random_streak=3, turn_instead_of_close=0.25, turn_streak=2)
    exploration = config.for_episode(0.4)
    assert (exploration.epsilon, exploration.max_random_streak,
            exploration.turn_instead_of_close, exploration.turn_streak) == (0.4, 3, 0.25, 2)
    assert exploration.streak_steps_left == 0  # each episode starts holding nothing


def _choices(steps, epsilon, greedy_action_, turn_instead_of_close, seed=0, turn_streak=1):
    rng = np.random.default_rng(seed)
    exploration = EpisodeExploration(epsilon, turn_instead_of_close=turn_instead_of_close,
                                     turn_streak=turn_streak)
    actions = [exploration.choose(lambda: greedy_action_, NUM_ACTIONS, rng)
               for _ in range(steps)]
    return actions, rng


def test_a_greedy_close_becomes_a_turn_either_way_with_the_given_probability():
    actions, _ = _choices(4000, 0.0, Action.CLOSE, 0.25)
    counts = collections.Counter(actions)
    assert set(counts) == {Action.CLOSE, Action.PLUS_YAW, Action.MINUS_YAW}
    turned = counts[Action.PLUS_YAW] + counts[Action.MINUS_YAW]
    assert 0.22 < turned / 4000 < 0.28
    assert 0.4 < counts[Action.PLUS_YAW] / turned < 0.6
    # Only a greedy close is swapped: another greedy action is kept, and a random close too.
    assert _choices(500, 0.0, Action.PLUS_X, 1.0)[0] == [Action.PLUS_X] * 500
    exploring = collections.Counter(_choices(4000, 1.0, Action.PLUS_X, 1.0)[0])
    assert 0.08 < exploring[Action.CLOSE] / 4000 < 0.14  # uniform: 1 in 9


def test_turning_instead_of_close_draws_whatever_the_greedy_action_is():
    # The generator's stream does not depend on the network's choice (resume replays exactly).
    _, after_close = _choices(300, 0.1, Action.CLOSE, 0.5)
    _, after_move = _choices(300, 0.1, Action.MINUS_Y, 0.5)
    assert after_close.random() == after_move.random()
    # 0 draws as before the option existed.
    plain, plain_rng = _explore(300, 0.3, None)
    off, off_rng = _choices(300, 0.3, Action.CLOSE, 0.0)
    assert off == plain and off_rng.random() == plain_rng.random()


def test_a_swapped_turn_is_held_the_same_way_for_one_to_turn_streak_steps():
    actions, _ = _choices(6000, 0.0, Action.CLOSE, 0.25, turn_streak=3)
    turn_runs = [(action, len(list(group))) for action, group in itertools.groupby(actions)
                 if action != Action.CLOSE]
    lengths = [length for _, length in turn_runs]
    # Runs of one turn are 1-3 steps (mean 2), and two swaps in a row can meet.
    assert 1.8 < np.mean(lengths) < 2.6 and max(lengths) >= 3
    assert {action for action, _ in turn_runs} == {Action.PLUS_YAW, Action.MINUS_YAW}
    # A held turn never asks the network: greedy is called only between streaks.
    exploration, greedy_calls = EpisodeExploration(0.0, 1, 1.0, turn_streak=4), []
    rng = np.random.default_rng(3)
    turns = [exploration.choose(lambda: greedy_calls.append(1) or Action.CLOSE, NUM_ACTIONS,
                                rng) for _ in range(400)]
    assert set(turns) <= {Action.PLUS_YAW, Action.MINUS_YAW}
    assert 400 / 4 <= len(greedy_calls) < 400 / 1.8
    # Only a greedy close starts a streak.
    assert _choices(300, 0.0, Action.PLUS_X, 1.0, turn_streak=3)[0] == [Action.PLUS_X] * 300


def test_a_turn_streak_of_one_draws_as_a_single_turn_and_draws_whatever_is_chosen():
    single, single_rng = _choices(300, 0.1, Action.CLOSE, 0.5)
    streak_one, streak_one_rng = _choices(300, 0.1, Action.CLOSE, 0.5, turn_streak=1)
    assert streak_one == single and streak_one_rng.random() == single_rng.random()
    # With streaks the stream still does not depend on the network's choice.
    _, after_move = _choices(300, 0.1, Action.MINUS_Y, 0.5, turn_streak=3)
    _, after_plus_x = _choices(300, 0.1, Action.PLUS_X, 0.5, turn_streak=3)
    assert after_move.random() == after_plus_x.random()
    with pytest.raises(ValueError, match="turn_streak must be at least 1, got 0"):
        EpisodeExploration(0.1, 1, 0.5, turn_streak=0)
