"""`graspq bench policy`: float32 and int8 ONNX Runtime against torch eager, run as a real
subprocess."""

import json
import os
import subprocess
import sys


def _graspq(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, "-m", "graspq.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


def test_bench_policy_reports_float32_int8_and_torch_from_one_run():
    result = _graspq("bench", "policy", "--seconds", "0.2", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON object on stdout
    for key in ("onnx_p50_ms", "onnx_p99_ms", "int8_p50_ms", "int8_p99_ms", "torch_p50_ms",
                "torch_p99_ms", "speedup_p50", "int8_vs_onnx_p50", "decide_p50_ms",
                "decide_p99_ms"):
        assert report[key] > 0, key
    for side in ("onnx", "int8", "torch"):
        assert report[f"{side}_p50_ms"] <= report[f"{side}_p99_ms"], side
    assert report["speedup_p50"] == report["torch_p50_ms"] / report["onnx_p50_ms"]
    assert report["int8_vs_onnx_p50"] == report["int8_p50_ms"] / report["onnx_p50_ms"]
    # The int8 side is the file `graspq export --quantize int8` writes.
    assert (report["int8_format"], report["int8_per_channel"]) == ("QDQ", True)
    assert 0.0 <= report["int8_agreement"] <= 1.0
    assert report["cpu_model"] and isinstance(report["cpu_int8_flags"], list)
    # Without --checkpoint: the default multi-view GQN at 64x64, one thread by default.
    assert (report["threads"], report["image_size"], report["views"]) == (1, 64, "multi")
    assert report["batch"] == 1 and report["samples_per_side"] >= 50


def test_bench_policy_times_a_baseline_file_in_the_same_run(tmp_path):
    """--baseline: a policy file written to disk (here the same fresh GQN the bench builds,
    exported by write_policy) is timed in the same blocks, and the ratios are of this run."""
    import torch

    from graspq.learning.model import GraspQNetwork
    from graspq.learning.settings import TrainingConfig
    from graspq.policy.export import write_policy
    from graspq.sim.settings import EnvConfig

    env_config, training = EnvConfig(), TrainingConfig()
    torch.manual_seed(0)
    network = GraspQNetwork(training.network.gqn(env_config.camera.image_size, training.views))
    baseline = write_policy(network, env_config, training, tmp_path / "earlier.onnx")
    result = _graspq("bench", "policy", "--seconds", "0.2", "--baseline", str(baseline),
                     "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["baseline_file"] == str(baseline)
    assert 0 < report["baseline_p50_ms"] <= report["baseline_p99_ms"]
    assert report["int8_vs_baseline_p50"] == report["int8_p50_ms"] / report["baseline_p50_ms"]
    assert report["onnx_vs_baseline_p50"] == report["onnx_p50_ms"] / report["baseline_p50_ms"]
    plain = _graspq("bench", "policy", "--seconds", "0.2", "--json")
    assert not any(key.startswith("baseline") for key in json.loads(plain.stdout))


def test_bench_policy_bad_input_is_one_line_and_exit_2(tmp_path):
    threads = _graspq("bench", "policy", "--threads", "0")
    assert threads.returncode == 2 and "intra_op_threads" in threads.stderr
    level = _graspq("bench", "policy", "--graph-optimization", "max")
    assert level.returncode == 2 and "graph_optimization" in level.stderr
    missing = _graspq("bench", "policy", "--checkpoint", str(tmp_path / "none"))
    assert missing.returncode == 2 and "not found" in missing.stderr
    int8_format = _graspq("bench", "policy", "--int8-format", "QInt4")
    assert int8_format.returncode == 2 and "--int8-format" in int8_format.stderr
    not_onnx = tmp_path / "policy.onnx"
    not_onnx.write_text("not a model")
    baseline = _graspq("bench", "policy", "--seconds", "0.2", "--baseline", str(not_onnx))
    assert baseline.returncode == 2 and "not a loadable ONNX model" in baseline.stderr
    for result in (threads, level, missing, baseline):
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
