"""The discrete action set of the paper (Sec. IV-C): end-effector moves, yaw turns, close."""

from __future__ import annotations

import collections
import enum
from collections.abc import Callable, Collection, Mapping
from typing import Any

import numpy as np


class Action(enum.IntEnum):
    """Discrete actions, in the order of the network's outputs."""

    PLUS_X = 0
    MINUS_X = 1
    PLUS_Y = 2
    MINUS_Y = 3
    PLUS_Z = 4
    MINUS_Z = 5
    PLUS_YAW = 6
    MINUS_YAW = 7
    CLOSE = 8


NUM_ACTIONS = len(Action)
TURNS = (Action.PLUS_YAW, Action.MINUS_YAW)

# Turned closes (the env's ``actions.close_yaw_turns`` N > 0, a lever): outputs
# NUM_ACTIONS.. of the network, in the order +1, -1, +2, -2, ... yaw steps, each a turn of that
# many steps and then CLOSE, all in one step. The yaw to close at becomes one choice whose
# reward the close itself returns, where a turn and then a close is a two-step credit.


def action_count(close_yaw_turns: int) -> int:
    """Network outputs for an action set with ``close_yaw_turns`` turned closes each way."""
    if close_yaw_turns < 0:
        raise ValueError(f"close_yaw_turns must be >= 0, got {close_yaw_turns}")
    return NUM_ACTIONS + 2 * close_yaw_turns


def close_turn_steps(action: int) -> int | None:
    """Yaw steps a closing action turns before it closes (0 for CLOSE, +-k for a turned
    close); None for a move."""
    if action == Action.CLOSE:
        return 0
    if action < NUM_ACTIONS:
        return None
    index = action - NUM_ACTIONS
    return (index // 2 + 1) * (1 if index % 2 == 0 else -1)


def close_actions(num_actions: int) -> list[int]:
    """Every action that closes the gripper, of an action set with ``num_actions`` outputs."""
    return [int(Action.CLOSE), *range(NUM_ACTIONS, num_actions)]


def action_name(action: int) -> str:
    """``Action``'s name, or ``CLOSE_YAW+2`` for a close turned two yaw steps first."""
    if action < NUM_ACTIONS:
        return Action(action).name
    return f"CLOSE_YAW{close_turn_steps(action):+d}"


def as_action(action: int) -> int:
    """``Action(action)`` for the paper's actions, the plain index for a turned close."""
    return Action(action) if action < NUM_ACTIONS else int(action)

# Unit direction of each move in the base frame: (dx, dy, dz, dyaw); CLOSE has none.
MOVE_DIRECTIONS: dict[Action, tuple[float, float, float, float]] = {
    Action.PLUS_X: (1.0, 0.0, 0.0, 0.0),
    Action.MINUS_X: (-1.0, 0.0, 0.0, 0.0),
    Action.PLUS_Y: (0.0, 1.0, 0.0, 0.0),
    Action.MINUS_Y: (0.0, -1.0, 0.0, 0.0),
    Action.PLUS_Z: (0.0, 0.0, 1.0, 0.0),
    Action.MINUS_Z: (0.0, 0.0, -1.0, 0.0),
    Action.PLUS_YAW: (0.0, 0.0, 0.0, 1.0),
    Action.MINUS_YAW: (0.0, 0.0, 0.0, -1.0),
}


# Each move as a whole step of the pose grid (x, y, z, yaw) that the moves walk on.
GRID_STEP: dict[Action, tuple[int, ...]] = {
    action: tuple(int(unit) for unit in direction)
    for action, direction in MOVE_DIRECTIONS.items()
}


def greedy_action(q_values: np.ndarray, excluded: Collection[int] = ()) -> int:
    """``argmax_a Q(a)`` over the actions not in ``excluded`` (never all of them: CLOSE is
    never excluded by :class:`GreedyChooser`), as :func:`as_action` gives it."""
    q = np.asarray(q_values, dtype=np.float64).reshape(-1)
    if excluded:
        q = q.copy()
        q[list(excluded)] = -np.inf
    return as_action(int(np.argmax(q)))


class GreedyChooser:
    """The greedy choice within one episode, with a revisit window.

    ``revisit_window`` 0 is plain argmax. With a window of W, the choice never takes a move
    that brings the gripper back to a pose it held before any of its last W steps, but the
    best other action: a greedy policy at the edge of a decision (neighbouring states that
    each tell it to step to the other) otherwise loops between them until the episode times
    out. W = 1 is "never undo the previous move" (two-step loops); W >= 3 also ends the
    four-move cycles (+x, -y, -x, +y) that take their place once those are blocked. Poses
    are whole grid steps counted from the episode's start by the actions chosen (a move the
    arm could not execute counts as made, a close as a step that stays put: the rule needs
    nothing but the chosen actions, so simulation and robot apply it alike). Going on,
    descending, turning to a new yaw and closing stay allowed. Call :meth:`reset` when an
    episode starts.
    """

    def __init__(self, revisit_window: int) -> None:
        if revisit_window < 0:
            raise ValueError(f"revisit_window must be >= 0, got {revisit_window}")
        self.revisit_window = revisit_window
        self._pose = (0, 0, 0, 0)
        self._recent: collections.deque[tuple[int, ...]] = collections.deque(
            maxlen=revisit_window)

    def reset(self) -> None:
        """Forget the episode's moves (a new episode)."""
        self._pose = (0, 0, 0, 0)
        self._recent.clear()

    def excluded(self) -> list[Action]:
        """The moves that would go back to a pose of the window."""
        return [move for move, step in GRID_STEP.items()
                if _add(self._pose, step) in self._recent]

    def choose(self, q_values: np.ndarray) -> int:
        """The action for these Q-values, remembered as made (an ``Action`` but for a turned
        close)."""
        action = greedy_action(q_values, self.excluded())  # (none while the window is 0)
        self._recent.append(self._pose)  # (a close, turned or not, is a step that stays put)
        self._pose = _add(self._pose, GRID_STEP.get(action, (0, 0, 0, 0)))
        return action


def stored_revisit_window(training: Mapping[str, Any]) -> int:
    """The revisit window a stored training config (a checkpoint's, an ONNX file's) was
    evaluated with: its ``revisit_window``; for configs from before the window, 1 where
    ``block_reversal`` was true, else 0 (plain argmax)."""
    window = training.get("revisit_window")
    if isinstance(window, int) and not isinstance(window, bool) and window >= 0:
        return window
    return 1 if training.get("block_reversal") is True else 0


def _add(pose: tuple[int, ...], step: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(a + b for a, b in zip(pose, step, strict=True))


class EpisodeExploration:
    """How one training episode explores, built from its ``ExplorationConfig`` and epsilon.

    - Epsilon-greedy: with probability ``epsilon`` a uniformly random action.
    - A random action, once drawn, is taken again for a length drawn uniformly from 1 to
      ``max_random_streak`` steps (ez-greedy, Dabney et al. 2021: "Temporally-extended
      epsilon-greedy exploration"): a cube 30 deg off needs two turns in a row, which
      one-step epsilon-greedy rarely takes. 1 is plain epsilon-greedy.
    - A greedy CLOSE becomes a turn, either way at random, with probability
      ``turn_instead_of_close``: turns get tried where the policy takes itself to be placed
      to close, which is where a cube still off its faces needs them (a random turn
      elsewhere teaches little of that). With ``turn_streak`` above 1 the swapped turn is
      held for a length drawn from 1 to ``turn_streak`` steps: a cube 30 deg off needs two
      turns in a row before its close lifts, and the greedy choice after one turn is
      likely to be the close again.

    One per episode: the streak it holds never outlives its episode, so runs resume at an
    episode boundary exactly.
    """

    def __init__(self, epsilon: float, max_random_streak: int = 1,
                 turn_instead_of_close: float = 0.0, turn_streak: int = 1) -> None:
        if max_random_streak < 1:
            raise ValueError(f"max_random_streak must be at least 1, got {max_random_streak}")
        if turn_streak < 1:
            raise ValueError(f"turn_streak must be at least 1, got {turn_streak}")
        self.epsilon = float(epsilon)
        self.max_random_streak = int(max_random_streak)
        self.turn_instead_of_close = float(turn_instead_of_close)
        self.turn_streak = int(turn_streak)
        self.streak_action = 0
        self.streak_steps_left = 0

    def choose(self, greedy: Callable[[], int], num_actions: int,
               rng: np.random.Generator) -> int:
        """The next action: the held streak's, a random one, or ``greedy()`` (maybe swapped
        for a turn).

        The random draws always happen, in this order, so the RNG stream does not depend on
        which branch was taken or on what ``greedy`` returns (resumed runs and re-recorded
        demonstrations replay exactly); ``greedy`` is only called when it is used. Whether
        to explore, then the random action; a streak longer than 1 draws its length third,
        every time; a ``turn_instead_of_close`` above 0 draws whether to turn and which way
        next, every time, and with a ``turn_streak`` above 1 the turn's length last, every
        time. Options at their off values draw nothing, so runs from before them replay
        exactly. A held streak step draws nothing.

        With turned closes (``num_actions`` above the paper's nine) the random action is one
        of the nine, and a random CLOSE takes any close's yaw, drawn right after it, every
        time: random steps close as often as with the paper's set, rather than 2N + 1 times
        in 9 + 2N.
        """
        if self.streak_steps_left > 0:
            self.streak_steps_left -= 1
            return self.streak_action
        explore = rng.random() < self.epsilon
        random_action = int(rng.integers(min(num_actions, NUM_ACTIONS)))
        if num_actions > NUM_ACTIONS:
            closes = close_actions(num_actions)
            random_close = closes[int(rng.integers(len(closes)))]
            if random_action == Action.CLOSE:
                random_action = random_close
        if self.max_random_streak > 1:
            length = int(rng.integers(1, self.max_random_streak + 1))
            if explore:
                self.streak_action, self.streak_steps_left = random_action, length - 1
        swap = False
        if self.turn_instead_of_close > 0:
            swap = rng.random() < self.turn_instead_of_close
            turn = TURNS[int(rng.integers(len(TURNS)))]
            if self.turn_streak > 1:
                turn_length = int(rng.integers(1, self.turn_streak + 1))
        if explore:
            return random_action
        action = int(greedy())
        if not (swap and action == Action.CLOSE):
            return action
        if self.turn_streak > 1:
            self.streak_action, self.streak_steps_left = int(turn), turn_length - 1
        return int(turn)


def epsilon_greedy(greedy: Callable[[], int], epsilon: float, num_actions: int,
                   rng: np.random.Generator) -> int:
    """With probability ``epsilon`` a uniformly random action, else ``greedy()``: one plain
    step of :class:`EpisodeExploration` (two draws every time, ``greedy`` called only when
    used)."""
    return EpisodeExploration(epsilon).choose(greedy, num_actions, rng)
