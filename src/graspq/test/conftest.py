"""Shared fixtures: a real MuJoCo environment per test module (building one costs ~0.1 s), and a
helper that trains a (tiny) run to completion in a directory, for tests that need a real
checkpoint."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# CI runs the property tests with a fixed seed (a red CI must be reproducible); developers get
# fresh random examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from graspq.sim.env import BaxterGraspEnv  # noqa: E402


@pytest.fixture(scope="module")
def env():
    environment = BaxterGraspEnv()
    yield environment
    environment.close()


@pytest.fixture(scope="session")
def train_run():
    """``train_run(run_dir, training, env_config) -> run_dir``: a finished training run."""
    from graspq.learning.trainer import Trainer

    def train(run_dir, training, env_config):
        trainer = Trainer(training, env_config, run_dir, log=lambda line: None)
        try:
            trainer.run()
        finally:
            trainer.close()
        return run_dir

    return train
