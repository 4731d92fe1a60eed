#!/usr/bin/env python3
"""The scene's speed against a baseline commit, measured in one run (issue #25, item 6).

Checks the baseline commit out into a temporary git worktree and, round after round (the order
alternating, so that drift in the machine's speed falls on both alike), runs for it and for
this checkout, each alone on one core (``taskset -c 0``):

- ``graspq bench env --json`` (env steps/s under random actions, physics, render), and
- a phase profile of the same random-action loop for a fixed number of env steps: the time
  in physics (``mj_step``), IK (``DownwardIK.solve``), rendering (``CameraRig.render``) and
  the rest (Python, observation packing, contact checks, resets' bookkeeping). The scene
  replays the same trajectories in both (``test_scene_reference.py``), so the work is equal.

The baseline's code is imported from its worktree (``PYTHONPATH``), with this checkout's
virtual environment (the same MuJoCo, numpy and Mesa). Usage, from the repository root::

    MUJOCO_GL=egl .venv/bin/python tools/bench_scene.py --baseline e9a035e \\
        --seconds 20 --steps 3000 --rounds 2 [--json]

Prints medians over the rounds, the ratios, the commits and the CPU (model and flags).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_SCENE_CODE = ("src/graspq/graspq/sim", "src/graspq/graspq/observation.py")
_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16", "amx_int8")


def cpu() -> dict[str, str]:
    """Model name and the SIMD/matrix flags of interest from /proc/cpuinfo."""
    from graspq.cpu import cpu_info

    model, flags = cpu_info()
    return {"model": model, "flags": " ".join(f for f in _FLAGS if f in flags),
            "cores": str(os.cpu_count())}


def profile_phases(steps: int, seed: int = 0) -> dict[str, float]:
    """Per-phase time (ms per env step) of ``steps`` random-action env steps (resets included,
    as ``graspq bench env`` runs them), in this process's ``graspq``."""
    import mujoco
    import numpy as np

    from graspq.sim.cameras import CameraRig
    from graspq.sim.env import BaxterGraspEnv
    from graspq.sim.ik import DownwardIK

    spent = {"physics": 0.0, "ik": 0.0, "render": 0.0}

    def timed(function, phase):  # noqa: ANN001, ANN202 - a thin wrapper
        def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                spent[phase] += time.perf_counter() - start
        return wrapper

    mujoco.mj_step = timed(mujoco.mj_step, "physics")
    DownwardIK.solve = timed(DownwardIK.solve, "ik")
    CameraRig.render = timed(CameraRig.render, "render")
    env = BaxterGraspEnv()
    try:
        rng = np.random.default_rng(seed)
        episodes = 0
        env.reset(seed=seed)
        for key in spent:
            spent[key] = 0.0
        start = time.perf_counter()
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(int(rng.integers(env.action_space.n)))
            if terminated or truncated:
                episodes += 1
                env.reset(seed=seed + episodes)
        total = time.perf_counter() - start
    finally:
        env.close()
    result = {f"{key}_ms": 1000.0 * value / steps for key, value in spent.items()}
    result["other_ms"] = 1000.0 * (total - sum(spent.values())) / steps
    result["step_ms"] = 1000.0 * total / steps
    result["episodes"] = episodes
    return result


@contextlib.contextmanager
def worktree(commit: str) -> Iterator[Path]:
    """A temporary detached worktree of ``commit``, removed afterwards."""
    path = Path(tempfile.mkdtemp(prefix="graspq-baseline-"))
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(path), commit],
                   check=True, capture_output=True)
    try:
        yield path
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)],
                       check=False, capture_output=True)


def _run_json(tree: Path, args: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src" / "graspq"),
               MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    done = subprocess.run(["taskset", "-c", "0", sys.executable, *args], cwd=tree, env=env,
                          check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(tree: Path, seconds: float, steps: int) -> dict[str, dict]:
    """``graspq bench env`` and the phase profile of the code in ``tree``."""
    bench = _run_json(tree, ["-m", "graspq.cli", "bench", "env", "--seconds", str(seconds),
                             "--json"])
    phases = _run_json(tree, [str(Path(__file__).resolve()), "--phases", "--steps",
                              str(steps)])
    return {"bench": bench, "phases": phases}


def _commit(tree: Path, ref: str = "HEAD") -> str:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", ref], check=True,
                          capture_output=True, text=True).stdout.strip()


def _medians(runs: list[dict[str, dict]]) -> dict[str, dict[str, float]]:
    return {part: {key: statistics.median(run[part][key] for run in runs)
                   for key in runs[0][part] if isinstance(runs[0][part][key], int | float)}
            for part in runs[0]}


def compare(baseline: str, seconds: float, steps: int, rounds: int) -> dict:
    """Both trees, ``rounds`` times, alternating which goes first."""
    runs: dict[str, list] = {"baseline": [], "current": []}
    with worktree(baseline) as base:
        trees = {"baseline": base, "current": ROOT}
        for index in range(rounds):
            order = ("baseline", "current") if index % 2 == 0 else ("current", "baseline")
            for label in order:
                runs[label].append(measure(trees[label], seconds, steps))
        commits = {"baseline": _commit(base), "current": _commit(ROOT)}
    medians = {label: _medians(found) for label, found in runs.items()}
    before, after = medians["baseline"], medians["current"]
    return {
        "cpu": cpu(), "commits": commits,
        # Uncommitted edits to the scene's code would make "current" more than its commit.
        "dirty": bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain",
                                      *_SCENE_CODE], capture_output=True,
                                     text=True).stdout.strip()),
        "settings": {"seconds": seconds, "steps": steps, "rounds": rounds},
        "baseline": before, "current": after,
        "env_steps_per_s_ratio": (after["bench"]["env_steps_per_s"]
                                  / before["bench"]["env_steps_per_s"]),
        "profile_step_ratio": before["phases"]["step_ms"] / after["phases"]["step_ms"],
        "runs": runs,
    }


def _print_table(report: dict) -> None:
    before, after = report["baseline"], report["current"]
    print(f"CPU: {report['cpu']['model']} ({report['cpu']['cores']} cores; "
          f"flags: {report['cpu']['flags']})")
    print(f"baseline {report['commits']['baseline']}, current {report['commits']['current']}"
          f"{' + uncommitted scene changes' if report['dirty'] else ''}; medians of "
          f"{report['settings']['rounds']} rounds")
    rows = [("bench", "env_steps_per_s", "env steps/s"),
            ("bench", "physics_steps_per_s", "physics steps/s"),
            ("bench", "render_pair_ms", "render, both cameras (ms)"),
            ("phases", "step_ms", "profile: ms per env step"),
            ("phases", "physics_ms", "  physics (mj_step)"),
            ("phases", "ik_ms", "  IK"),
            ("phases", "render_ms", "  rendering"),
            ("phases", "other_ms", "  the rest")]
    print(f"{'figure':32s} {'baseline':>12s} {'current':>12s} {'ratio':>8s}")
    for part, key, name in rows:
        b, a = before[part][key], after[part][key]
        print(f"{name:32s} {b:12.3f} {a:12.3f} {a / b if b else float('nan'):8.2f}")
    print(f"env steps/s, current / baseline: {report['env_steps_per_s_ratio']:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="commit to compare against")
    parser.add_argument("--seconds", type=float, default=20.0, help="per graspq bench env")
    parser.add_argument("--steps", type=int, default=3000, help="env steps per phase profile")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--phases", action="store_true",
                        help="(internal) profile this process's graspq and print JSON")
    args = parser.parse_args()
    if args.phases:
        print(json.dumps(profile_phases(args.steps)))
        return 0
    if not args.baseline:
        parser.error("--baseline is required")
    report = compare(args.baseline, args.seconds, args.steps, args.rounds)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        _print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
