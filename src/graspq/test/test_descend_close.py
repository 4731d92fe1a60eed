"""The descend close (``actions.close_mode: descend``) and the reset options a curriculum
uses, on the real MuJoCo scene."""

import dataclasses
import json
import math

import numpy as np
import pytest

from graspq.actions import NUM_ACTIONS, Action
from graspq.rewards import Outcome
from graspq.servo.policies import SimpleDecision, softmax
from graspq.servo.runtime import CommandKind, ServoCommand, ServoRuntime
from graspq.servo.settings import ServoConfig, SimDevicesConfig
from graspq.servo.sim_devices import ServoSim
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.robot import SimRobot
from graspq.sim.settings import CameraConfig, EnvConfig

DESCEND = dataclasses.replace(EnvConfig(), actions=dataclasses.replace(
    EnvConfig().actions, close_mode="descend"))


@pytest.fixture(scope="module")
def descend_env():
    environment = BaxterGraspEnv(DESCEND)
    yield environment
    environment.close()


def _centre(env):
    return env.config.scene.workspace_center_xy_m


@pytest.mark.parametrize("kind", ["sphere", "cylinder"])
def test_descend_close_from_the_start_height_lifts_an_object_below(descend_env, env, kind):
    pose = {"object": kind, "object_pose": (*_centre(env), 0.0)}
    # In place, the fingers close 15 cm above the object: nothing is touched.
    env.reset(seed=1, options=pose)
    assert env.step(Action.CLOSE)[4]["outcome"] == "miss"
    descend_env.reset(seed=1, options=pose)
    _, reward, terminated, _, info = descend_env.step(Action.CLOSE)
    assert info["outcome"] == "success" and terminated
    assert reward == descend_env.config.rewards.success


def test_descend_close_goes_down_to_the_lowest_height_over_nothing(descend_env):
    centre = _centre(descend_env)
    descend_env.reset(seed=0, options={"object": "cube",
                                       "object_pose": (centre[0] - 0.08, centre[1] - 0.08, 0)})
    start_z = descend_env.fingertip_command[0][2]
    _, reward, _, _, info = descend_env.step(Action.CLOSE)
    assert info["outcome"] == "miss" and reward == 0.0
    scene = descend_env.config.scene
    lowest = scene.table_top_z_m + scene.workspace_z_min_above_table_m
    # The lift starts from where the descent ended: the command is the lowest height.
    assert descend_env.fingertip_command[0][2] == pytest.approx(lowest)
    assert start_z - lowest > 0.1
    # ...and the arm then lifted lift_distance_m from there.
    lifted = descend_env.fingertip_position()[2]
    assert lifted == pytest.approx(lowest + descend_env.config.gripper.lift_distance_m,
                                   abs=0.01)


def test_descend_close_stops_at_the_first_contact():
    # A 35 mm cube turned 45 deg to the fingers: its diagonal (49 mm) is wider than the open
    # gripper (48 mm), so a finger lands on the cube's top and the descent stops there.
    centre = DESCEND.scene.workspace_center_xy_m
    tool_yaw = np.radians(DESCEND.scene.start_yaw_deg)
    config = dataclasses.replace(DESCEND, objects=dataclasses.replace(
        DESCEND.objects, cube_side_m=(0.035, 0.035)))
    env = BaxterGraspEnv(config)
    try:
        env.reset(seed=0, options={"object": "cube",
                                   "object_pose": (*centre, tool_yaw + np.pi / 4)})
        top = env.object_position()[2] + env.object_spec.half_height
        _, reward, _, _, info = env.step(Action.CLOSE)
        stopped_z = env.fingertip_command[0][2]
    finally:
        env.close()
    assert info["outcome"] == "partial" and reward == config.rewards.partial
    lowest = config.scene.table_top_z_m + config.scene.workspace_z_min_above_table_m
    assert stopped_z > lowest + 0.01, "the descent went on through the cube"
    assert stopped_z == pytest.approx(top, abs=0.01)


def test_reset_options_narrow_the_spawn_and_move_the_start(env):
    centre = np.array(_centre(env))
    for seed in range(5):
        env.reset(seed=seed, options={"spawn_half_xy_m": 0.0})
        np.testing.assert_allclose(env.object_position()[:2], centre, atol=2e-3)
    env.reset(seed=0, options={"start_height_above_table_m": 0.08})
    table = env.config.scene.table_top_z_m
    assert env.fingertip_command[0][2] == pytest.approx(table + 0.08)
    assert env.fingertip_position()[2] == pytest.approx(table + 0.08, abs=3e-3)
    # Moves go on from there, as from the home pose.
    assert env.step(Action.PLUS_X)[4]["executed"]
    env.reset(seed=0)
    assert env.fingertip_command[0][2] == pytest.approx(
        table + env.config.scene.start_height_above_table_m)


def test_the_start_offset_option_starts_the_fingertip_over_the_object(env):
    scene = env.config.scene
    centre = np.array(_centre(env))
    table = scene.table_top_z_m
    offsets, starts = [], []
    for seed in range(8):
        env.reset(seed=seed, options={"start_offset_half_xy_m": 0.02,
                                      "start_height_above_table_m": 0.1})
        commanded = env.fingertip_command[0]
        # The arm stands there, not only its command: the joints were solved for the pose.
        np.testing.assert_allclose(env.fingertip_position(), commanded, atol=3e-3)
        assert commanded[2] == pytest.approx(table + 0.1)
        offsets.append(env.object_position()[:2] - commanded[:2])
        starts.append(commanded[:2])
    offsets = np.abs(np.array(offsets))
    assert offsets.max() <= 0.02 + 3e-3  # settling may nudge the object a little
    assert offsets.max() > 0.005  # offsets drawn, not zero
    # The object spawns over the whole range, so the start moves about the workspace.
    assert np.abs(np.array(starts) - centre).max() > 0.03
    # Half width 0: right over the object; the object draws of a seed are as without it.
    for seed in range(3):
        env.reset(seed=seed)
        plain = env.object_position()[:2]
        env.reset(seed=seed, options={"start_offset_half_xy_m": 0.0})
        np.testing.assert_allclose(env.object_position()[:2], plain, atol=1e-6)
        np.testing.assert_allclose(env.fingertip_command[0][:2], plain, atol=3e-3)
    # Far off, the start is kept inside the workspace and moves go on from it.
    env.reset(seed=0, options={"object_pose": (centre[0] + 0.09, centre[1] - 0.09, 0.0),
                               "start_offset_half_xy_m": 0.09})
    start = env.fingertip_command[0]
    assert env.in_workspace(start)
    assert env.step(Action.MINUS_X)[4]["executed"]


def test_the_yaw_option_turns_a_cube_no_further_than_asked_from_the_fingers(env):
    oracle = OraclePolicy(env)
    errors = {}
    for half in (0.0, 10.0):
        errors[half] = []
        for seed in range(6):
            env.reset(seed=seed, options={"object": "cube", "object_yaw_half_deg": half})
            errors[half].append(abs(math.degrees(oracle.yaw_error())))
    assert max(errors[0.0]) < 1.0  # settling may turn it a little
    assert max(errors[10.0]) < 11.0 and max(errors[10.0]) > 1.0  # not all aligned
    unbounded = []
    for seed in range(12):
        env.reset(seed=seed, options={"object": "cube"})
        unbounded.append(abs(math.degrees(oracle.yaw_error())))
    assert max(unbounded) > 15.0  # without the option, any yaw


@pytest.mark.parametrize(("options", "match"), [
    ({"object_yaw_half_deg": 181.0}, "object_yaw_half_deg"),
    ({"object_yaw_half_deg": -1.0}, "object_yaw_half_deg"),
    ({"spawn_half_xy_m": 0.5}, "spawn_half_xy_m"),
    ({"spawn_half_xy_m": -0.01}, "spawn_half_xy_m"),
    ({"start_height_above_table_m": 0.9}, "start_height_above_table_m"),
    ({"start_height_above_table_m": 0.0}, "start_height_above_table_m"),
    ({"start_offset_half_xy_m": -0.01}, "start_offset_half_xy_m"),
    ({"start_offset_half_xy_m": 2.0}, "start_offset_half_xy_m"),
])
def test_bad_reset_options_are_refused_by_name(env, options, match):
    with pytest.raises(ValueError, match=match):
        env.reset(seed=0, options=options)


class _CloseAtOnce:
    """A policy that closes at its first decision."""

    def decide(self, obs):
        q_values = np.zeros(NUM_ACTIONS, np.float32)
        q_values[Action.CLOSE] = 1.0
        return SimpleDecision(Action.CLOSE, q_values, softmax(q_values), 0.0)


@pytest.mark.parametrize("kind", ["sphere", "cylinder"])
def test_the_servo_runtime_descends_before_closing_on_a_robot_and_in_servo_sim(drive_robot,
                                                                              kind):
    # Objects right under the start pose: closing at once lifts them only after a descent.
    config = dataclasses.replace(
        DESCEND, camera=CameraConfig(image_size=32),
        scene=dataclasses.replace(DESCEND.scene, spawn_half_xy_m=0.0),
        objects=dataclasses.replace(DESCEND.objects, types=(kind,)))
    devices = SimDevicesConfig().zero_latency()
    env = BaxterGraspEnv(config)
    robot = SimRobot(config, devices, seed=2)
    try:
        simulated = ServoSim(env, ServoRuntime(config, ServoConfig(), _CloseAtOnce()),
                             devices, seed=2).run_episode(4)
        runtime = ServoRuntime(config, ServoConfig(), _CloseAtOnce())
        descent, duration = runtime.descent_trajectory(_close_command(runtime))
        outcome, actions = drive_robot(robot, runtime, 4)
    finally:
        env.close()
        robot.close()
    assert simulated.outcome == "success"
    assert actions == [Action.CLOSE] and outcome is Outcome.SUCCESS
    # 14.5 cm down at 0.1 m/s in 1 cm waypoints, each solved by IK.
    start_height = config.scene.start_height_above_table_m
    drop = start_height - config.scene.workspace_z_min_above_table_m
    assert len(descent) == math.ceil(drop / config.actions.translation_step_m - 1e-9)
    assert duration == pytest.approx(drop / config.actions.descend_speed_m_s, abs=0.01)
    # In place, the same runtime sends no descent.
    in_place = ServoRuntime(EnvConfig(), ServoConfig(), _CloseAtOnce())
    assert in_place.descent_trajectory(_close_command(in_place)) == ([], 0.0)


def _close_command(runtime):
    """The CLOSE a runtime sends from its start pose."""
    position, yaw_offset = runtime.commanded_pose
    return ServoCommand(CommandKind.CLOSE, 0.0, joints=runtime.home_joints(),
                        position_m=position, yaw_offset_rad=yaw_offset, gripper_force_n=20.0,
                        action=Action.CLOSE)


def test_a_policy_trained_with_one_close_is_refused_under_the_other():
    from graspq.policy.metadata import ACTIONS_KEY, build_metadata, metadata_differences

    def metadata(env_config):
        return build_metadata(env_config, "multi", "ddqn", "hash", "0", {}, {})

    assert metadata_differences(metadata(DESCEND), DESCEND, "multi") == []
    assert metadata_differences(metadata(DESCEND), EnvConfig(), "multi") == [
        "close_mode: policy descend, config in_place"]
    # A file from before the key closed in place.
    older = metadata(EnvConfig())
    actions = json.loads(older[ACTIONS_KEY])
    del actions["close_mode"]
    older[ACTIONS_KEY] = json.dumps(actions)
    assert metadata_differences(older, EnvConfig(), "multi") == []
    assert metadata_differences(older, DESCEND, "multi") == [
        "close_mode: policy in_place, config descend"]
