"""Configuration of the servo runtime (``ServoConfig``) and of the simulated devices that
``graspq servo --sim`` feeds it with (``SimDevicesConfig``).

Times are seconds on the clock the sensor stamps use (ROS time on a robot, the simulated clock
in ``graspq servo --sim``). The move duration itself is not here: a move takes the
``physics.action_duration_s`` of the env config the policy was trained with.
"""

from __future__ import annotations

import dataclasses

from graspq.config import ConfigError, param, section

SERVO_NODE_NAME = "graspq_servo"


@dataclasses.dataclass(frozen=True)
class ServoConfig:
    """Timing, input checks and safety limits of the servo runtime."""

    slop_s: float = param(
        0.025, "largest stamp spread within a synchronised set; two free-running 30 Hz "
        "cameras are at most half a period (16.7 ms) apart, plus jitter", unit="s",
        gt=0.0, le=1.0)
    max_age_s: float = param(
        0.1, "a queued frame this much older than the newest frame of any stream is dropped; "
        "a set this old when it is complete, or a stream silent this long, holds the arm",
        unit="s", gt=0.0, le=10.0)
    queue_size: int = param(10, "frames queued per stream while waiting for partners",
                            ge=1, le=1000)
    settle_s: float = param(
        0.0, "extra wait after a move's duration before new frames count as showing its "
        "result", unit="s", ge=0.0, le=5.0)
    max_joint_step_rad: float = param(
        0.35, "largest change of any joint's command in one decision cycle; the largest "
        "planned move (a 15 deg yaw turn) needs about 0.26 rad, more means an IK branch flip",
        unit="rad", gt=0.0, le=3.2)
    gripper_force_limit_n: float = param(
        20.0, "closing force per finger sent to the gripper at most (the env config's force "
        "is clamped to it)", unit="N", gt=0.0, le=100.0)
    joint_limit_slack_rad: float = param(
        0.05, "a measured joint may read this far outside its limits before the input "
        "counts as bad", unit="rad", ge=0.0, le=0.5)
    depth_unit_m: float = param(
        0.001, "metres per unit of an integer (uint16) depth image; RealSense: 1 mm",
        unit="m", gt=0.0, le=1.0)
    policy_threads: int = param(1, "CPU threads for policy inference", ge=1, le=64)

    def __post_init__(self) -> None:
        if self.max_age_s <= self.slop_s:
            raise ConfigError("max_age_s", "must exceed slop_s, or a set could be complete "
                              "and already too old")


@dataclasses.dataclass(frozen=True)
class SimDevicesConfig:
    """Rates, transport latency and jitter of the simulated sensors and arm controller.

    A frame is stamped with the simulated time its state was rendered or read (capture) and
    delivered ``latency + U(-jitter, +jitter)`` later (never before its capture). Each
    device free-runs from simulated time ``phase`` at its rate; capture instants fall on the
    first physics step at or after the nominal time.
    """

    overhead_hz: float = param(30.0, "overhead RGB-D camera frame rate (colour and aligned "
                               "depth share a stamp)", unit="Hz", gt=0.0, le=1000.0)
    overhead_latency_s: float = param(0.030, "overhead camera capture-to-delivery latency",
                                      unit="s", ge=0.0, le=1.0)
    overhead_jitter_s: float = param(0.005, "overhead camera latency jitter (uniform +-)",
                                     unit="s", ge=0.0, le=1.0)
    overhead_phase_s: float = param(0.0, "overhead camera's first capture time", unit="s",
                                    ge=0.0, le=1.0)
    wrist_hz: float = param(30.0, "wrist camera frame rate", unit="Hz", gt=0.0, le=1000.0)
    wrist_latency_s: float = param(0.025, "wrist camera capture-to-delivery latency",
                                   unit="s", ge=0.0, le=1.0)
    wrist_jitter_s: float = param(0.005, "wrist camera latency jitter (uniform +-)", unit="s",
                                  ge=0.0, le=1.0)
    wrist_phase_s: float = param(0.011, "wrist camera's first capture time; not the "
                                 "overhead's: the cameras are not triggered together",
                                 unit="s", ge=0.0, le=1.0)
    joints_hz: float = param(100.0, "joint state rate (Baxter publishes at 100 Hz)",
                             unit="Hz", gt=0.0, le=10000.0)
    joints_latency_s: float = param(0.002, "joint state latency", unit="s", ge=0.0, le=1.0)
    joints_jitter_s: float = param(0.001, "joint state latency jitter (uniform +-)",
                                   unit="s", ge=0.0, le=1.0)
    joints_phase_s: float = param(0.0, "first joint state time", unit="s", ge=0.0, le=1.0)
    command_latency_s: float = param(
        0.005, "from a decision to the arm controller starting the move", unit="s",
        ge=0.0, le=1.0)
    episode_time_limit_s: float = param(
        60.0, "simulated time after which an episode that has not ended is abandoned "
        "(reported as 'aborted'), e.g. one held on bad input", unit="s", gt=0.0)

    def zero_latency(self) -> SimDevicesConfig:
        """The same rates and phases with no latency or jitter anywhere."""
        return dataclasses.replace(
            self, overhead_latency_s=0.0, overhead_jitter_s=0.0, wrist_latency_s=0.0,
            wrist_jitter_s=0.0, joints_latency_s=0.0, joints_jitter_s=0.0,
            command_latency_s=0.0)


@dataclasses.dataclass(frozen=True)
class ServoSimConfig:
    """Everything ``graspq servo --sim`` needs beyond the env config and the policy."""

    servo: ServoConfig = section(ServoConfig, "servo runtime")
    devices: SimDevicesConfig = section(SimDevicesConfig, "simulated sensors and arm")
