"""graspq.policy.runtime: OnnxPolicy refuses files and observations that do not fit."""

import dataclasses
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from graspq.actions import Action
from graspq.config import ConfigError, from_mapping, to_mapping, validate
from graspq.learning.model import GraspQNetwork, preprocess
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.policy.export import write_policy
from graspq.policy.runtime import (
    BadObservationError,
    OnnxPolicy,
    PolicyConfig,
    PolicyDecision,
    PolicyMismatchError,
)
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import ActionConfig, CameraConfig, EnvConfig

TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=6)
TINY = TrainingConfig(torch_threads=1, network=NetworkConfig(
    stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))


def _network(views: str) -> GraspQNetwork:
    torch.manual_seed(0)
    return GraspQNetwork(TINY.network.gqn(32, views)).eval()


@pytest.fixture(scope="module")
def network():
    return _network("multi")


@pytest.fixture(scope="module")
def policy_path(network, tmp_path_factory):
    return write_policy(network, TINY_ENV, TINY, tmp_path_factory.mktemp("runtime") / "p.onnx")


@pytest.fixture(scope="module")
def policy(policy_path):
    return OnnxPolicy(policy_path, TINY_ENV, "multi")


@pytest.fixture(scope="module")
def observation():
    env = BaxterGraspEnv(TINY_ENV)
    try:
        obs, _ = env.reset(seed=3)
        return obs
    finally:
        env.close()


def test_decide_matches_torch_on_a_rendered_observation(policy, network, observation):
    decision = policy.decide(observation)
    assert isinstance(decision, PolicyDecision) and isinstance(decision.action, Action)
    camera = TINY_ENV.camera
    with torch.inference_mode():
        expected = network(*preprocess(observation, "cpu", camera.depth_near_m,
                                       camera.depth_far_m))[0].numpy()
    assert decision.q_values.shape == decision.grasp_probabilities.shape == (9,)
    np.testing.assert_allclose(decision.q_values, expected, rtol=0, atol=1e-4)
    assert decision.action == int(np.argmax(expected))
    np.testing.assert_allclose(decision.grasp_probabilities.sum(), 1.0, atol=1e-5)
    assert decision.latency_ms > 0
    np.testing.assert_array_equal(policy.q_values(observation), decision.q_values)


def test_policy_config_sets_the_session_and_is_validated(policy_path):
    config = PolicyConfig(intra_op_threads=2, allow_spinning=True, graph_optimization="basic")
    options = OnnxPolicy(policy_path, TINY_ENV, config=config).session.get_session_options()
    assert options.intra_op_num_threads == 2
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
    defaults = OnnxPolicy(policy_path, TINY_ENV).session.get_session_options()
    assert defaults.intra_op_num_threads == 1
    assert defaults.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert from_mapping(PolicyConfig, to_mapping(PolicyConfig())) == PolicyConfig()
    with pytest.raises(ConfigError, match="'intra_op_threads'"):
        validate(PolicyConfig(intra_op_threads=0))
    with pytest.raises(ConfigError, match="'graph_optimization'"):
        validate(PolicyConfig(graph_optimization="fastest"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.intra_op_threads = 4


def test_single_view_policy_needs_no_wrist_image(tmp_path, observation):
    network = _network("single")
    path = write_policy(network, TINY_ENV, dataclasses.replace(TINY, views="single"),
                        tmp_path / "single.onnx")
    policy = OnnxPolicy(path, TINY_ENV, "single")
    without_wrist = {k: v for k, v in observation.items() if k != "wrist_rgb"}
    np.testing.assert_array_equal(policy.q_values(without_wrist), policy.q_values(observation))
    with pytest.raises(PolicyMismatchError, match="views: policy single, config multi"):
        OnnxPolicy(path, TINY_ENV, "multi")


def _env(**changes) -> EnvConfig:
    camera = {k: v for k, v in changes.items() if k in ("image_size", "depth_near_m",
                                                         "depth_far_m")}
    actions = {k: v for k, v in changes.items() if k in ("translation_step_m", "yaw_step_deg")}
    return dataclasses.replace(TINY_ENV,
                               camera=dataclasses.replace(TINY_ENV.camera, **camera),
                               actions=dataclasses.replace(TINY_ENV.actions, **actions))


@pytest.mark.parametrize("env_config, views, message", [
    (_env(translation_step_m=0.02), None, "translation_step_m: policy 0.01, config 0.02"),
    (_env(yaw_step_deg=30.0), None, "yaw_step_deg: policy 15.0, config 30.0"),
    (_env(image_size=64), None, "image_size: policy 32, config 64"),
    (_env(depth_near_m=0.5), None, "depth_near_m: policy 0.6, config 0.5"),
    (_env(depth_far_m=1.3), None, "depth_far_m: policy 1.1, config 1.3"),
    (TINY_ENV, "single", "views: policy multi, config single"),
], ids=["step", "yaw_step", "image_size", "depth_near", "depth_far", "views"])
def test_each_config_mismatch_is_refused_naming_it(policy_path, env_config, views, message):
    with pytest.raises(PolicyMismatchError, match="does not fit") as caught:
        OnnxPolicy(policy_path, env_config, views)
    assert message in str(caught.value)


def test_every_difference_is_listed_at_once(policy_path):
    env_config = dataclasses.replace(_env(image_size=64),
                                     actions=ActionConfig(translation_step_m=0.02))
    with pytest.raises(PolicyMismatchError) as caught:
        OnnxPolicy(policy_path, env_config, "single")
    text = str(caught.value)
    for part in ("translation_step_m: policy 0.01, config 0.02",
                 "image_size: policy 32, config 64", "views: policy multi, config single"):
        assert part in text


def _rewrite_metadata(source, target, **changes):
    model = onnx.load(source)
    props = {prop.key: prop.value for prop in model.metadata_props}
    props.update(changes)
    onnx.helper.set_model_props(model, props)
    onnx.save(model, target)
    return target


def test_edited_action_table_is_refused(policy_path, tmp_path):
    actions = json.loads({p.key: p.value for p in onnx.load(policy_path).metadata_props}
                         ["graspq.actions"])
    actions["names"][0], actions["names"][1] = actions["names"][1], actions["names"][0]
    path = _rewrite_metadata(policy_path, tmp_path / "swapped.onnx",
                             **{"graspq.actions": json.dumps(actions)})
    with pytest.raises(PolicyMismatchError, match=r"actions: policy \['MINUS_X', 'PLUS_X'"):
        OnnxPolicy(path, TINY_ENV)


def test_files_that_are_not_graspq_policies_are_refused(policy_path, tmp_path):
    with pytest.raises(PolicyMismatchError, match="policy file not found"):
        OnnxPolicy(tmp_path / "missing.onnx", TINY_ENV)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"this is not a protobuf")
    with pytest.raises(PolicyMismatchError, match="not a loadable ONNX model"):
        OnnxPolicy(garbage, TINY_ENV)
    # A valid ONNX model without GraspQ metadata.
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "plain", [x], [y])
    plain = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    onnx.checker.check_model(plain)
    onnx.save(plain, tmp_path / "plain.onnx")
    with pytest.raises(PolicyMismatchError, match="not a GraspQ policy"):
        OnnxPolicy(tmp_path / "plain.onnx", TINY_ENV)
    # GraspQ metadata on a graph with other inputs and outputs.
    impostor = _rewrite_metadata(tmp_path / "plain.onnx", tmp_path / "impostor.onnx",
                                 **{p.key: p.value for p in onnx.load(policy_path).metadata_props})
    with pytest.raises(PolicyMismatchError, match=r"graph inputs: policy \['x'\]") as caught:
        OnnxPolicy(impostor, TINY_ENV)
    assert "graph outputs: policy ['y']" in str(caught.value)


def _bad(observation, key, value):
    return {**observation, key: value}


S = 32
BAD_OBSERVATIONS = {
    "image_size": ("overhead_rgbd", np.full((64, 64, 4), 0.8, np.float32),
                   r"shape \(64, 64, 4\), expected \(32, 32, 4\)"),
    "overhead_channels": ("overhead_rgbd", np.full((S, S, 3), 0.5, np.float32),
                          r"3 channels, expected 4 \(R, G, B, depth\)"),
    "wrist_channels": ("wrist_rgb", np.zeros((S, S, 4), np.uint8), "4 channels, expected 3"),
    "overhead_dtype": ("overhead_rgbd", np.full((S, S, 4), 0.8, np.float64),
                       "dtype float64, expected float32"),
    "wrist_dtype": ("wrist_rgb", np.zeros((S, S, 3), np.float32),
                    "dtype float32, expected uint8"),
    "motor_shape": ("motor", np.zeros(7, np.float32), r"shape \(7,\), expected \(8,\)"),
    "not_an_array": ("motor", [0.0] * 8, "expected a numpy array"),
}


@pytest.mark.parametrize("case", list(BAD_OBSERVATIONS))
def test_malformed_observations_raise_naming_the_key(policy, observation, case):
    key, value, message = BAD_OBSERVATIONS[case]
    with pytest.raises(BadObservationError, match=message) as caught:
        policy.decide(_bad(observation, key, value))
    assert caught.value.key == key and repr(key) in str(caught.value)


def _with(observation, key, index, value):
    array = observation[key].copy()
    array[index] = value
    return _bad(observation, key, array)


@pytest.mark.parametrize("case, key, index, value, message", [
    ("nan_depth", "overhead_rgbd", (3, 4, 3), np.nan, "1 NaN/inf depth pixels"),
    ("inf_depth", "overhead_rgbd", (0, 0, 3), np.inf, "1 NaN/inf depth pixels"),
    ("nan_colour", "overhead_rgbd", (0, 0, 1), np.nan, "1 NaN/inf colour values"),
    ("negative_depth", "overhead_rgbd", (5, 5, 3), -0.2, r"negative depth \(-0.2 m\)"),
    ("millimetres", "overhead_rgbd", (Ellipsis, 3), 950.0, "millimetres given as metres"),
    ("colour_0_255", "overhead_rgbd", (Ellipsis, 0), 200.0, "expected \\[0, 1\\]"),
    ("nan_motor", "motor", 2, np.nan, r"NaN/inf at index \[2\]"),
    ("inf_gripper", "motor", 7, -np.inf, r"NaN/inf at index \[7\]"),
])
def test_bad_values_raise_naming_the_key(policy, observation, case, key, index, value, message):
    with pytest.raises(BadObservationError, match=message) as caught:
        policy.decide(_with(observation, key, index, value))
    assert caught.value.key == key


def test_missing_key_and_depth_holes_of_a_real_camera(policy, observation):
    with pytest.raises(BadObservationError, match="'wrist_rgb': missing"):
        policy.decide({k: v for k, v in observation.items() if k != "wrist_rgb"})
    # A depth camera reports 0 where it has no reading; that is valid input, not an error.
    holes = _with(observation, "overhead_rgbd", (slice(0, 4), Ellipsis, 3), 0.0)
    assert policy.decide(holes).q_values.shape == (9,)


def test_runtime_imports_neither_torch_nor_the_simulator():
    code = ("import sys, graspq.policy.runtime; "
            "print(sorted(m for m in ('torch', 'mujoco', 'gymnasium') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.strip() == "[]"
