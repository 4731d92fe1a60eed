"""graspq.servo.sync: approximate-time pairing of jittered, separately delivered streams."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from graspq.servo.sync import ApproximateTimeSync, Frame, PushStatus

STREAMS = ("overhead_colour", "overhead_depth", "wrist_colour", "joints")


def _device(streams, rate_hz, phase_s, latency_s, jitter_s, rng, until_s):
    """(arrival time, frame) of a free-running device with uniform latency jitter."""
    out = []
    n = 0
    while (stamp := phase_s + n / rate_hz) < until_s:
        arrival = stamp + max(0.0, latency_s + rng.uniform(-jitter_s, jitter_s))
        out += [(arrival, Frame(name, stamp, (name, n))) for name in streams]
        n += 1
    return out


def _rig(rng, until_s=3.0, wrist_latency_s=0.025):
    """A realistic rig: overhead RGB-D 30 Hz, wrist 30 Hz at another phase, joints 100 Hz."""
    arrivals = (_device(STREAMS[:2], 30.0, 0.0, 0.030, 0.005, rng, until_s)
                + _device(STREAMS[2:3], 30.0, 0.011, wrist_latency_s, 0.005, rng, until_s)
                + _device(STREAMS[3:], 100.0, 0.0, 0.002, 0.001, rng, until_s))
    arrivals.sort(key=lambda pair: pair[0])
    return arrivals


def _run(sync, arrivals):
    sets, statuses = [], []
    for _, frame in arrivals:
        result = sync.push(frame)
        statuses.append(result.status)
        if result.synced is not None:
            sets.append(result.synced)
    return sets, statuses


def _check_invariants(sync, sets, pushed):
    used = [frame.data for s in sets for frame in s.frames.values()]
    assert len(used) == len(set(used)), "a frame was used twice"
    for s in sets:
        assert set(s.frames) == set(sync.streams)
        assert s.spread <= sync.slop_s + 1e-12
    for name in sync.streams:  # sets are in time order on every stream
        stamps = [s.frames[name].stamp for s in sets]
        assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False))
    c = sync.counters
    accounted = (c.sets * len(sync.streams) + c.rejected_backwards + c.rejected_invalid_stamp
                 + c.dropped_stale + c.dropped_overflow + c.dropped_unmatched
                 + c.skipped_before_gate + sum(sync.queued(name) for name in sync.streams))
    assert accounted == pushed, "every frame is used, dropped, rejected or still queued"


def test_jittered_streams_pair_every_camera_frame_with_its_closest_partners():
    sync = ApproximateTimeSync(STREAMS, slop_s=0.025, max_age_s=0.1, queue_size=10)
    arrivals = _rig(np.random.default_rng(0))
    sets, _ = _run(sync, arrivals)
    overhead_frames = sum(1 for _, f in arrivals if f.stream == "overhead_colour")
    assert len(sets) >= overhead_frames - 2  # all but the last frames, still waiting
    _check_invariants(sync, sets, len(arrivals))
    for s in sets:
        # Colour and depth come from one capture; the joint state is the one closest to the
        # camera frame that completed the set (half a joint period at most).
        assert s.frames["overhead_colour"].stamp == s.frames["overhead_depth"].stamp
        cameras = (s.frames["overhead_colour"].stamp, s.frames["wrist_colour"].stamp)
        assert min(abs(s.frames["joints"].stamp - c) for c in cameras) <= 0.005 + 1e-9
    assert sync.counters.dropped_stale == 0
    assert sync.counters.rejected_backwards == 0


def test_a_stream_later_than_max_age_is_dropped_as_stale_and_never_paired():
    sync = ApproximateTimeSync(STREAMS, slop_s=0.025, max_age_s=0.1, queue_size=10)
    arrivals = _rig(np.random.default_rng(1), until_s=2.0, wrist_latency_s=0.3)
    arrivals = [pair for pair in arrivals if pair[0] < 1.5]  # observed until 1.5 s
    sets, statuses = _run(sync, arrivals)
    assert sets == []
    assert PushStatus.STALE in statuses
    assert sync.counters.dropped_stale > 0
    _check_invariants(sync, sets, len(arrivals))


def test_backwards_repeated_and_invalid_stamps_are_rejected_and_counted():
    sync = ApproximateTimeSync(("a", "b"), slop_s=0.01, max_age_s=0.1, queue_size=4)
    assert sync.push(Frame("a", 1.0, 1)).status is PushStatus.QUEUED
    assert sync.push(Frame("a", 0.99, 2)).status is PushStatus.BACKWARDS
    assert sync.push(Frame("a", 1.0, 3)).status is PushStatus.BACKWARDS  # a frame twice
    assert sync.push(Frame("a", math.nan, 4)).status is PushStatus.INVALID_STAMP
    assert sync.push(Frame("a", "soon", 5)).status is PushStatus.INVALID_STAMP
    assert sync.counters.rejected_backwards == 2
    assert sync.counters.rejected_invalid_stamp == 2
    assert sync.last_stamp("a") == 1.0
    result = sync.push(Frame("b", 1.002, 6))
    assert result.synced is not None and result.synced.frames["a"].data == 1


def test_no_frame_is_used_twice_even_when_it_could_pair_again():
    sync = ApproximateTimeSync(("a", "b"), slop_s=0.01, max_age_s=0.1, queue_size=4)
    sync.push(Frame("a", 0.0, "a0"))
    first = sync.push(Frame("b", 0.004, "b0")).synced
    assert first is not None
    assert sync.push(Frame("b", 0.008, "b1")).synced is None  # a0 is spent
    second = sync.push(Frame("a", 0.010, "a1")).synced
    assert second is not None and second.frames["b"].data == "b1"


def test_older_unmatched_frames_go_when_a_newer_set_is_emitted():
    sync = ApproximateTimeSync(("a", "b"), slop_s=0.01, max_age_s=1.0, queue_size=10)
    for i in range(3):
        sync.push(Frame("a", 0.1 * i, i))  # nothing on b near these
    synced = sync.push(Frame("b", 0.203, "b")).synced
    assert synced is not None and synced.frames["a"].data == 2
    assert sync.counters.dropped_unmatched == 2
    assert sync.queued("a") == 0


def test_gate_discards_frames_taken_before_it():
    sync = ApproximateTimeSync(("a", "b"), slop_s=0.01, max_age_s=1.0, queue_size=10)
    sync.push(Frame("a", 0.10, "early"))
    sync.gate(0.15)
    assert sync.queued("a") == 0
    assert sync.push(Frame("b", 0.149, "b-early")).status is PushStatus.BEFORE_GATE
    assert sync.push(Frame("b", 0.15, "b")).status is PushStatus.QUEUED  # on the gate counts
    synced = sync.push(Frame("a", 0.152, "a")).synced
    assert synced is not None and synced.oldest >= 0.15
    assert sync.counters.skipped_before_gate == 2


def test_queues_are_bounded():
    sync = ApproximateTimeSync(("a", "b"), slop_s=0.001, max_age_s=10.0, queue_size=3)
    for i in range(10):
        sync.push(Frame("a", float(i), i))
    assert sync.queued("a") == 3
    assert sync.counters.dropped_overflow == 7


def test_reset_forgets_stamps_so_a_restarted_clock_is_accepted():
    sync = ApproximateTimeSync(("a", "b"), slop_s=0.01, max_age_s=0.1, queue_size=4)
    sync.push(Frame("a", 5.0, 1))
    sync.reset()
    assert sync.last_stamp("a") is None
    assert sync.push(Frame("a", 0.1, 2)).status is PushStatus.QUEUED


@pytest.mark.parametrize("kwargs, message", [
    ({"streams": ("a",)}, "two distinct"),
    ({"streams": ("a", "a")}, "two distinct"),
    ({"slop_s": 0.0}, "slop_s"),
    ({"max_age_s": 0.005}, "max_age_s"),
    ({"queue_size": 0}, "queue_size"),
])
def test_bad_parameters_are_refused(kwargs, message):
    args = {"streams": ("a", "b"), "slop_s": 0.01, "max_age_s": 0.1, "queue_size": 4, **kwargs}
    with pytest.raises(ValueError, match=message):
        ApproximateTimeSync(**args)
    with pytest.raises(ValueError, match="unknown stream"):
        ApproximateTimeSync(("a", "b"), 0.01, 0.1, 4).push(Frame("c", 0.0, None))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.floats(0.0, 0.5), st.floats(0.0, 0.08)),
                min_size=1, max_size=80),
       st.floats(0.002, 0.05), st.integers(1, 6))
def test_any_arrival_order_keeps_the_invariants(samples, slop_s, queue_size):
    """Random stamps and delays (including reordering within a stream): no frame twice, sets
    within slop and in time order, and every frame accounted for."""
    arrivals = [(stamp + delay, Frame("abc"[stream], stamp, i))
                for i, (stream, stamp, delay) in enumerate(samples)]
    arrivals.sort(key=lambda pair: pair[0])
    sync = ApproximateTimeSync(("a", "b", "c"), slop_s, slop_s + 0.05, queue_size)
    sets, _ = _run(sync, arrivals)
    _check_invariants(sync, sets, len(arrivals))
