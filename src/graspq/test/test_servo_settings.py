"""graspq.servo.settings: typed, documented, validated servo and device parameters."""

import dataclasses

import pytest

from graspq.config import ConfigError, apply_overrides, dump_yaml, from_mapping, to_mapping
from graspq.servo.settings import SERVO_NODE_NAME, ServoConfig, ServoSimConfig, SimDevicesConfig


def test_every_field_is_documented_with_a_unit_where_it_has_one():
    for cls in (ServoConfig, SimDevicesConfig):
        for field in dataclasses.fields(cls):
            assert field.metadata["doc"], field.name
            if field.name.endswith(("_s", "_rad", "_n", "_m", "_hz")):
                assert field.metadata["unit"], field.name


def test_defaults_round_trip_through_a_ros_parameter_file():
    config = ServoSimConfig()
    text = dump_yaml(config, SERVO_NODE_NAME)
    assert "max_joint_step_rad" in text and "[rad]" in text
    assert from_mapping(ServoSimConfig, to_mapping(config)) == config


@pytest.mark.parametrize("assignment, key", [
    ("servo.slop_s=0", "servo.slop_s"),
    ("servo.max_age_s=0.01", "max_age_s"),  # must exceed the slop
    ("servo.queue_size=0", "servo.queue_size"),
    ("servo.gripper_force_limit_n=-1", "servo.gripper_force_limit_n"),
    ("devices.joints_hz=0", "devices.joints_hz"),
    ("devices.wrist_latency_s=-0.1", "devices.wrist_latency_s"),
    ("servo.no_such_key=1", "servo.no_such_key"),
])
def test_a_bad_value_is_an_error_naming_the_key(assignment, key):
    with pytest.raises(ConfigError) as error:
        apply_overrides(ServoSimConfig(), [assignment])
    assert error.value.key == key


def test_zero_latency_keeps_rates_and_removes_every_delay():
    devices = SimDevicesConfig().zero_latency()
    assert devices.overhead_hz == SimDevicesConfig().overhead_hz
    delays = [getattr(devices, f.name) for f in dataclasses.fields(devices)
              if f.name.endswith(("latency_s", "jitter_s"))]
    assert len(delays) == 7 and not any(delays)
