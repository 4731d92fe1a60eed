"""graspq.servo.episode_log: servo episodes to MCAP and back, into a replay buffer."""

import dataclasses

import numpy as np
import pytest

from graspq.learning.replay import ReplayBuffer
from graspq.observation import encode_overhead
from graspq.servo.episode_log import (
    EpisodeLogger,
    iter_transitions,
    load_into_replay,
    log_paths,
    read_episode_log,
)
from graspq.servo.policies import RandomPolicy
from graspq.servo.runtime import ServoRuntime
from graspq.servo.settings import ServoConfig, SimDevicesConfig
from graspq.servo.sim_devices import ServoSim
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import CameraConfig, EnvConfig

TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=8)
CAMERA = TINY_ENV.camera


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """Four servo episodes (random policy, default device latency) logged to MCAP, with the
    step records the runtime produced."""
    directory = tmp_path_factory.mktemp("logs")
    env = BaxterGraspEnv(TINY_ENV)
    logger = EpisodeLogger(directory, TINY_ENV, {"policy": "random"})
    records = []

    def on_step(record):
        records.append(record)
        logger.write(record)

    runtime = ServoRuntime(TINY_ENV, ServoConfig(), RandomPolicy(np.random.default_rng(4)),
                           on_step=on_step)
    sim = ServoSim(env, runtime, SimDevicesConfig(), seed=1)
    results = []
    try:
        for seed in range(4):
            result = sim.run_episode(seed)
            results.append(result)
            logger.finish(result.outcome, result.episode_return, {"seed": seed})
    finally:
        logger.close()
        env.close()
    return directory, logger.paths, records, results


def _replay(capacity=200, bounds=(CAMERA.depth_near_m, CAMERA.depth_far_m)):
    return ReplayBuffer(capacity, CAMERA.image_size, "multi", *bounds)


def test_every_step_is_logged_with_its_observations(logged):
    directory, paths, records, results = logged
    assert [p.name for p in paths] == [f"episode_{i:06d}.mcap" for i in range(4)]
    assert log_paths([directory]) == paths
    transitions = []
    for path, result in zip(paths, results, strict=True):
        log = read_episode_log(path)
        assert log.info["image_size"] == CAMERA.image_size and log.info["policy"] == "random"
        assert log.end["outcome"] == result.outcome and log.end["seed"] == result.seed
        assert log.end["episode_return"] == pytest.approx(result.episode_return)
        assert len(log.steps) == result.steps
        # Consecutive steps share a frame: one observation per step plus the final one.
        assert len(log.observations) == len(log.steps) + 1
        transitions += list(log.transitions())
    assert len(transitions) == len(records) > 4
    assert [t.action for t in iter_transitions([directory])] == [t.action for t in transitions]
    for transition, record in zip(transitions, records, strict=True):
        for got, obs in ((transition.obs, record.obs), (transition.next_obs, record.next_obs)):
            assert np.array_equal(got["overhead_rgbd"],
                                  encode_overhead(obs["overhead_rgbd"], CAMERA.depth_near_m,
                                                  CAMERA.depth_far_m))
            assert np.array_equal(got["wrist_rgb"], obs["wrist_rgb"])
            assert np.array_equal(got["motor"], obs["motor"])
        assert transition.action == int(record.action)
        assert transition.reward == pytest.approx(record.reward)
        assert (transition.terminated, transition.truncated) == (record.terminated,
                                                                 record.truncated)
    step = read_episode_log(paths[0]).steps[0]
    assert len(step["q_values"]) == 9 and step["stamps_s"].keys() == records[0].stamps_s.keys()
    assert step["decided_at_s"] >= max(step["stamps_s"].values())


def test_logs_load_into_a_replay_buffer_as_offline_data(logged):
    directory, paths, records, results = logged
    replay = _replay()
    report = load_into_replay([directory], replay)
    assert report.files == 4 and report.transitions == len(records)
    assert len(replay) == replay.num_added == len(records)
    assert sum(report.outcomes.values()) == 4
    batch = replay.sample(64, np.random.default_rng(0))
    logged_steps = {(int(r.action), round(r.reward, 5), r.terminated) for r in records}
    for action, reward, terminated in zip(batch.actions, batch.rewards, batch.terminated,
                                          strict=True):
        assert (int(action), round(float(reward), 5), bool(terminated)) in logged_steps
    # Episodes were stored as chains: each frame once (steps + one final frame per episode).
    assert "transitions" in replay.describe()


def test_a_log_of_another_camera_setup_is_refused_and_loads_nothing(logged, tmp_path):
    directory, paths, _, _ = logged
    replay = _replay(bounds=(0.5, 1.1))
    with pytest.raises(ValueError, match="depth quantised over"):
        load_into_replay(paths, replay)
    assert len(replay) == 0 and replay.num_added == 0
    replay = ReplayBuffer(50, 64, "multi", CAMERA.depth_near_m, CAMERA.depth_far_m)
    with pytest.raises(ValueError, match="image size 32"):
        load_into_replay(paths, replay)


def test_damaged_and_unfinished_logs_are_refused_naming_the_file(logged, tmp_path):
    _, paths, _, _ = logged
    garbage = tmp_path / "garbage.mcap"
    garbage.write_bytes(b"not an mcap file at all")
    cut = tmp_path / "cut.mcap"
    cut.write_bytes(paths[0].read_bytes()[:2000])
    for bad in (garbage, cut):
        with pytest.raises(ValueError, match=bad.name):
            read_episode_log(bad)
    replay = _replay()
    with pytest.raises(ValueError, match=cut.name):
        load_into_replay([paths[1], cut], replay)  # the good file first: still nothing added
    assert replay.num_added == 0
    with pytest.raises(FileNotFoundError):
        load_into_replay([tmp_path / "missing.mcap"], replay)


def test_an_abandoned_episode_leaves_only_a_partial_file(logged, tmp_path):
    _, paths, records, _ = logged
    logger = EpisodeLogger(tmp_path, TINY_ENV)
    logger.write(records[0])
    logger.close()
    assert [p.name for p in tmp_path.iterdir()] == ["episode_000000.mcap.partial"]
    assert log_paths([tmp_path]) == []
