"""``gazebo_robot``: GraspQ's robot interface (docs/ros_interface.md) on Gazebo Harmonic.

ros_gz_bridge (``worlds/graspq_table_bridge.yaml``) already serves the cameras, the joint
states and ``/clock``. This node serves the rest, over the bridge's topics and the world's
services (ros_gz_interfaces):

- ``arm_controller/joint_trajectory``: followed by :class:`graspq.drivers.trajectory.
  TrajectoryFollower` and streamed at ``command_rate_hz`` as each joint's position target on
  ``gazebo/joint/<joint>/cmd_pos`` (the world's joint position controllers);
- ``gripper_controller/gripper_cmd`` (``control_msgs/GripperCommand``): both finger targets
  to closed (``position`` <= 0) or open; the result after ``gripper.close_duration_s`` of
  the robot's clock, with the pad separation measured from the finger joints;
- ``~/reset_episode``: remove the last object, send the arm home and open the gripper, and
  once they are there spawn the episode's object (:class:`graspq.drivers.gazebo.
  GazeboEpisodes`: the MuJoCo scene's draw for the seed) through the world's services;
- ``~/judge_grasp`` (``enable_judge``): the scene's judge on the finger joints, the object's
  pose (``gazebo/dynamic_poses``) and the pad contacts (``gazebo/contacts/<pad>``) seen since
  the gripper began closing.

A trajectory that lacks a joint or holds non-finite positions is refused (the arm holds). Run
it with ``use_sim_time`` (Gazebo's clock), as launch/gazebo.launch.py does.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any

import numpy as np
import rclpy
from control_msgs.action import GripperCommand
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.action import ActionServer, CancelResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from ros_gz_interfaces.msg import Contacts, Entity
from ros_gz_interfaces.srv import DeleteEntity, SpawnEntity
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory

from graspq.config import load_config
from graspq.drivers.gazebo import GazeboEpisodes, quaternion_matrix
from graspq.drivers.trajectory import TrajectoryFollower
from graspq.sim.gazebo_world import (
    OBJECT_MODEL,
    OBJECT_POSE_ROS_TOPIC,
    WORLD_NAME,
    contact_ros_topic,
    joint_command_ros_topic,
)
from graspq.sim.grasp_motion import home_joints
from graspq.sim.ik import DownwardIK
from graspq.sim.scene import (
    ARM_JOINTS,
    FINGER_GEOMS,
    FINGER_JOINTS,
    FINGER_STROKE_M,
    build_scene,
    gripper_opening,
)
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig
from graspq_interfaces.srv import JudgeGrasp, ResetEpisode
from graspq_mujoco.conversions import trajectory_points

NODE_NAME = "gazebo_robot"
HOME_TOLERANCE_RAD = 0.01  # the arm is home when every joint is this close (and the
HOME_TOLERANCE_M = 0.002  # fingers this close to open)


def _parameter(node: Node, name: str, default: Any, text: str) -> Any:
    return node.declare_parameter(name, default, ParameterDescriptor(description=text)).value


class GazeboRobot(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        env_path = _parameter(self, "env_config", "", "config/env.yaml-style scene file ('' = "
                              "the defaults; must be the one the world was generated from)")
        world = _parameter(self, "world", WORLD_NAME, "the Gazebo world's name")
        rate = _parameter(self, "command_rate_hz", 100.0, "joint targets streamed per second")
        enable_judge = _parameter(self, "enable_judge", True, "offer ~/judge_grasp "
                                  "(simulation and training only)")
        self.service_timeout_s = _parameter(self, "service_timeout_s", 10.0,
                                            "wait this long for a world service")
        self.home_timeout_s = _parameter(self, "home_timeout_s", 20.0, "reset: wait this long "
                                         "(wall time) for the arm to reach home")
        if not (math.isfinite(rate) and rate > 0):
            raise ValueError(f"parameter command_rate_hz must be positive, got {rate!r}")
        config = load_config(EnvConfig, env_path, ENV_NODE_NAME) if env_path else EnvConfig()
        self.config = config
        self.episodes = GazeboEpisodes(config)
        self.home = home_joints(DownwardIK(build_scene(config), config.ik), config)
        self._lock = threading.RLock()
        self._follower = TrajectoryFollower(self.home)
        self._finger_target = FINGER_STROKE_M
        self._measured: dict[str, float] = {}
        self._object_pose: tuple[np.ndarray, np.ndarray] | None = None
        self._spawn_pose: tuple[np.ndarray, np.ndarray] | None = None

        group = ReentrantCallbackGroup()
        self._commands = {joint: self.create_publisher(Float64, joint_command_ros_topic(joint),
                                                       10)
                          for joint in (*ARM_JOINTS, *FINGER_JOINTS)}
        self.create_subscription(JointState, "joint_states", self._on_joints, 10,
                                 callback_group=group)
        self.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                 self._on_trajectory, 10, callback_group=group)
        for pad in FINGER_GEOMS:
            self.create_subscription(Contacts, contact_ros_topic(pad), self._on_contacts, 10,
                                     callback_group=group)
        self.create_subscription(TFMessage, OBJECT_POSE_ROS_TOPIC, self._on_poses, 10,
                                 callback_group=group)
        self._remove = self.create_client(DeleteEntity, f"/world/{world}/remove",
                                          callback_group=group)
        self._create = self.create_client(SpawnEntity, f"/world/{world}/create",
                                          callback_group=group)
        self._gripper_server = ActionServer(
            self, GripperCommand, "gripper_controller/gripper_cmd",
            execute_callback=self._execute_gripper,
            cancel_callback=lambda _goal: CancelResponse.ACCEPT, callback_group=group)
        self.create_service(ResetEpisode, "~/reset_episode", self._on_reset,
                            callback_group=group)
        if enable_judge:
            self.create_service(JudgeGrasp, "~/judge_grasp", self._on_judge,
                                callback_group=group)
        self.create_timer(1.0 / rate, self._stream_commands, callback_group=group)

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    # ------------------------------------------------------------------ Gazebo -> driver
    def _on_joints(self, msg: JointState) -> None:
        with self._lock:
            for name, position in zip(msg.name, msg.position, strict=False):
                if math.isfinite(position):
                    self._measured[name] = float(position)

    def _on_contacts(self, msg: Contacts) -> None:
        with self._lock:
            for contact in msg.contacts:
                self.episodes.note_contact(contact.collision1.name, contact.collision2.name)

    def _on_poses(self, msg: TFMessage) -> None:
        for transform in msg.transforms:
            if transform.child_frame_id.split("::")[-1] != OBJECT_MODEL:
                continue
            t, q = transform.transform.translation, transform.transform.rotation
            try:
                rotation = quaternion_matrix(q.w, q.x, q.y, q.z)
            except ValueError:
                continue
            position = np.array([t.x, t.y, t.z])
            if np.all(np.isfinite(position)):
                with self._lock:
                    self._object_pose = (position, rotation)

    def _measured_arm(self) -> np.ndarray | None:
        with self._lock:
            if not all(name in self._measured for name in ARM_JOINTS):
                return None
            return np.array([self._measured[name] for name in ARM_JOINTS])

    def _at_home(self) -> bool:
        arm = self._measured_arm()
        fingers = self.finger_joints()
        return (arm is not None and fingers is not None
                and bool(np.all(np.abs(arm - self.home) < HOME_TOLERANCE_RAD))
                and min(fingers) > FINGER_STROKE_M - HOME_TOLERANCE_M)

    def finger_joints(self) -> tuple[float, float] | None:
        """The measured finger joints (m), or None before Gazebo has reported them."""
        with self._lock:
            if not all(name in self._measured for name in FINGER_JOINTS):
                return None
            return tuple(self._measured[name] for name in FINGER_JOINTS)

    # ------------------------------------------------------------------ driver -> Gazebo
    def _stream_commands(self) -> None:
        with self._lock:
            arm = self._follower.target(self._now())
            finger = self._finger_target
        for joint, value in zip(ARM_JOINTS, arm, strict=True):
            self._commands[joint].publish(Float64(data=float(value)))
        for joint in FINGER_JOINTS:
            self._commands[joint].publish(Float64(data=float(finger)))

    def _on_trajectory(self, msg: JointTrajectory) -> None:
        try:
            points = trajectory_points(msg, ARM_JOINTS)
            with self._lock:
                self._follower.follow(points, self._now())
        except ValueError as exc:
            self.get_logger().warning(f"joint trajectory refused, the arm holds: {exc}")

    def _execute_gripper(self, goal_handle: Any) -> GripperCommand.Result:
        close = goal_handle.request.command.position <= 0.0
        with self._lock:
            self._finger_target = 0.0 if close else FINGER_STROKE_M
            if close:
                self.episodes.start_watching()
        done_at = self._now() + self.config.gripper.close_duration_s
        result = GripperCommand.Result()
        while rclpy.ok() and self._now() < done_at:
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return result
            time.sleep(0.005)
        fingers = self.finger_joints()
        if fingers is None:
            self.get_logger().warning("gripper: no finger joint states from Gazebo yet")
            goal_handle.abort()
            return result
        opening = gripper_opening(np.array(fingers))
        result.position = float(opening)
        result.effort = float(self.config.gripper.force_n) if close else 0.0
        result.stalled = bool(close and opening > self.config.gripper.closed_opening_m)
        result.reached_goal = not result.stalled
        goal_handle.succeed()
        return result

    # ------------------------------------------------------------------ episodes
    def _call(self, client: Any, request: Any, what: str) -> Any:
        """Call a world service and wait for its answer (from a callback of another group
        thread); raises RuntimeError naming the service if it is missing or silent."""
        if not client.wait_for_service(timeout_sec=self.service_timeout_s):
            raise RuntimeError(f"{client.srv_name} ({what}) is not available: is Gazebo "
                               "running with the bridge's services?")
        done = threading.Event()
        future = client.call_async(request)
        future.add_done_callback(lambda _f: done.set())
        if not done.wait(self.service_timeout_s):
            raise RuntimeError(f"{client.srv_name} ({what}) did not answer in "
                               f"{self.service_timeout_s} s")
        return future.result()

    def _on_reset(self, request: ResetEpisode.Request, response: ResetEpisode.Response
                  ) -> ResetEpisode.Response:
        pose = (request.x, request.y, request.yaw) if request.use_pose else None
        try:
            spawn = self.episodes.draw(int(request.seed), request.object_type or None, pose)
        except ValueError as exc:
            response.success, response.message = False, str(exc)
            return response
        remove = DeleteEntity.Request()
        remove.entity = Entity(name=OBJECT_MODEL, type=Entity.MODEL)
        create = SpawnEntity.Request()
        factory = create.entity_factory
        factory.name, factory.sdf, factory.allow_renaming = spawn.name, spawn.sdf, False
        factory.relative_to = "world"
        (factory.pose.position.x, factory.pose.position.y,
         factory.pose.position.z) = spawn.position
        (factory.pose.orientation.w, factory.pose.orientation.x, factory.pose.orientation.y,
         factory.pose.orientation.z) = spawn.quaternion
        # The world is not reset: that would turn Gazebo's clock back to zero under every
        # node on simulated time. The arm goes home under control, as a robot's does.
        with self._lock:
            self._follower.hold(self.home)
            self._finger_target = FINGER_STROKE_M
            self._object_pose = None
        try:
            # The first episode has no object to remove: a refusal there is expected.
            self._call(self._remove, remove, "remove the last object")
            deadline = time.monotonic() + self.home_timeout_s
            while not self._at_home() and time.monotonic() < deadline:
                time.sleep(0.01)
            if not self._at_home():
                raise RuntimeError(f"the arm did not reach home in {self.home_timeout_s} s "
                                   f"(measured {self._measured_arm()})")
            if not self._call(self._create, create, "spawn the object").success:
                raise RuntimeError("the world refused to spawn the object")
        except RuntimeError as exc:
            self.get_logger().error(f"reset_episode: {exc}")
            response.success, response.message = False, str(exc)
            return response
        spec = self.episodes.spec
        with self._lock:
            self._spawn_pose = (np.array(spawn.position), quaternion_matrix(*spawn.quaternion))
        response.success = True
        response.object_type = spec.kind
        response.position = [float(v) for v in spawn.position]
        response.yaw = float(spec.yaw)
        response.home_joints = [float(v) for v in self.home]
        return response

    def _on_judge(self, request: JudgeGrasp.Request, response: JudgeGrasp.Response
                  ) -> JudgeGrasp.Response:
        fingers = self.finger_joints()
        with self._lock:
            pose = self._object_pose or self._spawn_pose
            if self._object_pose is None:
                self.get_logger().warning("judge: no pose of the object from Gazebo since the "
                                          "reset; judging it where it was spawned")
        if fingers is None or pose is None:
            self.get_logger().warning("judge: no episode or no finger states; a miss")
            response.outcome, response.gripper_opening = "miss", 0.0
            return response
        with self._lock:
            outcome = self.episodes.judge(fingers, *pose)
        response.outcome = outcome.value
        response.gripper_opening = float(gripper_opening(np.array(fingers)))
        return response


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    try:
        node = GazeboRobot()
    except ValueError as exc:
        print(f"{NODE_NAME}: {exc}")
        rclpy.try_shutdown()
        raise SystemExit(2) from None
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
