"""A scripted grasping policy that reads the object's true pose (privileged information).

It uses the same discrete actions as a learned policy: centre over the object, descend to just
above it, turn the gripper so the fingers close across the object (a cube's faces, every
90 deg; an elongated shape's narrow side, every 180 deg; spheres and upright cylinders need
no turn), descend to the lowest allowed height, close. It proves the scene's
physics can hold every object, and gives demonstrations (and, as a teacher, labels).

Why the turn comes last: a learner must read the needed turn off its cameras. From the start
height a 3 cm cube spans a few wrist-camera pixels; just above it, it fills much of the wrist
image. A GQN classifier trained on 30k noisy-oracle states with this order reads the (rare,
2 % of states) turn labels right in none of the held-out cases with a plain loss and in
61-93 % with a class-balanced one (docs/imitation_probe.md); the old order was not probed the
same way. The oracle itself picks 99-100 % of each object type (docs/oracle.md).
"""

from __future__ import annotations

import math

import numpy as np

from graspq.actions import TURNS, Action
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.scene import SHAPES


def wrap_angle(angle: float, period: float) -> float:
    """``angle`` wrapped into [-period/2, period/2)."""
    return (angle + period / 2) % period - period / 2


class OraclePolicy:
    """Chooses the next action from the environment's privileged state."""

    def __init__(self, env: BaxterGraspEnv) -> None:
        self.env = env

    def yaw_period(self) -> float | None:
        """The object's yaw symmetry (rad) as the fingers see it: a cube's faces repeat every
        90 deg, an elongated shape's narrow side every 180 deg; None: any yaw fits."""
        period = SHAPES[self.env.object_spec.kind].yaw_period_deg
        return None if period is None else math.radians(period)

    def yaw_error(self) -> float:
        """Yaw (rad) the gripper still has to turn so the fingers close across the object."""
        env = self.env
        period = self.yaw_period()
        if period is None:
            return 0.0
        body = env.scene.objects[env.object_spec.kind].body_id
        rotation = env.data.xmat[body].reshape(3, 3)
        object_yaw = math.atan2(rotation[1, 0], rotation[0, 0])
        _, yaw_offset = env.fingertip_command
        tool_yaw = math.radians(env.config.scene.start_yaw_deg) + yaw_offset
        # The fingers close along the tool's y axis, at tool yaw - 90 deg: with the tool's yaw
        # at the object's, they close across the object's y extent (an elongated shape's
        # narrow side). Any tool yaw congruent to that modulo the period works.
        return wrap_angle(object_yaw - tool_yaw, period)

    def object_offset(self) -> np.ndarray:
        """Object centre minus commanded fingertip position (m), (3,): where the object is
        relative to the gripper, as the oracle sees it."""
        position, _ = self.env.fingertip_command
        return self.env.object_position() - position

    def _clear_height(self) -> float:
        """Fingertip height (m) at which the fingers pass over the object (from its height as
        it rests: ``ObjectSpec.half_height`` of the shape)."""
        spec = self.env.object_spec
        return float(self.env.object_position()[2] + 2 * spec.half_height + 0.01)

    def lowest_height(self) -> float:
        """Lowest fingertip height (m) the workspace allows: where the oracle closes."""
        scene = self.env.config.scene
        return scene.table_top_z_m + scene.workspace_z_min_above_table_m

    def act(self) -> Action:
        """The next action."""
        env = self.env
        cfg = env.config
        half_step = cfg.actions.translation_step_m / 2
        step = cfg.actions.translation_step_m
        yaw_error = self.yaw_error()
        turn = abs(yaw_error) > math.radians(cfg.actions.yaw_step_deg) / 2
        position, _ = env.fingertip_command
        error = self.object_offset()
        axis = int(np.argmax(np.abs(error[:2])))
        low = position[2] < self._clear_height()
        # Hysteresis: once down beside the object, a nudge of less than a full step is
        # tolerated (the gripper's clearance absorbs it); more, and the gripper rises above
        # the object before re-centring instead of pushing it across the table.
        if abs(error[axis]) > (2 * half_step if low else half_step):
            if low and env.in_workspace(position + [0.0, 0.0, cfg.actions.translation_step_m]):
                return Action.PLUS_Z
            if axis == 0:
                return Action.PLUS_X if error[0] > 0 else Action.MINUS_X
            return Action.PLUS_Y if error[1] > 0 else Action.MINUS_Y
        # Centred: turn once the next step down would pass the clearance height (or at once
        # if the gripper is already below it), so the turn happens just above the object.
        if turn and (low or position[2] - step < self._clear_height()):
            return Action.PLUS_YAW if yaw_error > 0 else Action.MINUS_YAW
        lowest = self.lowest_height()
        if position[2] - step >= lowest - 1e-9:
            return Action.MINUS_Z
        return Action.CLOSE

    def turns_needed(self, direction: int) -> int | None:
        """Turns of ``yaw_step_deg`` in ``direction`` (+1: PLUS_YAW, -1: MINUS_YAW) before
        the fingers close across the object (yaw still to turn within half a step); None if
        the tool's yaw limit stops them first. 0 when no turn is needed."""
        env = self.env
        step = math.radians(env.config.actions.yaw_step_deg)
        position, yaw_offset = env.fingertip_command
        error = self.yaw_error()
        period = self.yaw_period()
        if period is None:
            return 0
        for turns in range(int(math.ceil(period / step)) + 2):
            # Turning the tool by +step lowers the yaw still to turn by step.
            if abs(wrap_angle(error - direction * turns * step, period)) <= step / 2 + 1e-9:
                reachable = env.in_workspace(position, yaw_offset + direction * turns * step)
                return turns if reachable else None
        raise AssertionError("one period of turns always aligns the fingers")

    def tied_turn(self, action: Action) -> Action | None:
        """The turn opposite ``action`` (the oracle's choice in this state) if it aligns the
        fingers with the object in no more turns, else None.

        Why: a cube's faces repeat every 90 deg, so with 37.5-45 deg still to turn (15 deg
        steps) either way takes three turns. :meth:`act` picks one by the sign of the yaw
        error, and a cube turned +44 deg looks like one turned -46 deg, 2 deg from -44 deg:
        near +-45 deg the choice is a sign no camera image can tell apart. A learner asked
        to copy it gets opposite labels for nearly the same image (``expert_turn_ties``)."""
        if action not in TURNS:
            return None
        own = 1 if action == Action.PLUS_YAW else -1
        mine, other = self.turns_needed(own), self.turns_needed(-own)
        if other is None or mine is None or mine == 0 or other > mine:
            return None
        return Action.MINUS_YAW if own == 1 else Action.PLUS_YAW
