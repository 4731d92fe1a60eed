"""A curriculum on where objects spawn and where the gripper starts (drl_grasping's device).

Learning from the reward alone, a random policy almost never lifts an object on the full task:
with the descend close, 1 in 300 episodes with objects anywhere in the spawn square, but a
third of them with the object right under the start pose (docs/results_reward_only.md). So
training starts where the reward is found by chance and widens the task as the agent succeeds:
stage 0 spawns objects within ``first_spawn_half_xy_m`` of the workspace centre and starts
the fingertip at ``first_start_height_above_table_m``; each later stage moves both evenly
towards the scene's own values, and the last stage is the full task. With
``first_object_yaw_half_deg`` below 45, objects also start turned at most that far from the
gripper's start yaw, widening to 45 deg (every yaw a cube can show): a cube's faces must lie
across the fingers, and the reward-only learner does not learn to turn when the cube is drawn
at any yaw from the start (docs/results_reward_only.md).
With ``start_over_object`` the stages narrow where the fingertip starts against the object
instead: objects spawn over the whole range, the fingertip starts over the object, at most the
stage's spawn half width away. Where objects start at the centre, the gripper's own position
alone tells a single-view learner where the object is, and it never needs the overhead image;
over the object, both move about the image from the first stage. The curriculum moves on
once the success rate over the stage's last ``window`` training episodes reaches
``promote_success``. Only training episodes follow it: evaluations run the full task.
"""

from __future__ import annotations

import collections
from typing import Any

from graspq.learning.settings import CurriculumConfig
from graspq.sim.settings import SceneConfig

# A cube is the same every quarter turn: within 45 deg either way of any yaw lies every yaw.
FULL_YAW_HALF_DEG = 45.0


class Curriculum:
    """The stage the training episodes are at, and when to move on."""

    def __init__(self, config: CurriculumConfig, scene: SceneConfig) -> None:
        if config.first_spawn_half_xy_m > scene.spawn_half_xy_m:
            raise ValueError("curriculum.first_spawn_half_xy_m must not exceed the scene's "
                             f"spawn_half_xy_m ({scene.spawn_half_xy_m} m)")
        low, high = scene.workspace_z_min_above_table_m, scene.workspace_z_max_above_table_m
        if not low < config.first_start_height_above_table_m <= high:
            raise ValueError("curriculum.first_start_height_above_table_m must lie inside the "
                             f"workspace's z range ({low}, {high}] m")
        self.config, self.scene = config, scene
        self.stage = 0
        self._outcomes: collections.deque[bool] = collections.deque(maxlen=config.window)

    @property
    def enabled(self) -> bool:
        return self.config.stages > 0

    @property
    def final(self) -> bool:
        """Whether the episodes run the full task (always, when the curriculum is off)."""
        return self.stage >= self.config.stages

    def fraction(self) -> float:
        """How far the current stage is from the first (0) to the full task (1)."""
        return 1.0 if self.final else self.stage / self.config.stages

    def spawn_half_xy_m(self) -> float:
        first, full = self.config.first_spawn_half_xy_m, self.scene.spawn_half_xy_m
        return first + self.fraction() * (full - first)

    def start_height_above_table_m(self) -> float:
        first = self.config.first_start_height_above_table_m
        full = self.scene.start_height_above_table_m
        return first + self.fraction() * (full - first)

    @property
    def turns_objects(self) -> bool:
        """Whether the stages narrow the object's yaw (off: the env draws any yaw, as before
        the option existed)."""
        return self.config.first_object_yaw_half_deg < FULL_YAW_HALF_DEG

    def object_yaw_half_deg(self) -> float:
        """How far (deg) an object may be turned from the gripper's start yaw; 45 and more
        show a cube at every yaw."""
        first = self.config.first_object_yaw_half_deg
        return first + self.fraction() * (FULL_YAW_HALF_DEG - first)

    def reset_options(self) -> dict[str, Any]:
        """The env's reset options for the next training episode ({} on the full task)."""
        if self.final:
            return {}
        half_key = ("start_offset_half_xy_m" if self.config.start_over_object
                    else "spawn_half_xy_m")
        options = {half_key: self.spawn_half_xy_m(),
                   "start_height_above_table_m": self.start_height_above_table_m()}
        if self.turns_objects:
            options["object_yaw_half_deg"] = self.object_yaw_half_deg()
        return options

    def record(self, success: bool) -> bool:
        """Count a finished training episode; True when it moves the curriculum on."""
        if self.final:
            return False
        self._outcomes.append(bool(success))
        window = self.config.window
        if (len(self._outcomes) == window
                and sum(self._outcomes) >= self.config.promote_success * window):
            self.stage += 1
            self._outcomes.clear()
            return True
        return False

    def describe(self) -> str:
        where = ("the fingertip starts within {:.1f} cm of the object" if
                 self.config.start_over_object else "objects within {:.1f} cm of the centre")
        return (f"curriculum stage {self.stage}/{self.config.stages}: "
                f"{where.format(self.spawn_half_xy_m() * 100)}, start "
                f"{self.start_height_above_table_m() * 100:.1f} cm above the table"
                + (f", objects turned at most {self.object_yaw_half_deg():.1f} deg"
                   if self.turns_objects else ""))

    def state_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "outcomes": list(self._outcomes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stage = int(state["stage"])
        self._outcomes.clear()
        self._outcomes.extend(bool(o) for o in state["outcomes"])
