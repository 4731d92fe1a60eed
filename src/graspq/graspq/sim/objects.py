"""Draw and place the episode's object: type, size, mass, friction, colour and pose."""

from __future__ import annotations

import colorsys
import dataclasses

import mujoco
import numpy as np

from graspq.sim.scene import SHAPES, Scene, Shape, check_object_type
from graspq.sim.settings import EnvConfig, ObjectConfig

# A lying shape's geom axis (MuJoCo's cylinders and capsules run along the geom's z) is turned
# onto the object's x: a quarter turn about y.
_LYING_QUAT = np.array([np.sqrt(0.5), 0.0, np.sqrt(0.5), 0.0])
_UPRIGHT_QUAT = np.array([1.0, 0.0, 0.0, 0.0])
_ROLLING_CONDIM = 6  # sliding, torsional and rolling friction
_LYING_ROTATION = np.array([[0.0, 0.0, 1.0], [0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]])
_GEOM_TYPES = {"box": mujoco.mjtGeom.mjGEOM_BOX, "sphere": mujoco.mjtGeom.mjGEOM_SPHERE,
               "cylinder": mujoco.mjtGeom.mjGEOM_CYLINDER,
               "capsule": mujoco.mjtGeom.mjGEOM_CAPSULE,
               "ellipsoid": mujoco.mjtGeom.mjGEOM_ELLIPSOID}

@dataclasses.dataclass(frozen=True)
class ObjectSpec:
    """One episode's object. ``half_size``: half extents (m) along the object's x, y, z (a
    sphere keeps only its radius, in x; an elongated shape's long side is x, the side the
    fingers close across y); yaw in rad."""

    kind: str
    half_size: tuple[float, float, float]
    mass_kg: float
    friction: float
    rgba: tuple[float, float, float, float]
    x: float
    y: float
    yaw: float

    @property
    def shape(self) -> Shape:
        """How the type is built (:data:`SHAPES`)."""
        return SHAPES[self.kind]

    @property
    def half_height(self) -> float:
        """Half of the object's height as it rests on the table."""
        return self.half_size[0] if self.shape.geom == "sphere" else self.half_size[2]

    @property
    def width(self) -> float:
        """Narrowest horizontal extent (m): the gap the gripper must close on."""
        if self.shape.geom == "sphere":
            return 2.0 * self.half_size[0]
        return 2.0 * min(self.half_size[0], self.half_size[1])


def draw_object(config: EnvConfig, rng: np.random.Generator, kind: str | None = None,
                pose: tuple[float, float, float] | None = None,
                spawn_half_xy_m: float | None = None,
                yaw_range: tuple[float, float] | None = None) -> ObjectSpec:
    """A random object; ``kind`` and ``pose`` (x, y, yaw) may be fixed by the caller,
    ``spawn_half_xy_m`` narrows the spawn square (default: the scene's) and ``yaw_range``
    (centre, half width; rad) the yaw (default: any)."""
    objects, scene = config.objects, config.scene
    if kind is None:
        weights = np.broadcast_to(objects.type_weights, len(objects.types))
        # Equal weights draw as before the key existed, so a seed's episodes stay the same.
        share = None if np.all(weights == weights[0]) else weights / weights.sum()
        kind = str(rng.choice(objects.types, p=share))
    half_size = _draw_half_size(objects, kind, rng)
    mass = rng.uniform(*objects.mass_kg)
    friction = rng.uniform(*objects.friction)
    hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)
    rgba = (*colorsys.hsv_to_rgb(hue, saturation, value), 1.0)
    if pose is None:
        cx, cy = scene.workspace_center_xy_m
        half = scene.spawn_half_xy_m if spawn_half_xy_m is None else spawn_half_xy_m
        x, y = rng.uniform(-half, half, size=2) + (cx, cy)
        centre, half_yaw = (0.0, np.pi) if yaw_range is None else yaw_range
        pose = (float(x), float(y), float(centre + rng.uniform(-half_yaw, half_yaw)))
    return ObjectSpec(kind, tuple(float(h) for h in half_size), float(mass), float(friction),
                      tuple(float(c) for c in rgba), *pose)


def _draw_half_size(objects: ObjectConfig, kind: str, rng: np.random.Generator
                    ) -> tuple[float, float, float]:
    """Half extents (``ObjectSpec.half_size``) of a ``kind`` drawn from its config ranges."""
    check_object_type(kind)
    if kind.startswith("cube"):  # cube, cube_small, cube_large
        half = rng.uniform(*getattr(objects, f"{kind}_side_m")) / 2
        return (half, half, half)
    if kind.startswith("sphere"):
        return (rng.uniform(*getattr(objects, f"{kind}_diameter_m")) / 2, 0.0, 0.0)
    if kind.startswith("cylinder"):
        radius = rng.uniform(*getattr(objects, f"{kind}_diameter_m")) / 2
        return (radius, radius, rng.uniform(*getattr(objects, f"{kind}_height_m")) / 2)
    if kind == "box":
        narrow = rng.uniform(*objects.box_narrow_side_m) / 2
        long = rng.uniform(*objects.box_long_side_m) / 2
        return (long, narrow, rng.uniform(*objects.box_height_m) / 2)
    if kind == "ellipsoid":
        return (rng.uniform(*objects.ellipsoid_length_m) / 2,
                rng.uniform(*objects.ellipsoid_width_m) / 2,
                rng.uniform(*objects.ellipsoid_height_m) / 2)
    # capsule, lying_cylinder: lying along x, round across y and z
    radius = rng.uniform(*getattr(objects, f"{kind}_diameter_m")) / 2
    return (rng.uniform(*getattr(objects, f"{kind}_length_m")) / 2, radius, radius)


def object_inertia(spec: ObjectSpec) -> np.ndarray:
    """Principal moments of inertia (3,) kg m^2 of a solid object about its centre, along the
    object's x, y, z."""
    m, (a, b, c) = spec.mass_kg, spec.half_size
    geom = spec.shape.geom
    if geom == "box":
        return m / 3.0 * np.array([b * b + c * c, a * a + c * c, a * a + b * b])
    if geom == "sphere":
        return np.full(3, 0.4 * m * a * a)
    if geom == "ellipsoid":
        return m / 5.0 * np.array([b * b + c * c, a * a + c * c, a * a + b * b])
    if geom == "cylinder" and not spec.shape.lying:
        side = m / 12.0 * (3 * a * a + 4 * c * c)  # cylinder: radius a, half height c
        return np.array([side, side, 0.5 * m * a * a])
    if geom == "cylinder":  # lying: half length a, radius b
        side = m / 12.0 * (3 * b * b + 4 * a * a)
        return np.array([0.5 * m * b * b, side, side])
    # capsule, lying: radius r, half length h of the cylindrical part; solid cylinder plus two
    # hemispheres of the same density (each hemisphere's centroid 3r/8 from its flat face).
    r = b
    h = a - r
    cylinder_volume, ball_volume = 2.0 * np.pi * r * r * h, 4.0 / 3.0 * np.pi * r**3
    m_cyl = m * cylinder_volume / (cylinder_volume + ball_volume)
    m_ball = m - m_cyl
    axial = 0.5 * m_cyl * r * r + 0.4 * m_ball * r * r
    side = (m_cyl * (h * h / 3.0 + r * r / 4.0)
            + m_ball * (0.4 * r * r + h * h + 0.75 * h * r))
    return np.array([axial, side, side])


def _geom_size(kind: str, half_size: tuple[float, float, float]) -> tuple[float, float, float]:
    """MuJoCo ``geom_size`` of a ``kind`` with ``ObjectSpec.half_size`` ``half_size`` (a lying
    geom's axis is the object's x)."""
    a, b, c = half_size
    shape = SHAPES[kind]
    geom = shape.geom
    if geom in ("box", "ellipsoid"):
        return (a, b, c)
    if geom == "sphere":
        return (a, 0.0, 0.0)
    if not shape.lying:  # upright cylinder: radius, half height
        return (a, c, 0.0)
    if geom == "cylinder":  # lying cylinder: radius, half length
        return (b, a, 0.0)
    return (b, a - b, 0.0)  # lying capsule: radius, half length of the cylindrical part


def shape_object(scene: Scene, data: mujoco.MjData, spec: ObjectSpec) -> None:
    """Give ``spec``'s object its shape, size, colour, friction and mass in the model; park
    the rest.

    Sizes, types and orientations of primitive geoms may change after compiling: MuJoCo reads
    them at every collision check and every render, so only the bounding sphere and box need
    updating with them. A held-out type reshapes the geom of the training type whose body
    carries it (:data:`SHAPES`); a parked body's geom gets its own type back. The mass change
    needs ``mj_setConst``, which also resets ``data.qpos`` to the model's ``qpos0``, so call
    this before :func:`place_object`.
    """
    model = scene.model
    handle = scene.objects[spec.kind]
    for host in scene.bodies:
        # Parked objects float (gravity compensated) and collide with nothing: resting on the
        # floor they would cost contact solving at every step for nothing.
        active = host.body_id == handle.body_id
        model.geom_contype[host.geom_id] = model.geom_conaffinity[host.geom_id] = int(active)
        model.body_gravcomp[host.body_id] = 0.0 if active else 1.0
        if not active:
            model.geom_type[host.geom_id] = _GEOM_TYPES[SHAPES[host.name].geom]
            model.geom_quat[host.geom_id] = _UPRIGHT_QUAT
            model.geom_condim[host.geom_id] = host.condim
    geom = handle.geom_id
    shape = spec.shape
    size = _geom_size(spec.kind, spec.half_size)
    model.geom_type[geom] = _GEOM_TYPES[shape.geom]
    model.geom_quat[geom] = _LYING_QUAT if shape.lying else _UPRIGHT_QUAT
    # condim 6 adds the XML's rolling friction (friction[2]) to the contacts (Shape's note).
    model.geom_condim[geom] = _ROLLING_CONDIM if shape.rolling_friction else handle.condim
    model.geom_size[geom] = size
    r, h = size[0], size[1]
    model.geom_aabb[geom] = (0, 0, 0, *{  # half extents in the geom's frame
        "box": size, "ellipsoid": size, "sphere": (r, r, r), "cylinder": (r, r, h),
        "capsule": (r, r, h + r)}[shape.geom])
    model.geom_rbound[geom] = float(np.linalg.norm(model.geom_aabb[geom][3:]))
    model.geom_rgba[geom] = spec.rgba
    model.geom_friction[geom, 0] = spec.friction
    model.body_mass[handle.body_id] = spec.mass_kg
    model.body_inertia[handle.body_id] = object_inertia(spec)
    mujoco.mj_setConst(model, data)


def place_object(scene: Scene, data: mujoco.MjData, spec: ObjectSpec) -> None:
    """Put ``spec``'s object at rest on the table at its pose; park the other bodies."""
    active = scene.objects[spec.kind].body_id
    for handle in scene.bodies:
        adr = handle.qpos_adr
        data.qvel[handle.qvel_adr:handle.qvel_adr + 6] = 0.0
        if handle.body_id != active:
            data.qpos[adr:adr + 3] = handle.park_pos
            data.qpos[adr + 3:adr + 7] = (1.0, 0.0, 0.0, 0.0)
            continue
        z = scene.table_top_z + spec.half_height
        data.qpos[adr:adr + 3] = (spec.x, spec.y, z)
        data.qpos[adr + 3:adr + 7] = (np.cos(spec.yaw / 2), 0.0, 0.0, np.sin(spec.yaw / 2))


def lowest_point_z(scene: Scene, data: mujoco.MjData, kind: str) -> float:
    """Height (base frame, m) of the lowest point of an object in its current pose."""
    geom = scene.objects[kind].geom_id
    return _geom_lowest_point(SHAPES[kind].geom, scene.model.geom_size[geom],
                              float(data.geom_xpos[geom, 2]),
                              data.geom_xmat[geom].reshape(3, 3))


def lowest_point(kind: str, half_size: tuple[float, float, float], centre_z: float,
                 rotation: np.ndarray) -> float:
    """Height of the lowest point of an object (``ObjectSpec.half_size`` convention) whose
    centre is at height ``centre_z`` with orientation ``rotation`` (3x3, object to base): the
    MuJoCo scene's judge and Gazebo's episode manager both measure the lift with it."""
    shape = check_object_type(kind)
    geom_rotation = rotation @ _LYING_ROTATION if shape.lying else rotation
    return _geom_lowest_point(shape.geom, _geom_size(kind, half_size), centre_z, geom_rotation)


def _geom_lowest_point(geom: str, size: tuple[float, float, float], centre_z: float,
                       rotation: np.ndarray) -> float:
    """Height of the lowest point of a primitive geom of MuJoCo type ``geom`` and
    ``geom_size`` ``size`` centred at height ``centre_z`` with orientation ``rotation`` (3x3,
    geom to base)."""
    a, b, c = size
    if geom == "sphere":
        return float(centre_z - a)
    if geom == "box":
        return float(centre_z - np.abs(rotation[2]) @ (a, b, c))
    if geom == "ellipsoid":  # support along -z: |diag(a, b, c) R^T z|
        return float(centre_z - np.linalg.norm(rotation[2] * (a, b, c)))
    axis_z = rotation[2, 2]  # cylinder, capsule: radius a, half length b along the geom's z
    if geom == "capsule":
        return float(centre_z - abs(axis_z) * b - a)
    return float(centre_z - abs(axis_z) * b - a * np.sqrt(max(0.0, 1.0 - axis_z**2)))
