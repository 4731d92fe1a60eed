"""graspq_servo.monitoring: what /diagnostics says of each input stream (missing, stale,
off-rate, QoS-incompatible, ok, with its rate), the decision entry, and the images and
markers shown to people."""

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticStatus

from graspq.rewards import Outcome
from graspq.servo.runtime import ServoState, ServoStatus
from graspq_servo.monitoring import StreamMonitor, depth_colour_image, grasp_markers

RATES = {"overhead_colour": 30.0, "joints": 100.0}


def _status(**changes):
    fields = dict(state=ServoState.RUNNING, episode=0, step=3, outcome=Outcome.RUNNING,
                  episode_return=-0.075, last_action=None, q_values=None,
                  grasp_probabilities=None, policy_latency_ms=None, cycle_ms=None,
                  decisions=3, not_executed=0, joint_steps_clamped=0,
                  held_bad_input={"encoding": 2}, holding=None,
                  sync={"dropped_stale": 1}, estop_reason=None)
    fields.update(changes)
    return ServoStatus(**fields)


def _by_stream(array):
    return {s.name.rsplit(" ", 1)[-1]: s for s in array.status}


def test_each_stream_is_named_with_its_state_and_rate():
    monitor = StreamMonitor(RATES, max_age_s=0.1)
    wall = 100.0
    statuses = _by_stream(monitor.diagnostics(wall, Time(), [], _status()))
    assert statuses["overhead_colour"].level == DiagnosticStatus.ERROR
    assert statuses["overhead_colour"].message.startswith("missing")
    for i in range(61):  # two seconds at 30 Hz
        monitor.arrived("overhead_colour", wall + i / 30.0)
    for i in range(41):  # joints at 20 Hz: off-rate against 100 Hz
        monitor.arrived("joints", wall + i / 20.0)
    now = wall + 2.0
    statuses = _by_stream(monitor.diagnostics(now, Time(), [1.0, 2.0, 3.0], _status()))
    colour = statuses["overhead_colour"]
    assert colour.level == DiagnosticStatus.OK and "30.0 Hz" in colour.message
    assert {kv.key: kv.value for kv in colour.values}["rate_hz"] == "30.00"
    assert statuses["joints"].level == DiagnosticStatus.WARN
    assert statuses["joints"].message == "off-rate: 20.0 Hz, expected 100 Hz"
    statuses = _by_stream(monitor.diagnostics(now + 0.5, Time(), [], _status()))
    assert statuses["overhead_colour"].message.startswith("stale: last message 0.50 s ago")
    monitor.incompatible("joints", "DEADLINE", 1)
    statuses = _by_stream(monitor.diagnostics(now, Time(), [], _status()))
    assert statuses["joints"].level == DiagnosticStatus.ERROR
    assert "QoS incompatible" in statuses["joints"].message
    assert "DEADLINE" in statuses["joints"].message


def test_the_decision_entry_gives_latency_percentiles_and_hold_counters():
    monitor = StreamMonitor(RATES, max_age_s=0.1)
    array = monitor.diagnostics(0.0, Time(), [1.0] * 98 + [5.0, 9.0],
                                _status(holding="encoding: mono8"))
    decisions = array.status[-1]
    values = {kv.key: kv.value for kv in decisions.values}
    assert decisions.level == DiagnosticStatus.WARN
    assert decisions.message == "holding: encoding: mono8"
    assert values["held_encoding"] == "2" and values["dropped_stale"] == "1"
    assert float(values["decision_latency_ms_p50"]) == pytest.approx(1.0)
    assert float(values["decision_latency_ms_p99"]) > 5.0


def test_depth_for_people_and_markers():
    depth = np.full((8, 8), 0.9, np.float32)
    depth[0, 0] = np.nan
    image = depth_colour_image(depth, 0.6, 1.1, Time())
    pixels = np.frombuffer(bytes(image.data), np.uint8).reshape(8, 8, 3)
    assert image.encoding == "bgr8" and pixels[0, 0].tolist() == [0, 0, 0]
    assert pixels[4, 4].any()
    probabilities = np.full(9, 0.05, np.float32)
    probabilities[8] = 0.6
    markers = grasp_markers(np.array([0.7, -0.4, 0.0]), probabilities, Time(), "running")
    texts = [m.text for m in markers.markers if m.ns == "grasp_probability"]
    assert len(texts) == 9 and texts[8] == "CLOSE 0.60"
    assert [m.text for m in markers.markers if m.ns == "status"] == ["running"]
