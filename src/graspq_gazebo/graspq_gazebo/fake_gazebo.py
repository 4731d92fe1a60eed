"""``fake_gazebo``: a stand-in for Gazebo Harmonic plus ros_gz_bridge, for tests and demos on
machines without Gazebo. It speaks exactly what the bridge and the world of
``graspq gazebo`` put on the ROS side (docs/ros_interface.md, Gazebo section):

- the world's services ``/world/<world>/control``, ``remove`` and ``create``
  (ros_gz_interfaces), keeping the spawned object (its SDF is parsed: shape and size);
- the joint position controllers: each joint moves towards its ``gazebo/joint/<j>/cmd_pos``
  target at the controllers' speed cap, as with ``use_velocity_commands``; ``joint_states``
  of the nine controlled joints, starting at the controllers' initial positions (home,
  gripper open); a model reset puts them back there;
- a kinematic grasp, not physics: fingers closing while the fingertip (the scene's forward
  kinematics) is inside the object stop at its width, both pads report contact on
  ``gazebo/contacts/<pad>``, and the object moves with the fingertip until the gripper opens
  (then it drops back to the table); the object's pose on ``gazebo/dynamic_poses``;
- ``/clock`` (Gazebo's, through the bridge): here the wall clock, so the nodes that run on
  simulated time run with it;
- the cameras: constant images of the world's size on the interface's camera topics
  (``rgb8``, depth ``32FC1`` metres), with their CameraInfo.
"""

from __future__ import annotations

import math
import threading
import xml.etree.ElementTree as ET
from typing import Any

import numpy as np
import rclpy
from geometry_msgs.msg import TransformStamped
from rcl_interfaces.msg import ParameterDescriptor
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from ros_gz_interfaces.msg import Contact, Contacts
from ros_gz_interfaces.srv import ControlWorld, DeleteEntity, SpawnEntity
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from std_msgs.msg import Float64
from tf2_msgs.msg import TFMessage

from graspq.config import load_config
from graspq.sim.gazebo_world import (
    ARM_SPEED_RAD_S,
    FINGER_SPEED_M_S,
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
    CLOSED_GAP_M,
    FINGER_GEOMS,
    FINGER_JOINTS,
    FINGER_STROKE_M,
    build_scene,
)
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig
from graspq_mujoco import conversions

NODE_NAME = "fake_gazebo"
_STEP_S = 0.005
_PAD_COLLISION = ("graspq_baxter::right_gripper_{side}_finger::right_gripper_{side}_finger"
                  "_fixed_joint_lump__{pad}_collision")


def _shape(sdf: str) -> tuple[str, float, float]:
    """(kind, width m, half height m) of a spawned object's SDF: the type its collision is
    named after, its narrowest horizontal extent and half its height as it rests. A shape
    whose collision has a pose lies with its axis (SDF's z) along the object's x."""
    collision = ET.fromstring(sdf).find("model/link/collision")
    kind = collision.get("name").removesuffix("_collision")
    geometry = collision.find("geometry")
    lying = collision.find("pose") is not None
    if geometry.find("box") is not None:
        sides = [float(v) for v in geometry.findtext("box/size").split()]
        return kind, min(sides[:2]), sides[2] / 2
    if geometry.find("sphere") is not None:
        radius = float(geometry.findtext("sphere/radius"))
        return kind, 2 * radius, radius
    if geometry.find("ellipsoid") is not None:
        a, b, c = (float(v) for v in geometry.findtext("ellipsoid/radii").split())
        return kind, 2 * min(a, b), c
    round_shape = "capsule" if geometry.find("capsule") is not None else "cylinder"
    radius = float(geometry.findtext(f"{round_shape}/radius"))
    if lying:
        return kind, 2 * radius, radius
    return kind, 2 * radius, float(geometry.findtext(f"{round_shape}/length")) / 2


class FakeGazebo(Node):
    """See the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        describe = ParameterDescriptor
        env_path = self.declare_parameter("env_config", "", describe(
            description="the scene file the world was generated from")).value
        world = self.declare_parameter("world", WORLD_NAME).value
        self.camera_rate_hz = self.declare_parameter("camera_rate_hz", 30.0).value
        config = load_config(EnvConfig, env_path, ENV_NODE_NAME) if env_path else EnvConfig()
        self.config = config
        scene = build_scene(config)
        self._ik = DownwardIK(scene, config.ik)
        self.initial = np.array([*home_joints(self._ik, config), FINGER_STROKE_M,
                                 FINGER_STROKE_M])
        self._lock = threading.Lock()
        self.joints = self.initial.copy()
        self.targets = self.initial.copy()
        self.requests: list[tuple[str, Any]] = []  # every world service request, in order
        self.object: dict[str, Any] | None = None
        group = ReentrantCallbackGroup()
        names = (*ARM_JOINTS, *FINGER_JOINTS)
        for index, joint in enumerate(names):
            self.create_subscription(Float64, joint_command_ros_topic(joint),
                                     lambda msg, i=index: self._on_target(i, msg), 10,
                                     callback_group=group)
        self._joint_states = self.create_publisher(JointState, "joint_states", 10)
        self._clock_publisher = self.create_publisher(Clock, "/clock", QoSProfile(
            depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
        self._poses = self.create_publisher(TFMessage, OBJECT_POSE_ROS_TOPIC, 10)
        self._contacts = {pad: self.create_publisher(Contacts, contact_ros_topic(pad), 10)
                          for pad in FINGER_GEOMS}
        self.create_service(ControlWorld, f"/world/{world}/control", self._on_control,
                            callback_group=group)
        self.create_service(DeleteEntity, f"/world/{world}/remove", self._on_remove,
                            callback_group=group)
        self.create_service(SpawnEntity, f"/world/{world}/create", self._on_create,
                            callback_group=group)
        self._make_cameras(config)
        self.create_timer(_STEP_S, self._step, callback_group=group)
        self.create_timer(1.0 / self.camera_rate_hz, self._publish_cameras,
                          callback_group=group)

    # ------------------------------------------------------------------ world services
    def _on_control(self, request: ControlWorld.Request, response: ControlWorld.Response
                    ) -> ControlWorld.Response:
        self.requests.append(("control", request))
        reset = request.world_control.reset
        if reset.all or reset.model_only:
            with self._lock:
                self.joints = self.initial.copy()
                self.targets = self.initial.copy()
                if self.object is not None:
                    self.object.update(attached=False, position=self.object["spawned"].copy())
        response.success = True
        return response

    def _on_remove(self, request: DeleteEntity.Request, response: DeleteEntity.Response
                   ) -> DeleteEntity.Response:
        self.requests.append(("remove", request))
        with self._lock:
            found = self.object is not None and request.entity.name == self.object["name"]
            if found:
                self.object = None
        response.success = found
        return response

    def _on_create(self, request: SpawnEntity.Request, response: SpawnEntity.Response
                   ) -> SpawnEntity.Response:
        self.requests.append(("create", request))
        factory = request.entity_factory
        with self._lock:
            if self.object is not None and self.object["name"] == factory.name:
                response.success = False  # Gazebo refuses a second entity of one name
                return response
            try:
                kind, width, half_height = _shape(factory.sdf)
            except (ET.ParseError, AttributeError, TypeError, ValueError):
                response.success = False
                return response
            p, q = factory.pose.position, factory.pose.orientation
            position = np.array([p.x, p.y, p.z])
            self.object = {"name": factory.name, "kind": kind, "width": width,
                           "half_height": half_height, "position": position,
                           "spawned": position.copy(), "quaternion": (q.w, q.x, q.y, q.z),
                           "attached": False, "offset": np.zeros(3)}
        response.success = True
        return response

    # ------------------------------------------------------------------ controllers
    def _on_target(self, index: int, msg: Float64) -> None:
        if math.isfinite(msg.data):
            with self._lock:
                self.targets[index] = msg.data

    def _step(self) -> None:
        with self._lock:
            caps = np.array([ARM_SPEED_RAD_S] * 7 + [FINGER_SPEED_M_S] * 2) * _STEP_S
            move = np.clip(self.targets - self.joints, -caps, caps)
            self.joints += move
            tip, _ = self._ik.forward(self.joints[:7])
            touching = self._grasp(tip)
            joints = self.joints.copy()
            pose = None if self.object is None else (self.object["position"].copy(),
                                                    self.object["quaternion"])
        stamp = self.get_clock().now().to_msg()
        self._clock_publisher.publish(Clock(clock=stamp))
        self._joint_states.publish(conversions.joint_state((*ARM_JOINTS, *FINGER_JOINTS),
                                                           joints, stamp))
        if pose is not None:
            transform = TransformStamped()
            transform.header.stamp, transform.header.frame_id = stamp, WORLD_NAME
            transform.child_frame_id = OBJECT_MODEL
            t, r = transform.transform.translation, transform.transform.rotation
            t.x, t.y, t.z = (float(v) for v in pose[0])
            r.w, r.x, r.y, r.z = (float(v) for v in pose[1])
            self._poses.publish(TFMessage(transforms=[transform]))
        for side, pad in zip("lr", FINGER_GEOMS, strict=True):
            msg = Contacts()
            msg.header.stamp = stamp
            if touching:
                contact = Contact()
                contact.collision1.name = _PAD_COLLISION.format(side=side, pad=pad)
                contact.collision2.name = f"{OBJECT_MODEL}::body::{self.object['kind']}_collision"
                msg.contacts = [contact]
            self._contacts[pad].publish(msg)

    def _grasp(self, tip: np.ndarray) -> bool:
        """The kinematic grasp (lock held): True while the pads touch the object."""
        obj = self.object
        if obj is None:
            return False
        finger_width = CLOSED_GAP_M + 2 * self.joints[7]
        if obj["attached"]:
            if self.targets[7] > obj["stop"] + 1e-6:  # opening: let go, it drops
                obj["attached"] = False
                obj["position"] = np.array([*obj["position"][:2], obj["spawned"][2]])
                return False
            self.joints[7:] = obj["stop"]  # the object keeps the fingers apart
            obj["position"] = tip + obj["offset"]
            return True
        centre = obj["position"]
        inside = (np.linalg.norm(tip[:2] - centre[:2]) < obj["width"] / 2 and
                  abs(tip[2] - centre[2]) < obj["half_height"])
        closing = self.targets[7] < self.joints[7]
        if inside and closing and finger_width <= obj["width"]:
            stop = max(0.0, (obj["width"] - CLOSED_GAP_M) / 2)
            self.joints[7:] = stop
            obj.update(attached=True, offset=centre - tip, stop=stop)
            return True
        return False

    # ------------------------------------------------------------------ cameras
    def _make_cameras(self, config: EnvConfig) -> None:
        size = config.camera.image_size
        rng = np.random.default_rng(0)
        depth = np.full((size, size), (config.camera.depth_near_m + config.camera.depth_far_m)
                        / 2, np.float32)
        overhead = conversions.camera_info(config.camera.overhead_fovy_deg, size,
                                           "overhead_camera_optical_frame")
        wrist = conversions.camera_info(config.camera.wrist_fovy_deg, size,
                                        "right_hand_camera_optical_frame")
        self._camera_messages = []
        for topic, image, info in (
                ("overhead/color", conversions.colour_message(
                    rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                    overhead.header.stamp, overhead.header.frame_id), overhead),
                ("overhead/aligned_depth_to_color", conversions.depth_message(
                    depth, "32FC1", overhead.header.stamp, overhead.header.frame_id), overhead),
                ("wrist/color", conversions.colour_message(
                    rng.integers(0, 256, (size, size, 3), dtype=np.uint8),
                    wrist.header.stamp, wrist.header.frame_id), wrist)):
            self._camera_messages.append(
                (self.create_publisher(Image, f"{topic}/image_raw", 5), image,
                 self.create_publisher(CameraInfo, f"{topic}/camera_info", 5), info))

    def _publish_cameras(self) -> None:
        stamp = self.get_clock().now().to_msg()
        for image_publisher, image, info_publisher, info in self._camera_messages:
            image.header.stamp = info.header.stamp = stamp
            image_publisher.publish(image)
            info_publisher.publish(info)


def main(args: list[str] | None = None) -> None:
    rclpy.init(args=args)
    node = FakeGazebo()
    executor = MultiThreadedExecutor(num_threads=3)
    executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
