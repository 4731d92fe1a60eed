"""tools/yaw_probe.py end to end on a few real cubes: the tables it prints, not the figures
(those need thousands of cubes; docs/results_reward_only.md)."""

import os
import re
import subprocess
import sys
from pathlib import Path

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
