"""graspq.sim.robot: the scene as a robot (the MuJoCo robot node's core). Driven by the servo
runtime the way the ROS nodes drive it (frames delivered in time order, commands as joint
trajectories and gripper commands, the grasp lifted by the runtime's lift trajectory and
judged by the robot), it plays the same episodes as ``graspq servo --sim``."""

import dataclasses

import numpy as np
import pytest

from graspq.rewards import Outcome
from graspq.servo.policies import OracleDecisions
from graspq.servo.runtime import ServoRuntime
from graspq.servo.settings import ServoConfig, SimDevicesConfig
from graspq.servo.sim_devices import ServoSim
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.robot import JOINT_STATE_NAMES, SimRobot, finger_positions
from graspq.sim.scene import gripper_opening
from graspq.sim.settings import CameraConfig, EnvConfig

TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=30)
LOCKSTEP = dataclasses.replace(SimDevicesConfig().zero_latency(), overhead_hz=20.0,
                               wrist_hz=20.0, wrist_phase_s=0.0)


@pytest.mark.parametrize("devices", [LOCKSTEP, SimDevicesConfig()], ids=["lockstep", "jitter"])
def test_the_robot_driven_like_the_ros_nodes_replays_servo_sim(devices, drive_robot):
    """Episode after episode on one robot (its clock runs on), as on a ROS graph."""
    env = BaxterGraspEnv(TINY_ENV)
    robot = SimRobot(TINY_ENV, devices, seed=9)
    try:
        for seed in (3, 6):
            expected = []
            reference = ServoRuntime(TINY_ENV, ServoConfig(),
                                     OracleDecisions(OraclePolicy(env)),
                                     on_step=lambda r, out=expected: out.append(r.action))
            sim_result = ServoSim(env, reference, devices, seed=9).run_episode(seed)
            runtime = ServoRuntime(TINY_ENV, ServoConfig(),
                                   OracleDecisions(OraclePolicy(robot.env)))
            latency = devices.command_latency_s
            outcome, actions = drive_robot(robot, runtime, seed, latency_s=latency)
            assert actions == expected, seed
            assert outcome.value == sim_result.outcome
            assert outcome is Outcome.SUCCESS  # the oracle grasps these seeds
    finally:
        env.close()
        robot.close()


def test_a_close_on_nothing_is_judged_a_miss_and_the_gripper_reports_closed():
    robot = SimRobot(TINY_ENV, LOCKSTEP)
    try:
        robot.reset(4)
        robot.command_gripper(True, 20.0)
        robot.advance(robot.time_s + 0.2)
        assert robot.gripper_result() is None  # closing takes close_duration_s (0.4 s)
        robot.advance(robot.time_s + 0.25)
        result = robot.gripper_result()
        assert result is not None and result.closing and not result.stalled
        assert result.opening_m < TINY_ENV.gripper.closed_opening_m
        assert robot.judge() is Outcome.MISS
    finally:
        robot.close()


def test_devices_deliver_at_their_rates_with_latency_and_monotonic_stamps():
    devices = SimDevicesConfig()
    robot = SimRobot(TINY_ENV, devices, seed=1)
    try:
        robot.reset(2)
        start = robot.time_s
        deliveries = robot.advance(start + 1.0)
    finally:
        robot.close()
    by_stream = {}
    for d in deliveries:
        by_stream.setdefault(d.frame.stream, []).append(d)
    assert len(by_stream["joints"]) == pytest.approx(100, abs=1)
    assert len(by_stream["overhead_colour"]) == pytest.approx(30, abs=1)
    assert len(by_stream["wrist_colour"]) == pytest.approx(30, abs=1)
    for stream, items in by_stream.items():
        stamps = [d.frame.stamp for d in items]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stream
    lags = [d.at_s - d.frame.stamp for d in by_stream["overhead_depth"]]
    assert min(lags) >= devices.overhead_latency_s - devices.overhead_jitter_s - 1e-9
    assert max(lags) <= devices.overhead_latency_s + devices.overhead_jitter_s + 1e-9
    assert by_stream["joints"][0].frame.data.shape == (len(JOINT_STATE_NAMES),)


def test_bad_trajectories_are_refused_and_nothing_moves():
    robot = SimRobot(TINY_ENV, LOCKSTEP)
    try:
        robot.reset(1)
        before = robot.joint_positions()
        for points in ([], [(0.1, np.full(7, np.nan))], [(0.1, np.zeros(6))],
                       [(0.2, robot.home_joints), (0.1, robot.home_joints)]):
            with pytest.raises(ValueError):
                robot.follow(points, robot.time_s)
        robot.advance(robot.time_s + 0.2)
        assert np.allclose(robot.joint_positions()[:7], before[:7], atol=2e-3)
    finally:
        robot.close()


def test_finger_positions_and_opening_are_inverse():
    for opening in (0.006, 0.02, 0.0476):
        assert gripper_opening(np.array(finger_positions(opening))) == pytest.approx(opening)
