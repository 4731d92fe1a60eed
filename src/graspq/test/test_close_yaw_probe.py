"""tools/close_yaw_probe.py on a few real cubes: its bands, its aim and its table (the figures
need hundreds of cubes; docs/results_reward_only.md)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from graspq.actions import Action
from graspq.config import apply_overrides
from graspq.learning.settings import ExplorationConfig, NetworkConfig, TrainingConfig
from graspq.sim.settings import EnvConfig

from .tool_module import load_tool

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "close_yaw_probe.py"
TINY_ENV = apply_overrides(EnvConfig(), ["actions.close_mode=descend", "camera.image_size=32",
                                         "max_steps=4"])
TINY = TrainingConfig(
    learner="ddqn", episodes=2, seed=1, batch_size=4, replay_capacity=100, learning_starts=4,
    eval_every=2, eval_episodes=3, checkpoint_every=2, torch_threads=1,
    exploration=ExplorationConfig(epsilon_decay_episodes=2),
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))


def _tool(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          timeout=600, check=False, env=env, cwd=ROOT)


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


@pytest.fixture(scope="module")
def tool():
    return load_tool(TOOL)


def test_bands_follow_the_whole_turn_steps_up_to_45_deg(tool):
    assert tool.steps_bands(15.0, 3) == [(0, 0.0, 7.5), (1, 7.5, 22.5), (2, 22.5, 37.5),
                                         (3, 37.5, 45.0)]
    assert tool.steps_bands(15.0, 1) == [(0, 0.0, 7.5), (1, 7.5, 45.0)]
    assert tool.steps_bands(30.0, 3) == [(0, 0.0, 15.0), (1, 15.0, 45.0)]


def test_the_aimed_close_turns_the_nearest_steps_towards_a_face(tool):
    assert tool.aimed_close(3.0, 15.0, 3) == Action.CLOSE
    assert tool.aimed_close(20.0, 15.0, 3) == 9  # CLOSE_YAW+1
    assert tool.aimed_close(-40.0, 15.0, 2) == 12  # CLOSE_YAW-2: as far as the set goes
    assert tool.aimed_close(-44.0, 15.0, 3) == 14  # CLOSE_YAW-3


def test_the_table_gives_every_close_and_aims_the_plain_close_near_a_face():
    done = _tool("--env-config", "config/env_reward_only.yaml", "--turns", "1", "--states", "12")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    header = _cells(lines[1])
    assert header[2:5] == ["CLOSE", "CLOSE_YAW+1", "CLOSE_YAW-1"]
    rows = [_cells(line) for line in lines[3:] if line.startswith("| ")]
    assert 1 <= len(rows) <= 2 and sum(int(row[1]) for row in rows) == 12
    for row in rows:
        if row[0].startswith("0-7.5 deg"):  # cubes near a face: the aimed close is CLOSE
            assert row[5] == row[2]
    assert lines[-1].startswith("all: aimed close ")


def test_a_policy_with_turned_closes_is_asked_and_one_without_refused(tmp_path, train_run):
    turned = apply_overrides(TINY_ENV, ["actions.close_yaw_turns=2"])
    run = train_run(tmp_path / "turned", TINY, turned)
    done = _tool("--checkpoint", str(run), "--states", "6")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert _cells(lines[1])[-3:] == ["policy closes", "picks the aimed", "its close lifts"]
    assert "CLOSE_YAW-2" in lines[1]
    done = _tool("--checkpoint", str(run), "--states", "3", "--episodes", "4")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    start = lines.index("4 greedy cube episodes (seeds 2000000...), at the step that closes")
    rows = [_cells(line) for line in lines[start + 3:] if line.startswith("| ")]
    assert sum(int(row[1]) for row in rows) == 4
    for row in rows:
        if row[0] != "timeout":  # a closed episode's yaws fold into a cube's quarter turn
            assert 0 <= float(row[3].split(" / ")[0]) <= 45
    assert lines[-2].startswith("by yaw after the turn: ") and lines[-1].startswith("by offset: ")
    plain = train_run(tmp_path / "plain", TINY, TINY_ENV)
    done = _tool("--checkpoint", str(plain), "--states", "6")
    assert done.returncode == 2 and "trained without turned closes" in done.stderr
    done = _tool("--checkpoint", str(tmp_path / "gone.pt"), "--states", "6")
    assert done.returncode == 2 and "checkpoint file not found" in done.stderr
    assert "Traceback" not in done.stderr
