"""What the servo node shows people and monitors: per-stream rates and faults for
``/diagnostics``, a colourised depth image, and markers of the commanded fingertip target and
the per-action grasp probabilities (rviz2, ``graspq.rviz``)."""

from __future__ import annotations

import collections
from typing import Any

import cv2
import numpy as np
from builtin_interfaces.msg import Time
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import Point
from sensor_msgs.msg import Image
from visualization_msgs.msg import Marker, MarkerArray

from graspq.actions import Action
from graspq.servo.runtime import ServoStatus

OFF_RATE_FRACTION = 0.5  # a stream below this share of its expected rate is off-rate
_WINDOW_S = 2.0  # arrivals counted over this wall-clock window for the rate


class StreamMonitor:
    """Arrival rates, silences, missed deadlines and QoS incompatibilities per stream.

    Args:
        expected_hz: each stream's expected rate, Hz.
        max_age_s: a stream silent this long is stale.
    """

    def __init__(self, expected_hz: dict[str, float], max_age_s: float) -> None:
        self.expected_hz = dict(expected_hz)
        self.max_age_s = max_age_s
        self._arrivals = {name: collections.deque() for name in expected_hz}
        self._deadline_missed = dict.fromkeys(expected_hz, 0)
        self._incompatible: dict[str, str] = {}

    def arrived(self, stream: str, wall_s: float) -> None:
        arrivals = self._arrivals[stream]
        arrivals.append(wall_s)
        while arrivals and arrivals[0] < wall_s - _WINDOW_S:
            arrivals.popleft()

    def deadline_missed(self, stream: str, total: int) -> None:
        self._deadline_missed[stream] = total

    def incompatible(self, stream: str, policy_kind: Any, total: int) -> None:
        name = getattr(policy_kind, "name", str(policy_kind))
        self._incompatible[stream] = f"{name} ({total} publisher(s))"

    def rate_hz(self, stream: str, wall_s: float) -> float:
        arrivals = [t for t in self._arrivals[stream] if t >= wall_s - _WINDOW_S]
        if len(arrivals) < 2:
            return 0.0
        return (len(arrivals) - 1) / max(arrivals[-1] - arrivals[0], 1e-9)

    def stream_status(self, stream: str, wall_s: float) -> DiagnosticStatus:
        expected = self.expected_hz[stream]
        rate = self.rate_hz(stream, wall_s)
        arrivals = self._arrivals[stream]
        age = wall_s - arrivals[-1] if arrivals else None
        level, message = DiagnosticStatus.OK, f"ok, {rate:.1f} Hz"
        if stream in self._incompatible:
            level = DiagnosticStatus.ERROR
            message = f"QoS incompatible with its publisher: {self._incompatible[stream]}"
        elif age is None:
            level, message = DiagnosticStatus.ERROR, "missing: no message received"
        elif age > self.max_age_s:
            level, message = DiagnosticStatus.ERROR, f"stale: last message {age:.2f} s ago"
        elif rate < OFF_RATE_FRACTION * expected:
            level = DiagnosticStatus.WARN
            message = f"off-rate: {rate:.1f} Hz, expected {expected:g} Hz"
        values = [KeyValue(key="rate_hz", value=f"{rate:.2f}"),
                  KeyValue(key="expected_hz", value=f"{expected:g}"),
                  KeyValue(key="last_message_age_s", value="none" if age is None
                           else f"{age:.3f}"),
                  KeyValue(key="deadline_missed", value=str(self._deadline_missed[stream]))]
        return DiagnosticStatus(level=level, name=f"graspq_servo: stream {stream}",
                                message=message, hardware_id="graspq_servo", values=values)

    def diagnostics(self, wall_s: float, stamp: Time, latencies_ms: list[float],
                    status: ServoStatus) -> DiagnosticArray:
        """The streams' statuses, then the decision loop's (latency, holds)."""
        array = DiagnosticArray()
        array.header.stamp = stamp
        array.status = [self.stream_status(name, wall_s) for name in self.expected_hz]
        values = [KeyValue(key="state", value=status.state.value),
                  KeyValue(key="decisions", value=str(status.decisions)),
                  KeyValue(key="held_total", value=str(status.held_total)),
                  KeyValue(key="dropped_stale", value=str(status.dropped_stale))]
        values += [KeyValue(key=f"held_{reason}", value=str(count))
                   for reason, count in sorted(status.held_bad_input.items())]
        if latencies_ms:
            values += [KeyValue(key="decision_latency_ms_p50",
                                value=f"{np.percentile(latencies_ms, 50):.3f}"),
                       KeyValue(key="decision_latency_ms_p99",
                                value=f"{np.percentile(latencies_ms, 99):.3f}")]
        level = DiagnosticStatus.WARN if status.holding else DiagnosticStatus.OK
        message = f"holding: {status.holding}" if status.holding else status.state.value
        array.status.append(DiagnosticStatus(level=level, name="graspq_servo: decisions",
                                             message=message, hardware_id="graspq_servo",
                                             values=values))
        return array


def depth_colour_image(depth_m: np.ndarray, near_m: float, far_m: float,
                       stamp: Time, frame_id: str = "overhead_camera_optical_frame") -> Image:
    """Depth (m) as a colour map for people (near = red, far = blue; NaN black), bgr8."""
    depth = np.asarray(depth_m, dtype=np.float32)
    valid = np.isfinite(depth)
    scaled = np.zeros(depth.shape, dtype=np.uint8)
    scaled[valid] = np.rint(255.0 * (1.0 - (np.clip(depth[valid], near_m, far_m) - near_m)
                                     / (far_m - near_m)))
    colour = cv2.applyColorMap(scaled, cv2.COLORMAP_JET)
    colour[~valid] = 0
    msg = Image(height=depth.shape[0], width=depth.shape[1], encoding="bgr8",
                is_bigendian=0, step=3 * depth.shape[1], data=colour.tobytes())
    msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


def grasp_markers(target_m: np.ndarray, probabilities: np.ndarray | None,
                  stamp: Time, status_text: str = "", frame_id: str = "base") -> MarkerArray:
    """A sphere at the commanded fingertip target, one text per action with its grasp
    probability stacked above it (the best in yellow), and the status text above those."""
    markers = MarkerArray()
    status = Marker(type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, ns="status", id=0)
    status.header.stamp, status.header.frame_id = stamp, frame_id
    status.pose.position = Point(x=float(target_m[0]), y=float(target_m[1]),
                                 z=float(target_m[2]) + 0.25)
    status.pose.orientation.w = 1.0
    status.scale.z = 0.02
    status.color.r = status.color.g = status.color.b = status.color.a = 1.0
    status.text = status_text
    markers.markers.append(status)
    sphere = Marker(type=Marker.SPHERE, action=Marker.ADD, ns="target", id=0)
    sphere.header.stamp, sphere.header.frame_id = stamp, frame_id
    sphere.pose.position = Point(x=float(target_m[0]), y=float(target_m[1]),
                                 z=float(target_m[2]))
    sphere.pose.orientation.w = 1.0
    sphere.scale.x = sphere.scale.y = sphere.scale.z = 0.015
    sphere.color.g, sphere.color.a = 1.0, 0.8
    markers.markers.append(sphere)
    if probabilities is not None:
        best = int(np.argmax(probabilities))
        for action in Action:
            text = Marker(type=Marker.TEXT_VIEW_FACING, action=Marker.ADD, ns="grasp_probability",
                          id=int(action))
            text.header.stamp, text.header.frame_id = stamp, frame_id
            text.pose.position = Point(x=float(target_m[0]), y=float(target_m[1]),
                                       z=float(target_m[2]) + 0.05 + 0.02 * int(action))
            text.pose.orientation.w = 1.0
            text.scale.z = 0.015
            text.color.r = text.color.g = text.color.b = 1.0
            text.color.a = 1.0
            if int(action) == best:
                text.color.b = 0.0
            text.text = f"{action.name} {float(probabilities[int(action)]):.2f}"
            markers.markers.append(text)
    return markers
