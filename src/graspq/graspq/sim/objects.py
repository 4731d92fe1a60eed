"""Draw and place the episode's object: type, size, mass, friction, colour and pose."""

from __future__ import annotations

import colorsys
import dataclasses

import mujoco
import numpy as np

from graspq.sim.scene import Scene
from graspq.sim.settings import EnvConfig


@dataclasses.dataclass(frozen=True)
class ObjectSpec:
    """One episode's object. ``half_size``: half extents (m) along the object's x, y, z (a
    sphere keeps only its radius, in x); yaw in rad."""

    kind: str
    half_size: tuple[float, float, float]
    mass_kg: float
    friction: float
    rgba: tuple[float, float, float, float]
    x: float
    y: float
    yaw: float

    @property
    def half_height(self) -> float:
        """Half of the object's height when resting upright on the table."""
        return self.half_size[0] if self.kind == "sphere" else self.half_size[2]

    @property
    def width(self) -> float:
        """Narrowest horizontal extent (m): the gap the gripper must close on."""
        return 2.0 * min(self.half_size[0], self.half_size[1]) if self.kind == "cube" \
            else 2.0 * self.half_size[0]


def draw_object(config: EnvConfig, rng: np.random.Generator, kind: str | None = None,
                pose: tuple[float, float, float] | None = None,
                spawn_half_xy_m: float | None = None) -> ObjectSpec:
    """A random object; ``kind`` and ``pose`` (x, y, yaw) may be fixed by the caller, and
    ``spawn_half_xy_m`` narrows the spawn square (default: the scene's)."""
    objects, scene = config.objects, config.scene
    kind = kind if kind is not None else str(rng.choice(objects.types))
    if kind == "cube":
        half = rng.uniform(*objects.cube_side_m) / 2
        half_size = (half, half, half)
    elif kind == "sphere":
        half = rng.uniform(*objects.sphere_diameter_m) / 2
        half_size = (half, 0.0, 0.0)
    elif kind == "cylinder":
        radius = rng.uniform(*objects.cylinder_diameter_m) / 2
        half_size = (radius, radius, rng.uniform(*objects.cylinder_height_m) / 2)
    else:
        raise ValueError(f"unknown object type {kind!r} (known: cube, sphere, cylinder)")
    mass = rng.uniform(*objects.mass_kg)
    friction = rng.uniform(*objects.friction)
    hue, saturation, value = rng.uniform(0, 1), rng.uniform(0.5, 1.0), rng.uniform(0.5, 1.0)
    rgba = (*colorsys.hsv_to_rgb(hue, saturation, value), 1.0)
    if pose is None:
        cx, cy = scene.workspace_center_xy_m
        half = scene.spawn_half_xy_m if spawn_half_xy_m is None else spawn_half_xy_m
        x, y = rng.uniform(-half, half, size=2) + (cx, cy)
        pose = (float(x), float(y), float(rng.uniform(-np.pi, np.pi)))
    return ObjectSpec(kind, tuple(float(h) for h in half_size), float(mass), float(friction),
                      tuple(float(c) for c in rgba), *pose)


def object_inertia(spec: ObjectSpec) -> np.ndarray:
    """Principal moments of inertia (3,) kg m^2 of a solid object about its centre."""
    m, (a, b, c) = spec.mass_kg, spec.half_size
    if spec.kind == "cube":
        return m / 3.0 * np.array([b * b + c * c, a * a + c * c, a * a + b * b])
    if spec.kind == "sphere":
        return np.full(3, 0.4 * m * a * a)
    side = m / 12.0 * (3 * a * a + 4 * c * c)  # cylinder: radius a, half height c
    return np.array([side, side, 0.5 * m * a * a])


def shape_object(scene: Scene, data: mujoco.MjData, spec: ObjectSpec) -> None:
    """Give ``spec``'s object its size, colour, friction and mass in the model; park the rest.

    Sizes of primitive geoms may change after compiling: MuJoCo reads them at every collision
    check, so only the bounding sphere and box need updating with them. The mass change needs
    ``mj_setConst``, which also resets ``data.qpos`` to the model's ``qpos0``, so call this
    before :func:`place_object`.
    """
    model = scene.model
    for name, other in scene.objects.items():
        # Parked objects float (gravity compensated) and collide with nothing: resting on the
        # floor they would cost contact solving at every step for nothing.
        active = name == spec.kind
        model.geom_contype[other.geom_id] = model.geom_conaffinity[other.geom_id] = int(active)
        model.body_gravcomp[other.body_id] = 0.0 if active else 1.0
    handle = scene.objects[spec.kind]
    geom = handle.geom_id
    a, b, c = spec.half_size
    if spec.kind == "cube":
        model.geom_size[geom] = (a, b, c)
        model.geom_aabb[geom] = (0, 0, 0, a, b, c)
    elif spec.kind == "sphere":
        model.geom_size[geom] = (a, 0, 0)
        model.geom_aabb[geom] = (0, 0, 0, a, a, a)
    else:
        model.geom_size[geom] = (a, c, 0)
        model.geom_aabb[geom] = (0, 0, 0, a, a, c)
    model.geom_rbound[geom] = float(np.linalg.norm(model.geom_aabb[geom][3:]))
    model.geom_rgba[geom] = spec.rgba
    model.geom_friction[geom, 0] = spec.friction
    model.body_mass[handle.body_id] = spec.mass_kg
    model.body_inertia[handle.body_id] = object_inertia(spec)
    mujoco.mj_setConst(model, data)


def place_object(scene: Scene, data: mujoco.MjData, spec: ObjectSpec) -> None:
    """Put ``spec``'s object at rest on the table at its pose; park the other types."""
    for name, handle in scene.objects.items():
        adr = handle.qpos_adr
        data.qvel[handle.qvel_adr:handle.qvel_adr + 6] = 0.0
        if name != spec.kind:
            data.qpos[adr:adr + 3] = handle.park_pos
            data.qpos[adr + 3:adr + 7] = (1.0, 0.0, 0.0, 0.0)
            continue
        z = scene.table_top_z + spec.half_height
        data.qpos[adr:adr + 3] = (spec.x, spec.y, z)
        data.qpos[adr + 3:adr + 7] = (np.cos(spec.yaw / 2), 0.0, 0.0, np.sin(spec.yaw / 2))


def lowest_point_z(scene: Scene, data: mujoco.MjData, kind: str) -> float:
    """Height (base frame, m) of the lowest point of an object in its current pose."""
    geom = scene.objects[kind].geom_id
    a, b, c = scene.model.geom_size[geom]
    half_size = (a, a, b) if kind == "cylinder" else (a, b, c)  # cylinder: radius, half height
    return lowest_point(kind, half_size, float(data.geom_xpos[geom, 2]),
                        data.geom_xmat[geom].reshape(3, 3))


def lowest_point(kind: str, half_size: tuple[float, float, float], centre_z: float,
                 rotation: np.ndarray) -> float:
    """Height of the lowest point of an object (``ObjectSpec.half_size`` convention) whose
    centre is at height ``centre_z`` with orientation ``rotation`` (3x3, object to base): the
    MuJoCo scene's judge and Gazebo's episode manager both measure the lift with it."""
    a, b, c = half_size
    if kind == "sphere":
        return float(centre_z - a)
    if kind == "cube":
        return float(centre_z - np.abs(rotation[2]) @ (a, b, c))
    axis_z = rotation[2, 2]  # cylinder: radius a, half height c
    return float(centre_z - abs(axis_z) * c - a * np.sqrt(max(0.0, 1.0 - axis_z**2)))
