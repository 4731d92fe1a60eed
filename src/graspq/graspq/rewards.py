"""Episode outcomes and the parameterised reward of the paper (Sec. IV-D, Algorithm 1).

The same function scores simulated training episodes and the servo runtime on a robot.
"""

from __future__ import annotations

import dataclasses
import enum

from graspq.config import param


class Outcome(enum.Enum):
    """How an episode ended (or ``RUNNING`` while it goes on)."""

    RUNNING = "running"
    SUCCESS = "success"  # held in a not-fully-closed gripper above the lift height
    PARTIAL = "partial"  # fingers touched the object, but it was not lifted
    MISS = "miss"  # closed on nothing
    TIMEOUT = "timeout"  # max steps reached without closing


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """Reward terms; the defaults are the paper's."""

    success: float = param(10.0, "reward for a successful pick")
    partial: float = param(1.0, "reward for touching the object without lifting it")
    not_executed: float = param(-1.0, "reward for an action that could not be executed")
    step: float = param(-0.025, "reward for every step before termination")


@dataclasses.dataclass(frozen=True)
class RewardTerms:
    """The parts of one step's reward; ``total`` is their sum."""

    step: float = 0.0
    not_executed: float = 0.0
    outcome: float = 0.0

    @property
    def total(self) -> float:
        return self.step + self.not_executed + self.outcome

    def as_dict(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def step_reward(config: RewardConfig, executed: bool, outcome: Outcome) -> RewardTerms:
    """Reward terms for one step.

    The per-step cost applies to every step that does not terminate the episode (a timeout
    is a truncation, so it pays the step cost too); the terminating close step is scored by
    its outcome alone.
    """
    terminal = outcome in (Outcome.SUCCESS, Outcome.PARTIAL, Outcome.MISS)
    outcome_reward = {Outcome.SUCCESS: config.success, Outcome.PARTIAL: config.partial}
    return RewardTerms(
        step=0.0 if terminal else config.step,
        not_executed=0.0 if executed else config.not_executed,
        outcome=outcome_reward.get(outcome, 0.0),
    )
