"""graspq_baxter_msgs mirrors the ROS 1 baxter_core_msgs field for field, and its ros1_bridge
mapping rules name only messages, services and fields that exist on both sides.

The ROS 1 definitions below are the field and constant lists of RethinkRobotics/
baxter_common, commit 6c4b0f375fe4e356a3b12df26ef7c0d5e58df86e (release 1.2.0),
``baxter_core_msgs/msg/*.msg`` and ``baxter_core_msgs/srv/*.srv``, as read for issue #21.
"""

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from ament_index_python.packages import get_package_share_directory

SHARE = Path(get_package_share_directory("graspq_baxter_msgs"))
ROS2 = "graspq_baxter_msgs"

# name -> (fields [(type, name)], constants {name: value as written}); ROS 1 spelling.
ROS1_MESSAGES = {
    "JointCommand": (
        [("int32", "mode"), ("float64[]", "command"), ("string[]", "names")],
        {"POSITION_MODE": "1", "VELOCITY_MODE": "2", "TORQUE_MODE": "3",
         "RAW_POSITION_MODE": "4"}),
    "EndEffectorCommand": (
        [("uint32", "id"), ("string", "command"), ("string", "args"), ("string", "sender"),
         ("uint32", "sequence")],
        {"CMD_NO_OP": "no_op", "CMD_SET": "set", "CMD_CONFIGURE": "configure",
         "CMD_REBOOT": "reboot", "CMD_RESET": "reset", "CMD_CALIBRATE": "calibrate",
         "CMD_CLEAR_CALIBRATION": "clear_calibration",
         "CMD_PREPARE_TO_GRIP": "prepare_to_grip", "CMD_GRIP": "grip",
         "CMD_RELEASE": "release", "CMD_GO": "go", "CMD_STOP": "stop"}),
    "EndEffectorState": (
        [("time", "timestamp"), ("uint32", "id"), ("uint8", "enabled"),
         ("uint8", "calibrated"), ("uint8", "ready"), ("uint8", "moving"),
         ("uint8", "gripping"), ("uint8", "missed"), ("uint8", "error"), ("uint8", "reverse"),
         ("float32", "position"), ("float32", "force"), ("string", "state"),
         ("string", "command"), ("string", "command_sender"), ("uint32", "command_sequence")],
        {"STATE_FALSE": "0", "STATE_TRUE": "1", "STATE_UNKNOWN": "2",
         "POSITION_CLOSED": "0.0", "POSITION_OPEN": "100.0", "FORCE_MIN": "0.0",
         "FORCE_MAX": "100.0"}),
    "EndEffectorProperties": (
        [("uint32", "id"), ("uint8", "ui_type"), ("string", "manufacturer"),
         ("string", "product"), ("string", "serial_number"), ("string", "hardware_rev"),
         ("string", "firmware_rev"), ("string", "firmware_date"), ("bool", "has_calibration"),
         ("bool", "controls_grip"), ("bool", "senses_grip"), ("bool", "reverses_grip"),
         ("bool", "controls_force"), ("bool", "senses_force"), ("bool", "controls_position"),
         ("bool", "senses_position"), ("string", "properties")],
        {"NO_GRIPPER": "0", "SUCTION_CUP_GRIPPER": "1", "ELECTRIC_GRIPPER": "2",
         "PASSIVE_GRIPPER": "3"}),
    "AssemblyState": (
        [("bool", "ready"), ("bool", "enabled"), ("bool", "stopped"), ("bool", "error"),
         ("uint8", "estop_button"), ("uint8", "estop_source")],
        {"ESTOP_BUTTON_UNPRESSED": "0", "ESTOP_BUTTON_PRESSED": "1",
         "ESTOP_BUTTON_UNKNOWN": "2", "ESTOP_BUTTON_RELEASED": "3", "ESTOP_SOURCE_NONE": "0",
         "ESTOP_SOURCE_USER": "1", "ESTOP_SOURCE_UNKNOWN": "2", "ESTOP_SOURCE_FAULT": "3",
         "ESTOP_SOURCE_BRAIN": "4"}),
    "CameraSettings": (
        [("int32", "width"), ("int32", "height"), ("float32", "fps"),
         ("CameraControl[]", "controls")], {}),
    "CameraControl": (
        [("int32", "id"), ("int32", "value")],
        {"CAMERA_CONTROL_EXPOSURE": "100", "CAMERA_CONTROL_GAIN": "101",
         "CAMERA_CONTROL_WHITE_BALANCE_R": "102", "CAMERA_CONTROL_WHITE_BALANCE_G": "103",
         "CAMERA_CONTROL_WHITE_BALANCE_B": "104", "CAMERA_CONTROL_WINDOW_X": "105",
         "CAMERA_CONTROL_WINDOW_Y": "106", "CAMERA_CONTROL_FLIP": "107",
         "CAMERA_CONTROL_MIRROR": "108", "CAMERA_CONTROL_RESOLUTION_HALF": "109"}),
}
# name -> (request fields, response fields)
ROS1_SERVICES = {
    "OpenCamera": ([("string", "name"), ("CameraSettings", "settings")], [("int32", "err")]),
    "CloseCamera": ([("string", "name")], [("int32", "err")]),
    "ListCameras": ([], [("string[]", "cameras")]),
}
ROS1_TO_ROS2_TYPE = {"time": "builtin_interfaces/Time"}


def _parse(text):
    """(fields [(type, name)], constants {name: value}) of one .msg section."""
    fields, constants = [], {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, rest = line.split(None, 1)
        if "=" in rest:
            name, value = (part.strip() for part in rest.split("=", 1))
            constants[name] = value.strip('"')
        else:
            fields.append((kind, rest.strip()))
    return fields, constants


def _ros2_type(ros1_type):
    base, array = (ros1_type[:-2], "[]") if ros1_type.endswith("[]") else (ros1_type, "")
    if base in ROS1_TO_ROS2_TYPE:
        return ROS1_TO_ROS2_TYPE[base] + array
    if base[0].isupper():  # a message of the same package
        return base + array
    return ros1_type


@pytest.mark.parametrize("name", sorted(ROS1_MESSAGES))
def test_each_message_mirrors_the_ros1_original(name):
    fields, constants = _parse((SHARE / "msg" / f"{name}.msg").read_text())
    ros1_fields, ros1_constants = ROS1_MESSAGES[name]
    assert fields == [(_ros2_type(t), n) for t, n in ros1_fields]
    assert {k: float(v) for k, v in constants.items() if not k.startswith("CMD_")} == {
        k: float(v) for k, v in ros1_constants.items() if not k.startswith("CMD_")}
    assert {k: v for k, v in constants.items() if k.startswith("CMD_")} == {
        k: v for k, v in ros1_constants.items() if k.startswith("CMD_")}
    # and the generated Python type has exactly these fields, in order
    module = __import__(f"{ROS2}.msg", fromlist=[name])
    generated = getattr(module, name).get_fields_and_field_types()
    assert list(generated) == [n for _, n in ros1_fields]


@pytest.mark.parametrize("name", sorted(ROS1_SERVICES))
def test_each_service_mirrors_the_ros1_original(name):
    request, response = (SHARE / "srv" / f"{name}.srv").read_text().split("---")
    ros1_request, ros1_response = ROS1_SERVICES[name]
    assert _parse(request)[0] == [(_ros2_type(t), n) for t, n in ros1_request]
    assert _parse(response)[0] == [(_ros2_type(t), n) for t, n in ros1_response]


def _fields(kind, name):
    """ROS 1 and ROS 2 field names of a message, or of a service's request and response."""
    if kind == "message":
        ros2 = [n for _, n in _parse((SHARE / "msg" / f"{name}.msg").read_text())[0]]
        return {"": ([n for _, n in ROS1_MESSAGES[name][0]], ros2)}
    request, response = (SHARE / "srv" / f"{name}.srv").read_text().split("---")
    ros1_request, ros1_response = ROS1_SERVICES[name]
    return {"request_": ([n for _, n in ros1_request], [n for _, n in _parse(request)[0]]),
            "response_": ([n for _, n in ros1_response], [n for _, n in _parse(response)[0]])}


def test_mapping_rules_pair_every_mirror_and_name_only_what_exists():
    rules = yaml.safe_load((SHARE / "mapping_rules.yaml").read_text())
    assert isinstance(rules, list)
    paired = {"message": set(), "service": set()}
    package_rule = False
    for rule in rules:
        assert rule["ros2_package_name"] == ROS2  # the package that ships the file
        assert rule["ros1_package_name"] == "baxter_core_msgs"
        kinds = [k for k in ("message", "service") if f"ros1_{k}_name" in rule]
        if not kinds:
            assert set(rule) == {"ros1_package_name", "ros2_package_name"}
            package_rule = True
            continue
        (kind,) = kinds
        name = rule[f"ros1_{kind}_name"]
        assert rule[f"ros2_{kind}_name"] == name
        assert (SHARE / ("msg" if kind == "message" else "srv") /
                f"{name}.{'msg' if kind == 'message' else 'srv'}").is_file()
        paired[kind].add(name)
        for prefix, (ros1, ros2) in _fields(kind, name).items():
            key = f"{prefix}fields_1_to_2"
            if key in rule:  # a field rule must list every field, on both sides
                assert sorted(rule[key]) == sorted(ros1)
                assert sorted(rule[key].values()) == sorted(ros2)
            else:  # paired by name: the names must match
                assert ros1 == ros2
    assert package_rule
    assert paired["message"] == set(ROS1_MESSAGES)
    assert paired["service"] == set(ROS1_SERVICES)


def test_the_mapping_rules_are_exported_for_ros1_bridge():
    export = ET.parse(SHARE / "package.xml").getroot().find("export")
    assert export.find("ros1_bridge").get("mapping_rules") == "mapping_rules.yaml"
