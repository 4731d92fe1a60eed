"""The `graspq` command line, run as a real subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

from graspq.config import to_mapping
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig


def _graspq(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, "-m", "graspq.cli", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, check=False)


def test_sim_oracle_json_report():
    result = _graspq("sim", "--policy", "oracle", "--episodes", "3", "--seed", "5", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert {"episodes", "success_rate", "per_object", "mean_steps", "mean_return"} <= set(report)
    assert report["episodes"] == 3
    assert sum(row["episodes"] for row in report["per_object"].values()) == 3
    assert report["success_rate"] == 1.0
    assert 0 < report["mean_steps"] < EnvConfig().max_steps


def test_sim_random_policy_rarely_succeeds():
    result = _graspq("sim", "--policy", "random", "--episodes", "10", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["success_rate"] <= 0.2
    assert report["mean_return"] < 1.0


def test_sim_frames_show_both_cameras(tmp_path):
    import imageio.v2 as imageio

    frames = tmp_path / "frames"
    result = _graspq("sim", "--episodes", "1", "--object", "cube", "--frames", str(frames))
    assert result.returncode == 0, result.stderr
    pictures = sorted(frames.glob("*.png"))
    assert len(pictures) >= 5
    picture = imageio.imread(pictures[0])
    assert picture.shape[1] > 2.5 * picture.shape[0]  # three panels side by side


def test_sim_video_is_written(tmp_path):
    video = tmp_path / "demo.mp4"
    result = _graspq("sim", "--episodes", "1", "--object", "sphere", "--video", str(video))
    assert result.returncode == 0, result.stderr
    assert video.stat().st_size > 10_000


def test_bad_config_is_one_line_naming_the_key(tmp_path):
    params = to_mapping(EnvConfig())
    params["camera"]["image_size"] = 0
    path = tmp_path / "env.yaml"
    path.write_text(yaml.safe_dump({ENV_NODE_NAME: {"ros__parameters": params}}))
    result = _graspq("sim", "--episodes", "1", "--config", str(path))
    assert result.returncode == 2
    assert "camera.image_size" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_config_file_and_bad_arguments_fail_cleanly(tmp_path):
    missing = tmp_path / "nope.yaml"
    result = _graspq("sim", "--config", str(missing))
    assert result.returncode == 2 and f"config file '{missing}': file not found" in result.stderr
    result = _graspq("config", "check", str(missing))  # not "no known node section"
    assert result.returncode == 2 and f"config file '{missing}': file not found" in result.stderr
    result = _graspq("sim", "--episodes", "0")
    assert result.returncode == 2 and "--episodes" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_refuses_a_missing_or_corrupt_policy_file_by_name(tmp_path):
    corrupt = tmp_path / "policy.onnx"
    corrupt.write_bytes(b"not a protobuf")
    for path, reason in ((corrupt, "not a loadable ONNX model"),
                         (tmp_path / "gone.onnx", "policy file not found")):
        result = _graspq("eval", "--policy", str(path), "--episodes", "1")
        assert result.returncode == 2 and f"{path}: {reason}" in result.stderr
        assert "Traceback" not in result.stderr


def test_bench_env_json():
    result = _graspq("bench", "env", "--seconds", "1", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert {"env_steps_per_s", "physics_steps_per_s", "render_ms", "image_size"} <= set(report)
    assert report["env_steps_per_s"] > 0 and report["render_ms"] > 0
    assert report["image_size"] == 64


def test_config_dump_round_trips(tmp_path):
    out = tmp_path / "env.yaml"
    assert _graspq("config", "dump", "--out", str(out)).returncode == 0
    result = _graspq("config", "check", str(out))
    assert result.returncode == 0, result.stderr
    assert Path(out).read_text().startswith("# GraspQ scene")
