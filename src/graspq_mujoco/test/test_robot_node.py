"""The MuJoCo robot node over real DDS on this host: every interface topic with its type,
encoding, frame and rate; /clock and the static camera TF; joint trajectories, the gripper
action, episode reset and the judge; malformed commands refused without motion."""

import os
import threading
import time

import numpy as np
import pytest
import rclpy
from control_msgs.action import GripperCommand
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image, JointState
from tf2_msgs.msg import TFMessage
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from graspq.sim.robot import JOINT_STATE_NAMES
from graspq_interfaces.srv import JudgeGrasp, ResetEpisode
from graspq_mujoco.robot_node import RobotNode

TOPICS = {
    "overhead/color/image_raw": Image, "overhead/color/camera_info": CameraInfo,
    "overhead/aligned_depth_to_color/image_raw": Image,
    "overhead/aligned_depth_to_color/camera_info": CameraInfo,
    "wrist/color/image_raw": Image, "wrist/color/camera_info": CameraInfo,
    "joint_states": JointState, "/clock": Clock,
}


class Probe(Node):
    """Records every message of the interface's topics with its arrival time."""

    def __init__(self):
        super().__init__("probe")
        self.messages = {topic: [] for topic in TOPICS}
        self.static_tf = []
        qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.BEST_EFFORT)
        for topic, kind in TOPICS.items():
            self.create_subscription(kind, topic, lambda m, t=topic: self.messages[t].append(
                (time.monotonic(), m)), qos)
        latched = QoSProfile(depth=10)
        latched.durability = 1  # TRANSIENT_LOCAL, as /tf_static is published
        self.create_subscription(TFMessage, "/tf_static", self.static_tf.append, latched)
        self.arm = self.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", 10)
        self.gripper = ActionClient(self, GripperCommand, "gripper_controller/gripper_cmd")
        self.reset = self.create_client(ResetEpisode, "/mujoco_robot/reset_episode")
        self.judge = self.create_client(JudgeGrasp, "/mujoco_robot/judge_grasp")

    def latest(self, topic):
        return self.messages[topic][-1][1]

    def joints(self):
        msg = self.latest("joint_states")
        return np.array(msg.position)


def _wait(predicate, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def _call(future, timeout=10.0):
    assert _wait(future.done, timeout), "no answer"
    return future.result()


@pytest.fixture(scope="module", params=["32FC1", "16UC1"])
def robot(request):
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    rclpy.init(domain_id=1 + os.getpid() % 100)
    # 16UC1 runs twice as fast as real time: rates and stamps scale with the simulated clock.
    factor = 1.0 if request.param == "32FC1" else 2.0
    node = RobotNode(parameter_overrides=[
        Parameter("depth_encoding", value=request.param), Parameter("seed", value=3),
        Parameter("real_time_factor", value=factor)])
    probe = Probe()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    executor.add_node(probe)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    assert _wait(lambda: all(probe.messages[t] for t in TOPICS), 20.0), {
        t: len(m) for t, m in probe.messages.items()}
    yield node, probe, request.param
    executor.shutdown()
    node.close()
    node.destroy_node()
    probe.destroy_node()
    rclpy.try_shutdown()


def test_every_topic_carries_its_type_encoding_frame_and_rate(robot):
    node, probe, encoding = robot
    for topic in TOPICS:
        probe.messages[topic].clear()
    time.sleep(2.0)
    size = node.env_config.camera.image_size
    colour = probe.latest("overhead/color/image_raw")
    assert (colour.encoding, colour.width, colour.height, colour.step) == ("rgb8", size, size,
                                                                           3 * size)
    assert colour.header.frame_id == "overhead_camera_optical_frame"
    depth = probe.latest("overhead/aligned_depth_to_color/image_raw")
    assert depth.encoding == encoding
    values = np.frombuffer(bytes(depth.data), np.float32 if encoding == "32FC1" else np.uint16)
    metres = values * (1.0 if encoding == "32FC1" else 1e-3)
    table = node.env_config.camera.overhead_distance_m
    assert np.median(metres) == pytest.approx(table, abs=0.1)  # the table fills the view
    wrist = probe.latest("wrist/color/image_raw")
    assert wrist.header.frame_id == "right_hand_camera_optical_frame"
    info = probe.latest("overhead/color/camera_info")
    assert info.k[0] > 0 and info.k[2] == pytest.approx((size - 1) / 2)
    joints = probe.latest("joint_states")
    assert tuple(joints.name) == JOINT_STATE_NAMES and len(joints.position) == 9
    # Rates over two wall seconds at real time: 30 Hz cameras, 100 Hz joints (loose: a
    # loaded 2-core machine shares them with the test).
    counts = {t: len(probe.messages[t]) for t in TOPICS}
    factor = node.real_time_factor
    assert 40 * factor <= counts["overhead/color/image_raw"] <= 70 * factor, counts
    assert 40 * factor <= counts["wrist/color/image_raw"] <= 70 * factor, counts
    assert 130 * factor <= counts["joint_states"] <= 230 * factor, counts
    clock = [m.clock.sec + m.clock.nanosec * 1e-9 for _, m in probe.messages["/clock"]]
    assert clock == sorted(clock)
    assert clock[-1] - clock[0] == pytest.approx(2.0 * factor, abs=0.5 * factor)
    # Capture stamps are on /clock's time line and increase per stream.
    stamps = [m.header.stamp.sec + m.header.stamp.nanosec * 1e-9
              for _, m in probe.messages["overhead/color/image_raw"]]
    assert stamps == sorted(stamps) and clock[0] - 0.1 <= stamps[-1] <= clock[-1] + 0.1
    frames = {t.child_frame_id for msg in probe.static_tf for t in msg.transforms}
    assert "overhead_camera_optical_frame" in frames


def test_a_trajectory_moves_the_arm_and_a_malformed_one_is_refused(robot):
    node, probe, _ = robot
    start = probe.joints()[:7]
    bad = JointTrajectory(joint_names=list(JOINT_STATE_NAMES[:6]))  # one arm joint missing
    bad.points = [JointTrajectoryPoint(positions=[0.0] * 6)]
    bad.points[0].time_from_start.nanosec = 300_000_000
    probe.arm.publish(bad)
    nan = JointTrajectory(joint_names=list(JOINT_STATE_NAMES[:7]))
    nan.points = [JointTrajectoryPoint(positions=[float("nan")] * 7)]
    probe.arm.publish(nan)
    time.sleep(0.6)
    assert np.allclose(probe.joints()[:7], start, atol=5e-3)
    goal = start + np.array([0.1, 0.0, 0.0, 0.05, 0.0, 0.0, -0.1])
    good = JointTrajectory(joint_names=list(JOINT_STATE_NAMES[:7]))
    good.points = [JointTrajectoryPoint(positions=[float(v) for v in goal])]
    good.points[0].time_from_start.nanosec = 300_000_000
    probe.arm.publish(good)
    assert _wait(lambda: np.allclose(probe.joints()[:7], goal, atol=0.02), 5.0), (
        probe.joints()[:7], goal)


def test_reset_places_the_requested_object_and_refuses_an_unknown_one(robot):
    _, probe, _ = robot
    assert probe.reset.wait_for_service(5.0)
    answer = _call(probe.reset.call_async(ResetEpisode.Request(seed=7, object_type="sphere")))
    assert answer.success and answer.object_type == "sphere"
    assert len(answer.home_joints) == 7
    assert _wait(lambda: np.allclose(probe.joints()[:7], answer.home_joints, atol=0.02), 5.0)
    refused = _call(probe.reset.call_async(ResetEpisode.Request(seed=7, object_type="banana")))
    assert not refused.success and "banana" in refused.message


def test_closing_on_nothing_reports_closed_and_the_judge_says_miss(robot):
    _, probe, _ = robot
    _call(probe.reset.call_async(ResetEpisode.Request(seed=7)))
    assert probe.gripper.wait_for_server(5.0)
    goal = GripperCommand.Goal()
    goal.command.position, goal.command.max_effort = 0.0, 20.0
    handle = _call(probe.gripper.send_goal_async(goal))
    assert handle.accepted
    result = _call(handle.get_result_async()).result
    assert not result.stalled and result.position < 0.008
    judged = _call(probe.judge.call_async(JudgeGrasp.Request()))
    assert judged.outcome == "miss"
