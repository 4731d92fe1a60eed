"""The arm's part of the grasp action: the descent before the gripper closes (the descend
close) and the lift after it.

The paper's grasp action closes the gripper, lifts and judges. The path is written once here
and used by the env (:meth:`graspq.sim.env.BaxterGraspEnv.close_and_judge`) and by the servo
node, which sends it to a robot as a joint trajectory, so a grasp on a robot moves the arm
exactly as a training step does.
"""

from __future__ import annotations

import math

import numpy as np

from graspq.rewards import Outcome
from graspq.sim.ik import DownwardIK
from graspq.sim.settings import EnvConfig, GripperConfig

# A posture with the elbow up and the wrist near the middle of its range; the home pose is
# solved from it once, so every episode starts from the same joint angles.
HOME_SEED = np.array([0.75, -0.68, -0.40, 1.50, 0.42, 0.83, 0.0])
CONTACT_CHECK_EVERY = 5  # physics steps between finger-object contact checks while grasping
LIFT_HOLD_S = 0.1  # the arm holds this long at the top of the lift before the judge looks


def home_position(config: EnvConfig) -> np.ndarray:
    """Commanded fingertip position (3,) m at the start of every episode."""
    scene = config.scene
    return np.array([*scene.workspace_center_xy_m,
                     scene.table_top_z_m + scene.start_height_above_table_m])


def home_joints(ik: DownwardIK, config: EnvConfig) -> np.ndarray:
    """Joint angles (7,) rad of the start pose (fingertip at :func:`home_position`, tool at
    the start yaw), solved from :data:`HOME_SEED`: the env, the servo runtime and the Gazebo
    driver all start episodes there. Raises ValueError if it is out of reach."""
    solution = ik.solve(HOME_SEED, home_position(config),
                        math.radians(config.scene.start_yaw_deg))
    if not solution.converged:
        raise ValueError("scene: the start pose is out of reach (scene.workspace_*, "
                         "scene.start_height_above_table_m)")
    return solution.joints


def lift_schedule(ik: DownwardIK, config: EnvConfig, joints: np.ndarray,
                  position: np.ndarray, yaw_offset: float) -> list[tuple[np.ndarray, int]]:
    """Joint targets of the lift from a closed grasp: ``(targets (7,) rad, physics steps)``
    segments, applied in order.

    Args:
        ik: the scene's IK (the lift's goal is solved from ``joints``).
        config: gives the lift distance and duration and the physics time step.
        joints: (7,) rad, the joint angles the gripper closed at.
        position: (3,) m, base frame, the commanded fingertip position it closed at.
        yaw_offset: rad, the commanded yaw offset from the start yaw.

    The targets move linearly to the lifted pose in segments of ``CONTACT_CHECK_EVERY``
    physics steps over ``gripper.lift_duration_s`` (a duration that is not a whole number of
    segments is rounded up to one, as the env has always lifted).
    """
    gripper, physics = config.gripper, config.physics
    start = np.asarray(joints, dtype=float)
    lifted_position = np.asarray(position, dtype=float) + [0.0, 0.0, gripper.lift_distance_m]
    yaw = math.radians(config.scene.start_yaw_deg) + yaw_offset
    goal = ik.solve(start, lifted_position, yaw).joints
    lift_steps = max(1, round(gripper.lift_duration_s / physics.timestep_s))
    schedule = []
    for i in range(0, lift_steps, CONTACT_CHECK_EVERY):
        fraction = min(1.0, (i + CONTACT_CHECK_EVERY) / lift_steps)
        schedule.append((start + fraction * (goal - start), CONTACT_CHECK_EVERY))
    return schedule


def descent_waypoints(ik: DownwardIK, config: EnvConfig, joints: np.ndarray,
                      position: np.ndarray, yaw_offset: float
                      ) -> list[tuple[np.ndarray, np.ndarray]]:
    """The descend close's path (``actions.close_mode: descend``): ``(fingertip position (3,)
    m, joint angles (7,) rad)`` waypoints straight down from ``position`` to the workspace's
    lowest height, one ``translation_step_m`` apart (the last one shorter), each solved by IK
    from the one before so the fingertip follows the vertical line. Empty when the gripper is
    already at the lowest height; the path ends early where IK stops converging.
    """
    scene, step = config.scene, config.actions.translation_step_m
    lowest = scene.table_top_z_m + scene.workspace_z_min_above_table_m
    yaw = math.radians(scene.start_yaw_deg) + yaw_offset
    waypoints: list[tuple[np.ndarray, np.ndarray]] = []
    current = np.asarray(joints, dtype=float)
    z = float(position[2])
    while z > lowest + 1e-6:
        z = max(lowest, z - step)
        target = np.array([position[0], position[1], z])
        solution = ik.solve(current, target, yaw)
        if not solution.converged:
            break
        current = solution.joints
        waypoints.append((target, current))
    return waypoints


def descent_steps(config: EnvConfig, start_z: float, end_z: float) -> int:
    """Physics steps the descend close takes from height ``start_z`` to ``end_z`` (m) at
    ``actions.descend_speed_m_s``."""
    seconds = abs(start_z - end_z) / config.actions.descend_speed_m_s
    return max(1, round(seconds / config.physics.timestep_s))


def schedule_points(schedule: list[tuple[np.ndarray, int]],
                    timestep_s: float) -> list[tuple[float, np.ndarray]]:
    """A ``(targets, physics steps)`` schedule as trajectory points ``(time from start s,
    targets)``: each segment's targets from the time it starts."""
    points, steps = [], 0
    for targets, n in schedule:
        points.append((steps * timestep_s, np.array(targets, dtype=float)))
        steps += n
    return points


def schedule_duration_s(schedule: list[tuple[np.ndarray, int]], timestep_s: float) -> float:
    """Total time of a ``(targets, physics steps)`` schedule, s."""
    return sum(n for _, n in schedule) * timestep_s


def judge_grasp(config: GripperConfig, opening_m: float, bottom_height_m: float,
                touched: bool) -> Outcome:
    """The paper's judge after the lift: success if the gripper is not fully closed
    (``opening_m`` pad separation) and the object's bottom is ``success_height_m`` above the
    table (``bottom_height_m``); else partial if a finger ``touched`` the object during the
    grasp, else a miss. The MuJoCo scene and Gazebo's episode manager both judge with it."""
    if opening_m > config.closed_opening_m and bottom_height_m > config.success_height_m:
        return Outcome.SUCCESS
    return Outcome.PARTIAL if touched else Outcome.MISS
