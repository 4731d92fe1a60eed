"""Training loop: checkpoints, exact resume, logs, clear errors on bad checkpoints."""

import csv
import dataclasses
import fractions
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from graspq.actions import Action
from graspq.config import ConfigError, load_config, to_mapping
from graspq.learning.agent import QAgent
from graspq.learning.checkpoint import CheckpointError, load_checkpoint
from graspq.learning.policy_io import load_agent
from graspq.learning.pose import decode_pose, pose_target
from graspq.learning.replay import NO_EXPERT, ReplayBuffer
from graspq.learning.settings import (
    TRAINING_NODE_NAME,
    ExplorationConfig,
    LearningRateDecayConfig,
    NetworkConfig,
    PrioritizedReplayConfig,
    TrainingConfig,
)
from graspq.learning.targets import label_balance_weights
from graspq.learning.trainer import Trainer, episode_seed
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.settings import CameraConfig, EnvConfig

# Small and fast, but every mechanism on: replay, demonstrations, n-step, augmentation,
# target copies, evaluation and checkpoints inside the run.
TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=12)
TINY = TrainingConfig(
    learner="ddqn", episodes=4, seed=3, batch_size=8, replay_capacity=400, learning_starts=8,
    target_update_every=3, n_step=2, demo_episodes=1, demo_margin=0.8, pretrain_updates=2,
    augment_shift_px=2, eval_every=2,
    eval_episodes=3, checkpoint_every=2, torch_threads=1,
    exploration=ExplorationConfig(epsilon_decay_episodes=4),
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))


def _train(run_dir, config=TINY, resume=False, stop_after=None):
    trainer = Trainer(config, TINY_ENV, run_dir, resume=resume, log=lambda line: None)
    try:
        if stop_after is not None:
            trainer.training = dataclasses.replace(config, episodes=stop_after)
        trainer.run()
        return trainer
    finally:
        trainer.close()


def _rows(path):
    with open(path, newline="") as handle:
        return [{k: v for k, v in row.items() if k not in ("steps_per_s", "wall_s")}
                for row in csv.DictReader(handle)]


def _assert_same_weights(expected: torch.nn.Module, actual: torch.nn.Module) -> None:
    """Every tensor of the two state dicts bit-identical."""
    for name, tensor in expected.state_dict().items():
        torch.testing.assert_close(actual.state_dict()[name], tensor, rtol=0, atol=0, msg=name)


@pytest.mark.parametrize(("precision", "priority_alpha", "streak", "close_rows", "advantage"),
                         [("fp32", 0.0, 1, 0, 0.0), ("bf16", 0.0, 1, 0, 0.0),
                          ("fp32", 0.6, 3, 4, 0.5)])
def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, precision,
                                                              priority_alpha, streak,
                                                              close_rows, advantage):
    # The third case also turns instead of half its greedy closes (extra draws to replay),
    # and its learning rate falls across the split (episodes 1 to 3).
    exploration = dataclasses.replace(TINY.exploration, max_random_streak=streak,
                                      turn_instead_of_close=advantage)
    decay = LearningRateDecayConfig(final_fraction=1.0 - advantage, start_episode=1, episodes=2)
    config = dataclasses.replace(TINY, precision=precision, exploration=exploration,
                                 prioritized_replay=PrioritizedReplayConfig(priority_alpha),
                                 close_replay_rows=close_rows, advantage_learning=advantage,
                                 learning_rate_decay=decay)
    straight = _train(tmp_path / "straight", config)
    _train(tmp_path / "split", config, stop_after=2)
    resumed = _train(tmp_path / "split", config, resume=True)
    assert resumed.episode == straight.episode == 4
    assert resumed.env_steps == straight.env_steps
    assert resumed.agent.updates == straight.agent.updates > 0
    _assert_same_weights(straight.agent.online, resumed.agent.online)
    _assert_same_weights(straight.agent.target, resumed.agent.target)
    assert len(resumed.replay) == len(straight.replay)
    assert _rows(tmp_path / "split" / "train.csv") == _rows(tmp_path / "straight" / "train.csv")
    assert _rows(tmp_path / "split" / "eval.csv") == _rows(tmp_path / "straight" / "eval.csv")
    assert resumed.best_eval == straight.best_eval is not None
    # Prioritised replay: the priorities resume too, and the updates have moved them off 1.
    np.testing.assert_array_equal(resumed.replay._priority, straight.replay._priority)
    held = straight.replay._priority[straight.replay._valid]
    assert (held != 1.0).any() == (priority_alpha > 0)
    if priority_alpha > 0:
        events = EventAccumulator(str(tmp_path / "split" / "tensorboard")).Reload()
        assert {"replay/priority_max", "replay/priority_beta"} <= set(events.Tags()["scalars"])


def test_expert_labels_are_the_oracles_actions_in_the_visited_states(tmp_path):
    trainer = _train(tmp_path / "run", dataclasses.replace(TINY, expert_labels=True))
    replay, demos = trainer.replay, trainer.demos
    batch = replay.sample(256, np.random.default_rng(0))
    assert (batch.expert_actions >= 0).all()  # every visited state is labelled
    # The first state of each training episode is the reset state of its seed: label it
    # again with a fresh oracle on a fresh env and compare.
    env = BaxterGraspEnv(TINY_ENV)
    try:
        oracle = OraclePolicy(env)
        slot = 0
        for episode in range(TINY.episodes):
            env.reset(seed=episode_seed(TINY.seed, episode))
            assert replay._expert[slot] == int(oracle.act()), episode
            slot = int(np.flatnonzero(~replay._valid[slot:])[0]) + slot + 1  # next episode
    finally:
        env.close()
    # Demonstrations are labelled with the action the oracle took.
    demo_batch = demos.sample(64, np.random.default_rng(1))
    np.testing.assert_array_equal(demo_batch.expert_actions, demo_batch.actions)


def test_pose_targets_label_the_visited_states_and_the_demonstrations(tmp_path):
    trainer = _train(tmp_path / "run", dataclasses.replace(TINY, pose_loss_weight=0.5))
    replay, demos = trainer.replay, trainer.demos
    assert trainer.agent.online.pose_head is not None
    for buffer in (replay, demos):  # every stored state has a target
        assert np.isfinite(buffer.sample(256, np.random.default_rng(0)).pose_targets).all()
    assert (replay._expert == -1).all()  # pose targets do not switch on expert labels
    env = BaxterGraspEnv(TINY_ENV)
    try:
        env.reset(seed=episode_seed(TINY.seed, 0))
        np.testing.assert_allclose(replay._pose[0], pose_target(OraclePolicy(env)), atol=1e-6)
    finally:
        env.close()
    # Each loss term has its own TensorBoard curve beside the total.
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard")).Reload()
    tags = set(events.Tags()["scalars"])
    assert {"losses/total", "losses/td", "losses/margin", "losses/pose"} <= tags
    assert all(np.isfinite(e.value) for e in events.Scalars("losses/pose"))
    # The head travels in the checkpoint: the run evaluates and resumes like any other.
    agent, _, training = load_agent(tmp_path / "run")
    assert training.pose_loss_weight == 0.5 and agent.online.pose_head is not None
    with pytest.raises(ConfigError, match="pose_loss_weight 0"):
        TrainingConfig(learner="qlearning", pose_loss_weight=0.5)


def test_margin_balance_weights_come_from_the_demonstrations_labels(tmp_path):
    config = dataclasses.replace(TINY, margin_balance=1.0, demo_episodes=2)
    trainer = _train(tmp_path / "run", config)
    counts = trainer.demos.label_counts(9)
    weights = trainer.agent.label_weights.numpy()
    shares = counts / counts.sum()
    seen = counts > 0
    # Inverse frequency: every action the oracle used carries the same total weight.
    np.testing.assert_allclose((shares * weights)[seen], 1 / seen.sum(), rtol=1e-5)
    # A resumed run records the demonstrations again and gets the same weights.
    _train(tmp_path / "split", config, stop_after=2)
    resumed = _train(tmp_path / "split", config, resume=True)
    torch.testing.assert_close(resumed.agent.label_weights, trainer.agent.label_weights)
    _assert_same_weights(trainer.agent.online, resumed.agent.online)
    with pytest.raises(ConfigError, match="margin_balance"):
        dataclasses.replace(TINY, margin_balance=0.5, demo_episodes=0)


def test_demo_workers_change_the_time_only(tmp_path):
    config = dataclasses.replace(TINY, demo_episodes=4, demo_epsilon=0.3)
    straight = _train(tmp_path / "straight", config)
    # Recorded in two processes, then again in one on resume: the same run all the same.
    lines: list[str] = []
    first = Trainer(dataclasses.replace(config, demo_workers=2), TINY_ENV, tmp_path / "split",
                    log=lines.append)
    try:
        first.training = dataclasses.replace(first.training, episodes=2)
        first.run()
    finally:
        first.close()
    assert any(re.search(r"transitions, in \d+ s \(2 processes\)", line) for line in lines)
    resumed = _train(tmp_path / "split", config, resume=True)
    assert len(resumed.demos) == len(straight.demos) > 0
    assert resumed.agent.updates == straight.agent.updates
    _assert_same_weights(straight.agent.online, resumed.agent.online)
    # Runs from before the key drew every demonstration's noise from one generator: still
    # trained that way when asked, and different demonstrations.
    shared = _train(tmp_path / "shared", dataclasses.replace(config, demo_noise_per_episode=False))
    assert not np.array_equal(shared.demos.sample(64, np.random.default_rng(0)).actions,
                              straight.demos.sample(64, np.random.default_rng(0)).actions)
    with pytest.raises(ConfigError, match="demo_workers"):
        dataclasses.replace(config, demo_noise_per_episode=False, demo_workers=2)


def test_turn_margin_weight_scales_the_margin_loss_of_turn_labels_only():
    env = BaxterGraspEnv(TINY_ENV)
    camera = TINY_ENV.camera
    buffer = ReplayBuffer(40, camera.image_size, "multi", camera.depth_near_m,
                          camera.depth_far_m)
    try:
        obs, _ = env.reset(seed=1)
        for action in (Action.MINUS_Z, Action.PLUS_X, Action.MINUS_Y, Action.MINUS_Z):
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, int(action), reward, next_obs, terminated, truncated,
                       expert_action=int(action))
            obs = next_obs
    finally:
        env.close()
    batch = buffer.sample(8, np.random.default_rng(0))

    def margin_part(weight: float, label: Action) -> float:
        config = dataclasses.replace(TINY, turn_margin_weight=weight)
        torch.manual_seed(0)  # the same initial weights for every agent
        agent = QAgent(config, config.network.gqn(camera.image_size, "multi"),
                       camera.depth_near_m, camera.depth_far_m)
        agent.update(batch._replace(expert_actions=np.full(8, int(label))))
        return agent.loss_parts["margin"]

    for label in (Action.PLUS_YAW, Action.MINUS_YAW):
        assert margin_part(3.0, label) == pytest.approx(3 * margin_part(1.0, label), rel=1e-5)
    assert margin_part(3.0, Action.MINUS_Z) == pytest.approx(margin_part(1.0, Action.MINUS_Z),
                                                             rel=1e-6)
    # On top of margin_balance's weights.
    config = dataclasses.replace(TINY, turn_margin_weight=2.0, margin_balance=1.0)
    agent = QAgent(config, config.network.gqn(camera.image_size, "multi"), camera.depth_near_m,
                   camera.depth_far_m)
    counts = np.arange(1, 10)
    turn = np.isin(np.arange(9), [Action.PLUS_YAW, Action.MINUS_YAW])
    np.testing.assert_allclose(agent.balance_labels(counts),
                               label_balance_weights(counts, 1.0) * np.where(turn, 2.0, 1.0))


def test_expert_labels_need_the_margin_loss_and_a_replay_learner():
    with pytest.raises(ConfigError, match="expert_labels"):
        dataclasses.replace(TINY, expert_labels=True, demo_margin=0.0)
    with pytest.raises(ConfigError, match="expert_labels false"):
        TrainingConfig(learner="qlearning", expert_labels=True, demo_margin=0.8)


def test_run_directory_holds_configs_logs_and_checkpoints(tmp_path):
    _train(tmp_path / "run")
    run = tmp_path / "run"
    assert (run / "training.yaml").exists() and (run / "env.yaml").exists()
    assert len(_rows(run / "train.csv")) == 4
    assert len(_rows(run / "eval.csv")) == 2
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    latest = json.loads((run / "checkpoints" / "latest.json").read_text())
    assert latest["episode"] == 4
    payload = load_checkpoint(run)
    assert payload["episode"] == 4 and payload["training_config"]["learner"] == "ddqn"
    agent, env_config, training = load_agent(run)
    assert training == TINY and env_config == TINY_ENV
    assert not agent.online.training


def test_best_checkpoint_holds_the_best_periodic_evaluation(tmp_path):
    config = dataclasses.replace(TINY, eval_every=1)
    trainer = _train(tmp_path / "run", config)
    rates = [float(row["success_rate"]) for row in _rows(tmp_path / "run" / "eval.csv")]
    best_episode = max(range(len(rates)), key=lambda i: (rates[i], i)) + 1  # ties: later
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert best["episode"] == best_episode == trainer.best_eval["episode"]
    assert best["best_eval"]["success_rate"] == max(rates)
    assert best["replay_file"] is None
    agent, _, _ = load_agent(tmp_path / "run" / "checkpoints" / "best.pt")
    assert not agent.online.training
    # The regular checkpoints are untouched by it: latest is still the final episode.
    assert load_checkpoint(tmp_path / "run")["episode"] == config.episodes


def test_existing_run_needs_resume_and_matching_config(tmp_path):
    _train(tmp_path / "run", stop_after=2)
    with pytest.raises(CheckpointError, match="--resume"):
        _train(tmp_path / "run")
    with pytest.raises(CheckpointError, match="gamma"):
        _train(tmp_path / "run", config=dataclasses.replace(TINY, gamma=0.5), resume=True)
    # The thread count is the machine's business, not the run's: a resume may change it.
    resumed = _train(tmp_path / "run", config=dataclasses.replace(TINY, torch_threads=2),
                     resume=True)
    assert resumed.episode == TINY.episodes and torch.get_num_threads() == 2


def test_a_missing_replay_buffer_is_named_with_the_checkpoints_left(tmp_path):
    config = dataclasses.replace(TINY, checkpoint_every=1)
    _train(tmp_path / "run", config=config, stop_after=3)
    folder = tmp_path / "run" / "checkpoints"
    (folder / "ep000003.replay.npz").unlink()
    with pytest.raises(CheckpointError, match=r"ep000003\.pt: its replay buffer "
                       r"ep000003\.replay\.npz is missing.*: ep000002\.pt \("):
        _train(tmp_path / "run", config=config, resume=True)


def test_checkpoints_from_before_newer_keys_still_load(tmp_path):
    _train(tmp_path / "run", stop_after=2)
    path = tmp_path / "run" / "checkpoints" / "ep000002.pt"
    payload = torch.load(path, weights_only=True)
    for key in ("demo_epsilon", "demo_noise_per_episode", "demo_unturned_branches",
                "demo_workers", "expert_labels", "expert_turn_ties", "margin_balance",
                "pose_loss_weight", "pose_yaw_weight", "precision", "revisit_window",
                "turn_margin_weight"):
        del payload["training_config"][key]
    del payload["training_config"]["network"]["batchnorm_momentum"]
    del payload["training_config"]["network"]["fingertip_features"]
    del payload["training_config"]["network"]["fingertip_unit_m"]
    del payload["training_config"]["network"]["spatial_keypoints"]
    del payload["training_config"]["learning_rate_decay"]
    torch.save(payload, path)
    agent, _, training = load_agent(path)
    # The values those runs were trained with: torch's momentum, the options off.
    assert training.network.batchnorm_momentum == 0.1
    assert training.network.fingertip_features is False
    assert training.network.fingertip_unit_m == 0.1  # the first fingertip runs' unit
    assert training.network.spatial_keypoints is False
    assert agent.online.config == training.network.gqn(TINY_ENV.camera.image_size, "multi")
    assert training.demo_unturned_branches is False and training.expert_turn_ties is False
    assert training.demo_noise_per_episode is False and training.demo_workers == 1
    assert training.turn_margin_weight == 1.0 and training.precision == "fp32"
    assert (training.demo_epsilon, training.expert_labels, training.margin_balance,
            training.pose_loss_weight, training.pose_yaw_weight, training.revisit_window) == (
        0.0, False, 0.0, 0.0, 1.0, 0)
    assert agent.online.pose_head is None
    assert training.learning_rate_decay == LearningRateDecayConfig()  # a constant rate
    # Before the revisit window, block_reversal (a bool) said whether to never undo a move.
    for block_reversal, window in ((True, 1), (False, 0)):
        payload["training_config"]["block_reversal"] = block_reversal
        torch.save(payload, tmp_path / "reversal.pt")
        assert load_agent(tmp_path / "reversal.pt")[2].revisit_window == window
    # Resuming it under today's config names the one real difference.
    with pytest.raises(CheckpointError, match="batchnorm_momentum: checkpoint 0.1, now 1.0"):
        _train(tmp_path / "run", resume=True)


def test_corrupt_or_foreign_checkpoints_are_refused(tmp_path):
    _train(tmp_path / "run", stop_after=2)
    checkpoint = tmp_path / "run" / "checkpoints" / "ep000002.pt"
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="not a readable GraspQ checkpoint"):
        load_checkpoint(truncated)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(foreign)
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing.pt")
    # A payload that would need arbitrary code to unpickle is rejected by weights_only=True.
    evil = tmp_path / "evil.pt"
    torch.save({"agent": fractions.Fraction(1, 3)}, evil)
    with pytest.raises(CheckpointError, match="not a readable"):
        load_checkpoint(evil)


def test_mismatched_weights_are_refused(tmp_path):
    _train(tmp_path / "run", stop_after=2)
    checkpoint = tmp_path / "run" / "checkpoints" / "ep000002.pt"
    payload = torch.load(checkpoint, weights_only=True)
    payload["training_config"]["network"]["fc_width"] = 32  # config no longer fits weights
    torch.save(payload, checkpoint)
    with pytest.raises(CheckpointError, match="weights do not fit"):
        load_agent(checkpoint)


def _eval_cli(checkpoint, *extra):
    result = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "eval", "--checkpoint", str(checkpoint),
         "--episodes", "3", "--json", *extra], capture_output=True, text=True, timeout=300,
        check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_eval_cli_reports_per_object(tmp_path):
    _train(tmp_path / "run", dataclasses.replace(TINY, revisit_window=4), stop_after=2)
    report = _eval_cli(tmp_path / "run")
    assert report["episodes"] == 3
    assert set(report["per_object"]) == {"cube", "sphere", "cylinder"}
    assert {"success_rate", "mean_steps_to_success", "mean_return"} <= set(report)
    assert report["revisit_window"] == 4  # the run's own rule by default
    assert _eval_cli(tmp_path / "run", "--revisit-window", "0")["revisit_window"] == 0
    negative = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "eval", "--checkpoint", str(tmp_path / "run"),
         "--revisit-window", "-1"], capture_output=True, text=True, timeout=120, check=False)
    assert negative.returncode == 2 and "Traceback" not in negative.stderr
    assert "--revisit-window must be 0 or more" in negative.stderr
    bad = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "eval", "--checkpoint", str(tmp_path / "none")],
        capture_output=True, text=True, timeout=120, check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr


def test_plot_cli_writes_both_figures(tmp_path):
    _train(tmp_path / "run", stop_after=2)
    result = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "plot", str(tmp_path / "run"), "--out",
         str(tmp_path / "figures")], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    for name in ("learning_curves.png", "per_object_success.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 10_000
    missing = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "plot", str(tmp_path), "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=300, check=False)
    assert missing.returncode == 2 and "train.csv" in missing.stderr


def test_bench_train_json():
    result = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "bench", "train", "--seconds", "3", "--json",
         "--set", "network.stream_channels=4", "--set", "batch_size=8"],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["updates_per_s"] > 0 and report["env_steps_per_s_while_training"] > 0
    assert report["baseline_nchw_updates_per_s"] > 0
    # Both precisions in the same run, and the probe of stepping the scene beside the updates.
    assert report["fp32_updates_per_s"] > 0 and report["bf16_updates_per_s"] > 0
    assert report["precision"] in ("fp32", "bf16")
    assert report["overlap_scene_steps_per_s_beside_updates"] > 0
    assert report["overlap_updates_per_s_beside_scene"] > 0
    assert report["overlap_speedup"] > 0


def test_bench_demos_json_records_the_same_demonstrations_in_two_processes():
    command = [sys.executable, "-m", "graspq.cli", "bench", "demos", "--json", "--set",
               "demo_epsilon=0.2", "--set", "demo_unturned_branches=true"]
    result = subprocess.run(command + ["--demos", "4", "--workers", "2"], capture_output=True,
                            text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["same_demonstrations"] is True and report["transitions"] > 4
    assert report["one_process_episodes_per_s"] > 0 and report["workers_episodes_per_s"] > 0
    assert report["speedup"] == pytest.approx(report["one_process_s"] / report["workers_s"])
    refused = subprocess.run(command + ["--demos", "0"], capture_output=True, text=True,
                             timeout=300, check=False)
    assert refused.returncode == 2 and "--demos and --workers must be at least 1" in refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_ctrl_c_checkpoints_and_exits_cleanly_then_resume_finishes(tmp_path, signum):
    import signal
    import time

    from graspq.config import dump_yaml
    from graspq.learning.settings import TRAINING_NODE_NAME
    from graspq.sim.settings import ENV_NODE_NAME

    config = dataclasses.replace(TINY, episodes=400, eval_every=1000, checkpoint_every=1000)
    (tmp_path / "training.yaml").write_text(dump_yaml(config, TRAINING_NODE_NAME))
    (tmp_path / "env.yaml").write_text(dump_yaml(TINY_ENV, ENV_NODE_NAME))
    run = tmp_path / "run"
    command = [sys.executable, "-m", "graspq.cli", "train", "--config",
               str(tmp_path / "training.yaml"), "--env-config", str(tmp_path / "env.yaml"),
               "--out", str(run)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 240
    while not (run / "train.csv").exists() or len(_rows(run / "train.csv")) < 3:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "training did not get going"
        time.sleep(0.2)
    process.send_signal(getattr(signal, signum))
    _, stderr = process.communicate(timeout=240)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr and "stopped at episode" in stderr
    stopped_at = load_checkpoint(run)["episode"]
    assert 3 <= stopped_at < 400
    assert len(_rows(run / "train.csv")) == stopped_at  # nothing logged that was not saved
    # Resumed with no config flags: the run's own training.yaml and env.yaml (TINY differs
    # from the built-in defaults, which the checkpoint would refuse).
    resumed = subprocess.run([sys.executable, "-m", "graspq.cli", "train", "--out", str(run),
                              "--resume", "--episodes", str(stopped_at + 2)],
                             capture_output=True, text=True, timeout=300, check=False)
    assert resumed.returncode == 0, resumed.stderr
    assert f"resume: {run / 'training.yaml'}" in resumed.stderr
    assert load_checkpoint(run)["episode"] == stopped_at + 2


def test_unturned_branches_are_recorded_beside_the_demonstrations(tmp_path):
    config = dataclasses.replace(TINY, episodes=1, demo_episodes=6, demo_unturned_branches=True)
    lines: list[str] = []
    trainer = Trainer(config, TINY_ENV, tmp_path / "run", log=lines.append)
    try:
        trainer.run()
    finally:
        trainer.close()
    reported = [re.search(r"(\d+) unturned branches", line) for line in lines]
    branches = int(next(match for match in reported if match).group(1))
    assert branches > 0
    # Room for a branch beside every episode, and each branch stored as an episode of its own.
    assert trainer.demos.capacity == 2 * 6 * (TINY_ENV.max_steps + 1)
    arrays = trainer.demos._arrays()
    ends = arrays["valid"] & (arrays["terminated"] | arrays["truncated"])
    assert ends.sum() == 6 + branches


def test_turn_ties_label_both_buffers_where_the_cube_is_as_near_either_way(tmp_path):
    config = dataclasses.replace(TINY, episodes=1, demo_episodes=30, demo_unturned_branches=True,
                                 expert_labels=True, pose_loss_weight=0.5,
                                 expert_turn_ties=True)
    # Episodes long enough for the oracle to reach the turn height.
    lines: list[str] = []
    trainer = Trainer(config, dataclasses.replace(TINY_ENV, max_steps=40), tmp_path / "run",
                      log=lines.append)
    try:
        trainer.run()
    finally:
        trainer.close()
    half_step = TINY_ENV.actions.yaw_step_deg / 2
    tied = 0
    for buffer in (trainer.demos, trainer.replay):
        arrays = buffer._arrays()
        valid = arrays["valid"]
        expert, tie = arrays["expert"][valid], arrays["tie"][valid]
        _, yaw_to_turn = decode_pose(arrays["pose"][valid])
        turns = np.isin(expert, (Action.PLUS_YAW, Action.MINUS_YAW))
        beyond = np.abs(np.degrees(yaw_to_turn)) > 45.0 - half_step
        # A tie exactly where a turn label meets a cube as near either way: the other turn.
        np.testing.assert_array_equal(tie != NO_EXPERT, turns & beyond)
        opposite = np.where(expert == Action.PLUS_YAW, Action.MINUS_YAW, Action.PLUS_YAW)
        np.testing.assert_array_equal(tie[tie != NO_EXPERT], opposite[tie != NO_EXPERT])
        tied += int((tie != NO_EXPERT).sum())
        assert buffer.tied_label_count() == int((tie != NO_EXPERT).sum())
    assert tied > 0
    reported = f"({trainer.demos.tied_label_count()} with both turns as labels)"
    assert any(reported in line for line in lines)


def test_prioritised_replay_is_refused_for_qlearning_with_a_clear_error(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "graspq.cli", "train", "--learner", "qlearning", "--episodes",
         "1", "--set", "prioritized_replay.alpha=0.6", "--out", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode != 0
    assert "prioritized_replay.alpha" in result.stderr and "no replay buffer" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "run" / "checkpoint.pt").exists()


def test_training_episodes_hold_their_random_actions_for_a_streak(tmp_path):
    """max_random_streak reaches the training episodes: with every step exploring, the
    replay's actions come in runs of the streak's length, not one-step draws."""
    def mean_run(streak):
        exploration = ExplorationConfig(epsilon_start=1.0, epsilon_end=1.0,
                                        epsilon_decay_episodes=1, max_random_streak=streak)
        config = dataclasses.replace(TINY, exploration=exploration, demo_episodes=0,
                                     demo_margin=0.0, pretrain_updates=0, eval_every=4,
                                     checkpoint_every=4)
        replay = _train(tmp_path / f"streak{streak}", config).replay
        actions = replay._action[replay._valid]  # in the order taken, episode after episode
        assert actions.size > 10
        return actions.size / (np.count_nonzero(np.diff(actions)) + 1)

    assert mean_run(1) < 1.4 < 1.9 < mean_run(6)


def test_training_episodes_turn_instead_of_a_greedy_close(tmp_path):
    """exploration.turn_instead_of_close reaches the training episodes: a network biased to
    close greedily closes at once without it, and with it at 1 never closes, turning instead."""
    def actions(turn_instead_of_close):
        exploration = ExplorationConfig(epsilon_start=0.0, epsilon_end=0.0,
                                        epsilon_decay_episodes=1,
                                        turn_instead_of_close=turn_instead_of_close)
        config = dataclasses.replace(TINY, exploration=exploration, demo_episodes=0,
                                     demo_margin=0.0, pretrain_updates=0, episodes=2,
                                     eval_every=4, checkpoint_every=4)
        trainer = Trainer(config, TINY_ENV, tmp_path / str(turn_instead_of_close),
                          log=lambda line: None)
        try:
            with torch.no_grad():  # far above what the few updates can move
                for net in (trainer.agent.online, trainer.agent.target):
                    net.head[-1].bias[Action.CLOSE] = 50.0
            trainer.run()
            return trainer.replay._action[trainer.replay._valid]
        finally:
            trainer.close()

    assert actions(0.0).tolist() == [Action.CLOSE] * 2  # two one-step episodes
    turned = actions(1.0)
    assert turned.size == 2 * TINY_ENV.max_steps  # two time-outs
    assert set(turned.tolist()) <= {Action.PLUS_YAW, Action.MINUS_YAW}


def test_updates_per_step_makes_that_many_updates_on_each_learning_step(tmp_path):
    """updates_per_step 2 makes two updates on every step that one makes one on: every step
    once learning_starts transitions are in the replay."""
    config = dataclasses.replace(TINY, demo_episodes=0, demo_margin=0.0, pretrain_updates=0,
                                 episodes=3)
    once = _train(tmp_path / "once", config)
    twice = _train(tmp_path / "twice", dataclasses.replace(config, updates_per_step=2))
    steps_before_learning = config.learning_starts - 1
    assert once.agent.updates == once.env_steps - steps_before_learning > 0
    assert twice.agent.updates == 2 * (twice.env_steps - steps_before_learning) > 0
    with pytest.raises(ConfigError, match="updates_per_step"):
        TrainingConfig(learner="qlearning", updates_per_step=2)


def test_close_replay_rows_join_every_update_once_a_close_is_held(tmp_path):
    """close_replay_rows draws that many CLOSE transitions into each update beside the
    batch: the same run with them learns other weights (a close is in the replay from the
    first episodes of this tiny scene), and qlearning, with no replay, refuses them by name."""
    config = dataclasses.replace(TINY, demo_episodes=0, demo_margin=0.0, pretrain_updates=0,
                                 episodes=3)
    plain = _train(tmp_path / "plain", config)
    assert plain.replay.holds_action(Action.CLOSE)
    closes = _train(tmp_path / "closes", dataclasses.replace(config, close_replay_rows=4))
    assert closes.agent.updates > 0 and plain.agent.updates > 0
    changed = [name for name, tensor in plain.agent.online.state_dict().items()
               if tensor.is_floating_point()
               and not torch.equal(tensor, closes.agent.online.state_dict()[name])]
    assert changed
    with pytest.raises(ConfigError, match="close_replay_rows"):
        TrainingConfig(learner="qlearning", close_replay_rows=4)


def test_learning_rate_decay_sets_adams_rate_from_the_episode(tmp_path):
    """The rate holds until start_episode, falls linearly to final_fraction of it over
    episodes, then holds; the run's Adam steps with the schedule's rate for its last episode
    and TensorBoard records it. The same run without decay learns other weights."""
    decay = LearningRateDecayConfig(final_fraction=0.1, start_episode=1, episodes=2)
    schedule = dataclasses.replace(TINY, learning_rate=1e-3, learning_rate_decay=decay)
    assert [schedule.learning_rate_at(e) for e in (0, 1, 2, 3, 9)] == pytest.approx(
        [1e-3, 1e-3, 0.55e-3, 1e-4, 1e-4])
    assert TrainingConfig().learning_rate_at(10_000) == TrainingConfig().learning_rate
    config = dataclasses.replace(schedule, demo_episodes=0, demo_margin=0.0, pretrain_updates=0)
    decayed = _train(tmp_path / "decayed", config)
    last_episode = config.episodes - 1
    assert [group["lr"] for group in decayed.agent.optimizer.param_groups] == pytest.approx(
        [1e-4])
    events = EventAccumulator(str(tmp_path / "decayed" / "tensorboard")).Reload()
    logged = [event.value for event in events.Scalars("charts/learning_rate")]
    assert logged == pytest.approx([config.learning_rate_at(e) for e in range(last_episode + 1)])
    steady = _train(tmp_path / "steady", dataclasses.replace(
        config, learning_rate_decay=LearningRateDecayConfig()))
    assert steady.agent.optimizer.param_groups[0]["lr"] == config.learning_rate
    assert "charts/learning_rate" not in EventAccumulator(
        str(tmp_path / "steady" / "tensorboard")).Reload().Tags()["scalars"]
    assert any(not torch.equal(tensor, decayed.agent.online.state_dict()[name])
               for name, tensor in steady.agent.online.state_dict().items()
               if tensor.is_floating_point())


@pytest.mark.parametrize("fraction", [0.0, 1.5, "tenth"])
def test_a_bad_learning_rate_decay_names_its_key(tmp_path, fraction):
    params = to_mapping(TrainingConfig())
    params["learning_rate_decay"]["final_fraction"] = fraction
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump({TRAINING_NODE_NAME: {"ros__parameters": params}}))
    with pytest.raises(ConfigError) as error:
        load_config(TrainingConfig, path, TRAINING_NODE_NAME)
    assert error.value.key == "learning_rate_decay.final_fraction"
