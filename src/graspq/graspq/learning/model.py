"""The Grasp-Q-Network (GQN, paper Fig. 2) and the conversion of observations into its input.

Each camera has its own convolutional stream; the stream features are concatenated on the
channel axis, mixed by one more convolution and flattened into a fully connected layer. The
motor state (7 joint angles + gripper opening, see :mod:`graspq.observation`; optionally with
the fingertip pose computed from the joint angles, :mod:`graspq.learning.fingertip`) goes
through two fully connected layers. The two are joined and mapped by two fully connected layers
to one Q-value per discrete action (:class:`graspq.actions.Action` order).

The outputs are Q-values and stay unbounded (returns reach +10 with the paper's rewards); the
paper's "grasp success probabilities" are the :func:`grasp_probabilities` softmax readout, never
a training target.

Shapes for the default :class:`GQNConfig` (S = 64, C = 32), per stream::

    (N, 4 or 3, 64, 64) -7x7/2 + BN + ReLU-> (N, C, 32, 32) -5x5/2 + ReLU-> (N, C, 16, 16)
    -3x3 + BN + ReLU-> (N, C, 16, 16) -maxpool 2-> (N, C, 8, 8)

so the joint feature map is (N, joint_channels, S/8, S/8) before flattening.

With ``spatial_keypoints`` (an extension, off by default), each stream's map before the
max-pool, (N, C, S/4, S/4), also goes through a spatial softmax (Levine et al. 2016, "End-to-end
training of deep visuomotor policies"): per channel, the expected image position under a
softmax over the map, (N, 2C) coordinates in [-1, 1]. They join the image and motor features
ahead of the head, a continuous position signal that the max-pool and the 8x8 grid otherwise
blur.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Literal, NamedTuple

import numpy as np
import torch
from torch import nn

from graspq.actions import NUM_ACTIONS
from graspq.learning.fingertip import DEFAULT_UNIT_M, FINGERTIP_FEATURES, FingertipFeatures
from graspq.learning.glimpse import GLIMPSE_CHANNELS, FingertipGlimpse
from graspq.learning.offset_channels import OFFSET_CHANNELS, OffsetChannels
from graspq.observation import JOINT_NAMES, MOTOR_KEY, MOTOR_SIZE, OVERHEAD_KEY, WRIST_KEY
from graspq.sim.settings import CameraConfig

Views = Literal["multi", "single"]
VIEWS: tuple[str, ...] = ("multi", "single")

# Default overhead depth bounds (metres): the camera config's, which the uint8 storage
# quantisation uses too. Pass the run's own bounds wherever a config is at hand.
DEFAULT_DEPTH_NEAR_M = CameraConfig().depth_near_m
DEFAULT_DEPTH_FAR_M = CameraConfig().depth_far_m

# Two stride-2 convolutions and one 2x2 max-pool per stream.
_DOWNSAMPLE = 8


@dataclasses.dataclass(frozen=True)
class GQNConfig:
    """Shape of the Grasp-Q-Network. Validated on construction; errors name the field."""

    image_size: int = 64
    """Side of the square overhead and wrist images, pixels; a multiple of 8."""
    stream_channels: int = 32
    """Channels of every convolution inside each camera stream."""
    joint_channels: int = 64
    """Channels of the convolution applied to the concatenated stream features."""
    fc_width: int = 256
    """Width of the image fully connected layer and of the hidden layer of the joint head."""
    motor_width: int = 64
    """Width of the two fully connected layers of the motor stream."""
    num_actions: int = NUM_ACTIONS
    """Number of discrete actions (Q-value outputs)."""
    views: Views = "multi"
    """"multi": overhead RGB-D + wrist RGB + motor; "single": overhead RGB-D + motor."""
    batchnorm_momentum: float = 1.0
    """Weight of the newest training batch in BatchNorm's running statistics (torch's
    ``momentum``). See :func:`_image_stream` for why the default is 1, not torch's 0.1."""
    fingertip_features: bool = False
    """Feed the motor stream the fingertip pose computed from the joint angles by forward
    kinematics (:mod:`graspq.learning.fingertip`) beside the motor state itself."""
    fingertip_unit_m: float = DEFAULT_UNIT_M
    """Length that counts as 1 in the fingertip position features, metres."""
    spatial_keypoints: bool = False
    """Feed the head each stream's spatial-softmax keypoints (:class:`SpatialSoftmax`) beside
    the flattened joint features."""
    fingertip_offset_channels: bool = False
    """Give the overhead stream three more input channels: each pixel's point (from its depth)
    less the fingertip position, in fingertip units (:mod:`graspq.learning.offset_channels`).
    Needs ``fingertip_features``."""
    fingertip_glimpse: bool = False
    """Add a camera stream fed with the overhead image resampled around the fingertip's place
    in it (:mod:`graspq.learning.glimpse`). Needs ``fingertip_features``."""
    glimpse_zoom: float = 1.0
    """Magnification of the glimpse: it spans 1/zoom of the overhead image."""
    pose_outputs: int = 0
    """Outputs of the auxiliary pose head on the joined features (0 = no head; see
    :mod:`graspq.learning.pose`). Training only: :meth:`GraspQNetwork.forward` ignores it."""

    def __post_init__(self) -> None:
        for name in ("image_size", "stream_channels", "joint_channels", "fc_width",
                     "motor_width", "num_actions"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GQNConfig.{name} must be a positive int, got {value!r}")
        if (isinstance(self.pose_outputs, bool) or not isinstance(self.pose_outputs, int)
                or self.pose_outputs < 0):
            raise ValueError("GQNConfig.pose_outputs must be a non-negative int, got "
                             f"{self.pose_outputs!r}")
        if self.image_size % _DOWNSAMPLE:
            raise ValueError(
                f"GQNConfig.image_size must be a multiple of {_DOWNSAMPLE} (two stride-2 "
                f"convolutions and a 2x2 max-pool per stream), got {self.image_size}")
        if self.views not in VIEWS:
            raise ValueError(f"GQNConfig.views must be one of {VIEWS}, got {self.views!r}")
        for name in ("fingertip_features", "spatial_keypoints", "fingertip_offset_channels",
                     "fingertip_glimpse"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"GQNConfig.{name} must be a bool, got "
                                 f"{getattr(self, name)!r}")
        if self.fingertip_offset_channels and not self.fingertip_features:
            raise ValueError("GQNConfig.fingertip_offset_channels needs fingertip_features "
                             "(the fingertip position it sets each pixel against)")
        if self.fingertip_glimpse and not self.fingertip_features:
            raise ValueError("GQNConfig.fingertip_glimpse needs fingertip_features (the "
                             "fingertip position the glimpse is centred on)")
        if not 1.0 <= self.glimpse_zoom <= 8.0:
            raise ValueError(f"GQNConfig.glimpse_zoom must be in [1, 8], got "
                             f"{self.glimpse_zoom!r}")
        if not self.fingertip_unit_m > 0.0:
            raise ValueError("GQNConfig.fingertip_unit_m must be positive, got "
                             f"{self.fingertip_unit_m!r}")
        if not 0.0 < self.batchnorm_momentum <= 1.0:
            raise ValueError("GQNConfig.batchnorm_momentum must be in (0, 1], got "
                             f"{self.batchnorm_momentum!r}")

    @property
    def feature_size(self) -> int:
        """Side of each stream's output feature map, pixels."""
        return self.image_size // _DOWNSAMPLE

    @property
    def num_streams(self) -> int:
        """Camera streams: overhead and wrist (multi-view), or overhead alone; and the
        fingertip glimpse where it is on."""
        return (2 if self.views == "multi" else 1) + int(self.fingertip_glimpse)

    @property
    def keypoint_features(self) -> int:
        """Keypoint coordinates the head reads beside the joint features (0 without)."""
        return 2 * self.stream_channels * self.num_streams if self.spatial_keypoints else 0


def _image_stream(in_channels: int, channels: int, momentum: float) -> nn.Sequential:
    """One camera stream of paper Fig. 2: (N, in, S, S) -> (N, channels, S/8, S/8).

    BatchNorm ``momentum``: the network acts and computes TD targets in eval mode, i.e. with
    the running statistics, while the weights move under them. With torch's 0.1 they trailed
    the weights so far that a GQN trained to imitate the oracle swung between 48 % and 83 %
    eval-mode accuracy on held-out states from one check to the next, while train mode stayed
    at 79-86 %; with 1 (the last training batch's statistics, one update old) eval mode
    stayed within a point of train mode at every check (docs/imitation_probe.md).
    """
    return nn.Sequential(
        # Bias is redundant before BatchNorm, which adds its own shift.
        nn.Conv2d(in_channels, channels, 7, stride=2, padding=3, bias=False),
        nn.BatchNorm2d(channels, momentum=momentum),
        nn.ReLU(inplace=True),
        # The paper gives no stride here. Stride 2 quarters the pixels everything after it
        # sees: at full resolution a batch-32 DQN update (64x64, 32 channels, multi-view,
        # 2 CPU threads) measured 97 ms instead of 38 ms, and batch-1 inference 1.8 ms
        # instead of 1.1 ms (issue 3 saw 300 vs 136 ms), for no measured gain yet.
        nn.Conv2d(channels, channels, 5, stride=2, padding=2),
        nn.ReLU(inplace=True),
        nn.Conv2d(channels, channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(channels, momentum=momentum),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(2),
    )


class SpatialSoftmax(nn.Module):
    """(N, C, H, W) feature maps -> (N, 2C) expected (x, y) positions in [-1, 1], one pair
    per channel, under a softmax over each map with a learned temperature."""

    def __init__(self, size: int) -> None:
        super().__init__()
        axis = torch.linspace(-1.0, 1.0, size)
        rows, cols = torch.meshgrid(axis, axis, indexing="ij")
        # (H*W, 2): column (x) then row (y) of every cell, row-major like flatten(2).
        self.register_buffer("grid", torch.stack((cols.flatten(), rows.flatten()), dim=1),
                             persistent=False)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        n, c = features.shape[:2]
        logits = features.reshape(n, c, -1) / self.log_temperature.exp()
        return (torch.softmax(logits, dim=-1) @ self.grid).reshape(n, 2 * c)


class GraspQNetwork(nn.Module):
    """The GQN: camera streams + motor stream -> one unbounded Q-value per action.

    BatchNorm makes the mode matter: act and compute targets in ``eval()`` mode (running
    statistics, deterministic, batch 1 works), train in ``train()`` mode.
    """

    def __init__(self, config: GQNConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else GQNConfig()
        cfg = self.config
        momentum = cfg.batchnorm_momentum
        self.offset_channels = (OffsetChannels(cfg.image_size, cfg.fingertip_unit_m)
                                if cfg.fingertip_offset_channels else None)
        overhead_inputs = 4 + (OFFSET_CHANNELS if cfg.fingertip_offset_channels else 0)
        self.overhead_stream = _image_stream(overhead_inputs, cfg.stream_channels, momentum)
        self.wrist_stream = (_image_stream(3, cfg.stream_channels, momentum)
                             if cfg.views == "multi" else None)
        self.glimpse = (FingertipGlimpse(cfg.image_size, cfg.fingertip_unit_m, cfg.glimpse_zoom)
                        if cfg.fingertip_glimpse else None)
        self.glimpse_stream = (_image_stream(GLIMPSE_CHANNELS, cfg.stream_channels, momentum)
                               if cfg.fingertip_glimpse else None)
        self.joint = nn.Sequential(
            nn.Conv2d(cfg.num_streams * cfg.stream_channels, cfg.joint_channels, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Flatten(),
            nn.Linear(cfg.joint_channels * cfg.feature_size**2, cfg.fc_width),
            nn.ReLU(inplace=True),
        )
        keypoint_map = 2 * cfg.feature_size  # the streams' maps before their max-pool
        self.overhead_keypoints = (SpatialSoftmax(keypoint_map) if cfg.spatial_keypoints
                                   else None)
        self.wrist_keypoints = (SpatialSoftmax(keypoint_map)
                                if cfg.spatial_keypoints and cfg.views == "multi" else None)
        self.fingertip = (FingertipFeatures(cfg.fingertip_unit_m) if cfg.fingertip_features
                          else None)
        motor_inputs = MOTOR_SIZE + (FINGERTIP_FEATURES if cfg.fingertip_features else 0)
        self.motor_stream = nn.Sequential(
            nn.Linear(motor_inputs, cfg.motor_width),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.motor_width, cfg.motor_width),
            nn.ReLU(inplace=True),
        )
        # "Two fully connected layers -> one output per action": a hidden layer and the output
        # layer. No activation on the output: Q-values are unbounded.
        joined = cfg.fc_width + cfg.motor_width + cfg.keypoint_features
        self.head = nn.Sequential(
            nn.Linear(joined, cfg.fc_width),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.fc_width, cfg.num_actions),
        )
        # Auxiliary head (training only): reads the same joined features as the Q head.
        self.pose_head = nn.Linear(joined, cfg.pose_outputs) if cfg.pose_outputs else None
        # channels_last conv weights (and the channels_last input :func:`preprocess` makes)
        # measured 38 ms instead of 49 ms per batch-32 update on the 2-core CPU, and batch-1
        # inference 1.1 ms instead of 1.2 ms. State dicts load into either layout.
        self.to(memory_format=torch.channels_last)

    def forward(self, overhead: torch.Tensor, motor: torch.Tensor,
                wrist: torch.Tensor | None = None) -> torch.Tensor:
        """Q-values, float32 (N, num_actions).

        Args:
            overhead: float32 (N, 4, S, S), RGB in [0, 1] and normalised depth in [0, 1]
                (see :func:`preprocess`); NCHW or channels_last memory format.
            motor: float32 (N, 8), joint angles (rad) then gripper opening (m).
            wrist: float32 (N, 3, S, S), RGB in [0, 1]. Required for the multi-view network;
                the single-view network ignores it, so one batch can feed either variant.
        """
        return self.head(self._joined_features(overhead, motor, wrist))

    def _joined_features(self, overhead: torch.Tensor, motor: torch.Tensor,
                         wrist: torch.Tensor | None) -> torch.Tensor:
        """The camera, motor (and keypoint) features side by side,
        (N, fc_width + motor_width + keypoint_features)."""
        s = self.config.image_size
        if overhead.dim() != 4 or tuple(overhead.shape[1:]) != (4, s, s):
            raise ValueError(f"overhead must be (N, 4, {s}, {s}), got {tuple(overhead.shape)}")
        if motor.dim() != 2 or motor.shape[1] != MOTOR_SIZE:
            raise ValueError(f"motor must be (N, {MOTOR_SIZE}), got {tuple(motor.shape)}")
        tip = (self.fingertip(motor[:, :len(JOINT_NAMES)]) if self.fingertip is not None
               else None)
        # The glimpse resamples the camera's own four channels.
        glimpse = self.glimpse(overhead, tip) if self.glimpse is not None else None
        if self.offset_channels is not None:
            overhead = torch.cat((overhead, self.offset_channels(overhead[:, 3:4], tip)), dim=1)
        features, keypoints = _run_stream(self.overhead_stream, self.overhead_keypoints,
                                          overhead)
        if self.wrist_stream is not None:
            if wrist is None:
                raise ValueError("the multi-view GQN needs the wrist image; got wrist=None")
            if wrist.dim() != 4 or tuple(wrist.shape[1:]) != (3, s, s):
                raise ValueError(f"wrist must be (N, 3, {s}, {s}), got {tuple(wrist.shape)}")
            wrist_features, wrist_keypoints = _run_stream(self.wrist_stream,
                                                          self.wrist_keypoints, wrist)
            features = torch.cat((features, wrist_features), dim=1)
            keypoints += wrist_keypoints
        if glimpse is not None:
            features = torch.cat((features, self.glimpse_stream(glimpse)), dim=1)
        if tip is not None:
            motor = torch.cat((motor, tip), dim=1)
        return torch.cat((self.joint(features), self.motor_stream(motor), *keypoints), dim=1)

    def forward_with_pose(self, overhead: torch.Tensor, motor: torch.Tensor,
                          wrist: torch.Tensor | None = None
                          ) -> tuple[torch.Tensor, torch.Tensor]:
        """Q-values and the auxiliary pose prediction, (N, num_actions) and
        (N, pose_outputs), from one pass (inputs as :meth:`forward`)."""
        if self.pose_head is None:
            raise ValueError("this GQN has no pose head (GQNConfig.pose_outputs is 0)")
        joined = self._joined_features(overhead, motor, wrist)
        return self.head(joined), self.pose_head(joined)


def _run_stream(stream: nn.Sequential, keypoints: SpatialSoftmax | None, image: torch.Tensor
                ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One camera stream's output, and with ``keypoints`` the keypoints of its map before
    the max-pool (the stream's last layer): a list of none or one tensor."""
    if keypoints is None:
        return stream(image), []
    before_pool = stream[:-1](image)
    return stream[-1](before_pool), [keypoints(before_pool)]


def grasp_probabilities(q: torch.Tensor) -> torch.Tensor:
    """The paper's "grasp success probabilities" readout: softmax of Q over the action axis.

    A display quantity only: training uses the unbounded Q-values.
    """
    return torch.softmax(q, dim=-1)


class GQNInput(NamedTuple):
    """Network input in the order of :meth:`GraspQNetwork.forward`: ``net(*inputs)``."""

    overhead: torch.Tensor
    """float32 (N, 4, S, S): RGB in [0, 1], depth normalised to [0, 1]."""
    motor: torch.Tensor
    """float32 (N, 8)."""
    wrist: torch.Tensor | None
    """float32 (N, 3, S, S) RGB in [0, 1], or None when the batch has no wrist image."""


def _to_tensor(array: np.ndarray, device: torch.device | str) -> torch.Tensor:
    # torch.from_numpy warns on read-only arrays (e.g. views of a renderer's buffer).
    if not array.flags.writeable:
        array = array.copy()
    return torch.from_numpy(np.ascontiguousarray(array)).to(device)


def _nchw(x: torch.Tensor, memory_format: torch.memory_format) -> torch.Tensor:
    # Permuting an NHWC-contiguous tensor gives an NCHW view with channels_last strides, so
    # channels_last costs no copy here; contiguous_format makes one.
    return x.permute(0, 3, 1, 2).contiguous(memory_format=memory_format)


def preprocess(obs: Mapping[str, np.ndarray], device: torch.device | str = "cpu",
               depth_near_m: float = DEFAULT_DEPTH_NEAR_M,
               depth_far_m: float = DEFAULT_DEPTH_FAR_M,
               memory_format: torch.memory_format = torch.channels_last) -> GQNInput:
    """Observation arrays (contract of :mod:`graspq.observation`) -> normalised network input.

    Accepts a batch (leading axis N) or one observation (no batch axis; becomes N = 1).

    - ``overhead_rgbd``: float32 (N, H, W, 4) with depth in metres, normalised as
      ``clip((d - near) / (far - near), 0, 1)`` and RGB clipped to [0, 1]; or the uint8
      storage form of :func:`graspq.observation.encode_overhead`, decoded as ``codes / 255``,
      which is the same normalisation provided the codes were quantised with the same
      bounds. Depth is clipped so that live float frames and stored uint8 frames look alike.
    - ``wrist_rgb`` (optional): uint8 (N, H, W, 3), scaled to [0, 1]; float input is taken
      as already in [0, 1].
    - ``motor``: (N, 8), passed through as float32.

    ``memory_format`` sets the image tensors' layout; channels_last matches the network's
    weights (the faster layout on CPU) and costs no copy here.
    """
    if depth_far_m <= depth_near_m:
        raise ValueError(f"depth_far_m ({depth_far_m}) must exceed depth_near_m ({depth_near_m})")
    for key in (OVERHEAD_KEY, MOTOR_KEY):
        if key not in obs:
            raise ValueError(f"observation has no {key!r} (keys: {sorted(obs)})")
    overhead = np.asarray(obs[OVERHEAD_KEY])
    batched = overhead.ndim == 4
    if not batched and overhead.ndim != 3:
        raise ValueError(f"{OVERHEAD_KEY} must be (N, H, W, 4) or (H, W, 4), "
                         f"got {overhead.shape}")

    def batch(array: np.ndarray) -> np.ndarray:
        return array if batched else array[None]

    overhead = batch(overhead)
    if overhead.shape[-1] != 4:
        raise ValueError(f"{OVERHEAD_KEY} must have 4 channels (RGB-D), got {overhead.shape}")
    x = _to_tensor(overhead, device)
    if x.dtype == torch.uint8:
        x = x.float().mul_(1.0 / 255.0)
    else:
        inv_range = 1.0 / (depth_far_m - depth_near_m)
        scale = torch.tensor([1.0, 1.0, 1.0, inv_range], device=x.device)
        offset = torch.tensor([0.0, 0.0, 0.0, -depth_near_m * inv_range], device=x.device)
        x = (x.float() * scale + offset).clamp_(0.0, 1.0)
    overhead_t = _nchw(x, memory_format)

    wrist_t = None
    if WRIST_KEY in obs:
        wrist = batch(np.asarray(obs[WRIST_KEY]))
        if wrist.ndim != 4 or wrist.shape[-1] != 3:
            raise ValueError(f"{WRIST_KEY} must be (N, H, W, 3), got {wrist.shape}")
        w = _to_tensor(wrist, device)
        w = w.float().mul_(1.0 / 255.0) if w.dtype == torch.uint8 else w.float()
        wrist_t = _nchw(w, memory_format)

    motor = batch(np.asarray(obs[MOTOR_KEY], dtype=np.float32))
    if motor.ndim != 2 or motor.shape[1] != MOTOR_SIZE:
        raise ValueError(f"{MOTOR_KEY} must be (N, {MOTOR_SIZE}), got {motor.shape}")
    return GQNInput(overhead_t, _to_tensor(motor, device), wrist_t)
