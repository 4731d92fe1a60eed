"""Hindsight close labels: what closing would have earned in the states a successful episode
passed through, from what the robot itself knows (an extension for the reward-only recipe).

Why: the reward-only learner's failures are closes one or two steps off the object (partial
touches and misses, docs/results_reward_only.md): each episode gives Q(s, CLOSE) one target,
at its last state. A successful close tells more: the object stood where the gripper closed
(it does not move before the fingers reach it), so in every earlier state whose fingertip
was at least ``hindsight_min_offset_m`` from there in x or y, closing would have come down
beside the object, which the scene's grasp tolerance (about 8 mm for a centred close) makes a
miss. Those states get the miss reward as a terminal target for Q(s, CLOSE).

Robot-knowable: the fingertip positions come from the joint angles in the observations by
forward kinematics (:class:`graspq.learning.fingertip.FingertipFeatures`), and success is
the reward; nothing is read from the simulator. Failed episodes label nothing: where their
object stood is unknown.
"""

from __future__ import annotations

import numpy as np
import torch

from graspq.learning.fingertip import FingertipFeatures
from graspq.observation import MOTOR_KEY
from graspq.rewards import Outcome, RewardConfig, step_reward

_JOINTS = 7
# The fingertip reaches its commanded grid pose to within IK tolerance (0.5 mm); a state on
# the grid two steps away must count as two steps away.
_GRID_SLACK_M = 0.002


class HindsightCloseLabeller:
    """Collects one episode's replay slots and fingertip positions; labels them at its end."""

    def __init__(self, min_offset_m: float, rewards: RewardConfig) -> None:
        self.min_offset_m = float(min_offset_m)
        self.miss_value = step_reward(rewards, True, Outcome.MISS).total
        self._forward = FingertipFeatures()
        self._slots: list[int] = []
        self._motors: list[np.ndarray] = []

    def step(self, slot: int, obs: dict[str, np.ndarray]) -> None:
        """The transition just stored in ``slot`` started from ``obs``."""
        self._slots.append(int(slot))
        self._motors.append(np.asarray(obs[MOTOR_KEY], np.float32)[:_JOINTS])

    def finish(self, success: bool) -> tuple[np.ndarray, np.ndarray]:
        """The episode is over: the slots to label and their CLOSE targets (none unless it
        succeeded). The last stored state is where the gripper closed."""
        slots, motors = np.array(self._slots, np.int64), np.array(self._motors, np.float32)
        self._slots, self._motors = [], []
        if not success or slots.size < 2:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        with torch.no_grad():
            position, _ = self._forward.pose(torch.as_tensor(motors))
        xy = position[:, :2].numpy()
        offset = np.abs(xy - xy[-1]).max(axis=1)
        far = offset >= self.min_offset_m - _GRID_SLACK_M
        return slots[far], np.full(int(far.sum()), self.miss_value, np.float32)
