"""Damped-least-squares inverse kinematics for the fingertip frame, gripper pointing down.

The target is a fingertip position and a yaw about the base z axis; the tool z axis points
straight down. Solutions are kept inside the joint limits; a target the arm cannot reach
within them does not converge, which the environment reports as "not executed".
"""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np

from graspq.sim.scene import Scene
from graspq.sim.settings import IKConfig

_MAX_JOINT_STEP_RAD = 0.2  # per iteration; keeps the linearisation honest on long moves


def down_rotation(yaw: float) -> np.ndarray:
    """Rotation matrix (3, 3) of a tool frame pointing down (z = -z_base), turned by ``yaw``."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, s, 0.0], [s, -c, 0.0], [0.0, 0.0, -1.0]])


def tool_yaw(rotation: np.ndarray) -> float:
    """Yaw (rad) of a tool frame's x axis projected on the base xy plane."""
    return float(np.arctan2(rotation[1, 0], rotation[0, 0]))


def orientation_error(current: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """Small-angle rotation vector (base frame) that turns ``current`` towards ``desired``."""
    return 0.5 * sum(np.cross(current[:, i], desired[:, i]) for i in range(3))


@dataclasses.dataclass(frozen=True)
class IKResult:
    """Joint angles (rad, arm order s0..w2) and how well they reach the target."""

    joints: np.ndarray
    converged: bool
    position_error_m: float
    orientation_error_rad: float
    iterations: int


class DownwardIK:
    """Solves fingertip pose targets on a private ``MjData`` (the simulation is untouched)."""

    def __init__(self, scene: Scene, config: IKConfig) -> None:
        self._scene = scene
        self._config = config
        self._data = mujoco.MjData(scene.model)
        self._jacp = np.zeros((3, scene.model.nv))
        self._jacr = np.zeros((3, scene.model.nv))

    def forward(self, joints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Fingertip position (3,) and rotation (3, 3) for arm joint angles ``joints``."""
        self._set_joints(joints)
        site = self._scene.tcp_site
        return self._data.site_xpos[site].copy(), self._data.site_xmat[site].reshape(3, 3).copy()

    def solve(self, seed: np.ndarray, position: np.ndarray, yaw: float) -> IKResult:
        """Joint angles that put the fingertip at ``position`` (m) with tool yaw ``yaw`` (rad)."""
        scene, cfg = self._scene, self._config
        desired = down_rotation(yaw)
        lower, upper = scene.arm_range[:, 0], scene.arm_range[:, 1]
        joints = np.clip(np.asarray(seed, dtype=float), lower, upper)
        damping = cfg.damping**2 * np.eye(6)
        pos_err = rot_err = np.inf
        for iteration in range(1, cfg.max_iterations + 1):
            self._set_joints(joints)
            current = self._data.site_xmat[scene.tcp_site].reshape(3, 3)
            error = np.concatenate([position - self._data.site_xpos[scene.tcp_site],
                                    orientation_error(current, desired)])
            pos_err, rot_err = np.linalg.norm(error[:3]), np.linalg.norm(error[3:])
            if pos_err < cfg.position_tolerance_m and rot_err < cfg.orientation_tolerance_rad:
                return IKResult(joints, True, float(pos_err), float(rot_err), iteration)
            mujoco.mj_jacSite(scene.model, self._data, self._jacp, self._jacr, scene.tcp_site)
            jac = np.vstack([self._jacp, self._jacr])[:, scene.arm_dof_adr]
            step = jac.T @ np.linalg.solve(jac @ jac.T + damping, error)
            largest = np.max(np.abs(step))
            if largest > _MAX_JOINT_STEP_RAD:
                step *= _MAX_JOINT_STEP_RAD / largest
            joints = np.clip(joints + step, lower, upper)
        return IKResult(joints, False, float(pos_err), float(rot_err), cfg.max_iterations)

    def _set_joints(self, joints: np.ndarray) -> None:
        self._data.qpos[self._scene.arm_qpos_adr] = joints
        mujoco.mj_kinematics(self._scene.model, self._data)
        mujoco.mj_comPos(self._scene.model, self._data)
