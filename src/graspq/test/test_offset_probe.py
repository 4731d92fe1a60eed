"""tools/offset_probe.py on a few real scenes: the offsets it records and the table it prints
(the figures need thousands of scenes; docs/results_reward_only.md)."""

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from graspq.observation import OVERHEAD_KEY
from graspq.sim.settings import EnvConfig

from .tool_module import load_tool

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "offset_probe.py"


def _tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          timeout=600, check=False, env=env, cwd=ROOT)


def _load_tool():
    return load_tool(TOOL)


def test_recorded_offsets_lie_within_the_half_width_and_vary():
    tool = _load_tool()
    config = dataclasses.replace(EnvConfig(), camera=dataclasses.replace(
        EnvConfig().camera, image_size=32))
    obs, offsets = tool.record(config, 6, 0.03, seed=1)
    assert obs[OVERHEAD_KEY].shape == (6, 32, 32, 4) and offsets.shape == (6, 2)
    assert np.abs(offsets).max() <= 3.3  # cm; settling may nudge the object
    assert np.abs(offsets).max() > 0.5 and len(np.unique(offsets.round(2))) > 6


def test_moves_stay_within_half_a_step_else_step_towards_the_object():
    tool = _load_tool()
    np.testing.assert_array_equal(tool._moves(np.array([[0.4, -0.6], [-2.0, 0.5]]), 0.5),
                                  [[0, -1], [-1, 0]])


def test_the_table_has_one_row_per_view_and_variant():
    done = _tool("--states", "10", "--updates", "2", "--env-config", "config/env.yaml",
                 "--offset-channels")
    assert done.returncode == 0, done.stderr
    rows = [line for line in done.stdout.splitlines() if line.startswith(("| single", "| multi"))]
    assert [row.split("|")[1].strip() for row in rows] == [
        "single", "single + offset channels", "multi", "multi + offset channels"]
    assert "held out: the last 20%" in done.stdout


def test_bad_arguments_are_refused_by_name(tmp_path):
    done = _tool("--states", "5")
    assert done.returncode == 2 and "--states must be at least 10" in done.stderr
    done = _tool("--env-config", str(tmp_path / "gone.yaml"))
    assert done.returncode == 2 and "gone.yaml" in done.stderr and "Traceback" not in done.stderr
