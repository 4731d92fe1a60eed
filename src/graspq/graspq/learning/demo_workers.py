"""Demonstrations recorded in several processes at once, joined in episode order.

The demonstrations are the longest part of a run before its first episode (2,000 oracle
episodes, each rendering both cameras every step). They are independent of each other, so
``demo_workers`` processes can share them: the episodes are cut into contiguous shares; the
calling process records the first share straight into the buffer, while each other share is
recorded by a spawned process with its own env into its own buffer, saved to a temporary
file and appended in order (:meth:`ReplayBuffer.extend`). Each episode draws its noise from
its own generator (:class:`DemoEpisode`), and reset, physics and rendering are deterministic,
so the buffer is the same whatever the number of processes.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import NamedTuple

import numpy as np

from graspq.learning.demonstrations import DemoCounts, demo_capacity, record_oracle_episodes
from graspq.learning.replay import ReplayBuffer
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import EnvConfig


class DemoEpisode(NamedTuple):
    """One demonstration to record: the env seed of its scene and the entropy of its noise
    generator (``np.random.default_rng(noise_seed)``)."""

    env_seed: int
    noise_seed: tuple[int, ...]


class DemoStyle(NamedTuple):
    """How every demonstration is recorded (the trainer's ``demo_*`` keys)."""

    epsilon: float
    unturned_branches: bool
    turn_ties: bool


def _record(env: BaxterGraspEnv, buffer: ReplayBuffer, episodes: Sequence[DemoEpisode],
            style: DemoStyle) -> DemoCounts:
    pairs = ((episode.env_seed, np.random.default_rng(list(episode.noise_seed)))
             for episode in episodes)
    return record_oracle_episodes(env, buffer, pairs, style.epsilon, style.unturned_branches,
                                  style.turn_ties)


def _record_share(env_config: EnvConfig, frames: tuple[int, str, float, float],
                  episodes: list[DemoEpisode], style: DemoStyle, path: Path) -> DemoCounts:
    """A worker process's job: record ``episodes`` into a buffer of the caller's frame
    format (``frames``: image size, views, depth bounds) and save it to ``path``."""
    buffer = ReplayBuffer(demo_capacity(len(episodes), env_config.max_steps,
                                        style.unturned_branches), *frames)
    env = BaxterGraspEnv(env_config)
    try:
        counts = _record(env, buffer, episodes, style)
    finally:
        env.close()
    buffer.save(path)
    return counts


def record_demonstrations(env: BaxterGraspEnv, buffer: ReplayBuffer,
                          episodes: Sequence[DemoEpisode], style: DemoStyle,
                          workers: int = 1) -> DemoCounts:
    """Record ``episodes`` into ``buffer`` in their order, using ``env`` in this process and
    ``workers - 1`` more processes (see the module docstring). Returns the summed counts.

    A worker's failure is raised here, before its share is appended; the buffer then holds
    the shares before it.
    """
    if workers < 1:
        raise ValueError(f"demo workers must be at least 1, got {workers}")
    shares = [[episodes[i] for i in part]
              for part in np.array_split(np.arange(len(episodes)), min(workers, len(episodes)))
              if part.size]
    if len(shares) <= 1:
        return _record(env, buffer, episodes, style)
    frames = (buffer.image_size, buffer.views, buffer.depth_near_m, buffer.depth_far_m)
    with tempfile.TemporaryDirectory(prefix="graspq-demos-") as folder, ProcessPoolExecutor(
            len(shares) - 1, mp_context=multiprocessing.get_context("spawn")) as pool:
        paths = [Path(folder) / f"share{index}.npz" for index in range(1, len(shares))]
        jobs = [pool.submit(_record_share, env.config, frames, share, style, path)
                for share, path in zip(shares[1:], paths, strict=True)]
        total = np.array(_record(env, buffer, shares[0], style))
        for job, path in zip(jobs, paths, strict=True):
            try:
                total += job.result()
            except BrokenProcessPool as exc:
                raise RuntimeError("a demonstration worker process died (out of memory, or a "
                                   "script that starts processes without an `if __name__ == "
                                   "'__main__':` guard)") from exc
            buffer.extend(ReplayBuffer.from_file(path))
            path.unlink()
    return DemoCounts(*(int(count) for count in total))
