"""GraspQ/BaxterGrasp-v0 with real MuJoCo physics and rendering."""

import dataclasses
import math

import gymnasium
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from graspq.actions import Action
from graspq.sim import ENV_ID
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.settings import EnvConfig, ObjectConfig

# An object out of the gripper's way, for tests of arm motion.
CORNER = {"object": "cube", "object_pose": (0.60, -0.53, 0.0)}


def _run_oracle(env, seed, options=None):
    policy = OraclePolicy(env)
    env.reset(seed=seed, options=options)
    rewards, infos = [], []
    done = False
    while not done:
        _, reward, terminated, truncated, info = env.step(policy.act())
        rewards.append(reward)
        infos.append(info)
        done = terminated or truncated
    return rewards, infos


def test_passes_gymnasiums_env_checker():
    env = gymnasium.make(ENV_ID)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_observation_matches_the_contract(env):
    observation, info = env.reset(seed=0)
    size = env.config.camera.image_size
    assert observation["overhead_rgbd"].shape == (size, size, 4)
    assert observation["overhead_rgbd"].dtype == np.float32
    assert observation["wrist_rgb"].shape == (size, size, 3)
    assert observation["wrist_rgb"].dtype == np.uint8
    assert observation["motor"].shape == (8,)
    assert env.observation_space.contains(observation)
    depth = observation["overhead_rgbd"][..., 3]
    table_distance = env.config.camera.overhead_distance_m
    assert np.median(depth) == pytest.approx(table_distance, abs=0.1)
    assert info["object"] in ("cube", "sphere", "cylinder")


def test_same_seed_same_object_and_first_observation(env):
    first, info_a = env.reset(seed=42)
    env.step(Action.PLUS_X)
    second, info_b = env.reset(seed=42)
    assert info_a["object_spec"] == info_b["object_spec"]
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    other = BaxterGraspEnv()
    try:
        third, info_c = other.reset(seed=42)
        assert info_c["object_spec"] == info_a["object_spec"]
        for key in first:
            np.testing.assert_array_equal(first[key], third[key], err_msg=key)
    finally:
        other.close()
    _, info_d = env.reset(seed=43)
    assert info_d["object_spec"] != info_a["object_spec"]


def test_same_seed_same_trajectory(env):
    actions = [Action.PLUS_X, Action.MINUS_Z, Action.PLUS_YAW, Action.MINUS_Y, Action.CLOSE]
    runs = []
    for _ in range(2):
        env.reset(seed=7)
        runs.append([env.step(a)[0]["motor"].copy() for a in actions])
    np.testing.assert_array_equal(np.array(runs[0]), np.array(runs[1]))


@pytest.mark.parametrize("action", [Action.PLUS_X, Action.MINUS_X, Action.PLUS_Y,
                                    Action.MINUS_Y, Action.PLUS_Z, Action.MINUS_Z])
def test_each_move_travels_its_step_within_10_percent(env, action):
    env.reset(seed=0, options=CORNER)
    step = env.config.actions.translation_step_m
    axis = {Action.PLUS_X: 0, Action.MINUS_X: 0, Action.PLUS_Y: 1, Action.MINUS_Y: 1,
            Action.PLUS_Z: 2, Action.MINUS_Z: 2}[action]
    sign = 1.0 if action in (Action.PLUS_X, Action.PLUS_Y, Action.PLUS_Z) else -1.0
    for _ in range(3):
        before = env.fingertip_position()
        _, _, _, _, info = env.step(action)
        moved = env.fingertip_position() - before
        assert info["executed"]
        assert sign * moved[axis] == pytest.approx(step, rel=0.1)
        assert np.linalg.norm(np.delete(moved, axis)) < 0.1 * step


@pytest.mark.parametrize("action", [Action.PLUS_YAW, Action.MINUS_YAW])
def test_each_turn_turns_its_step_within_10_percent(env, action):
    env.reset(seed=0, options=CORNER)
    step = math.radians(env.config.actions.yaw_step_deg)
    sign = 1.0 if action is Action.PLUS_YAW else -1.0
    site = env.scene.tcp_site
    for _ in range(3):
        before = env.data.site_xmat[site].reshape(3, 3).copy()
        env.step(action)
        after = env.data.site_xmat[site].reshape(3, 3)
        turned = math.atan2(after[1, 0], after[0, 0]) - math.atan2(before[1, 0], before[0, 0])
        turned = (turned + math.pi) % (2 * math.pi) - math.pi
        assert sign * turned == pytest.approx(step, rel=0.1)


@pytest.mark.parametrize(("action", "allowed"), [(Action.PLUS_Z, 10), (Action.PLUS_YAW, 6)])
def test_move_past_the_workspace_is_not_executed_and_costs_minus_one(env, action, allowed):
    env.reset(seed=0, options=CORNER)
    for _ in range(allowed):
        assert env.step(action)[4]["executed"]
    joints_before = env.data.qpos[env.scene.arm_qpos_adr].copy()
    command_before = env.fingertip_command
    _, reward, terminated, truncated, info = env.step(action)
    assert not info["executed"]
    rewards = env.config.rewards
    assert reward == pytest.approx(rewards.not_executed + rewards.step)
    assert info["reward_terms"]["not_executed"] == rewards.not_executed
    np.testing.assert_array_equal(env.data.qpos[env.scene.arm_qpos_adr], joints_before)
    np.testing.assert_array_equal(env.fingertip_command[0], command_before[0])
    assert not terminated and not truncated


def test_unreachable_target_is_not_executed():
    # A workspace box larger than the arm's reach: IK, not the box, must refuse the move.
    wide = dataclasses.replace(EnvConfig().scene, workspace_half_xy_m=0.3, spawn_half_xy_m=0.0,
                               workspace_center_xy_m=(0.85, -0.45))
    config = dataclasses.replace(EnvConfig(), scene=wide)
    env = BaxterGraspEnv(config)
    try:
        env.reset(seed=0)
        executed = [env.step(Action.PLUS_X)[4]["executed"] for _ in range(30)]
        assert not all(executed)
        first_refusal = executed.index(False)
        assert not any(executed[first_refusal:]), "once out of reach, further +x stays refused"
    finally:
        env.close()


def test_episode_reward_accounting_matches_the_config():
    config = dataclasses.replace(EnvConfig(), rewards=dataclasses.replace(
        EnvConfig().rewards, success=7.0, step=-0.1))
    env = BaxterGraspEnv(config)
    try:
        rewards, infos = _run_oracle(env, seed=3, options={"object": "cube"})
    finally:
        env.close()
    assert infos[-1]["outcome"] == "success"
    for reward, info in zip(rewards, infos, strict=True):
        assert reward == pytest.approx(sum(info["reward_terms"].values()))
    moves = len(rewards) - 1
    assert sum(rewards) == pytest.approx(moves * -0.1 + 7.0)


@pytest.mark.parametrize("kind", ["cube", "sphere", "cylinder"])
def test_held_and_lifted_is_a_success(env, kind):
    rewards, infos = _run_oracle(env, seed=11, options={"object": kind})
    assert infos[-1]["outcome"] == "success"
    assert rewards[-1] == env.config.rewards.success
    opening = env.scene.gripper_opening(env.data)
    assert opening > env.config.gripper.closed_opening_m


def test_touched_and_dropped_is_partial():
    # A heavy, slippery cube: the fingers reach it, but 2 x 20 N x 0.05 cannot lift 1 kg.
    slippery = ObjectConfig(mass_kg=(1.0, 1.0), friction=(0.05, 0.05))
    env = BaxterGraspEnv(dataclasses.replace(EnvConfig(), objects=slippery))
    try:
        rewards, infos = _run_oracle(env, seed=5, options={"object": "cube"})
    finally:
        env.close()
    assert infos[-1]["outcome"] == "partial"
    assert rewards[-1] == env.config.rewards.partial


def test_closing_on_nothing_is_a_miss(env):
    env.reset(seed=0, options=CORNER)
    _, reward, terminated, truncated, info = env.step(Action.CLOSE)
    assert info["outcome"] == "miss"
    assert terminated and not truncated
    assert reward == 0.0
    assert env.scene.gripper_opening(env.data) < env.config.gripper.closed_opening_m


def test_max_steps_truncates():
    env = BaxterGraspEnv(dataclasses.replace(EnvConfig(), max_steps=3))
    try:
        env.reset(seed=0, options=CORNER)
        results = [env.step(Action.PLUS_X) for _ in range(3)]
    finally:
        env.close()
    assert [r[3] for r in results] == [False, False, True]
    assert not any(r[2] for r in results)
    assert results[-1][4]["outcome"] == "timeout"


def test_bad_calls_fail_clearly(env):
    fresh = BaxterGraspEnv()
    try:
        with pytest.raises(RuntimeError, match="reset"):
            fresh.step(0)
    finally:
        fresh.close()
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(9)
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(seed=0, options={"colour": "red"})
    with pytest.raises(ValueError, match="unknown object type"):
        env.reset(seed=0, options={"object": "pyramid"})
