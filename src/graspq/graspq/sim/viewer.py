"""Side-by-side pictures of an observation, for videos and frame dumps a person looks at."""

from __future__ import annotations

import numpy as np

from graspq.observation import OVERHEAD_KEY, WRIST_KEY, quantise_depth
from graspq.sim.settings import CameraConfig

PANEL_HEIGHT_PX = 256  # images are scaled up by a whole factor to at least this height
_GAP_PX = 4


def camera_panel(observation: dict[str, np.ndarray], camera: CameraConfig) -> np.ndarray:
    """uint8 (H, W, 3) image: overhead colour | overhead depth (near = bright) | wrist colour."""
    overhead = observation[OVERHEAD_KEY]
    colour = np.rint(np.clip(overhead[..., :3], 0.0, 1.0) * 255).astype(np.uint8)
    depth = 255 - quantise_depth(overhead[..., 3], camera.depth_near_m, camera.depth_far_m)
    tiles = [colour, np.repeat(depth[..., None], 3, axis=2), observation[WRIST_KEY]]
    scale = max(1, -(-PANEL_HEIGHT_PX // colour.shape[0]))
    tiles = [np.kron(tile, np.ones((scale, scale, 1), dtype=np.uint8)) for tile in tiles]
    gap = np.full((tiles[0].shape[0], _GAP_PX, 3), 255, dtype=np.uint8)
    return np.concatenate([tiles[0], gap, tiles[1], gap, tiles[2]], axis=1)
