"""Run an exported GraspQ policy on ONNX Runtime (CPU), refusing files and inputs that do not fit.

:class:`OnnxPolicy` is what the servo runtime and the ROS servo node hold. Loading it checks the
file's metadata (see :mod:`graspq.policy.metadata`) against the *running* configuration: the
action table and step sizes, the image size, the depth bounds, the view mode and the graph's
input/output names and shapes. Any difference raises :class:`PolicyMismatchError` listing all
of them, because a policy whose "+x" means 1 cm driven with 2 cm steps, or fed depth normalised
with other bounds, runs without error and does the wrong thing.

Every observation is checked before inference; a bad one raises :class:`BadObservationError`
naming the key and the problem, which the servo runtime turns into "hold position".

Only numpy and onnxruntime are needed here (no torch), so a robot-side install stays small.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import onnxruntime as ort

from graspq.actions import Action
from graspq.config import param
from graspq.observation import MOTOR_KEY, MOTOR_SIZE, OVERHEAD_KEY, WRIST_KEY
from graspq.policy import metadata as meta

if TYPE_CHECKING:
    from graspq.sim.settings import EnvConfig

GRAPH_OPTIMIZATIONS = ("disabled", "basic", "extended", "all")
_ORT_LEVELS = {
    "disabled": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}
_ORT_DTYPES = {"tensor(float)": "float32", "tensor(uint8)": "uint8"}


class PolicyMismatchError(ValueError):
    """The file is not a GraspQ policy, or it does not fit the running configuration."""


class BadObservationError(ValueError):
    """An observation is unfit for the policy; the message names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"observation {key!r}: {problem}")
        self.key = key
        self.problem = problem


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """How the policy runs on ONNX Runtime, and what counts as a sane observation."""

    intra_op_threads: int = param(
        1, "ONNX Runtime intra-op threads; at 64x64, batch 1, 1 beat 2 on the 2-core "
        "machine with training beside it (p99 0.8 against 4.2 ms)", ge=1, le=64)
    allow_spinning: bool = param(
        False, "let idle ONNX Runtime threads spin (lower wake-up latency, burns a core)")
    graph_optimization: str = param(
        "all", "ONNX Runtime graph optimisation level; 'all' adds the NCHWc convolution "
        "layout, about 2x faster than the others here", choices=GRAPH_OPTIMIZATIONS)
    warmup_runs: int = param(3, "inference runs at load time, before the first decision",
                             ge=1, le=1000)
    max_depth_m: float = param(
        10.0, "depth beyond this is refused as a unit error (e.g. millimetres given as "
        "metres); a D435 reads up to about 10 m", unit="m", gt=0.0)


@dataclasses.dataclass(frozen=True)
class PolicyDecision:
    """One decision of the policy."""

    action: Action
    """Greedy action (argmax of the Q-values)."""
    q_values: np.ndarray
    """float32 (A,), one Q-value per action, :class:`Action` order."""
    grasp_probabilities: np.ndarray
    """float32 (A,), softmax of the Q-values (the paper's readout; not a calibrated chance)."""
    latency_ms: float
    """Wall time of validation + inference, milliseconds."""


def _session_options(config: PolicyConfig) -> ort.SessionOptions:
    options = ort.SessionOptions()
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = 1  # used only by ORT_PARALLEL, which we do not use
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = _ORT_LEVELS[config.graph_optimization]
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "1" if config.allow_spinning else "0")
    options.log_severity_level = 3  # errors only; load problems surface as exceptions
    return options


class OnnxPolicy:
    """A GraspQ ONNX policy on ONNX Runtime CPU, checked against the running configuration.

    Args:
        path: the ``.onnx`` file written by ``graspq export``.
        env_config: the configuration the policy will act under (action step sizes, camera
            image size and depth bounds are compared with the file's).
        views: the view mode the caller feeds ("multi" or "single"); None accepts the file's.
        config: threads and observation sanity bounds.

    Raises:
        PolicyMismatchError: missing/unreadable file, not a GraspQ policy, or any difference
            from the configuration (all listed in the message).
    """

    def __init__(self, path: str | Path, env_config: EnvConfig, views: str | None = None,
                 config: PolicyConfig | None = None) -> None:
        self.path = Path(path)
        self.config = config if config is not None else PolicyConfig()
        if views is not None and views not in meta.VIEWS:
            raise ValueError(f"views must be one of {meta.VIEWS}, got {views!r}")
        if not self.path.is_file():
            raise PolicyMismatchError(f"{self.path}: policy file not found")
        try:
            self._session = ort.InferenceSession(str(self.path),
                                                 _session_options(self.config),
                                                 providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types (InvalidProtobuf, Fail...)
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise PolicyMismatchError(f"{self.path}: not a loadable ONNX model "
                                      f"({type(exc).__name__}: {first_line})") from exc
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        problems = meta.metadata_differences(self.metadata, env_config, views)
        if not problems:
            self.views: str = self.metadata[meta.VIEWS_KEY]
            self.image_size: int = env_config.camera.image_size
            problems = meta.graph_differences(self._io(self._session.get_inputs()),
                                              self._io(self._session.get_outputs()),
                                              self.views, self.image_size)
        if problems:
            raise PolicyMismatchError(f"{self.path} does not fit this configuration: "
                                      + "; ".join(problems))
        camera = env_config.camera
        self.depth_bounds_m = (camera.depth_near_m, camera.depth_far_m)
        self.input_names: tuple[str, ...] = meta.input_names(self.views)
        self.revisit_window: int = meta.revisit_window(self.metadata)
        """The policy was scored never moving back to a pose of its last ``revisit_window``
        steps; the servo runtime, which knows the episode's moves, applies that rule
        (``decide`` itself is stateless)."""
        self.precision: str = meta.precision(self.metadata)
        """``"int8"`` for a file of ``graspq export --quantize int8``, else ``"float32"``;
        both have the same inputs and outputs."""
        self._warm_up()

    @staticmethod
    def _io(nodes: list[Any]) -> dict[str, tuple[list[Any], str]]:
        return {node.name: (list(node.shape), _ORT_DTYPES.get(node.type, node.type))
                for node in nodes}

    def _warm_up(self) -> None:
        # The first runs allocate the arena and pick kernels; do that before the loop starts.
        s = self.image_size
        near, far = self.depth_bounds_m
        overhead = np.zeros((1, s, s, 4), np.float32)
        overhead[..., 3] = 0.5 * (near + far)
        feed = {OVERHEAD_KEY: overhead, WRIST_KEY: np.zeros((1, s, s, 3), np.uint8),
                MOTOR_KEY: np.zeros((1, MOTOR_SIZE), np.float32)}
        feed = {name: feed[name] for name in self.input_names}
        for _ in range(self.config.warmup_runs):
            self._session.run(None, feed)

    # ---------------------------------------------------------------------- validation
    def _check(self, obs: Mapping[str, np.ndarray], batched: bool) -> dict[str, np.ndarray]:
        """The validated graph feed for ``obs`` (arrays gain a batch axis unless ``batched``)."""
        if not isinstance(obs, Mapping):
            raise BadObservationError("<observation>", f"expected a mapping of arrays, got "
                                      f"{type(obs).__name__}")
        s = self.image_size
        expected = {OVERHEAD_KEY: ((s, s, 4), np.float32, "R, G, B, depth"),
                    WRIST_KEY: ((s, s, 3), np.uint8, "R, G, B"),
                    MOTOR_KEY: ((MOTOR_SIZE,), np.float32, "7 joints + gripper")}
        feed = {}
        for key in self.input_names:
            if key not in obs:
                raise BadObservationError(key, f"missing (keys given: {sorted(obs)})")
            array = obs[key]
            if not isinstance(array, np.ndarray):
                raise BadObservationError(key, f"expected a numpy array, got "
                                          f"{type(array).__name__}")
            shape, dtype, channels = expected[key]
            wanted = "(N, " + ", ".join(map(str, shape)) + ")" if batched else str(shape)
            body = array.shape[1:] if batched else array.shape
            if array.ndim != len(shape) + batched:
                raise BadObservationError(key, f"shape {array.shape}, expected {wanted}")
            if key != MOTOR_KEY and body[-1] != shape[-1]:
                raise BadObservationError(key, f"{body[-1]} channels, expected {shape[-1]} "
                                          f"({channels}); shape {array.shape}")
            if body != shape:
                hint = "" if key == MOTOR_KEY else f" (the policy's image size is {s})"
                raise BadObservationError(key, f"shape {array.shape}, expected {wanted}{hint}")
            if array.dtype != dtype:
                raise BadObservationError(key, f"dtype {array.dtype}, expected "
                                          f"{np.dtype(dtype).name}")
            feed[key] = np.ascontiguousarray(array if batched else array[None])
        self._check_values(feed)
        return feed

    def _check_values(self, feed: dict[str, np.ndarray]) -> None:
        # Whole-array reductions first (a few us at 64x64); the strided per-channel ones only
        # where the contract needs them or to word an error.
        overhead = feed[OVERHEAD_KEY]
        rgb, depth = overhead[..., :3], overhead[..., 3]
        if not np.isfinite(overhead).all():
            for name, part in (("colour values", rgb), ("depth pixels", depth)):
                bad = np.count_nonzero(~np.isfinite(part))
                if bad:
                    raise BadObservationError(OVERHEAD_KEY, f"{bad} NaN/inf {name}")
        # Small slack: a resize or colour conversion may overshoot [0, 1] by rounding.
        rgb_high, lowest = float(rgb.max()), float(overhead.min())
        if lowest < -1e-3 or rgb_high > 1.0 + 1e-3:
            rgb_low = float(rgb.min())
            if rgb_low < -1e-3 or rgb_high > 1.0 + 1e-3:
                raise BadObservationError(OVERHEAD_KEY, f"colour values span [{rgb_low:g}, "
                                          f"{rgb_high:g}], expected [0, 1] (0-255 colours "
                                          "given as float?)")
        # 0 is a depth camera's "no reading" and normalises to the near bound, like any depth
        # closer than near; negative or huge values mean a broken or mis-scaled stream.
        if lowest < 0.0 and float(depth.min()) < 0.0:
            raise BadObservationError(OVERHEAD_KEY, f"negative depth ({float(depth.min()):g} m)")
        high = float(depth.max())
        if high > self.config.max_depth_m:
            raise BadObservationError(OVERHEAD_KEY, f"depth up to {high:g} m exceeds "
                                      f"max_depth_m {self.config.max_depth_m:g} (millimetres "
                                      "given as metres?)")
        motor = feed[MOTOR_KEY]
        if not np.isfinite(motor).all():
            bad = np.flatnonzero(~np.isfinite(motor).all(axis=0)).tolist()
            raise BadObservationError(MOTOR_KEY, f"NaN/inf at index {bad} (0-6 joints, 7 "
                                      "gripper)")

    # ---------------------------------------------------------------------- inference
    @property
    def session(self) -> ort.InferenceSession:
        """The underlying ONNX Runtime session (benchmarks; it skips all input checks)."""
        return self._session

    def run_batch(self, obs: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """Q-values and grasp probabilities, float32 (N, A) each, of a validated batch
        (arrays with a leading batch axis N; extra keys such as ``wrist_rgb`` for a
        single-view policy are ignored)."""
        q, probabilities = self._session.run(meta.OUTPUT_NAMES, self._check(obs, batched=True))
        return q, probabilities

    def q_values(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Q-values, float32 (A,), of one observation (contract of :mod:`graspq.observation`)."""
        return self.decide(obs).q_values

    def decide(self, obs: Mapping[str, np.ndarray]) -> PolicyDecision:
        """Validate one observation, run the policy, return the greedy action and its scores.

        Raises:
            BadObservationError: the observation does not fit (nothing was run).
        """
        start = time.perf_counter()
        q, probabilities = self._session.run(meta.OUTPUT_NAMES, self._check(obs, batched=False))
        latency_ms = (time.perf_counter() - start) * 1e3
        return PolicyDecision(Action(int(np.argmax(q[0]))), q[0], probabilities[0], latency_ms)
