"""Shared fixtures: a real MuJoCo environment per test module (building one costs ~0.1 s), and a
helper that trains a (tiny) run to completion in a directory, for tests that need a real
checkpoint."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import pytest  # noqa: E402
from hypothesis import settings  # noqa: E402

# CI runs the property tests with a fixed seed (a red CI must be reproducible); developers get
# fresh random examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

from graspq.sim.env import BaxterGraspEnv  # noqa: E402


@pytest.fixture(scope="module")
def env():
    environment = BaxterGraspEnv()
    yield environment
    environment.close()


@pytest.fixture(scope="session")
def train_run():
    """``train_run(run_dir, training, env_config) -> run_dir``: a finished training run."""
    from graspq.learning.trainer import Trainer

    def train(run_dir, training, env_config):
        trainer = Trainer(training, env_config, run_dir, log=lambda line: None)
        try:
            trainer.run()
        finally:
            trainer.close()
        return run_dir

    return train


@pytest.fixture(scope="session")
def drive_robot():
    """``drive_robot(robot, runtime, seed, latency_s=0.0) -> (outcome, actions)``: one
    episode of a :class:`graspq.sim.robot.SimRobot` run by a servo runtime the way the ROS
    nodes run it (frames delivered in time order, moves as joint trajectories, the descend
    close's descent as the runtime's trajectory, the grasp closed by the gripper, lifted by
    the runtime's lift trajectory, judged by the robot)."""
    import dataclasses
    import heapq

    import numpy as np

    from graspq.servo.runtime import CommandKind, ServoState
    from graspq.sim.scene import gripper_opening

    def _motor(frame_data):
        """The runtime's 8-value motor state from the robot's 9 joint positions."""
        return np.append(frame_data[:7], gripper_opening(frame_data[7:]))

    def _drive(robot, runtime, seed, latency_s=0.0, limit_s=30.0, idle=None,
               object_type=None):
        """The ROS loop in one process: returns the runtime's outcome and its actions."""
        robot.reset(seed, object_type)
        start = robot.time_s
        runtime.reset(robot.home_joints, start)
        pending = []  # (delivery time, order, frame)
        order = 0
        grasp = None  # [CLOSE command, judge time, time to close the gripper]
        actions = []
        t = start
        while runtime.state not in (ServoState.DONE, ServoState.ESTOPPED):
            t = robot.time_s + robot.timestep_s
            assert t - start < limit_s, "episode did not end"
            if idle is not None:
                idle()
            for delivery in robot.advance(t):
                heapq.heappush(pending, (delivery.at_s, order, delivery.frame))
                order += 1
            while pending and pending[0][0] <= t + 1e-9:
                _, _, frame = heapq.heappop(pending)
                if frame.stream == "joints":
                    frame = dataclasses.replace(frame, data=_motor(frame.data))
                command = runtime.on_frame(frame, t)
                runtime.tick(t)
                if command is None:
                    continue
                actions.append(command.action)
                # The oracle reads the commanded pose off its env, as under ServoSim.
                robot.env.set_fingertip_command(command.position_m, command.yaw_offset_rad,
                                                command.joints)
                if command.kind is CommandKind.MOVE:
                    robot.follow([(command.duration_s, command.joints)], t + latency_s)
                elif command.kind is CommandKind.CLOSE:
                    # The descend close goes down first, then closes (in place: at once).
                    descent, duration = runtime.descent_trajectory(command)
                    if descent:
                        robot.follow(descent, t + latency_s)
                    grasp = [command, None, t + latency_s + duration]
            if grasp is not None and grasp[2] is not None and t >= grasp[2] - 1e-9:
                robot.command_gripper(True, grasp[0].gripper_force_n)
                grasp[2] = None
            if grasp is not None and grasp[2] is None and grasp[1] is None \
                    and robot.gripper_result() is not None:
                points, judge_after = runtime.lift_trajectory(grasp[0])
                robot.follow(points, t)
                grasp[1] = t + judge_after
            if grasp is not None and grasp[1] is not None and t >= grasp[1] - 1e-9:
                runtime.report_outcome(robot.judge(), t)
                grasp = None
        return runtime.status.outcome, actions

    return _drive
