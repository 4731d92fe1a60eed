"""tools/bench_update.py: training's update against a baseline commit in one run. Structure
only: no test here depends on how fast the machine is."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "bench_update.py"
SMALL = ["--set", "network.stream_channels=4", "--set", "network.joint_channels=4",
         "--set", "network.fc_width=16", "--set", "network.motor_width=8",
         "--set", "learning_starts=32", "--set", "close_replay_rows=4",
         "--set", "augment_shift_px=1"]


def _run(*args: str) -> str:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    done = subprocess.run([sys.executable, str(TOOL), *args, *SMALL], capture_output=True,
                          text=True, timeout=600, check=False, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize(("close_probability", "share"), [(0.0, 0.0), (1.0, 1.0)])
def test_the_replays_closes_set_the_terminated_share(close_probability, share):
    found = json.loads(_run("--measure", "--seconds", "0.3", "--transitions", "60",
                            "--close-probability", str(close_probability)).splitlines()[-1])
    assert found["terminated_share"] == share
    assert found["updates_per_s"] > 0 and found["update_ms"] > 0


@pytest.mark.slow
def test_compare_runs_both_trees_and_reports_the_ratio():
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (it checks the baseline out into a worktree)")
    report = json.loads(_run("--baseline", "HEAD", "--seconds", "0.3", "--rounds", "1",
                             "--transitions", "60", "--json",
                             "--baseline-set", "advantage_learning=0.5"))
    assert set(report["commits"]) == {"baseline", "current"}
    for label in ("baseline", "current"):
        assert report[label]["updates_per_s"] > 0
        assert len(report["runs"][label]) == 1
    # --baseline-set reaches the baseline's process alone, after the shared --set.
    shared = SMALL[1::2]
    assert report["runs"]["current"][0]["set"] == shared
    assert report["runs"]["baseline"][0]["set"] == [*shared, "advantage_learning=0.5"]
    assert report["settings"]["baseline_set"] == ["advantage_learning=0.5"]
    assert report["speedup"] == pytest.approx(
        report["current"]["updates_per_s"] / report["baseline"]["updates_per_s"])
