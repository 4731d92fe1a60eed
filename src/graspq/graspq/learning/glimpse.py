"""A fingertip-centred glimpse of the overhead image, for a stream of its own.

Multi-view, the reward-only learner finds the moves towards the object within 600 episodes;
single-view it never does (docs/results_reward_only.md), though the overhead image shows the
object's offset from the fingertip to a supervised probe (tools/offset_probe.py), and the same
offset given per pixel (:mod:`graspq.learning.offset_channels`) did not change that. What the
wrist camera has that the overhead lacks is its frame: it is centred on the fingertip, so an
object's place in its image is the object's offset, the same for every fingertip position.

The glimpse gives the overhead image that frame. Each observation's overhead image (all four
channels) is resampled, bilinearly, on a grid centred where the point below the fingertip, at
``GLIMPSE_HEIGHT_M`` above the table top, projects into the overhead camera; ``zoom`` > 1
magnifies it (the glimpse then spans 1/zoom of the image). The fingertip position comes from
the joint angles by forward kinematics (:class:`graspq.learning.fingertip.FingertipFeatures`)
and the projection from the default scene's overhead camera pose and intrinsics, as for the
offset channels: robot-knowable with a hand-eye calibration, refused by name for another
scene (:func:`graspq.learning.offset_channels.check_scene`), and refused by the ONNX export
until a policy file carries a robot's camera pose.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional

from graspq.learning.offset_channels import overhead_pose
from graspq.sim.cameras import camera_intrinsics
from graspq.sim.settings import CameraConfig, SceneConfig

GLIMPSE_CHANNELS = 4  # the overhead image's RGB and depth
GLIMPSE_HEIGHT_M = 0.02  # about the middle of the training objects' heights


class FingertipGlimpse(nn.Module):
    """Overhead image (N, 4, S, S) and fingertip features (N, 5) -> the overhead image
    resampled around the fingertip's place in it (N, 4, S, S)."""

    def __init__(self, image_size: int, unit_m: float, zoom: float = 1.0) -> None:
        super().__init__()
        if not 1.0 <= zoom <= 8.0:
            raise ValueError(f"the glimpse's zoom must be in [1, 8], got {zoom!r}")
        camera, scene = CameraConfig(), SceneConfig()
        position, optical = overhead_pose(camera, scene)
        fx, fy, cx, cy = camera_intrinsics(camera.overhead_fovy_deg, image_size)
        # FingertipFeatures' reference point, lifted to the glimpse's height.
        origin = scene.workspace_center_on_table_m + np.array([0.0, 0.0, GLIMPSE_HEIGHT_M])
        centred = (np.arange(image_size) - (image_size - 1) / 2.0) / zoom
        rows, cols = np.meshgrid(centred, centred, indexing="ij")

        def constant(name: str, value: np.ndarray) -> None:
            # Derived from the default scene, not learnt: rebuilt, not loaded.
            self.register_buffer(name, torch.as_tensor(np.asarray(value, np.float32)),
                                 persistent=False)

        constant("to_optical", optical.T)  # base-frame vector -> optical frame
        constant("origin_from_camera", origin - position)
        constant("unit", np.float32(unit_m))
        constant("focal", np.array([fx, fy]))
        constant("principal", np.array([cx, cy]))
        constant("grid_offsets", np.stack([cols, rows], axis=-1))  # (S, S, 2): x, y pixels
        self.image_size = image_size

    def tip_pixel(self, fingertip: torch.Tensor) -> torch.Tensor:
        """(N, 2) pixel (column, row) where the point below the fingertip, at the glimpse's
        height, lies in the overhead image (pixel centres at integers)."""
        below = fingertip[:, :3] * self.unit
        below = torch.stack([below[:, 0], below[:, 1], torch.zeros_like(below[:, 2])], dim=1)
        optical = (self.origin_from_camera + below) @ self.to_optical.T
        return self.focal * optical[:, :2] / optical[:, 2:3] + self.principal

    def forward(self, overhead: torch.Tensor, fingertip: torch.Tensor) -> torch.Tensor:
        pixels = self.tip_pixel(fingertip)[:, None, None, :] + self.grid_offsets
        grid = pixels * (2.0 / (self.image_size - 1)) - 1.0  # align_corners: -1, 1 = centres
        return functional.grid_sample(overhead, grid.to(overhead.dtype), mode="bilinear",
                                      padding_mode="border", align_corners=True)
