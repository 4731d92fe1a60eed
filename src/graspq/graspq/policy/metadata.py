"""What a GraspQ ONNX policy file says about itself, written by export and checked at load.

ONNX ``metadata_props`` hold strings only, so structured values are JSON. Every key starts with
``graspq.``; ``graspq.format`` marks a GraspQ policy and versions this layout (bump it when a
key's meaning changes). An int8 file (:mod:`graspq.policy.quantize`) carries its float32
source's keys unchanged plus ``graspq.quantization``. Both sides build the expected
description from the same functions here, so the writer and the checker cannot drift apart.

Inputs of the graph (N = dynamic batch, S = camera image size), the observation contract of
:mod:`graspq.observation` with a batch axis:

- ``overhead_rgbd`` float32 (N, S, S, 4): R, G, B in [0, 1], depth in metres (z-depth).
- ``wrist_rgb`` uint8 (N, S, S, 3): R, G, B (multi-view policies only).
- ``motor`` float32 (N, 8): joint angles s0..w2 (rad), gripper opening (m).

Outputs: ``q_values`` float32 (N, A) and ``grasp_probabilities`` float32 (N, A), the softmax
of the Q-values over the A actions of :class:`graspq.actions.Action`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from graspq.actions import Action, stored_revisit_window
from graspq.legacy import LEGACY_ENV_VALUES, fill_legacy_values
from graspq.observation import JOINT_NAMES, MOTOR_KEY, MOTOR_SIZE, OVERHEAD_KEY, WRIST_KEY

if TYPE_CHECKING:  # the runtime stays importable without gymnasium's import cost
    from graspq.sim.settings import EnvConfig

POLICY_FORMAT = 1
FORMAT_KEY = "graspq.format"
VERSION_KEY = "graspq.version"
LEARNER_KEY = "graspq.learner"
VIEWS_KEY = "graspq.views"
IMAGE_SIZE_KEY = "graspq.image_size"
ACTIONS_KEY = "graspq.actions"
DEPTH_KEY = "graspq.depth"
INPUTS_KEY = "graspq.inputs"
OUTPUTS_KEY = "graspq.outputs"
CONFIG_HASH_KEY = "graspq.config_hash"
TRAINING_CONFIG_KEY = "graspq.training_config"
ENV_CONFIG_KEY = "graspq.env_config"
QUANTIZATION_KEY = "graspq.quantization"
"""Only in int8 files (:mod:`graspq.policy.quantize`): how they were made and checked."""

Q_VALUES = "q_values"
GRASP_PROBABILITIES = "grasp_probabilities"
OUTPUT_NAMES = (Q_VALUES, GRASP_PROBABILITIES)
BATCH_AXIS = "batch"
VIEWS = ("multi", "single")

DEPTH_NORMALISATION = "clip((depth_m - near_m) / (far_m - near_m), 0, 1)"


def input_names(views: str) -> tuple[str, ...]:
    """Graph input names, in graph order, for a view mode."""
    if views not in VIEWS:
        raise ValueError(f"views must be one of {VIEWS}, got {views!r}")
    return (OVERHEAD_KEY, WRIST_KEY, MOTOR_KEY) if views == "multi" else (OVERHEAD_KEY, MOTOR_KEY)


def input_specs(views: str, image_size: int) -> dict[str, dict[str, Any]]:
    """Name -> dtype, shape (``"batch"`` first), channels and normalisation of each input."""
    specs = {
        OVERHEAD_KEY: {
            "dtype": "float32", "shape": [BATCH_AXIS, image_size, image_size, 4],
            "channels": ["R", "G", "B", "depth_m"],
            "normalisation": "RGB clipped to [0, 1]; depth " + DEPTH_NORMALISATION,
        },
        WRIST_KEY: {
            "dtype": "uint8", "shape": [BATCH_AXIS, image_size, image_size, 3],
            "channels": ["R", "G", "B"], "normalisation": "x / 255",
        },
        MOTOR_KEY: {
            "dtype": "float32", "shape": [BATCH_AXIS, MOTOR_SIZE],
            "channels": [f"{name}_rad" for name in JOINT_NAMES] + ["gripper_opening_m"],
            "normalisation": "none",
        },
    }
    return {name: specs[name] for name in input_names(views)}


def output_specs() -> dict[str, dict[str, Any]]:
    """Name -> dtype, shape and meaning of each output."""
    shape = [BATCH_AXIS, len(Action)]
    return {
        Q_VALUES: {"dtype": "float32", "shape": shape,
                   "meaning": "unbounded Q-value per action, in the order of graspq.actions"},
        GRASP_PROBABILITIES: {"dtype": "float32", "shape": shape,
                              "meaning": "softmax of q_values over the actions (a readout)"},
    }


def action_table(env_config: EnvConfig) -> dict[str, Any]:
    """The discrete actions the Q-values index, with the step sizes that give them meaning."""
    return {"names": [action.name for action in Action],
            "translation_step_m": env_config.actions.translation_step_m,
            "yaw_step_deg": env_config.actions.yaw_step_deg,
            "close_mode": env_config.actions.close_mode}


def depth_table(env_config: EnvConfig) -> dict[str, Any]:
    """Overhead depth scale: the bounds the graph normalises depth with."""
    camera = env_config.camera
    return {"near_m": camera.depth_near_m, "far_m": camera.depth_far_m, "unit": "m",
            "kind": "z-depth along the optical axis", "normalisation": DEPTH_NORMALISATION}


def build_metadata(env_config: EnvConfig, views: str, learner: str, config_hash: str,
                   version: str, training_mapping: Mapping[str, Any],
                   env_mapping: Mapping[str, Any]) -> dict[str, str]:
    """All ``metadata_props`` of a policy file (strings; JSON for structured values)."""
    image_size = env_config.camera.image_size
    return {
        FORMAT_KEY: str(POLICY_FORMAT),
        VERSION_KEY: version,
        LEARNER_KEY: learner,
        VIEWS_KEY: views,
        IMAGE_SIZE_KEY: str(image_size),
        ACTIONS_KEY: json.dumps(action_table(env_config)),
        DEPTH_KEY: json.dumps(depth_table(env_config)),
        INPUTS_KEY: json.dumps(input_specs(views, image_size)),
        OUTPUTS_KEY: json.dumps(output_specs()),
        CONFIG_HASH_KEY: config_hash,
        TRAINING_CONFIG_KEY: json.dumps(training_mapping, sort_keys=True),
        ENV_CONFIG_KEY: json.dumps(env_mapping, sort_keys=True),
    }


def revisit_window(metadata: Mapping[str, str]) -> int:
    """The revisit window the policy was evaluated with (the training config's
    ``revisit_window``, :class:`graspq.actions.GreedyChooser`), so that it acts on the robot
    as it was scored: 1 for files from before the window, whose ``block_reversal`` was true;
    0 (plain argmax) for older files or without a readable training config."""
    training = _json(metadata, TRAINING_CONFIG_KEY, problems=[])  # None if missing or bad
    return stored_revisit_window(training) if isinstance(training, dict) else 0


def stored_env_config(path: str | Path) -> EnvConfig:
    """The env config a policy file was exported under (its ``graspq.env_config``), read
    without building a session: what ``graspq eval --policy`` and the int8 export run under,
    as ``graspq eval`` runs a checkpoint under the config it was trained with."""
    import onnx

    from graspq.config import from_mapping
    from graspq.sim.settings import EnvConfig

    if not Path(path).is_file():
        raise ValueError(f"{path}: policy file not found")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and onnx's own, for a corrupt file
        raise ValueError(f"{path}: not a loadable ONNX model ({type(exc).__name__})") from exc
    props = {prop.key: prop.value for prop in model.metadata_props}
    problems: list[str] = []
    mapping = _json(props, ENV_CONFIG_KEY, problems)
    if not isinstance(mapping, dict):
        raise ValueError(f"{path}: " + ("; ".join(problems) or f"{ENV_CONFIG_KEY} is not a "
                                        "JSON object") + " (not a GraspQ policy file?)")
    fill_legacy_values(mapping, LEGACY_ENV_VALUES)
    return from_mapping(EnvConfig, mapping)


def precision(metadata: Mapping[str, str]) -> str:
    """``"int8"`` for a quantised policy file, ``"float32"`` otherwise."""
    return "int8" if QUANTIZATION_KEY in metadata else "float32"


def _json(metadata: Mapping[str, str], key: str, problems: list[str]) -> Any:
    try:
        return json.loads(metadata[key])
    except KeyError:
        problems.append(f"{key}: missing from the policy's metadata")
    except json.JSONDecodeError as exc:
        problems.append(f"{key}: not valid JSON ({exc})")
    return None


def _differs(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) \
            and not isinstance(a, bool) and not isinstance(b, bool):
        # JSON round-trips floats exactly; the tolerance only forgives int-vs-float spellings.
        return not math.isclose(a, b, rel_tol=1e-9, abs_tol=0.0)
    return a != b


def metadata_differences(metadata: Mapping[str, str], env_config: EnvConfig,
                         views: str | None) -> list[str]:
    """Every way a policy's metadata disagrees with the running config, one line each
    (``"translation_step_m: policy 0.01, config 0.02"``); empty when the policy fits.

    ``views`` is the view mode the caller will feed; None accepts the policy's own.
    """
    problems: list[str] = []
    if FORMAT_KEY not in metadata:
        return [f"not a GraspQ policy (no {FORMAT_KEY} in its metadata)"]
    if metadata[FORMAT_KEY] != str(POLICY_FORMAT):
        return [f"{FORMAT_KEY}: policy {metadata[FORMAT_KEY]}, this GraspQ reads "
                f"{POLICY_FORMAT}"]
    actions = _json(metadata, ACTIONS_KEY, problems)
    if isinstance(actions, dict):
        expected = action_table(env_config)
        # Files from before the descend close closed in place.
        actions.setdefault("close_mode", LEGACY_ENV_VALUES["actions.close_mode"])
        for key in ("names", "translation_step_m", "yaw_step_deg", "close_mode"):
            if _differs(actions.get(key), expected[key]):
                label = "actions" if key == "names" else key
                problems.append(f"{label}: policy {actions.get(key)}, config {expected[key]}")
    image_size = metadata.get(IMAGE_SIZE_KEY)
    if image_size != str(env_config.camera.image_size):
        problems.append(f"image_size: policy {image_size}, config "
                        f"{env_config.camera.image_size}")
    depth = _json(metadata, DEPTH_KEY, problems)
    if isinstance(depth, dict):
        camera = env_config.camera
        for key, current in (("near_m", camera.depth_near_m), ("far_m", camera.depth_far_m)):
            if _differs(depth.get(key), current):
                problems.append(f"depth_{key}: policy {depth.get(key)}, config {current}")
    if QUANTIZATION_KEY in metadata:  # an int8 file: same contract, one more key
        quantization = _json(metadata, QUANTIZATION_KEY, problems)
        if quantization is not None and not isinstance(quantization, dict):
            problems.append(f"{QUANTIZATION_KEY}: expected a JSON object")
    policy_views = metadata.get(VIEWS_KEY)
    if policy_views not in VIEWS:
        problems.append(f"views: policy {policy_views!r}, expected one of {list(VIEWS)}")
    elif views is not None and policy_views != views:
        problems.append(f"views: policy {policy_views}, config {views}")
    return problems


def graph_differences(inputs: Mapping[str, tuple[list[Any], str]],
                      outputs: Mapping[str, tuple[list[Any], str]], views: str,
                      image_size: int) -> list[str]:
    """Differences between a loaded graph's I/O (name -> (shape, dtype), in graph order;
    onnxruntime's symbolic dimensions as strings) and what ``views`` at ``image_size`` needs."""
    problems: list[str] = []
    for kind, actual, expected in (("inputs", inputs, input_specs(views, image_size)),
                                   ("outputs", outputs, output_specs())):
        if list(actual) != list(expected):
            problems.append(f"graph {kind}: policy {list(actual)}, expected {list(expected)}")
            continue
        for name, (shape, dtype) in actual.items():
            spec = expected[name]
            # The batch axis must be symbolic (any N); every other axis fixed as specified.
            fixed = [None if isinstance(d, str) or d is None else d for d in shape]
            wanted = [None if d == BATCH_AXIS else d for d in spec["shape"]]
            if fixed != wanted:
                problems.append(f"{name} shape: policy {shape}, expected {spec['shape']}")
            if dtype != spec["dtype"]:
                problems.append(f"{name} dtype: policy {dtype}, expected {spec['dtype']}")
    return problems
