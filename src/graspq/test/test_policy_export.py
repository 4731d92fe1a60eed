"""graspq.policy.export: a trained checkpoint -> one self-describing ONNX file matching torch."""

import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

import graspq
from graspq.actions import Action
from graspq.config import to_mapping
from graspq.learning.checkpoint import CheckpointError, load_checkpoint
from graspq.learning.model import GraspQNetwork, preprocess
from graspq.learning.policy_io import load_agent
from graspq.learning.pose import POSE_TARGETS
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.policy.export import (
    OPSET,
    ParityError,
    compare,
    export_checkpoint,
    random_observations,
    write_policy,
)
from graspq.policy.runtime import OnnxPolicy
from graspq.sim.settings import CameraConfig, EnvConfig

TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=6)
TINY = TrainingConfig(
    learner="ddqn", episodes=1, seed=5, batch_size=4, replay_capacity=64, learning_starts=4,
    eval_episodes=1, checkpoint_every=1, torch_threads=1,
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))
INPUTS = ["overhead_rgbd", "wrist_rgb", "motor"]
OUTPUTS = ["q_values", "grasp_probabilities"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, train_run):
    return train_run(tmp_path_factory.mktemp("export") / "run", TINY, TINY_ENV)


@pytest.fixture(scope="module")
def exported(run_dir):
    out = run_dir.parent / "policies" / "policy.onnx"
    return out, export_checkpoint(run_dir, out)


def test_export_matches_torch_on_random_and_rendered_observations(exported):
    path, report = exported
    assert report.path == str(path) and path.is_file()
    assert report.opset == OPSET == 18
    assert report.random_observations == 1000 and report.real_observations == 100
    assert report.max_abs_diff_random <= 1e-4
    assert report.max_abs_diff_real <= 1e-4
    assert report.argmax_agreement == 1.0
    assert report.views == "multi" and report.image_size == 32 and report.learner == "ddqn"
    assert report.bytes == path.stat().st_size
    # One self-contained file: no external weights, no leftover temporary files.
    assert sorted(p.name for p in path.parent.iterdir()) == ["policy.onnx"]


def test_graph_io_names_dtypes_and_dynamic_batch(exported, run_dir):
    path, _ = exported
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)
    assert {(op.domain, op.version) for op in model.opset_import} >= {("", 18)}
    assert [i.name for i in model.graph.input] == INPUTS
    assert [o.name for o in model.graph.output] == OUTPUTS
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    shapes = {node.name: (node.shape, node.type) for node in session.get_inputs()}
    assert shapes == {"overhead_rgbd": (["batch", 32, 32, 4], "tensor(float)"),
                      "wrist_rgb": (["batch", 32, 32, 3], "tensor(uint8)"),
                      "motor": (["batch", 8], "tensor(float)")}
    assert [node.shape for node in session.get_outputs()] == [["batch", 9], ["batch", 9]]
    agent, _, _ = load_agent(run_dir)
    camera = TINY_ENV.camera
    for batch in (1, 5):
        obs = random_observations(batch, "multi", 32, camera.depth_near_m, camera.depth_far_m,
                                  np.random.default_rng(batch))
        q, probabilities = session.run(OUTPUTS, {name: obs[name] for name in INPUTS})
        assert q.shape == probabilities.shape == (batch, 9)
        with torch.inference_mode():
            expected = agent.online(*preprocess(obs, "cpu", camera.depth_near_m,
                                                camera.depth_far_m)).numpy()
        np.testing.assert_allclose(q, expected, rtol=0, atol=1e-4)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=0, atol=1e-5)


def test_metadata_describes_the_policy(exported, run_dir):
    path, _ = exported
    props = {prop.key: prop.value for prop in onnx.load(path).metadata_props}
    assert props["graspq.format"] == "1"
    assert props["graspq.version"] == graspq.__version__
    assert props["graspq.learner"] == "ddqn"
    assert props["graspq.views"] == "multi"
    assert props["graspq.image_size"] == "32"
    assert props["graspq.config_hash"] == load_checkpoint(run_dir)["config_hash"]
    actions = json.loads(props["graspq.actions"])
    assert actions == {"names": [action.name for action in Action],
                       "translation_step_m": TINY_ENV.actions.translation_step_m,
                       "yaw_step_deg": TINY_ENV.actions.yaw_step_deg,
                       "close_mode": TINY_ENV.actions.close_mode}
    depth = json.loads(props["graspq.depth"])
    assert (depth["near_m"], depth["far_m"], depth["unit"]) == (0.6, 1.1, "m")
    inputs = json.loads(props["graspq.inputs"])
    assert list(inputs) == INPUTS
    assert inputs["overhead_rgbd"]["channels"] == ["R", "G", "B", "depth_m"]
    assert "clip((depth_m - near_m) / (far_m - near_m), 0, 1)" in \
        inputs["overhead_rgbd"]["normalisation"]
    assert inputs["wrist_rgb"]["dtype"] == "uint8"
    assert inputs["wrist_rgb"]["normalisation"] == "x / 255"
    assert list(json.loads(props["graspq.outputs"])) == OUTPUTS
    assert json.loads(props["graspq.training_config"]) == to_mapping(TINY)
    assert json.loads(props["graspq.env_config"]) == to_mapping(TINY_ENV)
    # The runtime reads the same metadata back through ONNX Runtime.
    assert OnnxPolicy(path, TINY_ENV, "multi").metadata == props


@pytest.mark.parametrize(("views", "fingertip", "pose_head", "keypoints", "inputs"), [
    ("single", False, False, False, ["overhead_rgbd", "motor"]),  # no wrist input
    ("multi", True, False, False, INPUTS),  # the forward kinematics become part of the graph
    ("multi", False, True, False, INPUTS),  # the training-only pose head stays out of it
    ("multi", False, False, True, INPUTS),  # the spatial softmax is part of the graph
])
def test_network_variants_export_and_match_torch(tmp_path, views, fingertip, pose_head,
                                                 keypoints, inputs):
    torch.manual_seed(0)
    training = dataclasses.replace(TINY, views=views, network=dataclasses.replace(
        TINY.network, fingertip_features=fingertip, spatial_keypoints=keypoints))
    network = GraspQNetwork(dataclasses.replace(training.network.gqn(32, views),
                                                pose_outputs=POSE_TARGETS if pose_head else 0))
    path = write_policy(network, TINY_ENV, training, tmp_path / "policy.onnx")
    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == inputs
    assert [o.name for o in graph.output] == OUTPUTS
    policy = OnnxPolicy(path, TINY_ENV, views)
    camera = TINY_ENV.camera
    # Batches that carry wrist images for both: the single-view policy ignores them.
    obs = random_observations(100, "multi", 32, camera.depth_near_m, camera.depth_far_m,
                              np.random.default_rng(1))
    worst, same = compare(policy, network, obs, camera.depth_near_m, camera.depth_far_m)
    assert worst <= 1e-4 and same == 100


def test_failed_parity_is_loud_and_leaves_no_file(run_dir, tmp_path):
    out = tmp_path / "policy.onnx"
    # A limit no float32 graph can meet against another implementation: the check must fail.
    with pytest.raises(ParityError, match="parity check failed.*not written"):
        export_checkpoint(run_dir, out, random_count=20, real_count=0, tolerance=1e-15)
    assert list(tmp_path.iterdir()) == []


def test_export_refuses_bad_input(run_dir, tmp_path):
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable GraspQ checkpoint"):
        export_checkpoint(corrupt, tmp_path / "policy.onnx")
    with pytest.raises(ValueError, match="is a directory"):
        export_checkpoint(run_dir, tmp_path, real_count=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.pt"]


def _graspq(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, "-m", "graspq.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


def test_export_cli_prints_the_report_and_exits_2_on_bad_input(run_dir, tmp_path):
    out = tmp_path / "cli.onnx"
    result = _graspq("export", "--checkpoint", str(run_dir), "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert {"path", "opset", "max_abs_diff_random", "max_abs_diff_real", "argmax_agreement",
            "seconds"} <= set(report)
    assert report["path"] == str(out) and out.is_file()
    assert report["argmax_agreement"] == 1.0 and report["max_abs_diff_real"] <= 1e-4
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"\x00" * 64)
    bad = _graspq("export", "--checkpoint", str(corrupt), "--out", str(tmp_path / "x.onnx"))
    assert bad.returncode == 2
    assert "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "corrupt.pt" in bad.stderr and not (tmp_path / "x.onnx").exists()


def _with_training_config(path, out, change):
    model = onnx.load(path)
    for prop in model.metadata_props:
        if prop.key == "graspq.training_config":
            config = json.loads(prop.value)
            change(config)
            prop.value = json.dumps(config)
    onnx.save(model, out)
    return out


def test_the_revisit_window_travels_with_the_policy(tmp_path):
    torch.manual_seed(0)
    network = GraspQNetwork(TINY.network.gqn(32, "multi"))
    windowed = write_policy(network, TINY_ENV, dataclasses.replace(TINY, revisit_window=4),
                            tmp_path / "windowed.onnx")
    assert OnnxPolicy(windowed, TINY_ENV).revisit_window == 4
    plain = write_policy(network, TINY_ENV, TINY, tmp_path / "plain.onnx")
    assert OnnxPolicy(plain, TINY_ENV).revisit_window == 0

    # Files from before the window act as they were scored then: never undoing the last move
    # where block_reversal was true, plain argmax where it was false or did not exist yet.
    def older(block_reversal):
        def change(config):
            del config["revisit_window"]
            if block_reversal is not None:
                config["block_reversal"] = block_reversal
        return change

    for block_reversal, window in ((True, 1), (False, 0), (None, 0)):
        out = _with_training_config(windowed, tmp_path / f"older-{block_reversal}.onnx",
                                    older(block_reversal))
        assert OnnxPolicy(out, TINY_ENV).revisit_window == window
