"""The Gazebo driver over real DDS, against the stand-in world of ``fake_gazebo`` (what
ros_gz_bridge and the generated world put on the ROS side; no Gazebo on these machines):
episodes reset, spawn the MuJoCo scene's object and are judged as the scene judges them; a
scripted grasp lifts the object; the servo node runs whole episodes through the driver."""

import threading
import time
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import rclpy
from control_msgs.action import GripperCommand
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from graspq.drivers.gazebo import GazeboEpisodes
from graspq.sim.gazebo_world import OBJECT_MODEL
from graspq.sim.grasp_motion import home_joints
from graspq.sim.ik import DownwardIK
from graspq.sim.scene import ARM_JOINTS, build_scene
from graspq_gazebo.fake_gazebo import FakeGazebo
from graspq_gazebo.gazebo_robot import GazeboRobot
from graspq_interfaces.action import Grasp
from graspq_interfaces.srv import JudgeGrasp, ResetEpisode
from graspq_servo.servo_node import ServoNode
from graspq_servo.test_support import TEST_ENV, wait_for

pytest.importorskip("ros_gz_interfaces", reason="ros_gz_interfaces (gazebosim/ros_gz) is not "
                    "built into this ROS 2 install")


@pytest.fixture(scope="module")
def system(trained_policy, tmp_path_factory):
    policy, env_file = trained_policy
    logs = tmp_path_factory.mktemp("gazebo_episodes")
    rclpy.init()
    env = Parameter("env_config", value=str(env_file))
    fake = FakeGazebo(parameter_overrides=[env])
    robot = GazeboRobot(parameter_overrides=[env])
    servo = ServoNode(parameter_overrides=[
        Parameter("policy", value=str(policy)), env, Parameter("log_dir", value=str(logs)),
        Parameter("judge_service", value="/gazebo_robot/judge_grasp"),
        Parameter("home_duration_s", value=0.5),
        # ros_gz_bridge's publishers offer no deadline (docs/ros_interface.md).
        Parameter("qos.deadline_periods", value=0.0)])
    user = Node("gazebo_user")
    executor = MultiThreadedExecutor(num_threads=8)
    for node in (fake, robot, servo, user):
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    ik = DownwardIK(build_scene(TEST_ENV), TEST_ENV.ik)
    yield {"fake": fake, "robot": robot, "servo": servo, "user": user, "ik": ik,
           "reset": user.create_client(ResetEpisode, "/gazebo_robot/reset_episode"),
           "judge": user.create_client(JudgeGrasp, "/gazebo_robot/judge_grasp"),
           "arm": user.create_publisher(JointTrajectory, "arm_controller/joint_trajectory", 10),
           "gripper": ActionClient(user, GripperCommand, "gripper_controller/gripper_cmd")}
    executor.shutdown()
    for node in (fake, robot, servo, user):
        node.destroy_node()
    rclpy.try_shutdown()


def _call(client, request, timeout_s=30.0):
    assert client.wait_for_service(10.0)
    future = client.call_async(request)
    assert wait_for(future.done, timeout_s)
    return future.result()


def _move(system, joints, duration_s=0.6):
    msg = JointTrajectory(joint_names=list(ARM_JOINTS))
    point = JointTrajectoryPoint(positions=[float(v) for v in joints])
    point.time_from_start.sec = int(duration_s)
    point.time_from_start.nanosec = int((duration_s % 1) * 1e9)
    msg.points = [point]
    system["arm"].publish(msg)
    fake = system["fake"]
    assert wait_for(lambda: np.allclose(fake.joints[:7], joints, atol=2e-3), 10.0), (
        fake.joints[:7], joints)


def _gripper(system, close):
    client = system["gripper"]
    assert client.wait_for_server(10.0)
    goal = GripperCommand.Goal()
    goal.command.position = 0.0 if close else 0.04
    future = client.send_goal_async(goal)
    assert wait_for(future.done, 10.0) and future.result().accepted
    result = future.result().get_result_async()
    assert wait_for(result.done, 10.0)
    return result.result().result


def _tip_joints(system, position):
    ik = system["ik"]
    solution = ik.solve(home_joints(ik, TEST_ENV), np.asarray(position, dtype=float),
                        np.radians(TEST_ENV.scene.start_yaw_deg))
    assert solution.converged
    return solution.joints


def test_a_reset_homes_the_arm_and_spawns_the_scenes_object_for_the_seed(system):
    fake = system["fake"]
    _move(system, _tip_joints(system, np.array([*TEST_ENV.scene.workspace_center_xy_m, 0.0])
                              + [0.03, 0.02, TEST_ENV.scene.table_top_z_m + 0.05]))
    before = len(fake.requests)
    response = _call(system["reset"], ResetEpisode.Request(seed=11))
    assert response.success, response.message
    kinds = [kind for kind, _ in fake.requests[before:]]
    assert kinds == ["remove", "create"]  # the world is not reset: its clock runs on
    create = fake.requests[before + 1][1].entity_factory
    assert create.name == OBJECT_MODEL and create.relative_to == "world"
    spawn = GazeboEpisodes(TEST_ENV).draw(11)
    assert create.sdf == spawn.sdf
    assert ET.fromstring(create.sdf).find("model").get("name") == OBJECT_MODEL
    position = (create.pose.position.x, create.pose.position.y, create.pose.position.z)
    assert np.allclose(position, spawn.position)
    episodes = GazeboEpisodes(TEST_ENV)
    episodes.draw(11)
    assert response.object_type == episodes.spec.kind
    assert np.allclose(response.position, spawn.position)
    assert np.allclose(response.home_joints, home_joints(system["ik"], TEST_ENV))
    # The object was spawned once the arm had come home under control.
    assert np.allclose(fake.joints[:7], response.home_joints, atol=0.011)
    bad = _call(system["reset"], ResetEpisode.Request(seed=1, object_type="teapot"))
    assert not bad.success and "teapot" in bad.message


def test_a_scripted_grasp_lifts_the_object_and_is_judged_as_the_scene_judges(system):
    centre = np.array([*TEST_ENV.scene.workspace_center_xy_m, 0.0])
    reset = _call(system["reset"], ResetEpisode.Request(
        seed=2, object_type="cube", use_pose=True, x=float(centre[0]), y=float(centre[1]),
        yaw=0.0))
    assert reset.success, reset.message
    object_centre = np.array(reset.position)
    above = object_centre + [0.0, 0.0, 0.05]
    _move(system, _tip_joints(system, above))
    _move(system, _tip_joints(system, object_centre))
    closed = _gripper(system, close=True)
    spec = system["robot"].episodes.spec
    assert closed.stalled and closed.position == pytest.approx(spec.width, abs=1e-3)
    _move(system, _tip_joints(system, object_centre + [0.0, 0.0, 0.12]))
    assert _call(system["judge"], JudgeGrasp.Request()).outcome == "success"
    opened = _gripper(system, close=False)
    assert not opened.stalled
    time.sleep(0.1)
    assert _call(system["judge"], JudgeGrasp.Request()).outcome == "partial"  # dropped


def test_closing_on_nothing_is_a_miss(system):
    assert _call(system["reset"], ResetEpisode.Request(
        seed=3, object_type="sphere", use_pose=True, x=0.8, y=-0.35, yaw=0.0)).success
    closed = _gripper(system, close=True)
    assert not closed.stalled
    assert _call(system["judge"], JudgeGrasp.Request()).outcome == "miss"
    _gripper(system, close=False)


def test_a_malformed_trajectory_is_refused_and_the_arm_holds(system):
    assert _call(system["reset"], ResetEpisode.Request(seed=4)).success
    fake = system["fake"]
    time.sleep(0.2)
    before = fake.joints[:7].copy()
    msg = JointTrajectory(joint_names=list(ARM_JOINTS[:6]))  # a joint missing
    msg.points = [JointTrajectoryPoint(positions=[0.0] * 6)]
    system["arm"].publish(msg)
    nan = JointTrajectory(joint_names=list(ARM_JOINTS))
    nan.points = [JointTrajectoryPoint(positions=[float("nan")] * 7)]
    system["arm"].publish(nan)
    time.sleep(0.5)
    assert np.allclose(fake.joints[:7], before, atol=1e-9)
    assert np.all(np.isfinite(fake.targets))


def test_the_servo_node_runs_whole_episodes_through_the_driver(system):
    user, servo, fake = system["user"], system["servo"], system["fake"]
    change = user.create_client(ChangeState, "/graspq_servo/change_state")
    for transition in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
        assert _call(change, ChangeState.Request(transition=Transition(id=transition))).success
    grasp = ActionClient(user, Grasp, "/graspq_servo/grasp")
    assert grasp.wait_for_server(10.0)
    outcomes = []
    for seed in (20, 21):
        assert _call(system["reset"], ResetEpisode.Request(seed=seed)).success
        start = fake.joints[:7].copy()
        future = grasp.send_goal_async(Grasp.Goal(max_steps=0))  # 0: the scene's length
        assert wait_for(future.done, 10.0) and future.result().accepted
        # The servo's decisions reach the simulated arm through the driver's command stream.
        assert wait_for(lambda s=start: not np.allclose(fake.joints[:7], s, atol=1e-3), 60.0)
        result = future.result().get_result_async()
        assert wait_for(result.done, 90.0), servo._runtime.status.as_dict()
        outcomes.append(result.result().result.outcome)
    assert set(outcomes) <= {"success", "partial", "miss", "timeout"}, outcomes
    status = servo._runtime.status
    assert status.decisions >= 2
    assert not status.held_bad_input, status.held_bad_input
