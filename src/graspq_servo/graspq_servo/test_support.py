"""Helpers for the ROS packages' tests (real DDS on this host, real trained policies): a
DDS domain of the test run's own, a tiny trained and exported policy with its env file, and
waiting on a condition. Not used by the nodes."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from graspq.config import dump_yaml
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig

# Small images, a start near the table and objects near the centre: a whole episode takes a
# few simulated seconds and reaches the object.
_DEFAULT = EnvConfig()
TEST_ENV = dataclasses.replace(
    _DEFAULT, camera=dataclasses.replace(_DEFAULT.camera, image_size=32), max_steps=16,
    scene=dataclasses.replace(_DEFAULT.scene, start_height_above_table_m=0.06,
                              spawn_half_xy_m=0.03))


def isolate_ros_graph() -> int:
    """Keep discovery on this host and pick a DDS domain from this process's id, so two
    test runs on one machine do not see each other; returns the domain id (also exported
    in ``ROS_DOMAIN_ID`` for subprocesses)."""
    domain = 1 + os.getpid() % 100
    os.environ["ROS_DOMAIN_ID"] = str(domain)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("MUJOCO_GL", "egl")
    return domain


def tiny_training(episodes: int, pretrain_updates: int = 600, demos: bool = True) -> Any:
    """A tiny DDQN run's config. With ``demos``, a few oracle demonstrations with the margin
    loss teach it to descend and close now and then, so the grasp path runs too; without,
    it learns from the reward alone (what a robot backend allows)."""
    from graspq.learning.settings import NetworkConfig, TrainingConfig

    teacher = (dict(demo_episodes=12, demo_margin=0.8, demo_fraction=0.5,
                    pretrain_updates=pretrain_updates) if demos else {})
    return TrainingConfig(
        learner="ddqn", episodes=episodes, seed=2, batch_size=16, replay_capacity=2000,
        learning_starts=16, eval_episodes=1, eval_every=episodes, checkpoint_every=episodes,
        torch_threads=1, network=NetworkConfig(
            stream_channels=4, joint_channels=8, fc_width=32, motor_width=16), **teacher)


def write_configs(directory: Path, training: Any) -> tuple[Path, Path]:
    """Write ``training`` and :data:`TEST_ENV` as config files: ``(training.yaml,
    env.yaml)``."""
    from graspq.learning.settings import TRAINING_NODE_NAME

    directory.mkdir(parents=True, exist_ok=True)
    training_file, env_file = directory / "training.yaml", directory / "env.yaml"
    training_file.write_text(dump_yaml(training, TRAINING_NODE_NAME, "Tiny test run."))
    env_file.write_text(dump_yaml(TEST_ENV, ENV_NODE_NAME, "Test scene: 32 px, short "
                                                           "episodes."))
    return training_file, env_file


def tiny_policy(directory: Path, episodes: int = 2,
                pretrain_updates: int = 600) -> tuple[Path, Path]:
    """Train :func:`tiny_training` under :data:`TEST_ENV` and export it: returns
    ``(policy.onnx, env.yaml)``."""
    from graspq.learning.trainer import Trainer
    from graspq.policy.export import export_checkpoint

    _, env_file = write_configs(directory, tiny_training(episodes, pretrain_updates))
    run = directory / "run"
    trainer = Trainer(tiny_training(episodes, pretrain_updates), TEST_ENV, run,
                      log=lambda _line: None)
    try:
        trainer.run()
    finally:
        trainer.close()
    policy = directory / "policy.onnx"
    export_checkpoint(run, policy, random_count=20, real_count=5)
    return policy, env_file


def start_launch(arguments: list[str], log_path: Path) -> subprocess.Popen:
    """``ros2 launch ARGUMENTS`` in a process group of its own, output to ``log_path``."""
    with open(log_path, "w") as log:
        return subprocess.Popen(["ros2", "launch", *arguments], stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


def stop_launch(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """Ctrl-C to the launch's process group, as a terminal sends it; kill it if it hangs."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=timeout_s)


def wait_for(condition: Callable[[], bool], timeout_s: float, period_s: float = 0.02) -> bool:
    """Poll ``condition`` until it holds (True) or ``timeout_s`` of wall time passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period_s)
    return condition()
