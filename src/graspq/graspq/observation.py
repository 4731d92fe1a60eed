"""The observation contract shared by the simulator, learners, replay and servo runtime.

An observation is the paper's (I^o, I^w, M) triple, as a dict of numpy arrays:

- ``overhead_rgbd``: float32, shape (H, W, 4). Channels R, G, B in [0, 1] and depth D in
  metres along the camera's optical axis (z-depth, not ray length).
- ``wrist_rgb``: uint8, shape (H, W, 3), RGB.
- ``motor``: float32, shape (8,): the seven right-arm joint angles s0, s1, e0, e1, w0, w1, w2
  in radians, then the gripper opening (distance between the finger pads) in metres.

Compact storage (replay buffers, episode logs) keeps every image channel as uint8. Depth is
quantised linearly between a near and a far bound (metres, from the camera config):
``q = round(255 * (clip(d, near, far) - near) / (far - near))``. With the default overhead
bounds (0.6 m to 1.1 m) the step is about 2 mm; anything outside the bounds saturates at 0 or 255.
"""

from __future__ import annotations

import numpy as np

OVERHEAD_KEY = "overhead_rgbd"
WRIST_KEY = "wrist_rgb"
MOTOR_KEY = "motor"
JOINT_NAMES = ("s0", "s1", "e0", "e1", "w0", "w1", "w2")
MOTOR_SIZE = len(JOINT_NAMES) + 1


def quantise_depth(depth_m: np.ndarray, near_m: float, far_m: float) -> np.ndarray:
    """Map depth in metres to uint8 codes 0..255 over [near_m, far_m] (saturating)."""
    scaled = (np.clip(depth_m, near_m, far_m) - near_m) * (255.0 / (far_m - near_m))
    return np.rint(scaled).astype(np.uint8)


def dequantise_depth(codes: np.ndarray, near_m: float, far_m: float) -> np.ndarray:
    """Inverse of :func:`quantise_depth`: uint8 codes to float32 metres."""
    return (codes.astype(np.float32) * np.float32((far_m - near_m) / 255.0) + np.float32(near_m))


def encode_overhead(rgbd: np.ndarray, near_m: float, far_m: float) -> np.ndarray:
    """float32 (H, W, 4) RGB-D observation to uint8 (H, W, 4) for compact storage."""
    out = np.empty(rgbd.shape, dtype=np.uint8)
    out[..., :3] = np.rint(np.clip(rgbd[..., :3], 0.0, 1.0) * 255.0)
    out[..., 3] = quantise_depth(rgbd[..., 3], near_m, far_m)
    return out


def decode_overhead(codes: np.ndarray, near_m: float, far_m: float) -> np.ndarray:
    """uint8 (H, W, 4) storage back to the float32 RGB-D observation."""
    out = np.empty(codes.shape, dtype=np.float32)
    out[..., :3] = codes[..., :3].astype(np.float32) / np.float32(255.0)
    out[..., 3] = dequantise_depth(codes[..., 3], near_m, far_m)
    return out
