"""The trajectory a driver streams: the env's ramp for one point, held points for several."""

import numpy as np
import pytest

from graspq.drivers.trajectory import RAMP_FRACTION, TrajectoryFollower
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import EnvConfig


def test_one_point_ramps_like_the_env_then_holds():
    start, goal = np.zeros(7), np.linspace(0.1, 0.7, 7)
    follower = TrajectoryFollower(start)
    follower.follow([(0.5, goal)], start_s=10.0)
    ramp_end = 10.0 + RAMP_FRACTION * 0.5
    assert np.allclose(follower.target(10.0), start)
    assert np.allclose(follower.target((10.0 + ramp_end) / 2), goal / 2)
    assert np.allclose(follower.target(ramp_end), goal)
    assert np.allclose(follower.target(11.0), goal)
    assert np.allclose(follower.goal, goal)


def test_the_ramp_reaches_the_env_ramps_targets_at_the_env_ramps_times():
    env = BaxterGraspEnv(EnvConfig(max_steps=2))
    try:
        dt = float(env.model.opt.timestep)
        start, goal = env.home_joints, env.home_joints + 0.05
        steps = 200
        follower = TrajectoryFollower(start)
        follower.follow([(steps * dt, goal)], start_s=0.0)
        elapsed = 0
        for targets, n in env.joint_ramp(start, goal, steps):
            elapsed += n
            if elapsed <= int(steps * RAMP_FRACTION):  # each chunk's target, at its end
                assert np.allclose(follower.target(elapsed * dt), targets, atol=1e-9)
        assert np.allclose(follower.target(steps * dt), goal)
    finally:
        env.close()


def test_a_new_trajectory_starts_from_where_the_last_one_is_now():
    follower = TrajectoryFollower(np.zeros(2))
    follower.follow([(1.0, np.array([1.0, 1.0]))], start_s=0.0)
    midway = follower.target(0.2)
    follower.follow([(1.0, np.array([-1.0, 0.0]))], start_s=0.2)
    assert np.allclose(follower.target(0.2), midway)  # no jump


def test_several_points_are_held_from_their_times_on():
    follower = TrajectoryFollower(np.zeros(2))
    a, b = np.array([0.1, 0.2]), np.array([0.3, 0.4])
    follower.follow([(0.0, a), (0.5, b)], start_s=2.0)
    assert np.allclose(follower.target(1.9), 0.0)
    assert np.allclose(follower.target(2.0), a)
    assert np.allclose(follower.target(2.49), a)
    assert np.allclose(follower.target(2.5), b)
    follower.hold(np.array([0.05, 0.05]))
    assert np.allclose(follower.target(3.0), 0.05)


@pytest.mark.parametrize("points", [
    [],
    [(0.5, np.array([0.0, np.nan]))],
    [(0.5, np.zeros(3))],
    [(0.5, np.zeros(2)), (0.2, np.zeros(2))],
    [(-1.0, np.zeros(2))],
])
def test_a_malformed_trajectory_is_refused_and_the_last_one_kept(points):
    follower = TrajectoryFollower(np.zeros(2))
    follower.follow([(0.0, np.ones(2))], start_s=0.0)
    with pytest.raises(ValueError):
        follower.follow(points, start_s=1.0)
    assert np.allclose(follower.target(2.0), 1.0)
