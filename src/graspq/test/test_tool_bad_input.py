"""The diagnostic tools refuse bad input by name (exit 2, one line), as graspq's commands do."""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from graspq.bad_input import refused_by_name
from graspq.config import ConfigError

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("tool", "args", "named"), [
    ("grasp_diagnosis.py", ["--checkpoint", "{tmp}/gone"],
     "{tmp}/gone: checkpoint file not found"),
    ("close_tolerance.py", ["--env-config", "{tmp}/gone.yaml"],
     "config file '{tmp}/gone.yaml': file not found"),
    ("close_yaw_probe.py", ["--env-config", "{tmp}/gone.yaml"],
     "config file '{tmp}/gone.yaml': file not found"),
    ("yaw_probe.py", ["--env-config", "{tmp}/gone.yaml", "--states", "2"],
     "config file '{tmp}/gone.yaml': file not found"),
    ("yaw_probe.py", ["--settings", "70:0.15", "wide"], "'wide' is not FOVY_DEG:HEIGHT_M"),
])
def test_a_tool_names_its_bad_input(tmp_path, tool, args, named):
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    done = subprocess.run([sys.executable, str(ROOT / "tools" / tool),
                           *(arg.format(tmp=tmp_path) for arg in args)],
                          capture_output=True, text=True, timeout=120, check=False, env=env,
                          cwd=ROOT)
    assert done.returncode == 2, done.stderr
    assert named.format(tmp=tmp_path) in done.stderr
    assert "Traceback" not in done.stderr


def test_only_input_errors_are_turned_into_a_usage_error():
    parser = argparse.ArgumentParser(prog="tool")
    with pytest.raises(SystemExit) as exited, refused_by_name(parser):
        raise ConfigError("camera.image_size", "must be > 0")
    assert exited.value.code == 2
    with pytest.raises(ZeroDivisionError), refused_by_name(parser):  # a bug keeps its traceback
        raise ZeroDivisionError
