"""graspq.servo.runtime: Algorithm 1 on frames from separate streams; bad input never moves
the arm; the e-stop latches; rewards as in training.

Frames come from a real rendered scene; policies are real (a GQN agent, an exported ONNX
policy on ONNX Runtime, or a fixed action sequence).
"""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from graspq.actions import Action
from graspq.learning.agent import QAgent
from graspq.learning.model import GraspQNetwork
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.policy.export import write_policy
from graspq.policy.runtime import OnnxPolicy
from graspq.rewards import Outcome, step_reward
from graspq.servo.policies import AgentPolicy, SequencePolicy, SimpleDecision, softmax
from graspq.servo.runtime import (
    CommandKind,
    HoldReason,
    ServoRuntime,
    ServoState,
    Stream,
)
from graspq.servo.settings import ServoConfig
from graspq.servo.sync import Frame
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.grasp_motion import home_position
from graspq.sim.settings import ActionConfig, CameraConfig, EnvConfig

TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=6)
TINY = TrainingConfig(torch_threads=1, network=NetworkConfig(
    stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))
MOVE_S = TINY_ENV.physics.action_duration_s
PERIOD = 0.2  # between the sets fed here: longer than a move, shorter than nothing else


@pytest.fixture(scope="module")
def scene():
    """A rendered observation of the tiny scene, as device payloads, and the home joints."""
    env = BaxterGraspEnv(TINY_ENV)
    try:
        obs, _ = env.reset(seed=3)
        return {
            Stream.OVERHEAD_COLOUR.value: np.rint(obs["overhead_rgbd"][..., :3] * 255)
            .astype(np.uint8),
            Stream.OVERHEAD_DEPTH.value: obs["overhead_rgbd"][..., 3].copy(),
            Stream.WRIST_COLOUR.value: obs["wrist_rgb"],
            Stream.JOINTS.value: obs["motor"].astype(float),
            "home": env.home_joints,
            "obs": obs,
        }
    finally:
        env.close()


@pytest.fixture(scope="module")
def onnx_policy_path(tmp_path_factory):
    torch.manual_seed(0)
    network = GraspQNetwork(TINY.network.gqn(32, "multi")).eval()
    return write_policy(network, TINY_ENV, TINY, tmp_path_factory.mktemp("servo") / "p.onnx")


class Harness:
    """A runtime with its warnings and step records collected."""

    def __init__(self, policy=None, config=None, env_config=TINY_ENV, home=None):
        self.warnings, self.records = [], []
        self.runtime = ServoRuntime(env_config, config or ServoConfig(), policy,
                                    warn=self.warnings.append, on_step=self.records.append)
        self.runtime.reset(home, 0.0)

    def feed(self, payloads, stamp, now=None, **changes):
        """One frame per stream, stamped ``stamp``; returns the commands that came out."""
        commands = []
        for name in (s.value for s in Stream):
            data = changes.get(name, payloads[name])
            command = self.runtime.on_frame(Frame(name, stamp, data), stamp if now is None
                                            else now)
            if command is not None:
                commands.append(command)
        return commands


def _harness(scene, actions=(Action.PLUS_X,), **kwargs):
    return Harness(SequencePolicy(list(actions)), home=scene["home"], **kwargs)


def test_a_good_set_is_decided_and_moves_the_arm_one_step(scene):
    h = _harness(scene)
    (command,) = h.feed(scene, 0.0)
    assert command.kind is CommandKind.MOVE and command.action is Action.PLUS_X
    assert command.duration_s == MOVE_S
    position, _ = h.runtime.commanded_pose
    expected = home_position(TINY_ENV) + [TINY_ENV.actions.translation_step_m, 0, 0]
    assert np.array_equal(position, expected)
    assert np.max(np.abs(command.joints - scene["home"])) < h.runtime.limits.max_joint_step_rad
    assert h.runtime.status.decisions == 1 and h.runtime.status.held_total == 0
    # Frames taken while the move runs are gated out; the first after it is decided on.
    assert h.feed(scene, MOVE_S - 0.01) == []
    assert len(h.feed(scene, MOVE_S)) == 1


def test_the_agent_policy_decides_with_q_values_and_grasp_probabilities(scene):
    agent = QAgent(TINY, TINY.network.gqn(32, "multi"), TINY_ENV.camera.depth_near_m,
                   TINY_ENV.camera.depth_far_m)
    h = Harness(AgentPolicy(agent, TINY_ENV), home=scene["home"])
    h.feed(scene, 0.0)
    status = h.runtime.status
    expected = agent.q_values(scene["obs"])
    assert np.allclose(status.q_values, expected, atol=1e-6)
    assert status.last_action == Action(int(np.argmax(expected)))
    assert status.grasp_probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    assert status.policy_latency_ms > 0 and status.cycle_ms >= status.policy_latency_ms
    assert status.as_dict()["last_action"] == status.last_action.name


def _with(array, index, value):
    array = np.array(array)
    array[index] = value
    return array


BAD_INPUTS = {
    "overhead image 16x16": (lambda s: {"overhead_colour": s["overhead_colour"][:16, :16]},
                             HoldReason.IMAGE_SIZE),
    "depth image 48x48": (lambda s: {"overhead_depth": np.ones((48, 48), np.float32)},
                          HoldReason.IMAGE_SIZE),
    "wrist image with 4 channels": (
        lambda s: {"wrist_colour": np.zeros((32, 32, 4), np.uint8)}, HoldReason.CHANNELS),
    "grey overhead image": (lambda s: {"overhead_colour": s["overhead_colour"][..., 0]},
                            HoldReason.CHANNELS),
    "depth with 3 channels": (lambda s: {"overhead_depth": np.ones((32, 32, 3), np.float32)},
                              HoldReason.CHANNELS),
    "float colour": (lambda s: {"wrist_colour": s["wrist_colour"] / 255.0},
                     HoldReason.ENCODING),
    "NaN in depth": (lambda s: {"overhead_depth": _with(s["overhead_depth"], (5, 7), np.nan)},
                     HoldReason.DEPTH_NOT_FINITE),
    "inf in depth": (lambda s: {"overhead_depth": _with(s["overhead_depth"], (0, 0), np.inf)},
                     HoldReason.DEPTH_NOT_FINITE),
    "NaN joint": (lambda s: {"joints": _with(s["joints"], 3, np.nan)},
                  HoldReason.JOINTS_NOT_FINITE),
    "inf gripper": (lambda s: {"joints": _with(s["joints"], 7, np.inf)},
                    HoldReason.JOINTS_NOT_FINITE),
    "joint beyond its limit": (lambda s: {"joints": _with(s["joints"], 0, 5.0)},
                               HoldReason.JOINTS_OUT_OF_RANGE),
    "seven joint values": (lambda s: {"joints": s["joints"][:7]}, HoldReason.JOINTS_INVALID),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_holds_the_arm_counts_and_warns(scene, case):
    make, reason = BAD_INPUTS[case]
    h = _harness(scene)
    assert h.feed(scene, 0.0, **make(scene)) == []  # no command: the arm keeps its last one
    assert np.array_equal(h.runtime.commanded_joints, scene["home"])
    status = h.runtime.status
    assert status.held_bad_input == {reason.value: 1} and status.decisions == 0
    assert status.holding.startswith(reason.value)
    assert len(h.warnings) == 1 and reason.value in h.warnings[0]
    # The hold is about that input only: the next good set is decided on.
    assert [c.kind for c in h.feed(scene, 0.05)] == [CommandKind.MOVE]
    assert any("resuming" in line for line in h.warnings)


def test_integer_depth_in_millimetres_is_read_with_the_depth_unit(scene):
    h = _harness(scene, [Action.PLUS_X, Action.MINUS_X])
    millimetres = np.rint(scene["overhead_depth"] * 1000).astype(np.uint16)
    assert len(h.feed(scene, 0.0, overhead_depth=millimetres)) == 1
    h.feed(scene, PERIOD)
    depth = h.records[0].obs["overhead_rgbd"][..., 3]
    assert np.allclose(depth, scene["overhead_depth"], atol=5e-4)


def test_a_set_older_than_max_age_when_complete_holds(scene):
    h = _harness(scene)
    assert h.feed(scene, 0.0, now=0.5) == []
    assert h.runtime.status.held_bad_input == {"stream_stale": 1}
    assert np.array_equal(h.runtime.commanded_joints, scene["home"])


def test_a_repeated_bad_input_warns_once_and_counts_every_time(scene):
    make, reason = BAD_INPUTS["NaN in depth"]
    h = _harness(scene)
    for i in range(5):
        assert h.feed(scene, 0.01 * i, **make(scene)) == []
    assert h.runtime.status.held_bad_input == {reason.value: 5}
    assert len(h.warnings) == 1


def test_timestamps_going_backwards_are_rejected_and_hold(scene):
    h = _harness(scene)
    for name in ("overhead_depth", "wrist_colour", "joints"):
        assert h.runtime.on_frame(Frame(name, 0.02, scene[name]), 0.02) is None
    # Too far from the others to pair; then an older one arrives (a reordered stream or a
    # sensor clock reset): it is rejected, although it would have completed a set.
    h.runtime.on_frame(Frame("overhead_colour", 0.1, scene["overhead_colour"]), 0.1)
    assert h.runtime.on_frame(Frame("overhead_colour", 0.02, scene["overhead_colour"]),
                              0.1) is None
    status = h.runtime.status
    assert status.held_bad_input == {"timestamp_backwards": 1}
    assert status.sync["rejected_backwards"] == 1
    assert np.array_equal(h.runtime.commanded_joints, scene["home"])
    assert "timestamp_backwards" in h.warnings[-1]


def test_a_stream_that_stops_holds_until_it_is_back(scene):
    h = _harness(scene)
    assert len(h.feed(scene, 0.0)) == 1  # one move, then the wrist camera dies
    joints_after_move = h.runtime.commanded_joints
    commands = []
    for t in np.arange(0.2, 0.6, 0.01):
        for name in ("overhead_colour", "overhead_depth", "joints"):
            command = h.runtime.on_frame(Frame(name, t, scene[name]), t)
            commands += [command] if command is not None else []
        h.runtime.tick(t)
    assert commands == []
    assert np.array_equal(h.runtime.commanded_joints, joints_after_move)
    status = h.runtime.status
    assert status.held_bad_input == {"stream_stale": 1}  # one silence, counted once
    assert "wrist_colour" in status.holding
    assert any("stream_stale" in line and "wrist_colour" in line for line in h.warnings)
    assert len(h.feed(scene, 0.6)) == 1  # the wrist is back: decisions resume


def test_a_policy_refused_at_load_holds_every_decision(scene, onnx_policy_path):
    other_steps = dataclasses.replace(TINY_ENV, actions=ActionConfig(translation_step_m=0.02))
    h = Harness(None, env_config=other_steps, home=scene["home"])
    assert not h.runtime.load_policy(lambda: OnnxPolicy(onnx_policy_path, other_steps))
    assert "refused at load" in h.warnings[0] and "does not fit" in h.warnings[0]
    for i in range(3):
        assert h.feed(scene, 0.01 * i) == []
    assert h.runtime.status.held_bad_input == {"policy_mismatch": 3}
    assert np.array_equal(h.runtime.commanded_joints, scene["home"])
    # A policy that fits clears the fault.
    assert h.runtime.load_policy(lambda: SequencePolicy([Action.MINUS_Y]))
    assert len(h.feed(scene, 0.1)) == 1


def test_an_agent_for_another_image_size_is_refused_at_load(scene):
    agent = QAgent(TINY, TINY.network.gqn(64, "multi"), TINY_ENV.camera.depth_near_m,
                   TINY_ENV.camera.depth_far_m)
    h = Harness(None, home=scene["home"])
    assert not h.runtime.load_policy(lambda: AgentPolicy(agent, TINY_ENV))
    assert h.feed(scene, 0.0) == []
    assert h.runtime.status.held_bad_input == {"policy_mismatch": 1}
    assert "image size" in h.runtime.status.holding


def test_an_observation_the_onnx_policy_refuses_holds(scene, onnx_policy_path):
    h = Harness(OnnxPolicy(onnx_policy_path, TINY_ENV), home=scene["home"])
    negative = -np.ones((32, 32), np.float32)  # finite, but no camera measures that
    assert h.feed(scene, 0.0, overhead_depth=negative) == []
    assert h.runtime.status.held_bad_input == {"policy_rejected_input": 1}
    assert "negative depth" in h.runtime.status.holding
    assert [c.kind for c in h.feed(scene, 0.05)] == [CommandKind.MOVE]


def test_estop_latches_until_reset(scene):
    h = _harness(scene, [Action.PLUS_X, Action.PLUS_Y])
    assert len(h.feed(scene, 0.0)) == 1
    stop = h.runtime.estop("operator", 0.05)
    assert stop.kind is CommandKind.STOP and stop.reason == "operator"
    assert h.runtime.state is ServoState.ESTOPPED
    for i in range(1, 4):
        assert h.feed(scene, i * PERIOD) == []
    assert h.runtime.status.estop_reason == "operator"
    assert h.records == []  # the interrupted step is not logged
    h.runtime.reset(scene["home"], 10.0)
    assert h.runtime.state is ServoState.RUNNING
    assert len(h.feed(scene, 10.0)) == 1


def test_rewards_and_step_records_follow_the_training_reward(scene):
    config = TINY_ENV.rewards
    # +z from the start height leaves the box after 10 steps: the 11th is refused.
    steps_to_top = round((TINY_ENV.scene.workspace_z_max_above_table_m
                          - TINY_ENV.scene.start_height_above_table_m)
                         / TINY_ENV.actions.translation_step_m)
    env_config = dataclasses.replace(TINY_ENV, max_steps=steps_to_top + 5)
    actions = [Action.PLUS_Z] * (steps_to_top + 1) + [Action.CLOSE]
    h = Harness(SequencePolicy(actions), env_config=env_config, home=scene["home"])
    commands = []
    for i in range(len(actions)):
        commands += h.feed(scene, i * PERIOD)
    assert [c.kind for c in commands] == [CommandKind.MOVE] * steps_to_top + [CommandKind.CLOSE]
    assert h.runtime.state is ServoState.CLOSING
    assert h.feed(scene, len(actions) * PERIOD) == []  # nothing is decided while closing
    h.runtime.report_outcome(Outcome.SUCCESS, 5.0)
    assert h.feed(scene, 4.9) == []  # taken before the outcome: not the final observation
    h.feed(scene, 5.0)
    assert h.runtime.state is ServoState.DONE
    rewards = [r.reward for r in h.records]
    expected = ([step_reward(config, True, Outcome.RUNNING).total] * steps_to_top
                + [step_reward(config, False, Outcome.RUNNING).total]
                + [step_reward(config, True, Outcome.SUCCESS).total])
    assert rewards == pytest.approx(expected)
    assert [r.step for r in h.records] == list(range(1, len(actions) + 1))
    assert [r.executed for r in h.records][-2:] == [False, True]
    assert [r.terminated for r in h.records] == [False] * (len(actions) - 1) + [True]
    assert not any(r.truncated for r in h.records)
    assert all(a.next_obs is b.obs for a, b in zip(h.records, h.records[1:], strict=False))
    status = h.runtime.status
    assert status.episode_return == pytest.approx(sum(expected))
    assert status.outcome is Outcome.SUCCESS and status.not_executed == 1


def test_max_steps_truncates_and_waits_for_the_final_observation(scene):
    h = _harness(scene, [Action.PLUS_X, Action.MINUS_X] * 3)
    for i in range(TINY_ENV.max_steps):
        assert len(h.feed(scene, i * PERIOD)) == 1
    assert h.runtime.state is ServoState.FINISHING
    assert h.feed(scene, TINY_ENV.max_steps * PERIOD) == []
    assert h.runtime.state is ServoState.DONE
    assert [r.truncated for r in h.records] == [False] * 5 + [True]
    assert h.runtime.status.outcome is Outcome.TIMEOUT


def test_report_outcome_needs_a_close(scene):
    h = _harness(scene)
    with pytest.raises(RuntimeError, match="CLOSE"):
        h.runtime.report_outcome(Outcome.SUCCESS, 0.0)


@pytest.fixture(scope="module")
def runtimes(scene):
    """Runtimes with the default and with a tight per-cycle joint step limit."""
    return {step: ServoRuntime(TINY_ENV, ServoConfig(max_joint_step_rad=step),
                               SequencePolicy([0]))
            for step in (0.35, 0.05)}


@settings(max_examples=25, deadline=None)
@given(actions=st.lists(st.sampled_from([a for a in Action if a is not Action.CLOSE]),
                        min_size=1, max_size=25),
       max_step=st.sampled_from([0.35, 0.05]), seed=st.integers(0, 2**16))
def test_whatever_the_policy_does_the_pose_stays_in_the_box_and_joints_step_within_limits(
        runtimes, scene, actions, max_step, seed):
    runtime = runtimes[max_step]
    runtime.set_policy(SequencePolicy(actions))
    runtime.reset(scene["home"], 0.0)
    rng = np.random.default_rng(seed)
    limits = runtime.limits
    previous = runtime.commanded_joints
    for i in range(len(actions)):
        t = i * PERIOD
        joints = np.append(runtime.commanded_joints, 0.04)
        payloads = {  # random images and depth: the policy ignores them, the checks do not
            "overhead_colour": rng.integers(0, 256, (32, 32, 3), np.uint8),
            "overhead_depth": rng.uniform(0.6, 1.1, (32, 32)).astype(np.float32),
            "wrist_colour": rng.integers(0, 256, (32, 32, 3), np.uint8), "joints": joints}
        for name, data in payloads.items():
            command = runtime.on_frame(Frame(name, t, data), t)
        position, yaw = runtime.commanded_pose
        assert limits.contains(position, yaw)
        if command is not None:
            assert np.all(np.abs(command.joints - previous) <= max_step + 1e-12)
            assert np.all(command.joints >= limits.joint_lower_rad)
            assert np.all(command.joints <= limits.joint_upper_rad)
            assert limits.contains(command.position_m, command.yaw_offset_rad)
            previous = command.joints
    assert runtime.status.held_total == 0


class _CyclingPolicy:
    """A greedy policy whose best action cycles through ``moves`` (a loop when they add up to
    nothing), with descending second best."""

    def __init__(self, revisit_window, moves):
        self.revisit_window = revisit_window
        self.moves = moves
        self._calls = 0

    def decide(self, obs):
        q = np.zeros(len(Action), np.float32)
        q[self.moves[self._calls % len(self.moves)]] = 1.0
        q[Action.MINUS_Z] = 0.5
        self._calls += 1
        return SimpleDecision(Action(int(np.argmax(q))), q, softmax(q), 0.0)


SWAY = (Action.PLUS_X, Action.MINUS_X)
CYCLE = (Action.PLUS_X, Action.MINUS_Y, Action.MINUS_X, Action.PLUS_Y)


@pytest.mark.parametrize(("window", "moves", "expected"), [
    (0, SWAY, [Action.PLUS_X, Action.MINUS_X, Action.PLUS_X]),
    (1, SWAY, [Action.PLUS_X, Action.MINUS_Z, Action.PLUS_X]),  # descends, never undoes +x
    (1, CYCLE, list(CYCLE)),
    (4, CYCLE, [*CYCLE[:3], Action.MINUS_Z]),  # never back to where the cycle started
])
def test_a_policy_scored_with_a_revisit_window_acts_so_on_the_robot(scene, window, moves,
                                                                     expected):
    harness = Harness(_CyclingPolicy(window, moves), home=scene["home"])
    taken = [command.action for index in range(len(expected))
             for command in harness.feed(scene, stamp=index * PERIOD)]
    assert taken == expected
    # A new episode forgets the moves: its first decision is the plain greedy one, even
    # where it goes back to a pose of the episode before.
    policy = _CyclingPolicy(window, (Action.MINUS_X,))
    harness.runtime.set_policy(policy)
    harness.runtime.reset(scene["home"], 10.0)
    (command,) = harness.feed(scene, stamp=10.0 + PERIOD)
    assert command.action is Action.MINUS_X
