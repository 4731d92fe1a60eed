"""A URDF of the scene's robot, written from the compiled MuJoCo model.

robot_state_publisher and rviz2 then show exactly the arm the core simulates and solves IK
for: Baxter's right arm from ``base`` (the scene's world frame) to the fingers, the electric
gripper's two finger joints, the fingertip (``right_gripper_tip``, the ``tcp`` site), the wrist
camera and the fixed overhead camera, each camera with a ROS optical frame (z forward, y
down). Visuals are the model's boxes, cylinders, capsules and spheres. The committed file
``src/graspq_bringup/urdf/graspq_baxter.urdf`` is this module's output (``graspq urdf``); a
test keeps the two equal.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import quoteattr

import mujoco
import numpy as np

from graspq.sim.cameras import MUJOCO_TO_OPTICAL, fixed_camera_optical_pose
from graspq.sim.kinematics import quat_matrix
from graspq.sim.scene import OVERHEAD_CAMERA, TCP_SITE, WRIST_CAMERA, build_scene
from graspq.sim.settings import EnvConfig

ROBOT_NAME = "graspq_baxter"
BASE_LINK = "base"
OVERHEAD_OPTICAL_FRAME = "overhead_camera_optical_frame"
WRIST_OPTICAL_FRAME = "right_hand_camera_optical_frame"
TIP_LINK = "right_gripper_tip"
_ROOT_BODY = "torso"


def rpy(rotation: np.ndarray) -> tuple[float, float, float]:
    """Roll-pitch-yaw (fixed axes x, y, z: URDF's and SDF's) of a rotation matrix."""
    r = np.asarray(rotation, dtype=float)
    pitch = math.asin(max(-1.0, min(1.0, -r[2, 0])))
    if abs(math.cos(pitch)) > 1e-9:
        roll = math.atan2(r[2, 1], r[2, 2])
        yaw = math.atan2(r[1, 0], r[0, 0])
    else:  # gimbal lock: fold the roll into the yaw
        roll = 0.0
        yaw = math.atan2(-r[0, 1], r[1, 1])
    return roll, pitch, yaw


def _origin(position: np.ndarray, rotation: np.ndarray) -> str:
    xyz = " ".join(f"{v:.9g}" for v in position)
    angles = " ".join(f"{v:.9g}" for v in rpy(rotation))
    return f'<origin xyz="{xyz}" rpy="{angles}"/>'


def _geometry(model: mujoco.MjModel, geom: int) -> str | None:
    kind, size = model.geom_type[geom], model.geom_size[geom]
    if kind == mujoco.mjtGeom.mjGEOM_BOX:
        return f'<box size="{2 * size[0]:.6g} {2 * size[1]:.6g} {2 * size[2]:.6g}"/>'
    if kind == mujoco.mjtGeom.mjGEOM_SPHERE:
        return f'<sphere radius="{size[0]:.6g}"/>'
    if kind == mujoco.mjtGeom.mjGEOM_CYLINDER:
        return f'<cylinder radius="{size[0]:.6g}" length="{2 * size[1]:.6g}"/>'
    if kind == mujoco.mjtGeom.mjGEOM_CAPSULE:  # drawn as its cylinder part
        return f'<cylinder radius="{size[0]:.6g}" length="{2 * size[1] + 2 * size[0]:.6g}"/>'
    return None


# sdformat drops a URDF link without inertia, and the arm below it with it: a massless body
# (a mounting frame) gets this token mass when the URDF is for a physics engine.
_TOKEN_MASS_KG, _TOKEN_INERTIA = 1e-3, 1e-6


def _inertial(model: mujoco.MjModel, body: int) -> list[str]:
    mass = float(model.body_mass[body])
    inertia = model.body_inertia[body] if mass > 0 else np.full(3, _TOKEN_INERTIA)
    return ["    <inertial>",
            f"      {_origin(model.body_ipos[body], quat_matrix(model.body_iquat[body]))}",
            f'      <mass value="{mass if mass > 0 else _TOKEN_MASS_KG:.9g}"/>',
            f'      <inertia ixx="{inertia[0]:.9g}" ixy="0" ixz="0" iyy="{inertia[1]:.9g}" '
            f'iyz="0" izz="{inertia[2]:.9g}"/>', "    </inertial>"]


def _collisions(model: mujoco.MjModel, body: int) -> list[str]:
    lines = []
    for geom in range(model.body_geomadr[body],
                      model.body_geomadr[body] + model.body_geomnum[body]):
        shape = _geometry(model, geom)
        if shape is None or not (model.geom_contype[geom] or model.geom_conaffinity[geom]):
            continue
        name = model.geom(geom).name or f"{model.body(body).name}_{geom}"
        lines += [f"    <collision name={quoteattr(name)}>",
                  f"      {_origin(model.geom_pos[geom], quat_matrix(model.geom_quat[geom]))}",
                  f"      <geometry>{shape}</geometry>", "    </collision>"]
    return lines


def _link(model: mujoco.MjModel, body: int | None, name: str,
          physical: bool = False) -> list[str]:
    lines = [f"  <link name={quoteattr(name)}>"]
    if body is not None and physical:
        lines += _inertial(model, body)
        lines += _collisions(model, body)
    if body is not None:
        for geom in range(model.body_geomadr[body],
                          model.body_geomadr[body] + model.body_geomnum[body]):
            shape = _geometry(model, geom)
            if shape is None:
                continue
            rgba = " ".join(f"{v:.3g}" for v in model.geom_rgba[geom])
            lines += ["    <visual>",
                      f"      {_origin(model.geom_pos[geom], quat_matrix(model.geom_quat[geom]))}",
                      f"      <geometry>{shape}</geometry>",
                      f'      <material name="{name}_{geom}"><color rgba="{rgba}"/></material>',
                      "    </visual>"]
    lines.append("  </link>")
    return lines


def _fixed(name: str, parent: str, child: str, position: np.ndarray,
           rotation: np.ndarray) -> list[str]:
    return [f'  <joint name={quoteattr(name)} type="fixed">',
            f"    <parent link={quoteattr(parent)}/>", f"    <child link={quoteattr(child)}/>",
            f"    {_origin(position, rotation)}", "  </joint>"]


def robot_urdf(config: EnvConfig | None = None, physical: bool = False,
               extensions: tuple[str, ...] = ()) -> str:
    """The URDF text (see the module docstring).

    ``physical`` adds what a physics engine needs (each body's inertia and collision shapes,
    and a fixed joint from ``world`` to ``base``, so the arm stands where the scene has it);
    ``extensions`` are lines put before ``</robot>`` (a simulator's ``<gazebo>`` blocks).
    """
    scene = build_scene(config if config is not None else EnvConfig())
    model = scene.model
    lines = ['<?xml version="1.0"?>',
             "<!-- Generated by `graspq urdf` from the MuJoCo scene (graspq.sim.urdf); do not",
             "     edit. Joint origins, axes and limits are the simulated arm's. -->",
             f"<robot name={quoteattr(ROBOT_NAME)}>"]
    if physical:
        lines += _link(model, None, "world")
        lines += _fixed("world_to_base", "world", BASE_LINK, np.zeros(3), np.eye(3))
    lines += _link(model, None, BASE_LINK)
    root = model.body(_ROOT_BODY).id
    stack = [root]
    while stack:
        body = stack.pop(0)
        name = model.body(body).name
        parent = int(model.body_parentid[body])
        parent_name = BASE_LINK if parent == 0 else model.body(parent).name
        lines += _link(model, body, name, physical)
        position, rotation = model.body_pos[body], quat_matrix(model.body_quat[body])
        joints = range(model.body_jntadr[body], model.body_jntadr[body] + model.body_jntnum[body])
        if not joints:
            lines += _fixed(f"{parent_name}_to_{name}", parent_name, name, position, rotation)
        for joint in joints:
            kind = model.jnt_type[joint]
            urdf_type = {int(mujoco.mjtJoint.mjJNT_HINGE): "revolute",
                         int(mujoco.mjtJoint.mjJNT_SLIDE): "prismatic"}[int(kind)]
            low, high = model.jnt_range[joint]
            actuators = [a for a in range(model.nu) if model.actuator_trnid[a, 0] == joint]
            effort = (float(np.max(np.abs(model.actuator_forcerange[actuators[0]])))
                      if actuators else 0.0)
            axis = " ".join(f"{v:.6g}" for v in model.jnt_axis[joint])
            lines += [f"  <joint name={quoteattr(model.joint(joint).name)} type=\"{urdf_type}\">",
                      f"    <parent link={quoteattr(parent_name)}/>",
                      f"    <child link={quoteattr(name)}/>",
                      f"    {_origin(position, rotation)}", f'    <axis xyz="{axis}"/>',
                      f'    <limit lower="{low:.9g}" upper="{high:.9g}" effort="{effort:.6g}" '
                      'velocity="5.0"/>', "  </joint>"]
        stack += [child for child in range(model.nbody) if model.body_parentid[child] == body
                  and child != body and model.body(child).name.startswith(("right", "torso"))]
    # The fingertip and the cameras, as fixed frames on their bodies.
    site = model.site(TCP_SITE).id
    tip_parent = model.body(int(model.site_bodyid[site])).name
    lines += _link(model, None, TIP_LINK)
    lines += _fixed(f"{tip_parent}_to_tip", tip_parent, TIP_LINK, model.site_pos[site],
                    quat_matrix(model.site_quat[site]))
    wrist = model.camera(WRIST_CAMERA).id
    wrist_parent = model.body(int(model.cam_bodyid[wrist])).name
    lines += _link(model, None, WRIST_OPTICAL_FRAME)
    lines += _fixed(f"{wrist_parent}_to_wrist_camera", wrist_parent, WRIST_OPTICAL_FRAME,
                    model.cam_pos[wrist], quat_matrix(model.cam_quat[wrist]) @ MUJOCO_TO_OPTICAL)
    overhead = model.camera(OVERHEAD_CAMERA).id
    lines += _link(model, None, OVERHEAD_OPTICAL_FRAME)
    lines += _fixed("base_to_overhead_camera", BASE_LINK, OVERHEAD_OPTICAL_FRAME,
                    *fixed_camera_optical_pose(model, overhead))
    lines += extensions
    lines.append("</robot>")
    return "\n".join(lines) + "\n"
