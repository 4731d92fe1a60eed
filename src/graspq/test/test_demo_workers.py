"""Demonstrations recorded in worker processes (real spawned processes, real MuJoCo scenes)."""

from __future__ import annotations

from pathlib import Path

import gymnasium
import numpy as np
import pytest

from graspq.learning.demo_workers import DemoEpisode, DemoStyle, record_demonstrations
from graspq.learning.demonstrations import demo_capacity
from graspq.learning.replay import ReplayBuffer

# Noisy, with branches: every way a demonstration can differ between processes is exercised.
STYLE = DemoStyle(epsilon=0.3, unturned_branches=True, turn_ties=True)
EPISODES = [DemoEpisode(env_seed, (5, index)) for index, env_seed in enumerate(range(40, 45))]


def _recorded(env, episodes: list[DemoEpisode], workers: int) -> tuple[ReplayBuffer, tuple]:
    camera = env.config.camera
    buffer = ReplayBuffer(demo_capacity(len(episodes), env.config.max_steps, True),
                          camera.image_size, "multi", camera.depth_near_m, camera.depth_far_m)
    counts = record_demonstrations(env, buffer, episodes, STYLE, workers)
    return buffer, counts


def _saved_arrays(buffer: ReplayBuffer, path: Path) -> dict[str, np.ndarray]:
    buffer.save(path)
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def test_the_demonstrations_are_the_same_whatever_the_number_of_processes(env, tmp_path):
    one, counts = _recorded(env, EPISODES, workers=1)
    assert len(one) > 5 * 5 and counts.branches > 0
    expected = _saved_arrays(one, tmp_path / "one.npz")
    for workers in (2, 3):
        buffer, worker_counts = _recorded(env, EPISODES, workers)
        assert worker_counts == counts
        arrays = _saved_arrays(buffer, tmp_path / f"{workers}.npz")
        assert arrays.keys() == expected.keys()
        for key, array in expected.items():
            np.testing.assert_array_equal(arrays[key], array, err_msg=f"{workers}: {key}")
    # Each episode's noise is its own: the last episode recorded alone is the same episode.
    alone, _ = _recorded(env, EPISODES[-1:], workers=1)
    last = _saved_arrays(alone, tmp_path / "alone.npz")
    frames = int(last["written"])
    np.testing.assert_array_equal(expected["overhead"][-frames:], last["overhead"])
    np.testing.assert_array_equal(expected["action"][-frames:], last["action"])


def test_a_workers_failure_reaches_the_caller(env):
    bad = [*EPISODES[:2], DemoEpisode(-1, (5, 2))]  # the second process's share: a bad seed
    with pytest.raises(gymnasium.error.Error, match="Seed must be greater or equal to zero"):
        _recorded(env, bad, workers=2)
    with pytest.raises(ValueError, match="at least 1"):
        _recorded(env, EPISODES, workers=0)
