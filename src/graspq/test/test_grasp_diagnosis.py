"""tools/grasp_diagnosis.py: a real checkpoint, a real subprocess, a report per object."""

import dataclasses
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graspq.actions import Action
from graspq.config import apply_overrides
from graspq.learning.settings import ExplorationConfig, NetworkConfig, TrainingConfig
from graspq.sim.settings import CameraConfig, EnvConfig

from .tool_module import load_tool

TOOL = Path(__file__).resolve().parents[3] / "tools" / "grasp_diagnosis.py"
TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=12)
TINY = TrainingConfig(
    episodes=2, batch_size=8, replay_capacity=200, learning_starts=8, eval_every=2,
    eval_episodes=3, checkpoint_every=2, torch_threads=1,
    exploration=ExplorationConfig(epsilon_decay_episodes=2),
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))


def _tool():
    return load_tool(TOOL)


def _object_sections(run) -> list[str]:
    """The report of six episodes from seed 7, split into its sections: one per training object,
    in their order."""
    done = subprocess.run([sys.executable, str(TOOL), "--checkpoint", str(run),
                           "--episodes", "6", "--seed", "7"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    sections = re.split(r"^## ", done.stdout, flags=re.M)[1:]
    assert [section.split("\n")[0] for section in sections] == ["cube", "sphere", "cylinder"]
    return sections


def test_report_gives_outcomes_agreement_and_closing_errors_per_object(tmp_path, train_run):
    run = train_run(tmp_path / "run", TINY, TINY_ENV)
    sections = _object_sections(run)
    for section in sections:
        outcomes = re.search(r"^Outcomes: (.*)$", section, flags=re.M).group(1)
        # Six episodes cycle the three objects: two each.
        assert sum(int(count) for count in re.findall(r"\d+", outcomes)) == 2
        states = [int(n) for n in re.findall(r"^\| [A-Z_]+ \| (\d+) \|", section, flags=re.M)]
        assert states and all(n > 0 for n in states)
        # TINY_ENV allows 12 steps: two episodes give at most 24 checked states.
        assert sum(states) <= 24
        assert "pose head" not in section  # this network has none
        # The value check: the first step of each of the object's two episodes.
        first = re.search(r"^\| first step of every episode \| (\d+) \| (-?[\d.]+) \| "
                          r"(-?[\d.]+) \| ([+-][\d.]+) \|$", section, flags=re.M)
        assert first and int(first.group(1)) == 2
        q, returned, gap = (float(first.group(i)) for i in (2, 3, 4))
        assert gap == pytest.approx(q - returned, abs=0.011)
        # The action gap, over the states where the oracle moves in x or y.
        moves = sum(int(n) for n in re.findall(r"^\| (?:PLUS|MINUS)_[XY] \| (\d+) \|", section,
                                              flags=re.M))
        found = re.search(r"^\| Q\(the oracle's move\) - Q\(its opposite\) \| (\d+) \| "
                          r"[+-][\d.]+ \| [+-][\d.]+ \| (\d+)% \|$", section, flags=re.M)
        assert (found is not None) == (moves > 0)
        if found:
            assert int(found.group(1)) == moves and 0 <= int(found.group(2)) <= 100
    # The cube's two episodes, split by the yaw they start with.
    starts = re.findall(r"^\| [\d.]+-[\d.]+ deg \| (\d+) \| [a-z]", sections[0], flags=re.M)
    assert sum(int(n) for n in starts) == 2
    assert "yaw to turn at the start" not in "".join(sections[1:])


def test_report_reads_the_pose_head_when_there_is_one(tmp_path, train_run):
    run = train_run(tmp_path / "run", dataclasses.replace(TINY, pose_loss_weight=0.5),
                    TINY_ENV)
    done = subprocess.run([sys.executable, str(TOOL), "--checkpoint", str(run),
                           "--episodes", "3", "--seed", "7", "--revisit-window", "4"],
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert "never moving back to a pose of its last 4 steps" in done.stdout.split("\n")[0]
    sections = dict(s.split("\n", 1) for s in re.split(r"^## ", done.stdout, flags=re.M)[1:])
    for kind, section in sections.items():
        rows = re.findall(r"^\| (under 4 cm|4-8 cm|8 cm or more) \| (\d+) \| ([\d. /]+) \|(.*)$",
                          section, flags=re.M)
        assert rows, kind
        # Every checked state lands in one height band; the yaw column is the cube's alone.
        states = sum(int(n) for n in re.findall(r"^\| [A-Z_]+ \| (\d+) \|", section, flags=re.M))
        assert sum(int(row[1]) for row in rows) == states
        assert all(bool(row[3].strip(" |")) == (kind == "cube") for row in rows)


def test_loop_axis_names_two_step_loops_and_short_cycles():
    tool = _tool()
    x, minus_x, z, minus_z = (int(a) for a in (Action.PLUS_X, Action.MINUS_X, Action.PLUS_Z,
                                                Action.MINUS_Z))
    assert tool.loop_axis([z] * 5 + [x, minus_x] * 4) == "loop on x"
    assert tool.loop_axis([minus_z, z] * 4) == "loop on z"
    assert tool.loop_axis([int(Action.PLUS_YAW), int(Action.MINUS_YAW)] * 4) == "loop on yaw"
    assert tool.loop_axis([x, minus_x] * 3 + [x, z]) == "no loop"  # broken at the end
    assert tool.loop_axis([x, z] * 4) == "no loop"  # alternating, but not one axis
    assert tool.loop_axis([x, minus_x] * 2) == "no loop"  # too short to call
    # Longer cycles, what a loop becomes when the policy may not undo its last move.
    assert tool.loop_axis([z] + [x, minus_z, minus_x, z] * 2) == \
        "cycle of 4: PLUS_X, MINUS_Z, MINUS_X, PLUS_Z"
    y = int(Action.PLUS_Y)
    assert tool.loop_axis([x, y, minus_x] * 3) == "no loop"  # repeats, but drifts along y
    assert tool.loop_axis([x, y, minus_x, z] * 2) == "no loop"  # drifts up and along y
    assert tool.loop_axis([x] * 8) == "no loop"  # going on is not a loop
    # Turned closes (indices 9..) end an episode, like CLOSE: never part of a loop.
    assert tool.loop_axis([x, 9] * 4) == "no loop"


def test_a_policy_with_turned_closes_is_diagnosed_with_its_closes_named(tmp_path, train_run):
    turned = apply_overrides(TINY_ENV, ["actions.close_yaw_turns=2"])
    run = train_run(tmp_path / "run", TINY, turned)
    sections = _object_sections(run)
    # Every object's closed episodes have their closing errors in its table.
    for section in sections:
        outcomes = dict((name, int(n)) for name, n in
                        re.findall(r"(\w+) (\d+)", re.search(r"^Outcomes: (.*)$", section,
                                                             flags=re.M).group(1)))
        closed = sum(n for name, n in outcomes.items() if name != "timeout")
        rows = re.findall(r"^\| (success|partial|miss) \| (\d+) \|", section, flags=re.M)
        assert sum(int(n) for _, n in rows) == closed


def test_returns_to_go_discount_each_steps_future():
    tool = _tool()
    # Two steps of the step penalty, then a successful close.
    returns = tool.returns_to_go([-0.025, -0.025, 10.0], 0.9)
    np.testing.assert_allclose(returns, [-0.025 + 0.9 * (-0.025 + 0.9 * 10.0),
                                         -0.025 + 0.9 * 10.0, 10.0])
    assert tool.returns_to_go([], 0.9).size == 0
