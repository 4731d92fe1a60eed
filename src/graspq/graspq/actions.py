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
