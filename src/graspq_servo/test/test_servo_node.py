"""The servo lifecycle node against the MuJoCo robot node, in one process over real DDS:
configure refuses bad policies and stays unconfigured; an inactive node commands nothing;
active, it runs Grasp goals; deactivated, it stops within a cycle; parameters change at run
time or are refused with the reason; every step goes to an MCAP episode log."""

import threading
import time
from pathlib import Path

import pytest
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rclpy.action import ActionClient
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger
from trajectory_msgs.msg import JointTrajectory

from graspq.servo.episode_log import read_episode_log
from graspq_interfaces.action import Grasp
from graspq_interfaces.msg import ServoStatus
from graspq_interfaces.srv import ResetEpisode
from graspq_mujoco.robot_node import RobotNode
from graspq_servo.servo_node import ServoNode
from graspq_servo.test_support import wait_for


class Operator(Node):
    """What a user does from the command line: lifecycle transitions, Grasp goals, resets;
    and what they watch: the arm commands and the status."""

    def __init__(self):
        super().__init__("operator")
        self.commands = []  # (wall time, JointTrajectory)
        self.statuses = []
        self.create_subscription(JointTrajectory, "arm_controller/joint_trajectory",
                                 lambda m: self.commands.append((time.monotonic(), m)), 100)
        self.create_subscription(ServoStatus, "/graspq_servo/status", self.statuses.append, 100)
        self.change = self.create_client(ChangeState, "/graspq_servo/change_state")
        self.get = self.create_client(GetState, "/graspq_servo/get_state")
        self.reset = self.create_client(ResetEpisode, "/mujoco_robot/reset_episode")
        self.grasp = ActionClient(self, Grasp, "/graspq_servo/grasp")
        self.estop = self.create_client(Trigger, "/graspq_servo/estop")

    def call(self, client, request, timeout=30.0):
        assert client.wait_for_service(10.0), client.srv_name
        future = client.call_async(request)
        assert wait_for(future.done, timeout), f"{client.srv_name}: no answer"
        return future.result()

    def transition(self, transition_id):
        return self.call(self.change, ChangeState.Request(
            transition=Transition(id=transition_id))).success

    def state(self):
        return self.call(self.get, GetState.Request()).current_state.label

    def start_episode(self, seed, object_type=""):
        assert self.call(self.reset, ResetEpisode.Request(seed=seed,
                                                          object_type=object_type)).success
        assert self.grasp.wait_for_server(10.0)
        future = self.grasp.send_goal_async(Grasp.Goal())
        assert wait_for(future.done, 10.0)
        handle = future.result()
        assert handle.accepted, "goal refused (an episode still running?)"
        return handle

    def result(self, handle, timeout=60.0):
        future = handle.get_result_async()
        assert wait_for(future.done, timeout), "episode did not end"
        return future.result().result


class FaultyRobot(RobotNode):
    """The MuJoCo robot whose sensor messages a test can drop or spoil on the way out."""

    def __init__(self, **kwargs):
        self.faults = {}  # stream -> "stop" | "encoding" | "size" | "nan" | "stale"
        self.late = []  # (wall time due, publisher, message) of delayed messages
        super().__init__(**kwargs)

    def emit(self, stream, publisher, msg):
        while self.late and self.late[0][0] <= time.monotonic():
            _, late_publisher, late_msg = self.late.pop(0)
            late_publisher.publish(late_msg)
        fault = self.faults.get(stream)
        if fault == "stop":
            return
        if fault == "encoding":
            msg.encoding = "mono8"
        elif fault == "size":
            msg.height, msg.width, msg.step = 16, 16, 48
            msg.data = bytes(16 * 48)
        elif fault == "nan":
            msg.position = [float("nan")] + list(msg.position[1:])
        elif fault == "stale":  # delivered 0.3 s late: already old when it arrives
            self.late.append((time.monotonic() + 0.3, publisher, msg))
            return
        publisher.publish(msg)


@pytest.fixture(scope="module")
def system(trained_policy, tmp_path_factory):
    policy, env_file = trained_policy
    logs = tmp_path_factory.mktemp("episodes")
    rclpy.init()
    robot = FaultyRobot(parameter_overrides=[Parameter("env_config", value=str(env_file)),
                                             Parameter("seed", value=100)])
    servo = ServoNode(parameter_overrides=[
        Parameter("policy", value=str(policy)), Parameter("env_config", value=str(env_file)),
        Parameter("judge_service", value="/mujoco_robot/judge_grasp"),
        Parameter("log_dir", value=str(logs)), Parameter("use_sim_time", value=True)])
    operator = Operator()
    executor = MultiThreadedExecutor(num_threads=6)
    for node in (robot, servo, operator):
        executor.add_node(node)
    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    yield {"robot": robot, "servo": servo, "operator": operator, "policy": policy,
           "logs": logs}
    executor.shutdown()
    robot.close()
    for node in (robot, servo, operator):
        node.destroy_node()
    rclpy.try_shutdown()


def test_a_bad_policy_fails_configure_and_the_node_stays_unconfigured(system, tmp_path):
    servo, operator = system["servo"], system["operator"]
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(b"not an onnx model" * 10)
    for bad in (corrupt, tmp_path / "missing.onnx"):
        servo.set_parameters([Parameter("policy", value=str(bad))])
        assert not operator.transition(Transition.TRANSITION_CONFIGURE)
        assert operator.state() == "unconfigured"
    servo.set_parameters([Parameter("policy", value=str(system["policy"]))])


def test_inactive_commands_nothing_active_runs_goals_deactivate_stops_within_a_cycle(system):
    operator = system["operator"]
    assert operator.transition(Transition.TRANSITION_CONFIGURE)
    assert operator.state() == "inactive"
    operator.commands.clear()
    time.sleep(1.0)
    assert operator.commands == []  # configured, inactive: nothing commanded
    assert operator.transition(Transition.TRANSITION_ACTIVATE)
    handle = operator.start_episode(seed=101, object_type="cube")
    assert handle.accepted
    assert wait_for(lambda: len(operator.commands) >= 2, 20.0), "no commands while active"
    stopped = time.monotonic()
    assert operator.transition(Transition.TRANSITION_DEACTIVATE)
    result = operator.result(handle)
    assert result.outcome == "aborted"
    time.sleep(1.0)
    cycle_s = 0.15  # one decision cycle: a move's duration
    late = [t for t, _ in operator.commands if t > stopped + cycle_s]
    assert late == [], f"{len(late)} command(s) after deactivate"
    assert operator.state() == "inactive"


def test_valid_parameter_changes_apply_at_once_and_invalid_ones_are_refused(system):
    servo, operator = system["servo"], system["operator"]
    assert operator.state() == "inactive"
    for parameter, reason in ((Parameter("rewards.step", value=float("nan")), "finite"),
                              (Parameter("servo.slop_s", value=2.0), "servo.slop_s"),
                              (Parameter("servo.max_age_s", value=0.01), "max_age_s"),
                              (Parameter("policy", value="other.onnx"), "configure")):
        before = servo.get_parameter(parameter.name).value
        result = servo.set_parameters([parameter])[0]
        assert not result.successful and reason in result.reason, (parameter.name,
                                                                   result.reason)
        assert servo.get_parameter(parameter.name).value == before
    wrong_type = servo.set_parameters([Parameter("rewards.step", value="cheap")])[0]
    assert not wrong_type.successful
    assert servo.get_parameter("rewards.step").value == pytest.approx(-0.025)
    assert servo.set_parameters([Parameter("rewards.step", value=-0.5)])[0].successful
    assert operator.transition(Transition.TRANSITION_ACTIVATE)
    try:
        result = operator.result(operator.start_episode(seed=102, object_type="sphere"))
    finally:
        servo.set_parameters([Parameter("rewards.step", value=-0.025)])
    assert result.outcome in ("success", "partial", "miss", "timeout")
    logs = sorted(Path(system["logs"]).glob("*.mcap"))
    log = read_episode_log(logs[-1])
    assert log.end["outcome"] == result.outcome
    assert len(log.steps) == result.steps
    # The changed step term is in every non-terminal step's reward from the first one on
    # (a closing step is scored by its outcome alone).
    moves = [step for step in log.steps if not step["terminated"]]
    assert moves, "the episode closed at once; no step to check"
    for step in moves:
        assert step["reward_terms"]["step"] == pytest.approx(-0.5), step["reward_terms"]
    assert operator.transition(Transition.TRANSITION_DEACTIVATE)


def _held(operator, reason):
    statuses = operator.statuses
    if not statuses:
        return 0
    return {h.reason: h.count for h in statuses[-1].held_bad_input}.get(reason, 0)


@pytest.mark.parametrize(("stream", "fault", "reason"), [
    ("wrist_colour", "stop", "stream_stale"),
    ("overhead_colour", "encoding", "encoding"),
    ("overhead_colour", "size", "image_size"),
    ("overhead_depth", "stale", "stream_stale"),
])
def test_bad_input_holds_the_arm_counts_the_reason_and_moves_nothing(system, stream, fault,
                                                                   reason):
    robot, operator = system["robot"], system["operator"]
    if operator.state() != "active":
        assert operator.transition(Transition.TRANSITION_ACTIVATE)
    before = _held(operator, reason)
    dropped_before = operator.statuses[-1].dropped_stale if operator.statuses else 0
    robot.faults = {stream: fault}
    handle = None
    try:
        handle = operator.start_episode(seed=103)
        started = time.monotonic()
        assert wait_for(lambda: _held(operator, reason) > before, 10.0), (
            reason, [(h.reason, h.count) for h in operator.statuses[-1].held_bad_input])
        time.sleep(0.5)
        assert [t for t, _ in operator.commands if t > started] == [], "the arm moved"
        assert operator.statuses[-1].holding.startswith(reason)
        if fault == "stale":  # counted as they come; the status shows it within a heartbeat
            assert wait_for(lambda: operator.statuses[-1].dropped_stale > dropped_before, 3.0)
        handle.cancel_goal_async()
        assert operator.result(handle).outcome == "canceled"
        handle = None
    finally:
        robot.faults = {}
        if handle is not None:  # a failed check must not leave the episode running
            handle.cancel_goal_async()
            operator.result(handle)


def test_nan_joints_refuse_the_episode_without_any_motion(system):
    robot, operator = system["robot"], system["operator"]
    if operator.state() != "active":
        assert operator.transition(Transition.TRANSITION_ACTIVATE)
    robot.faults = {"joints": "nan"}
    try:
        time.sleep(0.3)
        started = time.monotonic()
        handle = operator.start_episode(seed=104)
        assert operator.result(handle).outcome == "aborted"
        assert [t for t, _ in operator.commands if t > started] == []
    finally:
        robot.faults = {}


@pytest.mark.parametrize(("stream", "fault", "reason"), [
    ("wrist_colour", "stop", "stream_stale"),
    ("joints", "nan", "joints_not_finite"),
])
def test_a_fault_mid_episode_holds_within_max_age_and_counts(system, stream, fault, reason):
    robot, operator = system["robot"], system["operator"]
    if operator.state() != "active":
        assert operator.transition(Transition.TRANSITION_ACTIVATE)
    for seed in range(105, 112):  # an episode that is still deciding when the fault comes
        count = len(operator.commands)
        handle = operator.start_episode(seed=seed)
        if not wait_for(lambda c=count: len(operator.commands) >= c + 2, 10.0):
            operator.result(handle)
            continue
        before = _held(operator, reason)
        robot.faults = {stream: fault}
        faulted = time.monotonic()
        try:
            time.sleep(1.0)
            status = operator.statuses[-1]
            if status.state != "running":
                operator.result(handle)
                continue  # it was closing or finished: try another episode
            max_age_s, cycle_s = 0.1, 0.15
            late = [t for t, _ in operator.commands if t > faulted + max_age_s + cycle_s]
            assert late == [], f"{len(late)} command(s) after the fault"
            assert status.holding.startswith(reason), status.holding
            assert _held(operator, reason) > before
            handle.cancel_goal_async()
            operator.result(handle)
            return
        finally:
            robot.faults = {}
    pytest.fail("no episode was still running a step after it started")


def test_estop_holds_the_arm_where_it_is_and_ends_the_episode(system):
    operator = system["operator"]
    if operator.state() != "active":
        assert operator.transition(Transition.TRANSITION_ACTIVATE)
    for seed in range(112, 120):  # an episode still moving when the stop comes
        count = len(operator.commands)
        handle = operator.start_episode(seed=seed)
        if not wait_for(lambda c=count: len(operator.commands) >= c + 2, 10.0):
            operator.result(handle)
            continue
        before = len(operator.commands)
        answer = operator.call(operator.estop, Trigger.Request())
        stopped = time.monotonic()
        assert answer.success
        result = operator.result(handle)
        if result.outcome != "estopped":
            continue  # the episode ended by itself just before the stop
        time.sleep(0.5)
        after = [m for t, m in operator.commands[before:]]
        # One command: hold, at once, where the arm is; then nothing.
        holds = [m for m in after if m.points[0].time_from_start.nanosec == 0
                 and m.points[0].time_from_start.sec == 0]
        assert len(holds) == 1, [len(m.points) for m in after]
        assert [t for t, _ in operator.commands if t > stopped + 0.15] == []
        return
    pytest.fail("no episode was still moving a step after it started")


def test_a_qos_mismatch_shows_in_diagnostics_naming_the_stream(system):
    operator = system["operator"]
    if operator.state() != "active":
        assert operator.transition(Transition.TRANSITION_ACTIVATE)
    reports = []
    subscription = operator.create_subscription(DiagnosticArray, "/diagnostics",
                                                reports.append, 10)
    # Reliable, no deadline: the servo's wrist subscription asks for a deadline.
    mismatched = operator.create_publisher(Image, "wrist/color/image_raw", 10)
    try:
        def flagged():
            return any(s.name.endswith("stream wrist_colour") and "QoS incompatible" in s.message
                       for array in reports for s in array.status)
        assert wait_for(flagged, 10.0), [s.message for a in reports[-1:] for s in a.status]
    finally:
        operator.destroy_publisher(mismatched)
        operator.destroy_subscription(subscription)


def test_cleanup_and_shutdown_are_clean(system):
    operator = system["operator"]
    if operator.state() == "active":
        assert operator.transition(Transition.TRANSITION_DEACTIVATE)
    assert operator.transition(Transition.TRANSITION_CLEANUP)
    assert operator.state() == "unconfigured"
    assert operator.transition(Transition.TRANSITION_CONFIGURE)
    assert operator.transition(Transition.TRANSITION_ACTIVATE)
    assert operator.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    assert operator.state() == "finalized"

