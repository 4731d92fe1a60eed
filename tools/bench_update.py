#!/usr/bin/env python3
"""Training's gradient update against a baseline commit, measured in one run (issue #25).

Checks the baseline commit out into a temporary git worktree and, round after round (the
order alternating, so that drift in the machine's speed falls on both alike), times in each
tree the update as training makes it: ``Trainer._update`` (replay draw with n-step windows,
``close_replay_rows``, augmentation, the TD step) on a replay filled with random-action
episodes, with a training config and ``--set`` overrides. Each tree runs in its own process
(``PYTHONPATH``) with this checkout's virtual environment. Usage, from the repository root::

    MUJOCO_GL=egl .venv/bin/python tools/bench_update.py --baseline 927cc5e \\
        --config config/training_reward_only.yaml --set augment_shift_px=1 \\
        --seconds 20 --rounds 3 [--json]

``--baseline-set KEY=VALUE`` applies to the baseline tree alone, after ``--set``: with
``--baseline HEAD`` it times what one option costs, e.g. ``--set advantage_learning=0.9
--baseline-set advantage_learning=0``.

``--close-probability`` sets how often the random actions close, and so how many drawn rows
end their episode (printed as ``terminated_share``); its default, 1/12, gives about the
share of a reward-only run's replay at the full task (21.6 % of n-step-3 rows at episode
2,530 of a close-rows run).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_scene import _commit, cpu, worktree

ROOT = Path(__file__).resolve().parent.parent


def time_updates(config_path: str, sets: list[str], env_config_path: str | None,
                 seconds: float, close_probability: float, transitions: int) -> dict:
    """Updates/s of ``Trainer._update`` in this process's ``graspq``."""
    import numpy as np
    import torch

    from graspq.actions import Action
    from graspq.config import apply_overrides, load_config
    from graspq.learning.settings import TRAINING_NODE_NAME, TrainingConfig
    from graspq.learning.trainer import Trainer
    from graspq.sim.settings import ENV_NODE_NAME, EnvConfig

    training = apply_overrides(load_config(TrainingConfig, config_path, TRAINING_NODE_NAME),
                               sets)
    env_config = (EnvConfig() if env_config_path is None
                  else load_config(EnvConfig, env_config_path, ENV_NODE_NAME))
    torch.set_num_threads(training.torch_threads)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(training, env_config, Path(run_dir), log=lambda line: None)
        try:
            obs, _ = trainer.env.reset(seed=0)
            episode = 0
            while trainer.replay.num_added < transitions:
                action = (int(Action.CLOSE) if rng.random() < close_probability
                          else int(rng.choice([a for a in Action if a != Action.CLOSE])))
                next_obs, reward, terminated, truncated, _ = trainer.env.step(action)
                trainer.replay.add(obs, action, reward, next_obs, terminated, truncated)
                obs = next_obs
                if terminated or truncated:
                    episode += 1
                    obs, _ = trainer.env.reset(seed=episode)
            share = float(np.mean([trainer.replay.sample(
                training.batch_size, np.random.default_rng(seed), training.n_step,
                training.gamma).terminated.mean() for seed in range(200)]))
            for _ in range(3):  # warm-up: allocator, oneDNN kernel selection
                trainer._update()
            updates, start = 0, time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds or updates < 3:
                trainer._update()
                updates += 1
        finally:
            trainer.close()
    return {"updates_per_s": updates / elapsed, "update_ms": 1000 * elapsed / updates,
            "terminated_share": share, "set": list(sets)}


def _measure(tree: Path, args: argparse.Namespace, sets: list[str]) -> dict:
    env = dict(os.environ, PYTHONPATH=str(tree / "src" / "graspq"),
               MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    command = [sys.executable, str(Path(__file__).resolve()), "--measure",
               "--config", str(Path(args.config).resolve()), "--seconds", str(args.seconds),
               "--close-probability", str(args.close_probability),
               "--transitions", str(args.transitions)]
    if args.env_config:
        command += ["--env-config", str(Path(args.env_config).resolve())]
    for assignment in sets:
        command += ["--set", assignment]
    done = subprocess.run(command, cwd=tree, env=env, check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def compare(args: argparse.Namespace) -> dict:
    """Both trees, ``args.rounds`` times, alternating which goes first."""
    runs: dict[str, list[dict]] = {"baseline": [], "current": []}
    with worktree(args.baseline) as base:
        trees = {"baseline": base, "current": ROOT}
        sets = {"baseline": args.set + args.baseline_set, "current": args.set}
        for index in range(args.rounds):
            order = ("baseline", "current") if index % 2 == 0 else ("current", "baseline")
            for label in order:
                runs[label].append(_measure(trees[label], args, sets[label]))
        commits = {"baseline": _commit(base), "current": _commit(ROOT)}
    medians = {label: {key: statistics.median(run[key] for run in found) for key in found[0]
                       if key != "set"}
               for label, found in runs.items()}
    dirty = bool(subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"],
                                capture_output=True, text=True).stdout.strip())
    return {"cpu": cpu(), "commits": commits, "dirty": dirty,
            "settings": {"config": args.config, "set": args.set,
                         "baseline_set": args.baseline_set, "seconds": args.seconds,
                         "rounds": args.rounds, "close_probability": args.close_probability},
            **medians,
            "speedup": medians["current"]["updates_per_s"] / medians["baseline"]["updates_per_s"],
            "runs": runs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", help="commit to compare against")
    parser.add_argument("--config", default="config/training_reward_only.yaml")
    parser.add_argument("--env-config", default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--baseline-set", action="append", default=[], metavar="KEY=VALUE",
                        help="for the baseline tree alone, after --set")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="of updates, per tree and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--close-probability", type=float, default=1 / 12)
    parser.add_argument("--transitions", type=int, default=600,
                        help="random transitions in the replay")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--measure", action="store_true",
                        help="(internal) time this process's graspq and print JSON")
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(time_updates(args.config, args.set, args.env_config, args.seconds,
                                      args.close_probability, args.transitions)))
        return 0
    if not args.baseline:
        parser.error("--baseline is required")
    report = compare(args)
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"CPU: {report['cpu']['model']} ({report['cpu']['cores']} cores; flags: "
          f"{report['cpu']['flags']})")
    print(f"baseline {report['commits']['baseline']}, current {report['commits']['current']}"
          f"{' + uncommitted changes under src/' if report['dirty'] else ''}; medians of "
          f"{args.rounds} rounds; {args.config} {' '.join(args.set)}"
          + (f"; baseline also {' '.join(args.baseline_set)}" if args.baseline_set else ""))
    for label in ("baseline", "current"):
        found = report[label]
        print(f"{label:9s} {found['updates_per_s']:7.2f} updates/s ({found['update_ms']:.1f} ms),"
              f" terminated share of a batch {found['terminated_share']:.3f}")
    print(f"speed-up, current / baseline: {report['speedup']:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
