"""Fingertip offset channels for the overhead stream: where each pixel's surface lies against
the fingertip.

Single-view, the GQN must find the object in the fixed overhead image and set its position
against the fingertip's, which reaches the network only as numbers in the motor stream; the
two meet in the fully connected head. The reward-only learner never learnt the moves towards
the object that way (docs/results_reward_only.md), though a supervised probe reads the offset
from the same inputs (tools/offset_probe.py). These channels do the comparison per pixel:
each pixel's 3D point, from its depth and the overhead camera's pose and intrinsics, less the
fingertip position from the joint angles (:class:`graspq.learning.fingertip.FingertipFeatures`),
in the fingertip unit (1 cm), as three more input channels of the overhead stream. A
convolution that finds the object then reads its offset from the fingertip where it finds it.

Nothing in them is privileged: the depth camera's points and the arm's forward kinematics
with a hand-eye calibration. The camera's pose and intrinsics are those of the default scene
(:class:`graspq.sim.settings.CameraConfig`, :class:`graspq.sim.settings.SceneConfig`), as the
fingertip features' reference point is: :func:`check_scene` refuses another. The constants
travel as buffers with the weights; the ONNX export refuses such a network until a robot's
calibrated camera pose can be given to it.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from graspq.config import ConfigError
from graspq.sim.cameras import MUJOCO_TO_OPTICAL, camera_intrinsics
from graspq.sim.scene import look_at_rotation, overhead_camera_position
from graspq.sim.settings import CameraConfig, EnvConfig, SceneConfig

OFFSET_CHANNELS = 3


def overhead_pose(camera: CameraConfig, scene: SceneConfig) -> tuple[np.ndarray, np.ndarray]:
    """The overhead camera's position (3,) m and its optical axes (x right, y down, z
    forward, the ROS optical frame) in the base frame, as the columns of a (3, 3) rotation:
    the scene's own placement and look-at, so they describe the rendered camera."""
    position = overhead_camera_position(scene, camera)
    return position, (look_at_rotation(position, scene.workspace_center_on_table_m)
                      @ MUJOCO_TO_OPTICAL)


def overhead_rays(camera: CameraConfig, scene: SceneConfig, image_size: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """The overhead camera's position (3,) m and, per pixel, the base-frame vector (3, S, S)
    that a z-depth (metres along the optical axis) scales to the pixel's point:
    ``point = position + depth * ray``. Rows run top-down, as the rendered images do."""
    position, optical = overhead_pose(camera, scene)
    fx, fy, cx, cy = camera_intrinsics(camera.overhead_fovy_deg, image_size)
    rows, cols = np.meshgrid(np.arange(image_size), np.arange(image_size), indexing="ij")
    direction = np.stack([(cols - cx) / fx, (rows - cy) / fy, np.ones_like(rows, float)])
    return position, np.einsum("ij,jhw->ihw", optical, direction)


def check_scene(env: EnvConfig, option: str = "network.fingertip_offset_channels") -> None:
    """Refuse, naming the key, a scene whose overhead camera differs from the default one
    that ``option`` (the offset channels, or the glimpse) is computed for."""
    default_camera, default_scene = CameraConfig(), SceneConfig()
    for section, key in (("camera", "overhead_height_above_table_m"),
                         ("camera", "overhead_offset_x_m"),
                         ("camera", "overhead_native_focal_px"),
                         ("camera", "overhead_crop_px"), ("camera", "depth_near_m"),
                         ("camera", "depth_far_m"), ("scene", "workspace_center_xy_m"),
                         ("scene", "table_top_z_m")):
        default = getattr(default_camera if section == "camera" else default_scene, key)
        if np.any(np.asarray(getattr(getattr(env, section), key)) != np.asarray(default)):
            raise ConfigError(f"{section}.{key}", f"{option} computes the overhead camera's "
                              f"geometry for the default scene ({default})")


class OffsetChannels(nn.Module):
    """Normalised overhead depth (N, 1, S, S) and fingertip features (N, 5) -> each pixel's
    point less the fingertip position (N, 3, S, S) in fingertip units."""

    def __init__(self, image_size: int, unit_m: float) -> None:
        super().__init__()
        camera, scene = CameraConfig(), SceneConfig()
        position, rays = overhead_rays(camera, scene, image_size)
        # FingertipFeatures' default reference point, which the fingertip features are from.
        reference = scene.workspace_center_on_table_m

        def constant(name: str, value: np.ndarray) -> None:
            # Derived from the default scene, not learnt: rebuilt, not loaded.
            self.register_buffer(name, torch.as_tensor(np.asarray(value, np.float32)),
                                 persistent=False)

        # Fingertip features are (tip - reference) / unit; so the pixel's point is too.
        constant("origin", ((position - reference) / unit_m)[:, None, None])
        constant("rays", rays / unit_m)
        constant("depth_near", np.float32(camera.depth_near_m))
        constant("depth_span", np.float32(camera.depth_far_m - camera.depth_near_m))

    def forward(self, depth: torch.Tensor, fingertip: torch.Tensor) -> torch.Tensor:
        metres = self.depth_near + depth * self.depth_span
        points = self.origin + metres * self.rays
        return points - fingertip[:, :OFFSET_CHANNELS, None, None]
