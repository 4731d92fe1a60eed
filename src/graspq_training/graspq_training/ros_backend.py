"""``backend: ros``: training through ROS topics against any robot that speaks GraspQ's
interface (docs/ros_interface.md), here the MuJoCo robot node with simulated time.

Each episode: the robot's ``reset_episode`` service starts the scene from the episode's
seed, then a servo node in this process (:class:`LearningServo`, the servo lifecycle node
running the trainer's current policy instead of an ONNX file) runs the episode: synchronised
camera and joint topics in, joint trajectories and the gripper action out, the grasp judged
by the robot's ``judge_grasp``. Every finished step goes back to the trainer, which learns
from it (:mod:`graspq.learning.collector`). Evaluations run the same way, greedily.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from rclpy.executors import Executor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter

from graspq.servo.policies import Policy
from graspq.servo.runtime import StepRecord
from graspq.servo.settings import ServoConfig
from graspq.sim.rollout import EpisodeRecord
from graspq.sim.settings import EnvConfig
from graspq_interfaces.srv import ResetEpisode
from graspq_servo.servo_node import ServoNode

ROBOT_WAIT_S = 120.0  # a robot node started beside this one builds its scene first


class _CurrentPolicy:
    """Forwards to whichever policy the trainer set for the episode."""

    def __init__(self, node: LearningServo) -> None:
        self._node = node

    @property
    def revisit_window(self) -> int:
        return getattr(self._node.current_policy, "revisit_window", 0)

    def decide(self, obs: Mapping[str, np.ndarray]) -> Any:
        if self._node.current_policy is None:
            raise ValueError("no policy set for this episode")
        return self._node.current_policy.decide(obs)


class LearningServo(ServoNode):
    """The servo node, running the trainer's current policy (set per episode)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.current_policy: Policy | None = None

    def make_policy(self, path: str, env_config: EnvConfig, servo: ServoConfig) -> Policy:
        return _CurrentPolicy(self)


class RosCollector:
    """Runs the trainer's episodes on a robot over ROS (an ``EpisodeCollector``).

    Args:
        node: the training node (it holds the reset client).
        executor: spins ``node`` on another thread; the servo node is added to it.
        servo_parameters: the servo node's parameters (env_config, judge_service, log_dir,
            use_sim_time ...).
        reset_service: the robot's ``graspq_interfaces/ResetEpisode`` service.
    """

    def __init__(self, node: Node, executor: Executor, servo_parameters: dict[str, Any],
                 reset_service: str) -> None:
        self.servo = LearningServo(parameter_overrides=[
            Parameter(name, value=value) for name, value in servo_parameters.items()])
        executor.add_node(self.servo)
        for trigger in (self.servo.trigger_configure, self.servo.trigger_activate):
            if trigger() != TransitionCallbackReturn.SUCCESS:
                raise RuntimeError(f"the learning servo node refused {trigger.__name__} "
                                   "(see its log)")
        self._reset = node.create_client(ResetEpisode, reset_service)
        if not self._reset.wait_for_service(ROBOT_WAIT_S):
            raise RuntimeError(f"no robot: service {reset_service} did not appear in "
                               f"{ROBOT_WAIT_S:g} s")

    def collect(self, env_seed: int, policy: Policy, on_step: Callable[[StepRecord], None],
                idle: Callable[[], None], object_type: str | None = None) -> EpisodeRecord:
        future = self._reset.call_async(ResetEpisode.Request(seed=env_seed,
                                                             object_type=object_type or ""))
        deadline = time.monotonic() + 30.0
        while not future.done():
            if time.monotonic() > deadline:
                raise RuntimeError("the robot did not answer reset_episode in 30 s")
            idle()
            time.sleep(0.005)
        reset = future.result()
        if not reset.success:
            raise RuntimeError(f"the robot refused reset_episode: {reset.message}")
        self.servo.current_policy, self.servo.step_hook = policy, on_step
        try:
            outcome, status = self.servo.run_episode(idle=idle)
        finally:
            self.servo.current_policy, self.servo.step_hook = None, None
        steps = status.step if status is not None else 0
        episode_return = status.episode_return if status is not None else 0.0
        return EpisodeRecord(env_seed, reset.object_type, outcome, steps, episode_return)

    def close(self) -> None:
        self.servo.trigger_deactivate()
        self.servo.trigger_cleanup()
        self.servo.destroy_node()
