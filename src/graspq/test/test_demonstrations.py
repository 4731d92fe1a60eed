"""Oracle demonstrations and their unturned branches, recorded in a real MuJoCo scene."""

import math

import numpy as np

from graspq.actions import TURNS, Action
from graspq.learning.demonstrations import record_oracle_episodes
from graspq.learning.pose import decode_pose
from graspq.learning.replay import NO_EXPERT, ReplayBuffer
from graspq.sim.oracle import OraclePolicy


def stored_episodes(buffer: ReplayBuffer) -> list[dict[str, np.ndarray]]:
    """The buffer's transitions split into episodes, in the order they were added."""
    arrays = buffer._arrays()
    episodes, slots = [], []
    for slot in np.flatnonzero(arrays["valid"]):
        slots.append(slot)
        if arrays["terminated"][slot] or arrays["truncated"][slot]:
            index = np.array(slots)
            episodes.append({key: arrays[key][index] for key in
                             ("overhead", "wrist", "action", "expert", "terminated", "reward",
                              "tie", "pose")})
            slots = []
    return episodes


def noiseless(seeds: list[int]) -> list[tuple[int, np.random.Generator]]:
    """Episode pairs for epsilon 0, whose generator is never drawn from."""
    return [(seed, np.random.default_rng(0)) for seed in seeds]


def turned_cube_seeds(env, count: int, least_deg: float = 20.0,
                      most_deg: float = 45.0) -> list[int]:
    """Env seeds whose object is a cube the oracle must turn ``least_deg`` to ``most_deg``."""
    oracle, seeds = OraclePolicy(env), []
    for seed in range(200):
        env.reset(seed=seed)
        if (env.object_spec.kind == "cube"
                and least_deg < abs(math.degrees(oracle.yaw_error())) <= most_deg):
            seeds.append(seed)
            if len(seeds) == count:
                return seeds
    raise AssertionError("no turned cube in 200 seeds")


def test_each_turning_demonstration_gets_a_branch_that_never_turns(env):
    seeds = turned_cube_seeds(env, 2)
    camera = env.config.camera
    buffer = ReplayBuffer(500, camera.image_size, "multi", camera.depth_near_m,
                          camera.depth_far_m)
    counts = record_oracle_episodes(env, buffer, noiseless(seeds), 0.0,
                                    unturned_branches=True)
    assert counts.branches == 2 and counts.successes == 2  # the oracle picks both cubes
    episodes = stored_episodes(buffer)
    # The branch picks count the branches whose final close earned the success reward.
    rewards = env.config.rewards
    picked = (rewards.success + rewards.partial) / 2  # between the two rewards of a close
    assert counts.branch_successes == sum(branch["reward"][-1] > picked
                                          for branch in episodes[1::2])
    assert len(episodes) == 4  # each demonstration, then its branch
    for demo, branch in zip(episodes[::2], episodes[1::2], strict=True):
        first_turn = int(np.flatnonzero(np.isin(demo["action"], TURNS))[0])
        # The branch starts in the state where the oracle first turned: the replay of the
        # episode's prefix reproduces its camera images exactly.
        np.testing.assert_array_equal(branch["overhead"][0], demo["overhead"][first_turn])
        np.testing.assert_array_equal(branch["wrist"][0], demo["wrist"][first_turn])
        assert not np.isin(branch["action"], TURNS).any()
        assert branch["expert"][0] in TURNS  # labelled with the turn it skips
        assert branch["action"][-1] == Action.CLOSE and branch["terminated"][-1]


def test_without_branches_nothing_but_the_demonstrations_is_stored(env):
    seeds = turned_cube_seeds(env, 1)
    camera = env.config.camera
    buffer = ReplayBuffer(200, camera.image_size, "multi", camera.depth_near_m,
                          camera.depth_far_m)
    assert record_oracle_episodes(env, buffer, noiseless(seeds), 0.0) == (1, 0, 0)
    assert len(stored_episodes(buffer)) == 1


def test_turn_ties_label_the_opposite_turn_where_the_cube_is_as_near_either_way(env):
    # A cube 38-45 deg off (three turns either way) and one 20-37.5 deg off (no tie).
    seeds = turned_cube_seeds(env, 1, least_deg=39.0) + turned_cube_seeds(env, 1, most_deg=36.0)
    camera = env.config.camera
    for ties_on in (True, False):
        buffer = ReplayBuffer(500, camera.image_size, "multi", camera.depth_near_m,
                              camera.depth_far_m)
        record_oracle_episodes(env, buffer, noiseless(seeds), 0.0,
                               unturned_branches=True, turn_ties=ties_on)
        tied_states = 0
        for episode in stored_episodes(buffer):
            _, yaw_to_turn = decode_pose(episode["pose"])
            for expert, tie, yaw in zip(episode["expert"], episode["tie"], yaw_to_turn,
                                        strict=True):
                beyond = abs(math.degrees(yaw)) > 45.0 - env.config.actions.yaw_step_deg / 2
                if ties_on and expert in TURNS and beyond:
                    assert tie == (Action.MINUS_YAW if expert == Action.PLUS_YAW
                                   else Action.PLUS_YAW)
                    tied_states += 1
                else:
                    assert tie == NO_EXPERT
        # The 39+ deg cube's demonstration and its branch are labelled tied where they start
        # turning; without the key nothing is.
        assert (tied_states >= 2) == ties_on
