"""Baxter's right-arm forward kinematics as constants read off the compiled MuJoCo model.

The chain is what MuJoCo itself computes from the joint angles: each arm joint's body sits at a
fixed offset and rotation from the previous joint's frame and turns about its hinge axis; the
fingertip (the ``tcp`` site) sits at a fixed pose in the last frame. Expressed as plain arrays
it can be evaluated anywhere the joint angles are known (the GQN's fingertip features,
:mod:`graspq.learning.fingertip`, which also run inside the exported ONNX graph), with no
simulator at hand.
"""

from __future__ import annotations

import dataclasses
import functools

import mujoco
import numpy as np

from graspq.sim.scene import ARM_JOINTS, TCP_SITE, build_scene
from graspq.sim.settings import EnvConfig


@dataclasses.dataclass(frozen=True)
class ArmChain:
    """Forward kinematics of the seven arm joints to the fingertip, in the base frame.

    Pose of the fingertip: start at the base frame; for each joint i, move by
    ``joint_offsets[i]`` and turn by ``joint_rotations[i]`` (the fixed transform to that
    joint's body), then turn by ``angle_i - joint_zero[i]`` about ``joint_axes[i]``; finally
    move by ``tip_offset`` and turn by ``tip_rotation``. Evaluated by
    :class:`graspq.learning.fingertip.FingertipFeatures`.
    """

    joint_offsets: np.ndarray  # (7, 3) m
    joint_rotations: np.ndarray  # (7, 3, 3)
    joint_axes: np.ndarray  # (7, 3) unit vectors
    joint_zero: np.ndarray  # (7,) rad, the angle at which the body frame is as compiled
    tip_offset: np.ndarray  # (3,) m
    tip_rotation: np.ndarray  # (3, 3)


def quat_matrix(quat: np.ndarray) -> np.ndarray:
    """Rotation matrix (3, 3) of a MuJoCo quaternion (w, x, y, z)."""
    matrix = np.empty(9)
    mujoco.mju_quat2Mat(matrix, np.asarray(quat, dtype=float))
    return matrix.reshape(3, 3)


def arm_chain(model: mujoco.MjModel) -> ArmChain:
    """Read the arm's chain off a compiled grasp-scene model."""
    arm_joints = [model.joint(name).id for name in ARM_JOINTS]
    site = model.site(TCP_SITE).id
    bodies = []  # from the fingertip's body up to (not including) the world body
    body = int(model.site_bodyid[site])
    while body != 0:
        bodies.append(body)
        body = int(model.body_parentid[body])
    bodies.reverse()

    offsets, rotations, axes, zeros = [], [], [], []
    rotation, position = np.eye(3), np.zeros(3)  # fixed transform since the last arm joint
    for body in bodies:
        position = position + rotation @ model.body_pos[body]
        rotation = rotation @ quat_matrix(model.body_quat[body])
        joints = range(model.body_jntadr[body], model.body_jntadr[body] + model.body_jntnum[body])
        for joint in joints:
            expected = arm_joints[len(axes)] if len(axes) < len(arm_joints) else None
            if joint != expected or model.jnt_type[joint] != mujoco.mjtJoint.mjJNT_HINGE:
                raise ValueError(f"fingertip chain: joint {model.joint(joint).name!r} is not "
                                 "the arm's next hinge (expected the order of ARM_JOINTS)")
            if np.any(model.jnt_pos[joint] != 0.0):
                raise ValueError(f"fingertip chain: joint {model.joint(joint).name!r} has an "
                                 "off-origin anchor, which this chain does not model")
            offsets.append(position)
            rotations.append(rotation)
            axes.append(model.jnt_axis[joint].copy())
            zeros.append(float(model.qpos0[model.jnt_qposadr[joint]]))
            rotation, position = np.eye(3), np.zeros(3)
    if len(axes) != len(ARM_JOINTS):
        raise ValueError(f"fingertip chain: found {len(axes)} arm joints above the "
                         f"{TCP_SITE!r} site, expected {len(ARM_JOINTS)}")
    position = position + rotation @ model.site_pos[site]
    rotation = rotation @ quat_matrix(model.site_quat[site])
    return ArmChain(np.array(offsets), np.array(rotations), np.array(axes), np.array(zeros),
                    position, rotation)


@functools.lru_cache(maxsize=1)
def default_arm_chain() -> ArmChain:
    """The chain of the scene built from the default :class:`EnvConfig` (the arm's geometry
    does not depend on any config value)."""
    return arm_chain(build_scene(EnvConfig()).model)
