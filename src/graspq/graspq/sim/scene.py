"""Build the MuJoCo grasping scene from its XML files and an :class:`EnvConfig`.

The XML (``assets/``) holds the layout; this module applies the config's numbers to it via
``MjSpec`` before compiling, and looks up the ids the environment needs.
"""

from __future__ import annotations

import dataclasses
from importlib import resources

import mujoco
import numpy as np

from graspq.observation import JOINT_NAMES
from graspq.sim.settings import (
    ALL_OBJECT_TYPES,
    TRAINING_OBJECT_TYPES,
    CameraConfig,
    EnvConfig,
    SceneConfig,
)

SCENE_FILE = "grasp_scene.xml"
ARM_JOINTS = tuple(f"right_{name}" for name in JOINT_NAMES)
FINGER_JOINTS = ("right_gripper_l_finger_joint", "right_gripper_r_finger_joint")
FINGER_GEOMS = ("l_finger_pad", "r_finger_pad")
FINGER_STROKE_M = 0.020833  # per finger, Rethink electric gripper
CLOSED_GAP_M = 0.006  # pad separation when fully closed
OVERHEAD_CAMERA = "overhead_camera"
WRIST_CAMERA = "wrist_camera"
TCP_SITE = "tcp"
FLOOR_GEOM = "floor"
TABLE_GEOM = "table_top"


@dataclasses.dataclass(frozen=True)
class Shape:
    """How an object type is built: its MuJoCo geom type, the training type whose free body
    carries it, whether its axis lies along the object's x, its yaw symmetry, and whether
    its contacts have rolling friction.

    Held-out types ride on the training types' bodies (their geom reshaped at reset) rather
    than on bodies of their own: each free body adds 7 entries to ``qpos``, and the training
    scene must stay the one it was (the scene reference test replays its ``qpos``).
    """

    geom: str  # box, sphere, cylinder, capsule or ellipsoid
    body: str  # the training type whose body (free joint, geom) carries it
    lying: bool = False  # axis (cylinder, capsule) along the object's x instead of z
    yaw_period_deg: float | None = None  # the fingers fit again after this turn; None: any yaw
    # Rolling friction (condim 6) for a shape that MuJoCo's convex collision sets on the table
    # at one point of a line or of a flat curve: without it a lying cylinder rolls away and an
    # ellipsoid rocks on its own, which real ones do not.
    rolling_friction: bool = False


SHAPES: dict[str, Shape] = {
    "cube": Shape("box", "cube", yaw_period_deg=90.0),
    "sphere": Shape("sphere", "sphere"),
    "cylinder": Shape("cylinder", "cylinder"),
    "box": Shape("box", "cube", yaw_period_deg=180.0),
    "capsule": Shape("capsule", "cylinder", lying=True, yaw_period_deg=180.0,
                     rolling_friction=True),
    "ellipsoid": Shape("ellipsoid", "sphere", yaw_period_deg=180.0, rolling_friction=True),
    "lying_cylinder": Shape("cylinder", "cylinder", lying=True, yaw_period_deg=180.0,
                            rolling_friction=True),
    "cube_small": Shape("box", "cube", yaw_period_deg=90.0),
    "cube_large": Shape("box", "cube", yaw_period_deg=90.0),
    "sphere_small": Shape("sphere", "sphere"),
    "sphere_large": Shape("sphere", "sphere"),
    "cylinder_small": Shape("cylinder", "cylinder"),
    "cylinder_large": Shape("cylinder", "cylinder"),
}
if tuple(SHAPES) != ALL_OBJECT_TYPES:
    raise AssertionError("SHAPES must list ALL_OBJECT_TYPES, in order")


def check_object_type(kind: str) -> Shape:
    """The shape of object type ``kind``; ValueError naming the known types if there is none."""
    if kind not in SHAPES:
        raise ValueError(f"unknown object type {kind!r} (known: {', '.join(SHAPES)})")
    return SHAPES[kind]


def _asset_path(name: str) -> str:
    return str(resources.files("graspq.sim") / "assets" / name)


@dataclasses.dataclass(frozen=True)
class ObjectHandle:
    """Ids of one object type's body, geom and free joint (a held-out type's are those of
    the training type whose body carries it)."""

    name: str
    body_id: int
    geom_id: int
    qpos_adr: int
    qvel_adr: int
    park_pos: np.ndarray  # where the object waits while another type is in play
    condim: int  # the geom's contact dimension as compiled (sliding and torsional friction)


@dataclasses.dataclass(frozen=True)
class Scene:
    """A compiled model and the ids the environment uses."""

    model: mujoco.MjModel
    arm_qpos_adr: np.ndarray  # (7,)
    arm_dof_adr: np.ndarray  # (7,)
    arm_actuators: np.ndarray  # (7,)
    arm_range: np.ndarray  # (7, 2) joint limits, rad
    finger_qpos_adr: np.ndarray  # (2,)
    finger_actuators: np.ndarray  # (2,)
    finger_geoms: frozenset[int]
    tcp_site: int
    overhead_camera: int
    wrist_camera: int
    table_top_z: float
    objects: dict[str, ObjectHandle]  # every type in ALL_OBJECT_TYPES
    floor_geom: int
    table_geom: int

    @property
    def bodies(self) -> tuple[ObjectHandle, ...]:
        """The object bodies, one per training type (held-out types ride on these)."""
        return tuple(self.objects[name] for name in TRAINING_OBJECT_TYPES)

    def gripper_opening(self, data: mujoco.MjData) -> float:
        """Distance between the finger pads, in metres."""
        return gripper_opening(data.qpos[self.finger_qpos_adr])


def gripper_opening(finger_joints_m: np.ndarray) -> float:
    """The pad separation (m) from the two finger joints' positions (m): the motor state's
    last entry."""
    return CLOSED_GAP_M + float(np.sum(finger_joints_m))


def look_at_rotation(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Rotation (3, 3) of a MuJoCo camera at ``position`` looking at ``target``: its x (image
    right), y (image up) and z axes as columns in the base frame.

    MuJoCo cameras look along their -z axis with +y up in the image; the image's up is chosen
    as the direction towards +x of the base frame, seen from the camera.
    """
    forward = (target - position) / np.linalg.norm(target - position)
    right = np.cross(forward, [-1.0, 0.0, 0.0])
    if np.linalg.norm(right) < 1e-6:  # looking along x: any right vector will do
        right = np.array([0.0, -1.0, 0.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    return np.column_stack([right, up, -forward])


def look_at_quat(position: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Quaternion of a MuJoCo camera at ``position`` looking at ``target``
    (:func:`look_at_rotation`)."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, look_at_rotation(position, target).ravel())
    return quat


def overhead_camera_position(scene: SceneConfig, camera: CameraConfig) -> np.ndarray:
    """Where the overhead camera stands (3,) m; it looks at the workspace centre on the
    table (``scene.workspace_center_on_table_m``)."""
    return scene.workspace_center_on_table_m + [camera.overhead_offset_x_m, 0.0,
                                                camera.overhead_height_above_table_m]


def build_spec(config: EnvConfig) -> mujoco.MjSpec:
    """Load the scene XML and apply the config's numbers to it."""
    spec = mujoco.MjSpec.from_file(_asset_path(SCENE_FILE))
    scene, camera = config.scene, config.camera
    spec.option.timestep = config.physics.timestep_s
    spec.visual.global_.offwidth = 2 * camera.image_size  # both cameras side by side
    spec.visual.global_.offheight = camera.image_size

    table = spec.body("table")
    table_geom = spec.geom(TABLE_GEOM)
    thickness = table_geom.size[2]
    table.pos = [*scene.table_center_xy_m, scene.table_top_z_m - thickness]
    table_geom.size = [*scene.table_half_size_xy_m, thickness]

    overhead = spec.camera(OVERHEAD_CAMERA)
    position = overhead_camera_position(scene, camera)
    overhead.pos = position
    overhead.quat = look_at_quat(position, scene.workspace_center_on_table_m)
    overhead.fovy = camera.overhead_fovy_deg
    spec.camera(WRIST_CAMERA).fovy = camera.wrist_fovy_deg

    for name in ("right_gripper_l", "right_gripper_r"):
        spec.actuator(name).forcerange = [-config.gripper.force_n, config.gripper.force_n]
    return spec


def build_scene(config: EnvConfig) -> Scene:
    """Compile the scene for ``config``."""
    model = build_spec(config).compile()
    joint = model.joint
    arm_ids = [joint(name).id for name in ARM_JOINTS]
    objects = {}
    for index, name in enumerate(TRAINING_OBJECT_TYPES):
        body = model.body(f"object_{name}")
        free = joint(f"object_{name}_joint")
        objects[name] = ObjectHandle(
            name=name,
            body_id=body.id,
            geom_id=model.geom(f"object_{name}").id,
            qpos_adr=int(free.qposadr[0]),
            qvel_adr=int(free.dofadr[0]),
            park_pos=np.array([-1.0, 1.0 + 0.3 * index, config.scene.table_top_z_m - 0.7]),
            condim=int(model.geom(f"object_{name}").condim[0]),
        )
    for name in ALL_OBJECT_TYPES[len(TRAINING_OBJECT_TYPES):]:
        objects[name] = dataclasses.replace(objects[SHAPES[name].body], name=name)
    return Scene(
        model=model,
        arm_qpos_adr=np.array([model.jnt_qposadr[i] for i in arm_ids]),
        arm_dof_adr=np.array([model.jnt_dofadr[i] for i in arm_ids]),
        arm_actuators=np.array([model.actuator(name).id for name in ARM_JOINTS]),
        arm_range=np.array([model.jnt_range[i] for i in arm_ids]),
        finger_qpos_adr=np.array([model.jnt_qposadr[joint(n).id] for n in FINGER_JOINTS]),
        finger_actuators=np.array([model.actuator(n).id for n in
                                   ("right_gripper_l", "right_gripper_r")]),
        finger_geoms=frozenset(model.geom(n).id for n in FINGER_GEOMS),
        tcp_site=model.site(TCP_SITE).id,
        overhead_camera=model.camera(OVERHEAD_CAMERA).id,
        wrist_camera=model.camera(WRIST_CAMERA).id,
        table_top_z=config.scene.table_top_z_m,
        objects=objects,
        floor_geom=model.geom(FLOOR_GEOM).id,
        table_geom=model.geom(TABLE_GEOM).id,
    )
