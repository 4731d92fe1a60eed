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


def _derive_after_load(module: FingertipFeatures, _incompatible_keys: object) -> None:
    module._derive_terms()


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
        self._derive_terms()
        self.register_load_state_dict_post_hook(_derive_after_load)

    def _derive_terms(self) -> None:
        """Derive, from the chain's buffers, the constants the evaluation multiplies by.

        The chain as homogeneous transforms (8, 4, 4): transform i is ``transform_fixed[i] +
        sin(q_i) * transform_sin[i] + (1 - cos(q_i)) * transform_cos[i]``, one per joint (its
        offset, its fixed turn, Rodrigues' formula about its axis) and an eighth, the
        fingertip's fixed transform, which no angle turns. Then the affine map from the
        flattened fingertip transform to the five features. Not saved: derived again after
        every state-dict load, so a loaded chain is the one evaluated.
        """
        joints = self.joint_offsets.shape[0]
        fixed = self.joint_offsets.new_zeros(joints + 1, 4, 4)
        fixed[:joints, :3, :3] = self.joint_rotations
        fixed[:joints, :3, 3] = self.joint_offsets
        fixed[joints, :3, :3] = self.tip_rotation
        fixed[joints, :3, 3] = self.tip_offset
        fixed[:, 3, 3] = 1.0
        turn_sin, turn_cos = torch.zeros_like(fixed), torch.zeros_like(fixed)
        turn_sin[:joints, :3, :3] = self.joint_rotations @ self.axis_cross
        turn_cos[:joints, :3, :3] = self.joint_rotations @ self.axis_cross_squared
        # Features from the flattened transform: its translation column (entries 3, 7, 11)
        # less the reference, in units; the tool's x axis in the base plane (entries 0, 4).
        pick = fixed.new_zeros(16, FINGERTIP_FEATURES)
        pick[[3, 7, 11], [0, 1, 2]] = 1.0 / self.unit
        pick[[0, 4], [3, 4]] = 1.0
        shift = torch.cat((-self.reference / self.unit, self.reference.new_zeros(2)))
        for name, value in (("transform_fixed", fixed), ("transform_sin", turn_sin),
                            ("transform_cos", turn_cos), ("feature_pick", pick),
                            ("feature_shift", shift)):
            self.register_buffer(name, value, persistent=False)

    def transform(self, joints: torch.Tensor) -> torch.Tensor:
        """Homogeneous fingertip transform (N, 4, 4) in the base frame for joint angles (N, 7).

        The eight transforms are multiplied pairwise in three batched products instead of one
        after another: the same product up to rounding, in far fewer graph nodes (the recipe
        network's exported graph: 84 -> 50), each of which an exported policy's latency pays
        for (docs/performance.md).
        """
        # The eighth angle is 0: sin 0 = 1 - cos 0 = 0 leave the fingertip's transform fixed.
        angles = nn.functional.pad(joints - self.joint_zero, (0, 1))[..., None, None]
        chain = (self.transform_fixed + torch.sin(angles) * self.transform_sin
                 + (1.0 - torch.cos(angles)) * self.transform_cos)
        while chain.shape[1] > 1:  # 8 -> 4 -> 2 -> 1, neighbours multiplied in order
            chain = chain[:, 0::2] @ chain[:, 1::2]
        return chain[:, 0]

    def pose(self, joints: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Fingertip position (N, 3) m and orientation (N, 3, 3) for joint angles (N, 7)."""
        transform = self.transform(joints)
        return transform[:, :3, 3], transform[:, :3, :3]

    def forward(self, joints: torch.Tensor) -> torch.Tensor:
        # One affine map picks and scales the features: one node in the exported graph.
        return self.transform(joints).reshape(-1, 16) @ self.feature_pick + self.feature_shift
