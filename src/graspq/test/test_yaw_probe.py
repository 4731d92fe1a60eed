"""tools/yaw_probe.py end to end on a few real cubes: the tables it prints, not the figures
(those need thousands of cubes; docs/results_reward_only.md)."""

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graspq.sim.settings import CameraConfig, EnvConfig

from .test_grasp_diagnosis import TINY, TINY_ENV
from .tool_module import load_tool

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "yaw_probe.py"
CELL = re.compile(r"^(n/a \(n/a\)|-?\d+\.\d\d \(-?\d+\.\d\d\))$")


def _tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, "-W", "error::RuntimeWarning", str(TOOL), *args],
                          capture_output=True, text=True, timeout=600, check=False, env=env,
                          cwd=ROOT)


def _run(*args: str) -> list[str]:
    done = _tool(*args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()


def test_close_value_table_marks_a_band_without_held_out_cubes():
    # Two held-out cubes cannot fill the three yaw bands: at least one reads n/a.
    lines = _run("--close-value", "4", "--states", "6", "--updates", "3")
    assert "held out: the last 2" in lines[0]
    rows = [line for line in lines if line.startswith("| 4 |")]
    assert len(rows) == 1
    cells = [cell.strip() for cell in rows[0].strip("|").split("|")][1:-1]
    assert len(cells) == 3 and all(CELL.match(cell) for cell in cells)
    assert any(cell == "n/a (n/a)" for cell in cells)
    assert any(cell != "n/a (n/a)" for cell in cells)


def test_too_many_training_cubes_are_refused_by_name():
    done = _tool("--close-value", "9", "--states", "10")
    assert done.returncode == 2 and "--close-value sizes must be at most 8" in done.stderr


def test_a_missing_checkpoint_is_refused_by_name(tmp_path):
    done = _tool("--checkpoint", str(tmp_path / "gone.pt"), "--states", "2")
    assert done.returncode == 2 and "checkpoint file not found" in done.stderr
    assert "Traceback" not in done.stderr


def _load_tool():
    return load_tool(TOOL)


def test_the_turn_towards_a_face_lessens_the_yaw_still_to_turn():
    tool = _load_tool()
    config = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32))
    step = config.actions.yaw_step_deg
    _, yaw, closes = tool.record(config, config.scene.start_height_above_table_m, 8, 0.01, 3,
                                 follow=tool._close)
    _, same_yaw, turns = tool.record(config, config.scene.start_height_above_table_m, 8, 0.01,
                                     3, follow=tool._turn_towards)
    np.testing.assert_allclose(same_yaw, yaw)  # the same cubes whatever follows
    assert all(step_.outcome in ("success", "partial", "miss") for step_ in closes)
    for before, turn in zip(yaw, turns, strict=True):
        assert turn.outcome == "running" and turn.reward == config.rewards.step
        # One turn step nearer the face, within the arm's tracking; a cube repeats every
        # 90 deg, so a yaw under half a step comes out on the other side.
        assert abs(turn.yaw_to_turn_deg) == pytest.approx(abs(abs(before) - step), abs=1.0)


def test_policy_report_sets_the_turn_against_its_one_step_target(tmp_path, train_run):
    env = TINY_ENV
    run = train_run(tmp_path / "run", TINY, env)
    lines = _run("--checkpoint", str(run), "--states", "9")
    split = lines.index("")
    policy = [line for line in lines[:split] if re.match(r"^\| \d", line)]
    look_ahead = [line for line in lines[split:] if re.match(r"^\| \d", line)]
    assert policy and len(policy) == len(look_ahead)
    # No advantage learning in this run: its targets are the plain r + gamma max Q'.
    assert "(gamma 0.95, advantage learning 0)" in lines[split + 1]
    for mine, ahead in zip(policy, look_ahead, strict=True):
        cells = [cell.strip() for cell in mine.strip("|").split("|")]
        after = [cell.strip() for cell in ahead.strip("|").split("|")]
        assert after[0] == cells[0]  # the same band
        assert after[2] == cells[8]  # the same Q(turn towards)
        # max Q' is at least Q'(close): the target is at least r + gamma Q'(close).
        target, q_close = float(after[3]), float(after[4])
        assert target >= env.rewards.step + 0.95 * q_close - 0.011
        assert re.fullmatch(r"\d+%", after[5])
        assert after[6] == cells[9]  # the same Q(best move)
        assert re.fullmatch(r"-?\d+\.\d\d", after[7])
