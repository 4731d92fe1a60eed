"""The discrete action set of the paper (Sec. IV-C): end-effector moves, yaw turns, close."""

from __future__ import annotations

import enum
from collections.abc import Callable

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


# --reversal of graspq eval and the diagnosis tool: override a run's block_reversal.
REVERSAL_CHOICES = ("allow", "block")

# The move that undoes each move (CLOSE has none).
REVERSE: dict[Action, Action] = {
    Action.PLUS_X: Action.MINUS_X, Action.MINUS_X: Action.PLUS_X,
    Action.PLUS_Y: Action.MINUS_Y, Action.MINUS_Y: Action.PLUS_Y,
    Action.PLUS_Z: Action.MINUS_Z, Action.MINUS_Z: Action.PLUS_Z,
    Action.PLUS_YAW: Action.MINUS_YAW, Action.MINUS_YAW: Action.PLUS_YAW,
}


def greedy_action(q_values: np.ndarray, previous: int | None = None) -> Action:
    """``argmax_a Q(a)``; given the ``previous`` move, never the move that undoes it.

    With a previous move, the greedy choice skips its reverse and takes the best other action:
    a greedy policy at the edge of a decision (two neighbouring states one step apart, each
    telling it to step to the other) otherwise steps back and forth until the episode times
    out. Going on (or descending, turning, closing) is always allowed.
    """
    q = np.asarray(q_values, dtype=np.float64).reshape(-1)
    best = int(np.argmax(q))
    if previous is not None and previous in REVERSE and REVERSE[Action(previous)] == best:
        q = q.copy()
        q[best] = -np.inf
        best = int(np.argmax(q))
    return Action(best)


class GreedyChooser:
    """The greedy choice within one episode: plain argmax, or (``block_reversal``) never the
    reverse of the move chosen last. Call :meth:`reset` when an episode starts."""

    def __init__(self, block_reversal: bool) -> None:
        self.block_reversal = block_reversal
        self._previous: Action | None = None

    def reset(self) -> None:
        """Forget the previous move (a new episode)."""
        self._previous = None

    def choose(self, q_values: np.ndarray) -> Action:
        """The action for these Q-values, remembered as the previous move."""
        action = greedy_action(q_values, self._previous if self.block_reversal else None)
        self._previous = action
        return action


def epsilon_greedy(greedy: Callable[[], int], epsilon: float, num_actions: int,
                   rng: np.random.Generator) -> int:
    """With probability ``epsilon`` a uniformly random action, else ``greedy()``.

    Both random draws always happen, in this order, so the RNG stream does not depend on
    which branch was taken or on what ``greedy`` returns (resumed runs and re-recorded
    demonstrations replay exactly); ``greedy`` is only called when it is used.
    """
    explore = rng.random() < epsilon
    random_action = int(rng.integers(num_actions))
    return random_action if explore else int(greedy())
