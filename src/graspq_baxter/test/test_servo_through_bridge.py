"""The servo node (a tiny trained policy) runs whole Grasp-action episodes through
baxter_bridge against fake_baxter, over real DDS, as it would on a Baxter: its joint states
are Baxter's (filtered, fingers from the gripper), its wrist frames the hand camera's
(bgra8 320x200, converted by the bridge, cropped and resized by the servo's native input),
its moves position commands re-sent at 100 Hz, its grasps the gripper's calibrate/go; a
stand-in overhead camera gives the other streams. The servo goes home through the bridge,
decides without holding on bad input, and each episode ends with an outcome."""

import threading

import numpy as np
import pytest
import rclpy
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image

from graspq.actions import Action
from graspq.servo.policies import SequencePolicy
from graspq.servo.runtime import ServoRuntime
from graspq_baxter.bridge_node import BaxterBridge
from graspq_baxter.fake_baxter import FakeBaxter
from graspq_interfaces.action import Grasp
from graspq_servo.servo_node import ServoNode
from graspq_servo.test_support import TEST_ENV, wait_for

SUCCESS = TransitionCallbackReturn.SUCCESS
OUTCOMES = {"success", "partial", "miss", "timeout"}


class BaxterServo(ServoNode):
    """The servo node; with ``scripted`` set, it runs those actions instead of the ONNX
    policy."""

    scripted = None

    def make_policy(self, path, env_config, servo):
        if self.scripted is not None:
            return SequencePolicy(self.scripted)
        return super().make_policy(path, env_config, servo)


class OverheadCamera(Node):
    """Overhead colour and depth at the policy's size, 30 Hz."""

    def __init__(self, size):
        super().__init__("overhead_stand_in")
        rng = np.random.default_rng(0)
        qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)
        colour = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        depth = rng.uniform(0.7, 1.0, (size, size)).astype(np.float32)
        self.images = [
            (self.create_publisher(Image, "overhead/color/image_raw", qos),
             Image(height=size, width=size, encoding="rgb8", step=3 * size,
                   data=colour.tobytes())),
            (self.create_publisher(Image, "overhead/aligned_depth_to_color/image_raw", qos),
             Image(height=size, width=size, encoding="32FC1", step=4 * size,
                   data=depth.tobytes()))]
        self.create_timer(1 / 30, self._tick)

    def _tick(self):
        stamp = self.get_clock().now().to_msg()
        for publisher, msg in self.images:
            msg.header.stamp = stamp
            msg.header.frame_id = "overhead_camera_optical_frame"
            publisher.publish(msg)


@pytest.fixture(scope="module")
def system(trained_policy, tmp_path_factory):
    policy, env_file = trained_policy
    home = ServoRuntime(TEST_ENV).home_joints()
    rclpy.init()
    fake = FakeBaxter(parameter_overrides=[
        Parameter("initial_positions", value=[float(v) + 0.05 for v in home]),
        Parameter("object_width_m", value=0.03)])
    bridge = BaxterBridge()
    servo = BaxterServo(parameter_overrides=[
        Parameter("policy", value=str(policy)), Parameter("env_config", value=str(env_file)),
        Parameter("log_dir", value=str(tmp_path_factory.mktemp("baxter_episodes"))),
        Parameter("native_input", value=True), Parameter("qos.deadline_periods", value=0.0),
        Parameter("home_duration_s", value=0.5)])
    nodes = (fake, bridge, servo, OverheadCamera(TEST_ENV.camera.image_size), Node("user"))
    executor = MultiThreadedExecutor(num_threads=8)
    for node in nodes:
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield {"fake": fake, "bridge": bridge, "servo": servo, "user": nodes[-1], "home": home}
    if bridge.active:
        bridge.trigger_deactivate()
    executor.shutdown()
    thread.join(5.0)
    for node in nodes:
        node.destroy_node()
    rclpy.try_shutdown()


def test_whole_grasp_episodes_run_through_the_bridge(system):
    fake, bridge, servo, user = (system[k] for k in ("fake", "bridge", "servo", "user"))
    assert bridge.trigger_configure() == SUCCESS
    assert bridge.trigger_activate() == SUCCESS
    assert servo.trigger_configure() == SUCCESS
    assert servo.trigger_activate() == SUCCESS
    grasp = ActionClient(user, Grasp, "/graspq_servo/grasp")
    assert grasp.wait_for_server(10.0)
    assert wait_for(lambda: servo._motor is not None, 10.0)  # the bridge's joint states
    outcomes = []
    for _ in range(2):
        future = grasp.send_goal_async(Grasp.Goal(max_steps=8))
        assert wait_for(future.done, 10.0) and future.result().accepted
        result = future.result().get_result_async()
        assert wait_for(result.done, 60.0), servo._runtime.status.as_dict()
        outcomes.append(result.result().result)
    status = servo._runtime.status
    assert all(r.outcome in OUTCOMES for r in outcomes), [r.outcome for r in outcomes]
    assert all(r.steps >= 1 for r in outcomes)
    # The arm went home through the bridge (it started 0.05 rad away on every joint).
    assert status.decisions >= 2
    # Steady input: the servo never held the arm on bad input, the bridge never faulted.
    assert status.held_total == 0, status.held_bad_input
    assert not bridge.faults and bridge.refused == 0
    assert fake.commands_taken > 100


def _episode(user, servo):
    grasp = ActionClient(user, Grasp, "/graspq_servo/grasp")
    assert grasp.wait_for_server(10.0)
    future = grasp.send_goal_async(Grasp.Goal(max_steps=8))
    assert wait_for(future.done, 10.0) and future.result().accepted
    result = future.result().get_result_async()
    assert wait_for(result.done, 60.0), servo._runtime.status.as_dict()
    return result.result().result


def test_a_grasp_closes_the_gripper_and_is_judged_from_it(system):
    """The servo judges "held" from the finger joints the bridge computes from Baxter's
    gripper position (not fully closed after the lift): on the fake's 3 cm object a
    success, on nothing a miss. A scripted policy closes at once (the tiny policy rarely
    does)."""
    fake, bridge, servo, user = (system[k] for k in ("fake", "bridge", "servo", "user"))
    if not bridge.active:  # run on its own
        assert bridge.trigger_configure() == SUCCESS and bridge.trigger_activate() == SUCCESS
    if servo._active:
        assert servo.trigger_deactivate() == SUCCESS
    if servo._runtime is not None:
        assert servo.trigger_cleanup() == SUCCESS
    servo.scripted = [Action.CLOSE]
    assert servo.trigger_configure() == SUCCESS and servo.trigger_activate() == SUCCESS
    assert wait_for(lambda: servo._motor is not None, 10.0)
    held = _episode(user, servo)
    assert held.outcome == "success", held
    assert fake.gripper["command"] == "go" and fake.gripper["gripping"] == 1
    fake.set_parameters([Parameter("object_width_m", value=0.0)])
    missed = _episode(user, servo)
    assert missed.outcome == "miss", missed
    assert not bridge.faults and bridge.refused == 0
