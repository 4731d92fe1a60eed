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
    """Small-angle rotation vector (base frame) that turns ``current`` towards ``desired``:
    half the sum over the three columns i of ``current[:, i] x desired[:, i]``.

    Written out in Python floats: three ``np.cross`` calls cost about 50 us, most of an IK
    iteration (issue #25). The products, differences and the order of the sums are those of
    ``np.cross`` and ``sum``, so the result is bit for bit the same.
    """
    (a00, a01, a02), (a10, a11, a12), (a20, a21, a22) = current.tolist()
    (b00, b01, b02), (b10, b11, b12), (b20, b21, b22) = desired.tolist()
    x = y = z = 0.0
    for a0, a1, a2, b0, b1, b2 in ((a00, a10, a20, b00, b10, b20),
                                   (a01, a11, a21, b01, b11, b21),
                                   (a02, a12, a22, b02, b12, b22)):
        x += a1 * b2 - a2 * b1
        y += a2 * b0 - a0 * b2
        z += a0 * b1 - a1 * b0
    return np.array([0.5 * x, 0.5 * y, 0.5 * z])


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
        self._damping = config.damping**2 * np.eye(6)

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
        damping = self._damping
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
