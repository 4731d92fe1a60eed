"""Fingertip features for the GQN's motor stream: forward kinematics of the joint angles.

The paper's motor state is the joint angles. The fingertip's height and yaw are in them only
through seven nested rotations: a 1 cm step down changes the largest joint angle by about
0.02 rad, and trained policies could not tell their height to within that step (they closed a
step too early or never; docs/results_margin_balance.md). This layer computes the fingertip
pose from the same joint angles with Baxter's fixed kinematic chain
(:mod:`graspq.sim.kinematics`), so the network reads the height directly. It adds no input:
the policy still takes the paper's (I^o, I^w, M), and the chain travels as constants in the
checkpoint and the exported ONNX graph.

Features, five per observation: the fingertip position relative to a reference point (the
default workspace centre on the table top) in units of ``unit_m`` (by default one action
step, 1 cm), and the x and y components of the tool's x axis (cosine and sine of its yaw
while the gripper points down).

Why the unit is the step: the decision to close instead of descending turns on one step of
height. In 0.1 m units that step was a change of 0.1 in one input, and a GQN trained to
imitate the oracle still mistook a quarter of its "close" states for "descend" (as with the
joint angles alone); in 1 cm units it got 93 % of them right (docs/results_fingertip.md).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from graspq.sim.kinematics import ArmChain, default_arm_chain
from graspq.sim.settings import SceneConfig

FINGERTIP_FEATURES = 5
DEFAULT_UNIT_M = 0.01


class FingertipFeatures(nn.Module):
    """Joint angles (N, 7) rad -> fingertip features (N, 5) (see the module docstring).

    The chain and the reference point are buffers: saved with the weights and exported with
    the graph, so a loaded network computes exactly what it was trained with (the unit comes
    from the network config, saved beside the weights).
    """

    def __init__(self, unit_m: float = DEFAULT_UNIT_M, chain: ArmChain | None = None,
                 reference_m: np.ndarray | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        super().__init__()
        chain = chain if chain is not None else default_arm_chain()
        reference = (SceneConfig().workspace_center_on_table_m if reference_m is None
                     else np.asarray(reference_m))

        def constant(name: str, value: np.ndarray) -> None:
            self.register_buffer(name, torch.as_tensor(np.asarray(value), dtype=dtype))

        constant("joint_offsets", chain.joint_offsets)
        constant("joint_rotations", chain.joint_rotations)
        # Rodrigues' K and K^2 per axis: rotation(q) = I + sin(q) K + (1 - cos(q)) K^2.
        cross = np.stack([np.cross(np.eye(3), axis) for axis in chain.joint_axes])
        constant("axis_cross", cross)
        constant("axis_cross_squared", cross @ cross)
        constant("joint_zero", chain.joint_zero)
        constant("tip_offset", chain.tip_offset)
        constant("tip_rotation", chain.tip_rotation)
        constant("reference", reference)
        # From the config, which travels with the weights; not in the state dict, so the first
        # fingertip checkpoints (0.1 m units, before the unit was a setting) still load.
        self.register_buffer("unit", torch.tensor(float(unit_m), dtype=dtype), persistent=False)

    def pose(self, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fingertip position (N, 3) m and orientation (N, 3, 3) for joint angles (N, 7)."""
        angles = joints - self.joint_zero
        sin = torch.sin(angles)[..., None, None]
        one_minus_cos = (1.0 - torch.cos(angles))[..., None, None]
        turns = (torch.eye(3, dtype=joints.dtype, device=joints.device)
                 + sin * self.axis_cross + one_minus_cos * self.axis_cross_squared)  # (N,7,3,3)
        rotation = self.joint_rotations[0].expand(joints.shape[0], 3, 3) @ turns[:, 0]
        position = self.joint_offsets[0].expand(joints.shape[0], 3)
        for i in range(1, self.joint_offsets.shape[0]):
            position = position + rotation @ self.joint_offsets[i]
            rotation = rotation @ self.joint_rotations[i] @ turns[:, i]
        return position + rotation @ self.tip_offset, rotation @ self.tip_rotation

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        tip, orientation = self.pose(joints)
        tool_x = orientation[:, :2, 0]
        return torch.cat(((tip - self.reference) / self.unit, tool_x), dim=1)
