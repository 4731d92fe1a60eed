"""RealSense-shaped input through the servo node: 640x480 ``rgb8`` colour, ``16UC1``
millimetre aligned depth with zeros for "no depth", a CameraInfo with the camera's own
intrinsics and RealSense frame ids. With ``native_input`` the node crops the view the policy
was trained on (scaled by the real focal length, centred on the principal point), resizes
it, reads millimetres as metres and holes as the far bound, and decides without holding
(but for frames before the first CameraInfo: the view is not guessed); the logged
observation is exactly that conversion."""

import threading
import time

import cv2
import numpy as np
import pytest
import rclpy
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image, JointState

from graspq.observation import OVERHEAD_KEY, WRIST_KEY, encode_overhead
from graspq.servo.episode_log import log_paths, read_episode_log
from graspq.servo.runtime import ServoRuntime
from graspq.sim.cameras import overhead_crop_box
from graspq.sim.robot import JOINT_STATE_NAMES, finger_positions
from graspq_interfaces.action import Grasp
from graspq_servo.servo_node import ServoNode
from graspq_servo.test_support import TEST_ENV, wait_for

WIDTH, HEIGHT = 640, 480
FX, CX, CY = 615.0 * 1.05, 322.3, 236.9  # this camera's own intrinsics


def _frames(rng):
    colour = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    depth = rng.integers(700, 1000, (HEIGHT, WIDTH)).astype(np.uint16)  # millimetres
    depth[200:260, :] = 0  # a band with no depth
    wrist = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    return colour, depth, wrist


def _image(array, encoding, frame_id):
    msg = Image(height=array.shape[0], width=array.shape[1], encoding=encoding,
                is_bigendian=0, step=array.strides[0], data=array.tobytes())
    msg.header.frame_id = frame_id
    return msg


class RealSense(Node):
    """A D435 on the overhead topics (and the same size on the wrist), plus the arm at home."""

    def __init__(self, frames, home):
        super().__init__("fake_realsense")
        colour, depth, wrist = frames
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.images = [
            (self.create_publisher(Image, "overhead/color/image_raw", qos),
             _image(colour, "rgb8", "camera_color_optical_frame")),
            (self.create_publisher(Image, "overhead/aligned_depth_to_color/image_raw", qos),
             _image(depth, "16UC1", "camera_color_optical_frame")),
            (self.create_publisher(Image, "wrist/color/image_raw", qos),
             _image(wrist, "rgb8", "right_hand_camera_optical_frame"))]
        self.info_pub = self.create_publisher(CameraInfo, "overhead/color/camera_info", qos)
        self.info = CameraInfo(width=WIDTH, height=HEIGHT, distortion_model="plumb_bob",
                               k=[FX, 0.0, CX, 0.0, FX, CY, 0.0, 0.0, 1.0])
        self.info.header.frame_id = "camera_color_optical_frame"
        self.joints_pub = self.create_publisher(JointState, "joint_states", qos)
        self.joints = JointState(name=list(JOINT_STATE_NAMES),
                                 position=[*map(float, home), *finger_positions(0.046)])
        self.ticks = 0
        self.create_timer(0.01, self._tick)

    def _tick(self):
        stamp = self.get_clock().now().to_msg()
        self.joints.header.stamp = stamp
        self.joints_pub.publish(self.joints)
        self.ticks += 1
        if self.ticks % 3 == 0:
            for publisher, msg in self.images:
                msg.header.stamp = stamp
                publisher.publish(msg)
            self.info.header.stamp = stamp
            self.info_pub.publish(self.info)


@pytest.fixture(scope="module")
def system(trained_policy, tmp_path_factory):
    policy, env_file = trained_policy
    logs = tmp_path_factory.mktemp("realsense_episodes")
    frames = _frames(np.random.default_rng(0))
    rclpy.init()
    servo = ServoNode(parameter_overrides=[
        Parameter("policy", value=str(policy)), Parameter("env_config", value=str(env_file)),
        Parameter("log_dir", value=str(logs)), Parameter("native_input", value=True),
        Parameter("qos.deadline_periods", value=0.0)])
    camera = RealSense(frames, ServoRuntime(TEST_ENV).home_joints())
    user = Node("realsense_user")
    executor = MultiThreadedExecutor(num_threads=5)
    for node in (servo, camera, user):
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield {"servo": servo, "user": user, "frames": frames, "logs": logs}
    executor.shutdown()
    for node in (servo, camera, user):
        node.destroy_node()
    rclpy.try_shutdown()


def _call(node, client, request):
    assert client.wait_for_service(10.0)
    future = client.call_async(request)
    assert wait_for(future.done, 30.0)
    return future.result()


def test_realsense_frames_are_converted_to_the_trained_view_and_decided_on(system):
    user, servo = system["user"], system["servo"]
    change = user.create_client(ChangeState, "/graspq_servo/change_state")
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        assert _call(user, change, ChangeState.Request(transition=Transition(id=transition)))
    grasp = ActionClient(user, Grasp, "/graspq_servo/grasp")
    assert grasp.wait_for_server(10.0)
    future = grasp.send_goal_async(Grasp.Goal(max_steps=200))
    assert wait_for(future.done, 10.0) and future.result().accepted
    handle = future.result()
    assert wait_for(lambda: servo._runtime.status.decisions >= 3, 20.0), (
        servo._runtime.status.as_dict())
    status = servo._runtime.status
    # Only frames that came before the first CameraInfo may have been held.
    assert set(status.held_bad_input) <= {"camera_info"}, status.held_bad_input
    cancel = handle.cancel_goal_async()
    assert wait_for(cancel.done, 10.0)
    time.sleep(0.5)
    log = read_episode_log(log_paths([system["logs"]])[0])
    obs = log.observations[0]
    colour, depth, wrist = system["frames"]
    camera = TEST_ENV.camera
    size = camera.image_size
    box = overhead_crop_box(camera, FX, CX, CY, WIDTH, HEIGHT)
    assert box[2] == round(camera.overhead_crop_px * 1.05)
    top, left, side = box
    metres = depth.astype(np.float32) * np.float32(0.001)
    metres[depth == 0] = camera.depth_far_m
    expected = np.empty((size, size, 4), np.float32)
    expected[..., :3] = cv2.resize(colour[top:top + side, left:left + side], (size, size),
                                   interpolation=cv2.INTER_AREA) * np.float32(1 / 255)
    expected[..., 3] = cv2.resize(metres[top:top + side, left:left + side], (size, size),
                                  interpolation=cv2.INTER_NEAREST)
    near, far = camera.depth_near_m, camera.depth_far_m
    assert np.array_equal(obs[OVERHEAD_KEY], encode_overhead(expected, near, far))
    square = wrist[:, (WIDTH - HEIGHT) // 2:(WIDTH - HEIGHT) // 2 + HEIGHT]
    assert np.array_equal(obs[WRIST_KEY], cv2.resize(square, (size, size),
                                                     interpolation=cv2.INTER_AREA))
