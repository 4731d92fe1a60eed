"""graspq.policy.quantize: the int8 copy of an exported policy, written only when it acts like
the float32 one, loaded by the same runtime (issue #25). Real files, real ONNX Runtime."""

import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from graspq.learning.model import GraspQNetwork
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.policy import metadata as meta
from graspq.policy.export import rendered_observations, write_policy
from graspq.policy.quantize import AgreementError, int8_path, quantize_policy
from graspq.policy.runtime import OnnxPolicy
from graspq.servo.runtime import ServoRuntime
from graspq.servo.settings import ServoConfig, SimDevicesConfig
from graspq.servo.sim_devices import ServoSim
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import CameraConfig, EnvConfig

TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=6)
TINY = TrainingConfig(
    learner="ddqn", episodes=1, seed=5, batch_size=4, replay_capacity=64, learning_starts=4,
    eval_episodes=1, checkpoint_every=1, torch_threads=1,
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))
# Small sets keep the tests to seconds; the defaults (500 and 2,000) are for real policies.
COUNTS = ("--calibration-observations", "40", "--agreement-observations", "60")


def _graspq(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, "-m", "graspq.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, train_run):
    return train_run(tmp_path_factory.mktemp("quantize") / "run", TINY, TINY_ENV)


@pytest.fixture(scope="module")
def exported(run_dir):
    """(float32 path, int8 path, the export's JSON report) of `graspq export --quantize`."""
    out = run_dir.parent / "policies" / "policy.onnx"
    result = _graspq("export", "--checkpoint", str(run_dir), "--out", str(out),
                     "--quantize", "int8", *COUNTS, "--min-agreement", "0.9", "--json")
    assert result.returncode == 0, result.stderr
    return out, int8_path(out), json.loads(result.stdout)


def _props(path):
    return {prop.key: prop.value for prop in onnx.load(path).metadata_props}


def test_export_writes_the_int8_file_beside_the_float32_one(exported):
    float32, int8, report = exported
    assert int8.name == "policy.int8.onnx"
    assert sorted(p.name for p in float32.parent.iterdir()) == ["policy.int8.onnx",
                                                                "policy.onnx"]
    assert report["path"] == str(float32) and report["int8"]["path"] == str(int8)
    assert report["int8"]["agreement"] >= 0.9
    assert report["int8"]["agreement_observations"] == 60
    assert report["int8"]["bytes"] == int8.stat().st_size < float32.stat().st_size
    ops = {node.op_type for node in onnx.load(int8).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # QDQ: int8 inside the graph


def test_int8_metadata_is_the_float32_files_plus_how_it_was_made(exported):
    float32, int8, report = exported
    fp32_props, int8_props = _props(float32), _props(int8)
    quantization = json.loads(int8_props.pop(meta.QUANTIZATION_KEY))
    assert int8_props == fp32_props  # same contract, config and config hash
    assert quantization["float32_sha256"] == hashlib.sha256(float32.read_bytes()).hexdigest()
    assert quantization["agreement"] == report["int8"]["agreement"]
    assert (quantization["calibration_observations"], quantization["agreement_observations"],
            quantization["min_agreement"]) == (40, 60, 0.9)
    assert (quantization["weight_type"], quantization["activation_type"]) == ("int8", "uint8")


def test_the_runtime_and_the_servo_loop_run_the_int8_file(exported):
    float32, int8, _ = exported
    reference, policy = OnnxPolicy(float32, TINY_ENV), OnnxPolicy(int8, TINY_ENV, "multi")
    assert (reference.precision, policy.precision) == ("float32", "int8")
    assert policy.input_names == reference.input_names
    obs = rendered_observations(TINY_ENV, 1, seed=3)
    decision = policy.decide({key: value[0] for key, value in obs.items()})
    expected = reference.decide({key: value[0] for key, value in obs.items()})
    assert decision.q_values.dtype == np.float32 and decision.q_values.shape == (9,)
    # int8 rounding: close to float32, not equal.
    spread = float(np.ptp(expected.q_values)) + 1e-6
    assert np.abs(decision.q_values - expected.q_values).max() <= 0.2 * spread + 1e-3
    env = BaxterGraspEnv(TINY_ENV)
    try:  # the servo runtime holds an OnnxPolicy whatever its precision
        runtime = ServoRuntime(TINY_ENV, ServoConfig(), policy)
        result = ServoSim(env, runtime, SimDevicesConfig().zero_latency()).run_episode(0)
    finally:
        env.close()
    assert result.steps >= 1 and result.outcome


def test_eval_runs_both_files_on_the_same_episodes(exported):
    float32, int8, _ = exported
    reports = []
    for path in (float32, int8):
        result = _graspq("eval", "--policy", str(path), "--episodes", "3", "--seed", "9",
                         "--json")
        assert result.returncode == 0, result.stderr
        reports.append(json.loads(result.stdout))
    assert [r["precision"] for r in reports] == ["float32", "int8"]
    for report in reports:
        assert report["episodes"] == 3 and report["seed"] == 9
        assert sorted(report["per_object"]) == ["cube", "cylinder", "sphere"]


def _near_tie(hidden_w, hidden_b, out_w, out_b):
    """Rewrite the Q head (hidden layer, then output layer) so that actions 0 and 1 read two
    hidden units that differ by far less than one int8 step of the hidden activations (1.0
    and 1.00001) and beat every other action: float32 always picks 1, int8 rounds both
    units alike and picks 0."""
    hidden_w[:2] = 0.0
    hidden_b[0], hidden_b[1] = 1.0, 1.0 + 1e-5
    out_w.zero_()
    out_b.fill_(-100.0)
    out_w[0, 0] = out_w[1, 1] = 10.0
    out_b[:2] = 0.0


def _near_tie_policy(path):
    torch.manual_seed(0)
    network = GraspQNetwork(TINY.network.gqn(32, "multi"))
    with torch.no_grad():
        _near_tie(network.head[0].weight, network.head[0].bias, network.head[-1].weight,
                  network.head[-1].bias)
    return write_policy(network, TINY_ENV, TINY, path)


def test_an_int8_policy_that_acts_otherwise_is_refused_and_not_written(tmp_path):
    float32 = _near_tie_policy(tmp_path / "tie.onnx")
    with pytest.raises(AgreementError, match=r"on \d+\.\d\d% of 50 recorded observations, "
                       r"99\.00% required; no int8 file written") as refused:
        quantize_policy(float32, calibration_count=20, agreement_count=50)
    assert refused.value.agreement < 0.99 and refused.value.observations == 50
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tie.onnx"]  # no partial file


def test_export_cli_refusal_keeps_the_float32_file_and_exits_3(run_dir, tmp_path):
    payload = torch.load(run_dir / "checkpoints" / "best.pt", weights_only=True)
    online = payload["agent"]["online"]
    _near_tie(*(online[f"head.{key}"] for key in ("0.weight", "0.bias", "2.weight",
                                                  "2.bias")))
    checkpoint = tmp_path / "tie.pt"
    torch.save(payload, checkpoint)
    out = tmp_path / "policies" / "policy.onnx"
    out.parent.mkdir()
    int8_path(out).write_bytes(b"an int8 file of an earlier export")
    result = _graspq("export", "--checkpoint", str(checkpoint), "--out", str(out),
                     "--quantize", "int8", *COUNTS)
    assert result.returncode == 3, result.stderr
    assert re.search(r"on \d+\.\d\d% of 60 recorded observations, 99\.00% required; no int8 "
                     r"file written \(the float32 policy .*policy\.onnx was written\)",
                     result.stderr)
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    # The float32 file stands; the stale int8 file of another float32 file is gone too.
    assert sorted(p.name for p in out.parent.iterdir()) == ["policy.onnx"]


def test_bad_quantize_input_is_refused(run_dir, tmp_path):
    out = tmp_path / "policy.onnx"
    cli = _graspq("export", "--checkpoint", str(run_dir), "--out", str(out), "--quantize",
                  "int8", "--min-agreement", "1.5")  # refused before anything is exported
    assert cli.returncode == 2 and "--min-agreement" in cli.stderr
    assert "Traceback" not in cli.stderr and list(tmp_path.iterdir()) == []
    float32 = _near_tie_policy(tmp_path / "policy.onnx")
    with pytest.raises(ValueError, match="--min-agreement"):
        quantize_policy(float32, min_agreement=1.5)
    with pytest.raises(ValueError, match="overwrite the float32 file"):
        quantize_policy(float32, out=float32)
    with pytest.raises(ValueError, match="quant_format"):
        quantize_policy(float32, quant_format="int4")
