"""Parallel actors (``graspq train --actors N``): the episode worker on its own, then real Ray
on loopback (a head started with ``ray start`` inside the test, stopped at the end): training
with two actors, checkpoint and resume, and an actor killed mid-run."""

import csv
import dataclasses
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from graspq.actions import Action
from graspq.config import dump_yaml
from graspq.learning.actors import EpisodeTask, EpisodeWorker, actor_epsilon
from graspq.learning.checkpoint import load_checkpoint
from graspq.learning.replay import ReplayBuffer
from graspq.learning.settings import TRAINING_NODE_NAME, ActorsConfig
from graspq.learning.trainer import Trainer, episode_seed
from graspq.sim.settings import ENV_NODE_NAME

from .test_trainer import TINY, TINY_ENV

# Every actor path on, without the demonstrations' minute of recording.
ACTOR_RUN = dataclasses.replace(TINY, demo_episodes=0, demo_margin=0.8, expert_labels=True,
                                pretrain_updates=0, episodes=6, checkpoint_every=3,
                                actors=ActorsConfig(replay_ratio=0.5, sync_episodes=2,
                                                    epsilon_alpha=3.0))
RAY = shutil.which("ray", path=str(Path(sys.executable).parent))


def _rows(run: Path) -> list[dict[str, str]]:
    with open(run / "train.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _replay(run: Path) -> ReplayBuffer:
    """The replay buffer of the run's latest checkpoint."""
    payload = load_checkpoint(run)
    camera = TINY_ENV.camera
    buffer = ReplayBuffer(TINY.replay_capacity, camera.image_size, TINY.views,
                          camera.depth_near_m, camera.depth_far_m)
    buffer.load(Path(payload["path"]).parent / payload["replay_file"])
    return buffer


def test_a_worker_returns_whole_episodes_that_its_seeds_repeat():
    worker = EpisodeWorker(ACTOR_RUN, TINY_ENV, actor=0)
    try:
        weights = worker.agent.online.state_dict()
        task = EpisodeTask(7, episode_seed(ACTOR_RUN.seed, 7), 0.5, (ACTOR_RUN.seed, 7), 1)
        first = worker.run_episode(task, weights)
        assert len(first.observations) == first.steps + 1 == len(first.rewards) + 1
        assert first.terminated or first.truncated
        assert first.outcome and first.object in ("cube", "sphere", "cylinder")
        # expert_labels: the oracle labelled every state the episode left.
        assert len(first.labels) == first.steps and all(
            label is not None for label in first.labels)
        again = worker.run_episode(task, None)  # same version: no weights needed
        assert again.actions == first.actions and again.rewards == first.rewards
        np.testing.assert_array_equal(again.observations[-1]["overhead_rgbd"],
                                      first.observations[-1]["overhead_rgbd"])
        with pytest.raises(RuntimeError, match="holds weights version 1"):
            worker.run_episode(dataclasses.replace(task, weights_version=2), None)
    finally:
        worker.close()


def test_a_worker_holds_its_random_streaks():
    """Actor episodes explore as the trainer's own: max_random_streak reaches the worker."""
    def mean_run(streak):
        exploration = dataclasses.replace(ACTOR_RUN.exploration, max_random_streak=streak)
        worker = EpisodeWorker(dataclasses.replace(ACTOR_RUN, exploration=exploration),
                               TINY_ENV, actor=0)
        try:
            weights, runs = worker.agent.online.state_dict(), []
            for index in range(10):
                task = EpisodeTask(index, episode_seed(ACTOR_RUN.seed, index), 1.0,
                                   (ACTOR_RUN.seed, index), 1)
                actions = worker.run_episode(task, weights).actions
                runs += [len(list(run)) for _, run in itertools.groupby(actions)]
            return np.mean(runs)
        finally:
            worker.close()

    assert mean_run(1) < 1.4 < 1.9 < mean_run(6)


def test_a_worker_turns_instead_of_a_greedy_close():
    """turn_instead_of_close reaches the actors' episodes as the trainer's own."""
    exploration = dataclasses.replace(ACTOR_RUN.exploration, turn_instead_of_close=1.0)
    worker = EpisodeWorker(dataclasses.replace(ACTOR_RUN, exploration=exploration),
                           TINY_ENV, actor=0)
    try:
        weights = worker.agent.online.state_dict()
        weights["head.2.bias"] = weights["head.2.bias"].clone()
        weights["head.2.bias"][Action.CLOSE] = 50.0  # greedy: close
        task = EpisodeTask(0, episode_seed(ACTOR_RUN.seed, 0), 0.0, (ACTOR_RUN.seed, 0), 1)
        actions = worker.run_episode(task, weights).actions
    finally:
        worker.close()
    assert len(actions) == TINY_ENV.max_steps  # never closed: a time-out
    assert set(actions) <= {Action.PLUS_YAW, Action.MINUS_YAW}


def test_actors_explore_less_the_higher_their_index():
    rates = [actor_epsilon(0.4, i, 4, 7.0) for i in range(4)]
    assert rates[0] == 0.4 and rates == sorted(rates, reverse=True)
    assert rates[-1] == pytest.approx(0.4 ** 8)
    assert actor_epsilon(0.4, 3, 4, 0.0) == 0.4 and actor_epsilon(0.4, 0, 1, 7.0) == 0.4


@pytest.fixture(scope="module")
def ray_head():
    """A Ray head on 127.0.0.1 (its own processes), stopped when the module's tests end.
    ``ray start --block`` stops the processes it started when it is terminated; ``ray
    stop`` would stop every Ray on the machine, a researcher's running jobs included."""
    if RAY is None:
        pytest.fail("the ray CLI is not in the venv: pip install -r requirements.txt")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Loopback only, so no token authentication: a token file left in ~/.ray by an earlier
    # local Ray would otherwise be demanded by the head but not offered by the clients. The
    # clients (this process, the CLI's subprocesses) read the mode from the environment.
    saved_mode = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    head = subprocess.Popen([RAY, "start", "--head", "--block", "--node-ip-address",
                             "127.0.0.1", "--port", str(port), "--num-cpus", "3",
                             "--include-dashboard", "false", "--disable-usage-stats"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while subprocess.run([RAY, "status", "--address", address], env=env,
                             capture_output=True, timeout=60).returncode != 0:
            assert head.poll() is None, f"ray start --head exited with {head.returncode}"
            assert time.monotonic() < deadline, "the Ray head did not come up in 120 s"
            time.sleep(1)
        yield address
    finally:
        head.terminate()
        try:
            head.wait(timeout=120)
        except subprocess.TimeoutExpired:
            head.kill()
        if saved_mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = saved_mode


def test_an_actor_killed_mid_run_loses_nothing(tmp_path, ray_head):
    run = tmp_path / "run"
    trainer = Trainer(ACTOR_RUN, TINY_ENV, run, log=lambda line: None, actors=2,
                      ray_address=ray_head)
    killed = []

    def kill_an_actor(row: dict) -> None:
        if row["episode"] == 2:
            pid = trainer.pool.actor_pids()[1]
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)

    try:
        trainer.run(kill_an_actor)
        assert killed and trainer.pool.actor_pids()[1] != killed[0]  # Ray restarted it
    finally:
        trainer.close()
    rows = _rows(run)
    assert [int(row["episode"]) for row in rows] == list(range(1, 7))
    # Exactly the finished episodes' transitions: none lost with the killed process, none
    # twice, no half episode.
    replay = _replay(run)
    assert replay.num_added == sum(int(row["steps"]) for row in rows) == trainer.env_steps
    # replay_ratio 0.5: one update per two collected steps once learning has started.
    assert 0 < trainer.agent.updates <= trainer.env_steps // 2


def _write_configs(directory: Path) -> tuple[Path, Path]:
    training, env = directory / "training.yaml", directory / "env.yaml"
    training.write_text(dump_yaml(ACTOR_RUN, TRAINING_NODE_NAME))
    env.write_text(dump_yaml(TINY_ENV, ENV_NODE_NAME))
    return training, env


def _train_cli(training: Path, env: Path, run: Path, *extra: str) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "train", "--config", str(training),
         "--env-config", str(env), "--out", str(run), "--json", *extra],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _actor_processes() -> set[int]:
    found = subprocess.run(["pgrep", "-f", "ray::EpisodeWorker"], capture_output=True,
                           text=True, check=False)
    return {int(pid) for pid in found.stdout.split()}


def test_two_actors_train_stop_on_ctrl_c_and_resume_with_any_count(tmp_path, ray_head):
    training, env = _write_configs(tmp_path)
    run = tmp_path / "run"
    before = _actor_processes()
    # Ctrl-C once the second episode is logged: the run checkpoints and stops its actors.
    process = subprocess.Popen(
        [sys.executable, "-m", "graspq.cli", "train", "--config", str(training),
         "--env-config", str(env), "--out", str(run), "--json", "--actors", "2", "--ray",
         ray_head, "--episodes", "500"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True)
    try:
        deadline = time.monotonic() + 300
        while not (run / "train.csv").exists() or len(_rows(run)) < 2:
            assert process.poll() is None and time.monotonic() < deadline, \
                process.stderr.read()[-3000:] if process.poll() is not None else "too slow"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=180)
    finally:
        process.kill()
    assert process.returncode == 0, stderr[-3000:]
    stopped = json.loads(stdout)["episodes_done"]
    assert 2 <= stopped < 500 and "stopped at episode" in stderr
    payload = load_checkpoint(run)
    assert payload["episode"] == stopped
    # The episodes in flight when the run stopped were handed out, not learnt from.
    assert payload["next_dispatch"] >= stopped + 1
    assert _actor_processes() <= before  # its actors are gone
    resumed = _train_cli(training, env, run, "--actors", "2", "--ray", ray_head, "--resume",
                         "--episodes", str(stopped + 2))
    assert resumed["episodes_done"] == stopped + 2
    # And on in one process: no Ray, the handed-out episode seeds are not used again.
    alone = _train_cli(training, env, run, "--resume", "--episodes", str(stopped + 3))
    assert alone["episodes_done"] == stopped + 3
    rows = _rows(run)
    assert [int(row["episode"]) for row in rows] == list(range(1, stopped + 4))
    assert _replay(run).num_added == sum(int(row["steps"]) for row in rows)


def test_reproduce_runs_its_cells_as_ray_tasks_on_a_cluster(tmp_path, ray_head):
    from graspq.learning import reproduce

    from .test_reproduce import TINY as MATRIX_CELL

    config = tmp_path / "training.yaml"
    config.write_text(dump_yaml(MATRIX_CELL, TRAINING_NODE_NAME))
    root, report = tmp_path / "runs", tmp_path / "results.md"
    assert reproduce.main(["--config", str(config), "--seeds", "0", "--episodes", "1",
                           "--ray", ray_head, "--cells", "ddqn-single", "dqn-single",
                           "--root", str(root), "--report", str(report),
                           "--eval-episodes", "2"]) == 0
    for cell in ("ddqn-single-s0", "dqn-single-s0"):
        assert json.loads((root / cell / "final_eval.json").read_text())["episodes"] == 2
    assert "| ddqn | single | 1/1 | 1 |" in report.read_text()
