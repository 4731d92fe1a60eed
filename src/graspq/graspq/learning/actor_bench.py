"""``graspq bench actors``: collected env steps/s and learner updates/s, one process against
N Ray actors, in one run.

Each count trains the same short run (no demonstrations, learning from the first batch) in a
temporary directory and reads the episodes phase of its ``timing.json``, so Ray's start-up and
the evaluations are left out of both. One actor is the single-process trainer (no Ray), the
baseline; its ``update_every`` matches the actors' ``replay_ratio`` where that is 1/k.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path
from typing import Any

from graspq.learning.settings import TrainingConfig
from graspq.learning.timing import cpu_model, read_sessions
from graspq.learning.trainer import Trainer
from graspq.sim.settings import EnvConfig


def _bench_config(training: TrainingConfig, episodes: int) -> TrainingConfig:
    update_every = max(1, round(1.0 / training.actors.replay_ratio))
    return dataclasses.replace(
        training, episodes=episodes, demo_episodes=0, pretrain_updates=0, expert_labels=False,
        learning_starts=training.batch_size, update_every=update_every,
        eval_every=episodes + 1, checkpoint_every=episodes + 1)


def _measure(training: TrainingConfig, env_config: EnvConfig, actors: int,
             ray_address: str, directory: Path) -> dict[str, Any]:
    trainer = Trainer(training, env_config, directory, log=lambda line: None, actors=actors,
                      ray_address=ray_address)
    try:
        trainer.run()
    finally:
        trainer.close()
    session = read_sessions(directory)[-1]
    seconds = session["phases_s"]["episodes"]
    return {"actors": actors, "episodes": session["episodes"],
            "env_steps": session["env_steps"], "updates": session["updates"],
            "seconds": seconds, "env_steps_per_s": session["env_steps"] / seconds,
            "updates_per_s": session["updates"] / seconds}


def bench_actors(training: TrainingConfig, env_config: EnvConfig, episodes: int,
                 actor_counts: tuple[int, ...] = (1, 2),
                 ray_address: str = "local") -> dict[str, Any]:
    """Steps and updates per second for each actor count (the first is the baseline)."""
    config = _bench_config(training, episodes)
    runs = []
    with tempfile.TemporaryDirectory(prefix="graspq-bench-actors-") as scratch:
        for count in actor_counts:
            runs.append(_measure(config, env_config, count, ray_address,
                                 Path(scratch) / f"actors{count}"))
    report: dict[str, Any] = {}
    baseline = runs[0]
    for run in runs:
        prefix = f"actors{run['actors']}_"
        report.update({prefix + key: value for key, value in run.items() if key != "actors"})
        if run is not baseline:
            report[prefix + "env_steps_ratio"] = (run["env_steps_per_s"]
                                                  / baseline["env_steps_per_s"])
            report[prefix + "updates_ratio"] = run["updates_per_s"] / baseline["updates_per_s"]
    return {**report, "replay_ratio": training.actors.replay_ratio,
            "baseline_update_every": config.update_every, "episodes": episodes,
            "torch_threads": training.torch_threads, "precision": training.precision,
            "cpu": cpu_model(), "cpus": os.cpu_count(), "ray": ray_address}
