"""``graspq bench train``: gradient updates per second and env steps per second while
training; ``graspq bench demos``: demonstration episodes per second in one and several
processes.

Baselines, measured in the same run: for updates, the same update with the images in the
default (NCHW-contiguous) memory format instead of channels_last, and float32 against bf16
mixed precision; for demonstrations, the
same episodes recorded in one process.
"""

from __future__ import annotations

import dataclasses
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from graspq.learning.agent import QAgent
from graspq.learning.demo_workers import record_demonstrations
from graspq.learning.precision import native_bf16_features, resolve_precision
from graspq.learning.replay import ReplayBuffer
from graspq.learning.settings import TrainingConfig
from graspq.learning.trainer import Trainer, demo_buffer, demo_plan, demo_style
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import EnvConfig


def _filled_replay(env: BaxterGraspEnv, training: TrainingConfig, transitions: int,
                   rng: np.random.Generator) -> ReplayBuffer:
    camera = env.config.camera
    replay = ReplayBuffer(transitions + 1, camera.image_size, training.views,
                          camera.depth_near_m, camera.depth_far_m)
    obs, _ = env.reset(seed=0)
    episode = 0
    while replay.num_added < transitions:
        action = int(rng.integers(env.action_space.n))
        next_obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(obs, action, reward, next_obs, terminated, truncated)
        obs = next_obs
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset(seed=episode)
    return replay


def _updates_per_s(training: TrainingConfig, env_config: EnvConfig, replay: ReplayBuffer,
                   seconds: float, memory_format: torch.memory_format) -> float:
    camera = env_config.camera
    agent = QAgent(training, training.network_shape(env_config),
                   camera.depth_near_m, camera.depth_far_m, memory_format=memory_format)
    rng = np.random.default_rng(0)
    for _ in range(3):  # warm-up: allocator, oneDNN kernel selection
        agent.update(replay.sample(training.batch_size, rng))
    updates, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or updates < 3:
        agent.update(replay.sample(training.batch_size, rng))
        updates += 1
    return updates / elapsed


def _overlap_probe(training: TrainingConfig, env_config: EnvConfig, replay: ReplayBuffer,
                   seconds: float) -> dict[str, float]:
    """Would stepping the scene while the update runs pay? Scene steps/s and updates/s, each
    alone and then both at once (the updates in a second thread: torch and MuJoCo release the
    GIL), and the time per environment step with one update per step either way."""
    camera = env_config.camera
    agent = QAgent(training, training.network_shape(env_config),
                   camera.depth_near_m, camera.depth_far_m)
    env = BaxterGraspEnv(env_config)
    rng, actions = np.random.default_rng(0), np.random.default_rng(1)
    stop = threading.Event()
    steps = [0]

    def step_scene() -> None:
        _, _, terminated, truncated, _ = env.step(int(actions.integers(env.action_space.n)))
        steps[0] += 1
        if terminated or truncated:
            env.reset(seed=steps[0])

    def update() -> None:
        agent.update(replay.sample(training.batch_size, rng))

    updates = [0]

    def updates_until_stopped() -> None:
        while not stop.is_set():
            update()
            updates[0] += 1

    try:
        env.reset(seed=0)
        update()  # warm-up
        share = seconds / 3
        scene_calls, scene_s = _timed(step_scene, share)
        update_calls, update_s = _timed(update, share)
        # The updates go to the second thread: the scene's GL context belongs to this one.
        steps[0] = 0
        worker = threading.Thread(target=updates_until_stopped)
        worker.start()
        try:
            both_steps, both_s = _timed(step_scene, share)
        finally:
            stop.set()
            worker.join()
        both_updates = updates[0]
    finally:
        env.close()
    serial_ms = 1000.0 * (scene_s / scene_calls + update_s / update_calls)
    overlapped_ms = 1000.0 * max(both_s / max(both_updates, 1), both_s / both_steps)
    return {"scene_steps_per_s_alone": scene_calls / scene_s,
            "updates_per_s_alone": update_calls / update_s,
            "scene_steps_per_s_beside_updates": both_steps / both_s,
            "updates_per_s_beside_scene": both_updates / both_s,
            "step_ms_serial": serial_ms, "step_ms_overlapped": overlapped_ms,
            "overlap_speedup": serial_ms / overlapped_ms}


def _timed(run_once: Any, seconds: float) -> tuple[int, float]:
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds or calls < 2:
        run_once()
        calls += 1
    return calls, elapsed


def bench_train(training: TrainingConfig, env_config: EnvConfig,
                seconds: float) -> dict[str, Any]:
    """Measure updates/s (fp32 and bf16, channels_last; NCHW at the configured precision)
    and env steps/s of the real training loop (at the configured precision)."""
    torch.set_num_threads(training.torch_threads)
    env = BaxterGraspEnv(env_config)
    try:
        replay = _filled_replay(env, training, 300, np.random.default_rng(0))
    finally:
        env.close()
    # fp32 and bf16 interleaved, so a change in the machine's pace hits both alike.
    rates: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for _ in range(2):
        for precision, measured in rates.items():
            measured.append(_updates_per_s(dataclasses.replace(training, precision=precision),
                                           env_config, replay, seconds / 12,
                                           torch.channels_last))
    fp32, bf16 = (float(np.mean(measured)) for measured in rates.values())
    used = resolve_precision(training.precision)
    updates_per_s = bf16 if used == "bf16" else fp32
    baseline = _updates_per_s(dataclasses.replace(training, precision=used), env_config,
                              replay, seconds / 6, torch.contiguous_format)
    overlap = _overlap_probe(dataclasses.replace(training, precision=used), env_config, replay,
                             seconds / 4)
    # The real loop: epsilon-greedy acting, replay, one update per `update_every` steps.
    loop_config = dataclasses.replace(training, learning_starts=training.batch_size,
                                      episodes=10**6, eval_every=10**6,
                                      checkpoint_every=10**6, demo_episodes=0)
    with tempfile.TemporaryDirectory() as run_dir:
        trainer = Trainer(loop_config, env_config, Path(run_dir), log=lambda line: None)
        try:
            start = time.perf_counter()
            while time.perf_counter() - start < seconds / 3:
                trainer.run_episode()
            elapsed = time.perf_counter() - start
            steps = trainer.env_steps
        finally:
            trainer.close()
    return {
        "updates_per_s": updates_per_s,
        "update_ms": 1000.0 / updates_per_s,
        "baseline_nchw_updates_per_s": baseline,
        "channels_last_speedup": updates_per_s / baseline,
        "env_steps_per_s_while_training": steps / elapsed,
        "precision": used,
        "native_bf16": native_bf16_features(),
        "fp32_updates_per_s": fp32,
        "bf16_updates_per_s": bf16,
        "bf16_speedup": bf16 / fp32,
        **{f"overlap_{key}" if not key.startswith("overlap") else key: value
           for key, value in overlap.items()},
        "learner": training.learner,
        "views": training.views,
        "batch_size": training.batch_size,
        "update_every": training.update_every,
        "image_size": env_config.camera.image_size,
        "torch_threads": training.torch_threads,
    }


def bench_demos(training: TrainingConfig, env_config: EnvConfig, episodes: int,
                workers: int) -> dict[str, Any]:
    """Record the run's first ``episodes`` demonstrations (its seed and ``demo_*`` keys) in
    one process, then the same ones in ``workers``; report both rates and whether the two
    buffers hold the same transitions."""
    if episodes < 1 or workers < 1:
        raise ValueError(f"--demos and --workers must be at least 1, got {episodes} and "
                         f"{workers}")
    plan, style = demo_plan(training.seed, episodes), demo_style(training)
    camera = env_config.camera
    env = BaxterGraspEnv(env_config)
    try:
        timings, buffers = [], []
        for processes in (1, workers):
            buffer = demo_buffer(training, env_config, episodes)
            start = time.perf_counter()
            counts = record_demonstrations(env, buffer, plan, style, processes)
            timings.append(time.perf_counter() - start)
            buffers.append((buffer, counts))
    finally:
        env.close()
    (one, one_counts), (many, many_counts) = buffers
    same = (len(one) == len(many) and one_counts == many_counts
            and all(np.array_equal(a, b) for a, b in zip(
                one.sample(256, np.random.default_rng(0)).obs.values(),
                many.sample(256, np.random.default_rng(0)).obs.values(), strict=True)))
    return {
        "episodes": episodes,
        "transitions": len(one),
        "workers": workers,
        "one_process_s": timings[0],
        "one_process_episodes_per_s": episodes / timings[0],
        "workers_s": timings[1],
        "workers_episodes_per_s": episodes / timings[1],
        "speedup": timings[0] / timings[1],
        "same_demonstrations": same,
        "demo_epsilon": style.epsilon,
        "unturned_branches": style.unturned_branches,
        "image_size": camera.image_size,
    }
