"""Configuration of the simulated grasping scene and environment (``config/env.yaml``).

Positions are in Baxter's ``base`` frame (x forward, y left, z up), in metres. Heights named
``*_above_table`` are measured from the table top.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from graspq.config import ConfigError, param, section
from graspq.rewards import RewardConfig

# What training draws from (``objects.types`` by default). Evaluations cycle over these and
# eval.csv has a column per type, so OBJECT_TYPES keeps naming exactly these three.
TRAINING_OBJECT_TYPES = ("cube", "sphere", "cylinder")
OBJECT_TYPES = TRAINING_OBJECT_TYPES
# Shapes no recipe trains on (issue #22, part 4): new shapes, and the training shapes at sizes
# outside their training ranges. Elongated ones lie with their long axis along the object's x.
HELDOUT_OBJECT_TYPES = ("box", "capsule", "ellipsoid", "lying_cylinder",
                        "cube_small", "cube_large", "sphere_small", "sphere_large",
                        "cylinder_small", "cylinder_large")
ALL_OBJECT_TYPES = TRAINING_OBJECT_TYPES + HELDOUT_OBJECT_TYPES
CLOSE_MODES = ("in_place", "descend")
ENV_NODE_NAME = "graspq_env"


def _check_range(key: str, bounds: tuple[float, float]) -> None:
    if bounds[0] > bounds[1]:
        raise ConfigError(key, f"lower bound {bounds[0]} exceeds upper bound {bounds[1]}")


@dataclasses.dataclass(frozen=True)
class SceneConfig:
    """Table and workspace layout."""

    table_top_z_m: float = param(-0.18, "table top height in the base frame", unit="m",
                                 ge=-0.6, le=0.2)
    table_center_xy_m: tuple[float, float] = param((0.75, -0.40), "table centre", unit="m")
    table_half_size_xy_m: tuple[float, float] = param(
        (0.35, 0.55), "table half extents", unit="m", gt=0.0)
    workspace_center_xy_m: tuple[float, float] = param(
        (0.68, -0.45), "centre of the gripper's workspace box and of the overhead view",
        unit="m")
    workspace_half_xy_m: float = param(0.13, "half width of the workspace box in x and y",
                                       unit="m", gt=0.0, le=0.3)
    workspace_z_min_above_table_m: float = param(
        0.005, "lowest fingertip height the arm may be sent to", unit="m", ge=0.0)
    workspace_z_max_above_table_m: float = param(
        0.25, "highest fingertip height the arm may be sent to", unit="m", gt=0.0, le=0.5)
    spawn_half_xy_m: float = param(0.09, "objects spawn within this half width of the centre",
                                   unit="m", ge=0.0, le=0.25)
    start_height_above_table_m: float = param(
        0.15, "fingertip height at the start of an episode (above the workspace centre)",
        unit="m", gt=0.0)
    start_yaw_deg: float = param(
        150.0, "tool yaw at the start of an episode; 150 deg puts wrist w2 near 0", unit="deg",
        ge=-180.0, le=180.0)
    yaw_limit_deg: float = param(90.0, "tool yaw may turn this far either way from the start",
                                 unit="deg", gt=0.0, le=180.0)

    def __post_init__(self) -> None:
        if self.spawn_half_xy_m > self.workspace_half_xy_m:
            raise ConfigError("scene.spawn_half_xy_m", "must not exceed workspace_half_xy_m")
        if not (self.workspace_z_min_above_table_m < self.start_height_above_table_m
                <= self.workspace_z_max_above_table_m):
            raise ConfigError("scene.start_height_above_table_m",
                              "must lie inside the workspace's z range")

    @property
    def workspace_center_on_table_m(self) -> np.ndarray:
        """The workspace centre on the table top (3,), m: where the overhead camera looks."""
        return np.array([*self.workspace_center_xy_m, self.table_top_z_m])


@dataclasses.dataclass(frozen=True)
class CameraConfig:
    """Overhead RealSense-D435-like RGB-D camera and Baxter's wrist (hand) camera.

    The overhead image is what a D435 colour stream (640x480, fx = fy ~ 615 px) gives after
    cropping a square of ``overhead_crop_px`` pixels around the workspace and resizing it to
    ``image_size``: MuJoCo renders that crop directly with the equivalent field of view.
    """

    image_size: int = param(64, "width = height of every camera image", unit="px",
                            ge=16, le=512)
    overhead_height_above_table_m: float = param(
        0.9, "overhead camera height above the table", unit="m", gt=0.2, le=2.0)
    overhead_offset_x_m: float = param(
        0.45, "overhead camera stands this far beyond the workspace centre (away from the "
        "robot) and looks at the centre, so the arm does not hide the workspace", unit="m",
        ge=0.0, le=1.0)
    overhead_native_focal_px: float = param(
        615.0, "D435 colour focal length at 640x480", unit="px", gt=0.0)
    overhead_crop_px: int = param(168, "side of the square crop of the native image",
                                  unit="px", ge=16, le=480)
    depth_near_m: float = param(0.60, "depth quantisation lower bound", unit="m", gt=0.0)
    depth_far_m: float = param(1.10, "depth quantisation upper bound", unit="m", gt=0.0)
    wrist_fovy_deg: float = param(70.0, "wrist camera vertical field of view", unit="deg",
                                  gt=10.0, le=120.0)

    def __post_init__(self) -> None:
        if self.depth_far_m <= self.depth_near_m:
            raise ConfigError("camera.depth_far_m", "must exceed camera.depth_near_m")

    @property
    def overhead_fovy_deg(self) -> float:
        """Field of view of the cropped overhead image."""
        half = 0.5 * self.overhead_crop_px / self.overhead_native_focal_px
        return math.degrees(2.0 * math.atan(half))

    @property
    def overhead_distance_m(self) -> float:
        """Distance from the overhead camera to the workspace centre on the table."""
        return math.hypot(self.overhead_height_above_table_m, self.overhead_offset_x_m)

    @property
    def overhead_ground_m_per_px(self) -> float:
        """Footprint of one overhead pixel at the workspace centre (across the view)."""
        half_width = self.overhead_distance_m * math.tan(math.radians(self.overhead_fovy_deg / 2))
        return 2.0 * half_width / self.image_size


@dataclasses.dataclass(frozen=True)
class ObjectConfig:
    """The graspable objects; each episode draws one type, then its size, mass and colour.

    The held-out types (:data:`HELDOUT_OBJECT_TYPES`) are for evaluation: sizes the gripper
    can hold (it opens to 47.7 mm and reads an opening below ``gripper.closed_opening_m`` as
    empty), outside the training shapes' ranges. Elongated shapes (box, capsule, ellipsoid,
    lying cylinder) lie with their long side along the object's x; the fingers close across
    their narrow side.
    """

    types: tuple[str, ...] = param(TRAINING_OBJECT_TYPES, "object types to draw from",
                                   choices=ALL_OBJECT_TYPES)
    type_weights: tuple[float, ...] = param(
        (1.0,), "how often each entry of types is drawn, relative to the others: one weight "
        "per type, or a single value for all equally (a lever for the hard object; "
        "evaluations cycle over the types in equal shares whatever the weights)", gt=0.0)
    cube_side_m: tuple[float, float] = param((0.025, 0.035), "cube edge range", unit="m",
                                             gt=0.005, le=0.045)
    sphere_diameter_m: tuple[float, float] = param((0.025, 0.035), "sphere diameter range",
                                                   unit="m", gt=0.005, le=0.045)
    cylinder_diameter_m: tuple[float, float] = param((0.025, 0.035), "cylinder diameter range",
                                                     unit="m", gt=0.005, le=0.045)
    cylinder_height_m: tuple[float, float] = param((0.035, 0.055), "upright cylinder height",
                                                   unit="m", gt=0.01, le=0.12)
    box_narrow_side_m: tuple[float, float] = param(
        (0.020, 0.026), "held-out box: the horizontal side the fingers close across",
        unit="m", gt=0.005, le=0.045)
    box_long_side_m: tuple[float, float] = param(
        (0.045, 0.060), "held-out box: the other horizontal side (at least 1.5x the narrow "
        "side's upper bound)", unit="m", gt=0.005, le=0.12)
    box_height_m: tuple[float, float] = param((0.025, 0.040), "held-out box height",
                                              unit="m", gt=0.005, le=0.12)
    capsule_diameter_m: tuple[float, float] = param(
        (0.026, 0.032), "held-out capsule (lying on its side) diameter", unit="m",
        gt=0.005, le=0.045)
    capsule_length_m: tuple[float, float] = param(
        (0.055, 0.070), "held-out capsule length, end to end (more than its diameter)",
        unit="m", gt=0.005, le=0.12)
    ellipsoid_length_m: tuple[float, float] = param(
        (0.050, 0.060), "held-out ellipsoid: longest horizontal diameter", unit="m",
        gt=0.005, le=0.12)
    ellipsoid_width_m: tuple[float, float] = param(
        (0.030, 0.034), "held-out ellipsoid: the horizontal diameter the fingers close "
        "across", unit="m", gt=0.005, le=0.045)
    ellipsoid_height_m: tuple[float, float] = param(
        (0.026, 0.030), "held-out ellipsoid: vertical diameter (at most the width, so it "
        "rests stably)", unit="m", gt=0.005, le=0.045)
    lying_cylinder_diameter_m: tuple[float, float] = param(
        (0.026, 0.032), "held-out cylinder lying on its side: diameter", unit="m",
        gt=0.005, le=0.045)
    lying_cylinder_length_m: tuple[float, float] = param(
        (0.045, 0.065), "held-out cylinder lying on its side: length", unit="m",
        gt=0.005, le=0.12)
    cube_small_side_m: tuple[float, float] = param(
        (0.022, 0.024), "held-out small cube edge range", unit="m", gt=0.005, le=0.045)
    cube_large_side_m: tuple[float, float] = param(
        (0.036, 0.039), "held-out large cube edge range", unit="m", gt=0.005, le=0.045)
    sphere_small_diameter_m: tuple[float, float] = param(
        (0.022, 0.024), "held-out small sphere diameter range", unit="m", gt=0.005, le=0.045)
    sphere_large_diameter_m: tuple[float, float] = param(
        (0.036, 0.040), "held-out large sphere diameter range", unit="m", gt=0.005, le=0.045)
    cylinder_small_diameter_m: tuple[float, float] = param(
        (0.015, 0.022), "held-out small upright cylinder diameter range", unit="m",
        gt=0.005, le=0.045)
    cylinder_small_height_m: tuple[float, float] = param(
        (0.020, 0.030), "held-out small upright cylinder height range", unit="m",
        gt=0.01, le=0.12)
    cylinder_large_diameter_m: tuple[float, float] = param(
        (0.036, 0.039), "held-out large upright cylinder diameter range", unit="m",
        gt=0.005, le=0.045)
    cylinder_large_height_m: tuple[float, float] = param(
        (0.060, 0.080), "held-out large upright cylinder height range", unit="m",
        gt=0.01, le=0.12)
    mass_kg: tuple[float, float] = param((0.05, 0.15), "object mass range", unit="kg",
                                         gt=0.0, le=1.0)
    friction: tuple[float, float] = param((0.8, 1.2), "sliding friction coefficient range",
                                          gt=0.0, le=3.0)

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            if field.name.endswith(("_m", "_kg")) or field.name == "friction":
                _check_range(f"objects.{field.name}", getattr(self, field.name))
        if len(self.type_weights) not in (1, len(self.types)):
            raise ConfigError("objects.type_weights", f"needs one weight per type "
                              f"({len(self.types)}: {list(self.types)}) or a single value, "
                              f"got {list(self.type_weights)}")
        if self.box_long_side_m[0] < 1.5 * self.box_narrow_side_m[1]:
            raise ConfigError("objects.box_long_side_m", "lower bound must be at least 1.5x "
                              "box_narrow_side_m's upper bound (a box, not a cube)")
        if self.capsule_length_m[0] <= self.capsule_diameter_m[1]:
            raise ConfigError("objects.capsule_length_m",
                              "lower bound must exceed capsule_diameter_m's upper bound")
        if self.ellipsoid_height_m[1] > self.ellipsoid_width_m[0]:
            raise ConfigError("objects.ellipsoid_height_m", "upper bound must not exceed "
                              "ellipsoid_width_m's lower bound (it would roll onto its side)")
        if self.ellipsoid_length_m[0] < self.ellipsoid_width_m[1]:
            raise ConfigError("objects.ellipsoid_length_m",
                              "lower bound must not be below ellipsoid_width_m's upper bound")


@dataclasses.dataclass(frozen=True)
class ActionConfig:
    """Step sizes of the discrete end-effector moves and what the grasp action does."""

    translation_step_m: float = param(0.01, "size of one x/y/z move", unit="m",
                                      gt=0.0, le=0.1)
    yaw_step_deg: float = param(15.0, "size of one yaw turn", unit="deg", gt=0.0, le=90.0)
    close_mode: str = param(
        "in_place", "what CLOSE does before closing: in_place closes where the gripper is; "
        "descend first lowers it straight down to the workspace's lowest height, stopping at "
        "the first finger contact with the object (the paper's reading: the agent chooses "
        "where and at what yaw, not how far down)", choices=CLOSE_MODES)
    descend_speed_m_s: float = param(0.1, "fingertip speed of the descend close's descent",
                                     unit="m/s", gt=0.0, le=0.5)
    close_yaw_turns: int = param(
        0, "closes that turn first (a lever, simulation only): 2N more actions after the "
        "paper's 9, each turning the gripper by +-1..N yaw steps (+1, -1, +2, -2, ...) within "
        "one step and then closing as CLOSE does, so the yaw to close at is a one-step choice "
        "(see graspq/actions.py); 0 = the paper's action set, the only one the ONNX export "
        "and the servo runtime take", ge=0, le=6)


@dataclasses.dataclass(frozen=True)
class IKConfig:
    """Damped-least-squares inverse kinematics, gripper pointing down."""

    damping: float = param(0.02, "damping of the least-squares step", gt=0.0)
    max_iterations: int = param(100, "iterations before giving up", ge=1)
    position_tolerance_m: float = param(0.0005, "converged below this position error",
                                        unit="m", gt=0.0)
    orientation_tolerance_rad: float = param(0.005, "converged below this orientation error",
                                             unit="rad", gt=0.0)


@dataclasses.dataclass(frozen=True)
class GripperConfig:
    """Baxter electric gripper: 2 x 20.8 mm stroke, 20 N per finger at most."""

    force_n: float = param(20.0, "closing force limit per finger", unit="N", gt=0.0, le=20.0)
    closed_opening_m: float = param(
        0.008, "an opening below this reads as fully closed (closed gap is 6 mm)", unit="m",
        gt=0.006, le=0.04)
    close_duration_s: float = param(0.4, "time allowed for closing", unit="s", gt=0.0)
    lift_distance_m: float = param(0.12, "how far the gripper lifts after closing", unit="m",
                                   gt=0.0, le=0.3)
    lift_duration_s: float = param(0.6, "time taken by the lift", unit="s", gt=0.0)
    success_height_m: float = param(0.05, "object bottom must be this far above the table",
                                    unit="m", gt=0.0)

    def __post_init__(self) -> None:
        if self.success_height_m >= self.lift_distance_m:
            raise ConfigError("gripper.success_height_m", "must be below lift_distance_m")


@dataclasses.dataclass(frozen=True)
class PhysicsConfig:
    """Simulation timing."""

    timestep_s: float = param(0.002, "MuJoCo integration step", unit="s", gt=0.0, le=0.01)
    action_duration_s: float = param(0.15, "simulated time per move action", unit="s",
                                     gt=0.0, le=1.0)
    settle_duration_s: float = param(0.1, "simulated time for the object to settle at reset",
                                     unit="s", ge=0.0)


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Everything ``GraspQ/BaxterGrasp-v0`` needs."""

    scene: SceneConfig = section(SceneConfig, "table and workspace layout")
    camera: CameraConfig = section(CameraConfig, "cameras")
    objects: ObjectConfig = section(ObjectConfig, "graspable objects")
    actions: ActionConfig = section(ActionConfig, "discrete action step sizes")
    ik: IKConfig = section(IKConfig, "inverse kinematics")
    gripper: GripperConfig = section(GripperConfig, "gripper and grasp judging")
    physics: PhysicsConfig = section(PhysicsConfig, "simulation timing")
    rewards: RewardConfig = section(RewardConfig, "reward terms (paper Sec. IV-D)")
    max_steps: int = param(60, "episode is truncated after this many steps", ge=1)
