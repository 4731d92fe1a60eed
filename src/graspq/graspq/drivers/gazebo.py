"""The Gazebo driver's episodes, with no ROS in them: which object an episode spawns and where,
which contacts count as a finger touching it, and the judge.

The draw is the MuJoCo scene's for the same seed (the env's generator, seeded as gymnasium
seeds it), so an episode with seed N shows Gazebo the object MuJoCo shows; the judge is the
scene's (:func:`graspq.sim.grasp_motion.judge_grasp`) on what Gazebo reports: the finger
joints, the object's pose and the pad contacts since the gripper started closing.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
from gymnasium.utils import seeding

from graspq.rewards import Outcome
from graspq.sim.gazebo_world import OBJECT_MODEL, object_sdf, object_spawn_height
from graspq.sim.grasp_motion import judge_grasp
from graspq.sim.kinematics import quat_matrix
from graspq.sim.objects import ObjectSpec, draw_object, lowest_point
from graspq.sim.scene import FINGER_GEOMS, gripper_opening
from graspq.sim.settings import EnvConfig


@dataclasses.dataclass(frozen=True)
class Spawn:
    """What the world's ``create`` service is asked for."""

    name: str
    sdf: str
    position: tuple[float, float, float]
    quaternion: tuple[float, float, float, float]  # w, x, y, z


def quaternion_matrix(w: float, x: float, y: float, z: float) -> np.ndarray:
    """Rotation matrix of a (normalised here) quaternion."""
    q = np.array([w, x, y, z], dtype=float)
    norm = np.linalg.norm(q)
    if not (math.isfinite(norm) and norm > 0):
        raise ValueError(f"not a rotation quaternion: {(w, x, y, z)}")
    return quat_matrix(q / norm)


class GazeboEpisodes:
    """The object of each episode and the judge of its grasp (see the module docstring)."""

    def __init__(self, config: EnvConfig) -> None:
        self.config = config
        self.spec: ObjectSpec | None = None
        self._touched = False

    def draw(self, seed: int, kind: str | None = None,
             pose: tuple[float, float, float] | None = None) -> Spawn:
        """The episode's object (the MuJoCo scene's draw for ``seed``; ``kind`` and ``pose``
        (x, y, yaw) may be fixed) and where it is spawned: resting on the table."""
        rng, _ = seeding.np_random(int(seed))
        spec = draw_object(self.config, rng, kind, pose)
        self.spec = spec
        self._touched = False
        z = object_spawn_height(spec, self.config)
        return Spawn(OBJECT_MODEL, object_sdf(spec), (spec.x, spec.y, z),
                     (math.cos(spec.yaw / 2), 0.0, 0.0, math.sin(spec.yaw / 2)))

    def start_watching(self) -> None:
        """The gripper starts closing: from now on, a pad touching the object counts."""
        self._touched = False

    def note_contact(self, collision1: str, collision2: str) -> bool:
        """Record one contact between two Gazebo collisions (scoped names); True if it is a
        finger pad on the episode's object."""
        names = (collision1, collision2)
        pad = any(f"__{geom}_collision" in name for name in names for geom in FINGER_GEOMS)
        on_object = any(name.split("::")[0] == OBJECT_MODEL for name in names)
        touched = pad and on_object
        self._touched |= touched
        return touched

    def judge(self, finger_joints_m: tuple[float, float], object_position: np.ndarray,
              object_rotation: np.ndarray) -> Outcome:
        """The scene's judge now: the pad separation from the finger joints, the object's
        lowest point above the table from its pose, and the contacts seen since closing."""
        if self.spec is None:
            raise ValueError("no episode: reset before judging")
        bottom = lowest_point(self.spec.kind, self.spec.half_size, float(object_position[2]),
                              np.asarray(object_rotation, dtype=float))
        height = bottom - self.config.scene.table_top_z_m
        return judge_grasp(self.config.gripper, gripper_opening(np.asarray(finger_joints_m)),
                           height, self._touched)
