"""tools/bench_scene.py: the scene against a baseline commit in one run. Structure only: no
test here depends on how fast the machine is."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .tool_module import load_tool

ROOT = Path(__file__).resolve().parents[3]
TOOL = ROOT / "tools" / "bench_scene.py"
PHASES = ("physics_ms", "ik_ms", "render_ms", "other_ms")


def _tool():
    return load_tool(TOOL)


def _run(*args):
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    done = subprocess.run([sys.executable, str(TOOL), *args], capture_output=True, text=True,
                          timeout=600, check=False, env=env, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cpu_names_the_model_and_only_known_flags():
    found = _tool().cpu()
    assert found["model"]
    assert set(found["flags"].split()) <= set(_tool()._FLAGS)


def test_phase_profile_splits_the_whole_step():
    # In a subprocess: the profile wraps mj_step, the IK and the renderer for its process.
    phases = json.loads(_run("--phases", "--steps", "30").strip().splitlines()[-1])
    assert all(phases[key] >= 0.0 for key in PHASES)
    assert phases["physics_ms"] > 0.0 and phases["render_ms"] > 0.0
    assert sum(phases[key] for key in PHASES) == pytest.approx(phases["step_ms"], rel=1e-6)


@pytest.mark.slow
def test_compare_runs_both_trees_and_reports_ratios():
    if not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout (it checks the baseline out into a worktree)")
    report = json.loads(_run("--baseline", "HEAD", "--seconds", "0.3", "--steps", "20",
                             "--rounds", "1", "--json"))
    assert set(report["commits"]) == {"baseline", "current"}
    for label in ("baseline", "current"):
        assert report[label]["bench"]["env_steps_per_s"] > 0
        assert set(PHASES) <= set(report[label]["phases"])
    assert report["env_steps_per_s_ratio"] > 0
