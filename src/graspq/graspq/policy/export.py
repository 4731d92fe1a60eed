"""Export a trained GQN to one self-describing ONNX file, verified against torch before it is kept.

The exported graph takes the raw observation contract (:mod:`graspq.observation`, plus a batch
axis) and does the normalisation of :func:`graspq.learning.model.preprocess` itself, so a robot
node only hands over numpy arrays. Inputs ``overhead_rgbd`` float32 (N, S, S, 4), ``wrist_rgb``
uint8 (N, S, S, 3) (multi-view only), ``motor`` float32 (N, 8); outputs ``q_values`` and
``grasp_probabilities`` float32 (N, 9). The metadata it carries is described in
:mod:`graspq.policy.metadata`.

Exporter: ``torch.onnx.export(dynamo=True)`` at opset 18. With torch 2.13 both exporters gave
parity near 1e-8 here, but the TorchScript one (``dynamo=False``, opset 17) is deprecated since
torch 2.9 and warns on every export, and it traces the GQN's shape checks into constants; the
dynamo graph is also leaner (36 nodes against 42) and ran slightly faster on ONNX Runtime
(0.63 against 0.67 ms at 64x64, batch 1). Its cost is a slower export (1 to 3 s against 0.1 s).
BatchNorm is folded into the convolutions because the network is exported in eval mode.

After writing, the file passes ``onnx.checker`` (full check, with shape inference), is loaded
through :class:`graspq.policy.runtime.OnnxPolicy` (so its metadata is checked the way a robot
will check it) and compared with the torch network on random and rendered observations. The
file only takes its final name when all of that passed.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import logging
import os
import time
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from torch import nn

import graspq
from graspq.actions import NUM_ACTIONS
from graspq.config import to_mapping
from graspq.learning.checkpoint import config_hash
from graspq.learning.model import GraspQNetwork, grasp_probabilities, preprocess
from graspq.learning.settings import TrainingConfig
from graspq.observation import MOTOR_KEY, MOTOR_SIZE, OVERHEAD_KEY, WRIST_KEY
from graspq.policy import metadata as meta
from graspq.policy.runtime import OnnxPolicy
from graspq.sim.settings import EnvConfig

OPSET = 18
EXPORTER = "torch.onnx.export(dynamo=True)"
PARITY_TOLERANCE = 1e-4
_PARITY_BATCH = 100


class ParityError(ValueError):
    """The ONNX graph does not reproduce the torch network; the file was not written."""


class PolicyGraph(nn.Module):
    """The GQN behind the exported graph's contract: raw observation in, Q and softmax out.

    The normalisation repeats :func:`graspq.learning.model.preprocess` operation for
    operation (same float32 constants, same order), so ONNX and the training code agree to
    rounding. Depth is normalised after the NHWC -> NCHW transpose: ONNX Runtime broadcasts a
    per-channel (1, 4, 1, 1) scale much faster than a (4,) one over the innermost axis
    (about 25 us against 95 us per 64x64 frame, ONNX Runtime profiler).
    """

    def __init__(self, network: GraspQNetwork, depth_near_m: float, depth_far_m: float) -> None:
        super().__init__()
        self.network = network
        inv_range = 1.0 / (depth_far_m - depth_near_m)
        self.register_buffer("scale", torch.tensor([1.0, 1.0, 1.0, inv_range]).view(1, 4, 1, 1))
        self.register_buffer("offset", torch.tensor(
            [0.0, 0.0, 0.0, -depth_near_m * inv_range]).view(1, 4, 1, 1))

    def run(self, overhead_rgbd: torch.Tensor, motor: torch.Tensor,
            wrist_rgb: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """(Q-values, grasp probabilities), float32 (N, A) each, of raw NHWC observations."""
        # A permuted NHWC tensor is an NCHW view with channels_last strides: no copy in torch.
        overhead = (overhead_rgbd.permute(0, 3, 1, 2) * self.scale + self.offset).clamp(0.0, 1.0)
        wrist = None
        if wrist_rgb is not None:
            wrist = wrist_rgb.to(torch.float32).mul(1.0 / 255.0).permute(0, 3, 1, 2)
        q = self.network(overhead, motor, wrist)
        return q, grasp_probabilities(q)


class MultiViewGraph(PolicyGraph):
    """Inputs in graph order: overhead_rgbd, wrist_rgb, motor."""

    def forward(self, overhead_rgbd: torch.Tensor, wrist_rgb: torch.Tensor,
                motor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.run(overhead_rgbd, motor, wrist_rgb)


class SingleViewGraph(PolicyGraph):
    """Inputs in graph order: overhead_rgbd, motor."""

    def forward(self, overhead_rgbd: torch.Tensor,
                motor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.run(overhead_rgbd, motor, None)


def policy_graph(network: GraspQNetwork, depth_near_m: float,
                 depth_far_m: float) -> PolicyGraph:
    """An eval-mode copy of ``network`` wrapped with the observation normalisation."""
    network = copy.deepcopy(network).eval()
    cls = MultiViewGraph if network.config.views == "multi" else SingleViewGraph
    return cls(network, depth_near_m, depth_far_m).eval()


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the dynamo exporter's chatter (missing torchvision ops, deprecation notes):
    ``graspq export --json`` promises one JSON object and a readable stderr."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def _example_inputs(views: str, image_size: int) -> tuple[torch.Tensor, ...]:
    # Batch 2: a batch-1 example can specialise the batch axis even when declared dynamic.
    s = image_size
    inputs = {OVERHEAD_KEY: torch.rand(2, s, s, 4),
              WRIST_KEY: torch.randint(0, 256, (2, s, s, 3), dtype=torch.uint8),
              MOTOR_KEY: torch.rand(2, MOTOR_SIZE)}
    return tuple(inputs[name] for name in meta.input_names(views))


def _atomic_save(model: onnx.ModelProto, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        handle.write(model.SerializeToString())  # one file: no external data
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def write_policy(network: GraspQNetwork, env_config: EnvConfig, training: TrainingConfig,
                 out: str | Path) -> Path:
    """Export ``network`` (any mode; an eval copy is exported) as a policy file at ``out``.

    Writes the graph with its metadata atomically and runs ``onnx.checker``; no parity check
    (see :func:`export_checkpoint`). The camera settings of ``env_config`` must be the ones
    the network was trained with.
    """
    out = Path(out)
    views = network.config.views
    camera = env_config.camera
    if network.config.image_size != camera.image_size:
        raise ValueError(f"network image size {network.config.image_size} differs from "
                         f"camera.image_size {camera.image_size}")
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name such as policy.onnx")
    if network.config.num_actions != NUM_ACTIONS:
        raise ValueError(
            f"the network has {network.config.num_actions} actions (actions.close_yaw_turns "
            f"{env_config.actions.close_yaw_turns}); a policy file carries the paper's "
            f"{NUM_ACTIONS}, the only ones the servo runtime maps to the robot: turned closes "
            "are a simulation lever")
    if network.config.fingertip_offset_channels:
        raise ValueError("the network has fingertip offset channels "
                         "(network.fingertip_offset_channels), computed for the simulated "
                         "overhead camera's pose; a policy file does not carry a robot's "
                         "calibrated one yet: offset channels are a simulation lever")
    if network.config.fingertip_glimpse:
        raise ValueError("the network has a fingertip glimpse (network.fingertip_glimpse), "
                         "centred with the simulated overhead camera's pose; a policy file "
                         "does not carry a robot's calibrated one yet: the glimpse is a "
                         "simulation lever")
    graph = policy_graph(network, camera.depth_near_m, camera.depth_far_m)
    names = meta.input_names(views)
    with _quiet_exporter(), torch.no_grad():
        program = torch.onnx.export(
            graph, _example_inputs(views, camera.image_size), dynamo=True,
            opset_version=OPSET, input_names=list(names), output_names=list(meta.OUTPUT_NAMES),
            dynamic_shapes=tuple({0: meta.BATCH_AXIS} for _ in names),
            external_data=False, optimize=True, verbose=False)
    model = program.model_proto
    training_mapping, env_mapping = to_mapping(training), to_mapping(env_config)
    props = meta.build_metadata(env_config, views, training.learner,
                                config_hash(training_mapping, env_mapping),
                                graspq.__version__, training_mapping, env_mapping)
    existing = {prop.key for prop in model.metadata_props}
    for key, value in props.items():
        if key in existing:
            raise RuntimeError(f"the exporter already set metadata {key!r}")
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.doc_string = (f"GraspQ {training.learner} {views}-view grasp policy; inputs, outputs "
                        "and normalisation are described in the graspq.* metadata")
    onnx.checker.check_model(model, full_check=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    _atomic_save(model, out)
    return out


@dataclasses.dataclass(frozen=True)
class ExportReport:
    """What ``graspq export`` wrote and how closely it matches torch."""

    path: str
    opset: int
    max_abs_diff_random: float
    """Largest |ONNX Runtime - torch| over both outputs, random observations."""
    max_abs_diff_real: float
    """The same over observations rendered by the MuJoCo scene."""
    argmax_agreement: float
    """Share of all compared observations with the same greedy action (must be 1.0)."""
    seconds: float
    """Wall time of export, checks and parity, s."""
    random_observations: int
    real_observations: int
    exporter: str
    views: str
    image_size: int
    learner: str
    config_hash: str
    bytes: int

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (the JSON report)."""
        return dataclasses.asdict(self)


def random_observations(count: int, views: str, image_size: int, depth_near_m: float,
                        depth_far_m: float, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """A batch of ``count`` random observations in the contract's dtypes.

    Depth spans 10 % beyond both bounds so the graph's clipping is exercised too.
    """
    s = image_size
    margin = 0.1 * (depth_far_m - depth_near_m)
    overhead = np.empty((count, s, s, 4), np.float32)
    overhead[..., :3] = rng.random((count, s, s, 3), np.float32)
    overhead[..., 3] = rng.uniform(max(0.0, depth_near_m - margin), depth_far_m + margin,
                                   (count, s, s))
    motor = np.empty((count, MOTOR_SIZE), np.float32)
    motor[:, :-1] = rng.uniform(-np.pi, np.pi, (count, MOTOR_SIZE - 1))
    motor[:, -1] = rng.uniform(0.006, 0.05, count)
    obs = {OVERHEAD_KEY: overhead, MOTOR_KEY: motor}
    if views == "multi":
        obs[WRIST_KEY] = rng.integers(0, 256, (count, s, s, 3), dtype=np.uint8)
    return obs


def rendered_observations(env_config: EnvConfig, count: int,
                          seed: int) -> dict[str, np.ndarray]:
    """``count`` observations rendered by the MuJoCo scene, stacked on a batch axis.

    A seeded rollout of the privileged oracle with 30 % random actions mixed in, so the
    batch holds views from above, beside and on the object, and closed grippers.
    """
    from graspq.sim.env import BaxterGraspEnv
    from graspq.sim.oracle import OraclePolicy

    rng = np.random.default_rng(seed)
    env = BaxterGraspEnv(env_config)
    frames: list[dict[str, np.ndarray]] = []
    try:
        oracle = OraclePolicy(env)
        episode = 0
        obs, _ = env.reset(seed=seed)
        while len(frames) < count:
            frames.append(obs)
            explore = rng.random() < 0.3
            action = int(rng.integers(NUM_ACTIONS)) if explore else int(oracle.act())
            obs, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                episode += 1
                obs, _ = env.reset(seed=seed + episode)
    finally:
        env.close()
    return {key: np.stack([frame[key] for frame in frames])
            for key in (OVERHEAD_KEY, WRIST_KEY, MOTOR_KEY)}


def compare(policy: OnnxPolicy, network: GraspQNetwork, obs: Mapping[str, np.ndarray],
            depth_near_m: float, depth_far_m: float) -> tuple[float, int]:
    """(Largest |ONNX - torch| over both outputs, number of observations with the same
    greedy action) on a batch. The torch side is the training code's own path,
    :func:`graspq.learning.model.preprocess` then the network in eval mode, so the check also
    proves the in-graph normalisation matches it."""
    network = network.eval()
    count = len(obs[MOTOR_KEY])
    worst, same = 0.0, 0
    for start in range(0, count, _PARITY_BATCH):
        part = {key: value[start:start + _PARITY_BATCH] for key, value in obs.items()}
        q_onnx, p_onnx = policy.run_batch(part)
        with torch.inference_mode():
            q_torch = network(*preprocess(part, "cpu", depth_near_m, depth_far_m))
            p_torch = grasp_probabilities(q_torch)
        worst = max(worst, float(np.abs(q_onnx - q_torch.numpy()).max()),
                    float(np.abs(p_onnx - p_torch.numpy()).max()))
        same += int((q_onnx.argmax(axis=1) == q_torch.numpy().argmax(axis=1)).sum())
    return worst, same


def export_checkpoint(checkpoint: str | Path, out: str | Path, *, random_count: int = 1000,
                      real_count: int = 100, seed: int = 0,
                      tolerance: float = PARITY_TOLERANCE) -> ExportReport:
    """Export a checkpoint (file or run directory) to ``out`` and verify it.

    Raises:
        CheckpointError: the checkpoint is missing, corrupt or does not fit its config.
        ParityError: ONNX Runtime and torch disagree (max abs diff above ``tolerance`` or a
            different greedy action); nothing is left at ``out``.
    """
    from graspq.learning.policy_io import load_agent

    if random_count < 1 or real_count < 0:
        raise ValueError("need at least one random observation and a non-negative real count")
    start = time.perf_counter()
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a directory; give a file name such as policy.onnx")
    agent, env_config, training = load_agent(Path(checkpoint))
    network = agent.online.eval()
    camera = env_config.camera
    bounds = (camera.depth_near_m, camera.depth_far_m)
    # Write under a temporary name: a file that fails any check never sits where a robot
    # would look for its policy.
    pending = out.with_name(out.name + ".unverified")
    try:
        write_policy(network, env_config, training, pending)
        policy = OnnxPolicy(pending, env_config, training.views)
        rng = np.random.default_rng(seed)
        diff_random, same_random = compare(
            policy, network, random_observations(random_count, training.views,
                                                 camera.image_size, *bounds, rng), *bounds)
        diff_real, same_real = 0.0, 0
        if real_count:
            diff_real, same_real = compare(
                policy, network, rendered_observations(env_config, real_count, seed), *bounds)
        agreement = (same_random + same_real) / (random_count + real_count)
        failures = []
        if not diff_random <= tolerance:
            failures.append(f"max |ONNX - torch| {diff_random:.3g} on random observations")
        if not diff_real <= tolerance:
            failures.append(f"max |ONNX - torch| {diff_real:.3g} on rendered observations")
        if agreement != 1.0:
            failures.append(f"greedy action differs on {1.0 - agreement:.2%} of observations")
        if failures:
            raise ParityError(f"ONNX parity check failed (limit {tolerance:g}): "
                              + "; ".join(failures) + f"; {out} not written")
        os.replace(pending, out)
    finally:
        pending.unlink(missing_ok=True)
    return ExportReport(
        path=str(out), opset=OPSET, max_abs_diff_random=diff_random,
        max_abs_diff_real=diff_real, argmax_agreement=agreement,
        seconds=time.perf_counter() - start, random_observations=random_count,
        real_observations=real_count, exporter=EXPORTER, views=training.views,
        image_size=camera.image_size, learner=training.learner,
        config_hash=policy.metadata[meta.CONFIG_HASH_KEY], bytes=out.stat().st_size)
