"""The Gazebo Harmonic world, its robot and its bridge, checked without Gazebo: sdformat's own
validator (``ign sdf -k``, Debian's sdformat 12) on every generated file, the committed files
equal to the generator's output, the scene the same as the MuJoCo one (parsed back from the
SDF, not taken from the generator), and every bridge entry a pair that ros_gz_bridge maps."""

import math
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest
import yaml

from graspq.sim.cameras import camera_intrinsics
from graspq.sim.gazebo_world import (
    OBJECT_MODEL,
    bridge_entries,
    bridge_yaml,
    gazebo_robot_urdf,
    object_sdf,
    object_spawn_height,
    world_sdf,
)
from graspq.sim.objects import draw_object
from graspq.sim.scene import ARM_JOINTS, FINGER_JOINTS, build_scene
from graspq.sim.settings import OBJECT_TYPES, EnvConfig

ROOT = Path(__file__).resolve().parents[3]
WORLD = ROOT / "worlds" / "graspq_table.sdf"
BRIDGE = ROOT / "worlds" / "graspq_table_bridge.yaml"
ROBOT = ROOT / "src" / "graspq_bringup" / "urdf" / "graspq_baxter_gazebo.urdf"
REGENERATE = "regenerate with `graspq gazebo` from the repository root"
POSITION_TOL_M = 1e-6  # poses are written with 9 significant digits
ROTATION_TOL = 1e-6
needs_ign = pytest.mark.skipif(
    shutil.which("ign") is None,
    reason="`ign sdf` missing: install Debian 12's libsdformat12-12 sdformat-sdf "
    "ignition-tools libsdformat-dev (tools/bootstrap.sh does as root)")

# ros_gz_bridge's ROS <-> Gazebo message pairs for the types a bridge of this stack may use,
# as listed in gazebosim/ros_gz (branch jazzy) ros_gz_bridge/ros_gz_bridge/mappings.py.
ROS_GZ_MAPPINGS = {
    "rosgraph_msgs/msg/Clock": {"gz.msgs.Clock"},
    "sensor_msgs/msg/Image": {"gz.msgs.Image"},
    "sensor_msgs/msg/CameraInfo": {"gz.msgs.CameraInfo"},
    "sensor_msgs/msg/PointCloud2": {"gz.msgs.PointCloudPacked"},
    "sensor_msgs/msg/JointState": {"gz.msgs.Model"},
    "std_msgs/msg/Float64": {"gz.msgs.Double"},
    "std_msgs/msg/Empty": {"gz.msgs.Empty"},
    "std_msgs/msg/Bool": {"gz.msgs.Boolean"},
    "tf2_msgs/msg/TFMessage": {"gz.msgs.Pose_V"},
    "geometry_msgs/msg/Pose": {"gz.msgs.Pose"},
    "geometry_msgs/msg/PoseArray": {"gz.msgs.Pose_V"},
    "ros_gz_interfaces/msg/Contacts": {"gz.msgs.Contacts"},
    "trajectory_msgs/msg/JointTrajectory": {"gz.msgs.JointTrajectory"},
}


def _rotation(rpy):
    """Fixed-axes roll, pitch, yaw as a matrix (written independently of the generator)."""
    r, p, y = rpy
    rx = np.array([[1, 0, 0], [0, math.cos(r), -math.sin(r)], [0, math.sin(r), math.cos(r)]])
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rz = np.array([[math.cos(y), -math.sin(y), 0], [math.sin(y), math.cos(y), 0], [0, 0, 1]])
    return rz @ ry @ rx


def _pose(text):
    values = [float(v) for v in text.split()]
    return np.array(values[:3]), _rotation(values[3:])


# A Gazebo camera looks along its +x with +z up; a MuJoCo camera along -z with +y up.
GZ_AXES_IN_MUJOCO_CAMERA = np.column_stack([[0, 0, -1], [-1, 0, 0], [0, 1, 0]])


def _mujoco_world():
    config = EnvConfig()
    scene = build_scene(config)
    data = mujoco.MjData(scene.model)
    mujoco.mj_forward(scene.model, data)
    return config, scene, data


def _ign_check(path):
    result = subprocess.run(["ign", "sdf", "-k", str(path)], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0 and "Valid." in result.stdout, result.stdout + result.stderr


def _ign_convert(urdf_path):
    result = subprocess.run(["ign", "sdf", "-p", str(urdf_path)], capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_committed_world_bridge_and_robot_are_the_generated_ones():
    assert WORLD.read_text() == world_sdf(), f"{WORLD} is stale: {REGENERATE}"
    assert BRIDGE.read_text() == bridge_yaml(), f"{BRIDGE} is stale: {REGENERATE}"
    assert ROBOT.read_text() == gazebo_robot_urdf(), f"{ROBOT} is stale: {REGENERATE}"


def test_the_shipped_scene_file_is_the_scene_of_the_committed_world():
    """gazebo.launch.py runs the committed world with config/env.yaml by default."""
    from graspq.config import load_config
    from graspq.sim.settings import ENV_NODE_NAME

    shipped = load_config(EnvConfig, ROOT / "config" / "env.yaml", ENV_NODE_NAME)
    assert world_sdf(shipped) == WORLD.read_text(), f"config/env.yaml changed: {REGENERATE} " \
        "--env-config config/env.yaml"


@needs_ign
def test_ign_sdf_accepts_the_world_the_robot_and_every_object(tmp_path):
    _ign_check(WORLD)
    robot = tmp_path / "robot.sdf"
    robot.write_text(_ign_convert(ROBOT))
    _ign_check(robot)
    config = EnvConfig()
    for kind in OBJECT_TYPES:
        path = tmp_path / f"{kind}.sdf"
        path.write_text(object_sdf(draw_object(config, np.random.default_rng(0), kind)))
        _ign_check(path)


@needs_ign
def test_the_robot_sdformat_builds_has_every_joint_controller_and_sensor():
    """What Gazebo will load: sdformat's conversion of the URDF keeps the arm (no link
    dropped), and every controller, sensor and contact collision it names exists in it."""
    sdf = ET.fromstring(_ign_convert(ROBOT))
    model = sdf.find("model")
    joints = {j.get("name"): j.get("type") for j in model.findall("joint")}
    for name in ARM_JOINTS:
        assert joints.get(name) == "revolute", name
    for name in FINGER_JOINTS:
        assert joints.get(name) == "prismatic", name
    assert joints.get("world_to_base") == "fixed"
    controlled = {p.findtext("joint_name") for p in model.findall("plugin")
                  if p.get("name") == "gz::sim::systems::JointPositionController"}
    assert controlled == {*ARM_JOINTS, *FINGER_JOINTS}
    published = {j.text for p in model.findall("plugin")
                 if p.get("name") == "gz::sim::systems::JointStatePublisher"
                 for j in p.findall("joint_name")}
    assert published == {*ARM_JOINTS, *FINGER_JOINTS}
    collisions = {c.get("name") for link in model.findall("link")
                  for c in link.findall("collision")}
    sensors = {s.get("name"): s for link in model.findall("link") for s in link.findall("sensor")}
    assert sensors["wrist_camera"].get("type") == "camera"
    for pad in ("l_finger_pad", "r_finger_pad"):
        contact = sensors[f"{pad}_contact"]
        assert contact.get("type") == "contact"
        assert contact.findtext("contact/collision") in collisions


def test_the_world_has_the_mujoco_scenes_table_camera_physics_and_spawn_square():
    config, scene, data = _mujoco_world()
    world = ET.parse(WORLD).getroot().find("world")
    assert ET.parse(WORLD).getroot().get("version") == "1.9"
    models = {m.get("name"): m for m in world.findall("model")}
    model = scene.model

    table = model.geom("table_top").id
    position, rotation = _pose(models["table"].findtext("pose"))
    assert np.allclose(position, data.geom_xpos[table], atol=POSITION_TOL_M)
    assert np.allclose(rotation, data.geom_xmat[table].reshape(3, 3), atol=ROTATION_TOL)
    size = [float(v) for v in models["table"].findtext("link/collision/geometry/box/size").split()]
    assert np.allclose(size, 2 * model.geom_size[table], atol=POSITION_TOL_M)
    top = position[2] + size[2] / 2
    assert top == pytest.approx(config.scene.table_top_z_m, abs=POSITION_TOL_M)

    camera = scene.overhead_camera
    position, rotation = _pose(models["overhead_camera"].findtext("pose"))
    assert np.allclose(position, data.cam_xpos[camera], atol=POSITION_TOL_M)
    mujoco_axes = rotation @ GZ_AXES_IN_MUJOCO_CAMERA.T  # back to MuJoCo's camera axes
    assert np.allclose(mujoco_axes, data.cam_xmat[camera].reshape(3, 3), atol=ROTATION_TOL)
    sensor = models["overhead_camera"].find("link/sensor")
    assert sensor.get("type") == "rgbd_camera"
    _check_intrinsics(sensor, config.camera.overhead_fovy_deg, config.camera.image_size)
    assert sensor.findtext("gz_frame_id") == "overhead_camera_optical_frame"

    physics = world.find("physics")
    assert float(physics.findtext("max_step_size")) == pytest.approx(model.opt.timestep)
    gravity = [float(v) for v in world.findtext("gravity").split()]
    assert np.allclose(gravity, model.opt.gravity)
    floor, _ = _pose(models["floor"].findtext("pose"))
    assert floor[2] == pytest.approx(model.geom_pos[model.geom("floor").id][2])

    spawn_position, _ = _pose(models["spawn_area"].findtext("pose"))
    spawn_size = [float(v) for v in
                  models["spawn_area"].findtext("link/visual/geometry/box/size").split()]
    half = config.scene.spawn_half_xy_m
    assert np.allclose(spawn_position[:2], config.scene.workspace_center_xy_m)
    assert np.allclose(spawn_size[:2], [2 * half, 2 * half])
    assert models["spawn_area"].find("link/collision") is None  # a marker, not an obstacle

    plugins = {p.get("name") for p in world.findall("plugin")}
    assert {"gz::sim::systems::Physics", "gz::sim::systems::UserCommands",
            "gz::sim::systems::SceneBroadcaster", "gz::sim::systems::Contact",
            "gz::sim::systems::Sensors"} <= plugins


def _check_intrinsics(sensor, fovy_deg, size):
    hfov = float(sensor.findtext("camera/horizontal_fov"))
    width = int(sensor.findtext("camera/image/width"))
    height = int(sensor.findtext("camera/image/height"))
    assert (width, height) == (size, size)
    fx, fy, cx, cy = camera_intrinsics(fovy_deg, size)
    # Gazebo's pinhole: fx = (width / 2) / tan(hfov / 2), square pixels, centred.
    assert (width / 2) / math.tan(hfov / 2) == pytest.approx(fx, rel=1e-6)
    assert (width / 2) / math.tan(hfov / 2) == pytest.approx(fy, rel=1e-6)
    assert (cx, cy) == pytest.approx((width / 2, height / 2), abs=0.5)


def test_the_robots_wrist_camera_is_the_mujoco_wrist_camera():
    config, scene, _ = _mujoco_world()
    model = scene.model
    robot = ET.parse(ROBOT).getroot()
    wrist = scene.wrist_camera
    link = model.body(int(model.cam_bodyid[wrist])).name
    blocks = [g for g in robot.findall("gazebo") if g.get("reference") == link]
    sensor = next(s for g in blocks for s in g.findall("sensor") if s.get("name") ==
                  "wrist_camera")
    position, rotation = _pose(sensor.findtext("pose"))
    quat_matrix = np.empty(9)
    mujoco.mju_quat2Mat(quat_matrix, model.cam_quat[wrist])
    assert np.allclose(position, model.cam_pos[wrist], atol=POSITION_TOL_M)
    assert np.allclose(rotation @ GZ_AXES_IN_MUJOCO_CAMERA.T, quat_matrix.reshape(3, 3),
                       atol=ROTATION_TOL)
    _check_intrinsics(sensor, config.camera.wrist_fovy_deg, config.camera.image_size)


def test_spawned_objects_are_the_mujoco_scenes_draws():
    """The episode's object in Gazebo: the same draw as the MuJoCo scene's for a seed, with
    its size, mass and friction in the config's ranges, resting on the table."""
    config = EnvConfig()
    objects = config.objects
    ranges = {"cube": objects.cube_side_m, "sphere": objects.sphere_diameter_m,
              "cylinder": objects.cylinder_diameter_m}
    for seed in range(60):
        spec = draw_object(config, np.random.default_rng(seed))
        sdf = ET.fromstring(object_sdf(spec))
        model = sdf.find("model")
        assert model.get("name") == OBJECT_MODEL
        geometry = model.find("link/collision/geometry")
        low, high = ranges[spec.kind]
        if spec.kind == "cube":
            sides = [float(v) for v in geometry.findtext("box/size").split()]
            assert all(low <= s <= high for s in sides) and len(set(sides)) == 1
        elif spec.kind == "sphere":
            assert low <= 2 * float(geometry.findtext("sphere/radius")) <= high
        else:
            assert low <= 2 * float(geometry.findtext("cylinder/radius")) <= high
            length = float(geometry.findtext("cylinder/length"))
            assert objects.cylinder_height_m[0] <= length <= objects.cylinder_height_m[1]
        mass = float(model.findtext("link/inertial/mass"))
        assert objects.mass_kg[0] <= mass <= objects.mass_kg[1]
        mu = float(model.findtext("link/collision/surface/friction/ode/mu"))
        assert objects.friction[0] <= mu <= objects.friction[1]
        bottom = object_spawn_height(spec, config) - spec.half_height
        assert bottom == pytest.approx(config.scene.table_top_z_m)


def _interface_topics():
    """Every name in the first column of docs/ros_interface.md's tables, as a pattern (a
    ``<joint>`` placeholder stands for one name)."""
    text = (ROOT / "docs" / "ros_interface.md").read_text()
    names = {m.group(1) for m in re.finditer(r"^\| `([^`]+)` \|", text, re.MULTILINE)}
    return [re.compile(re.sub(r"<[a-z_]+>", "[a-z0-9_]+", re.escape(name)) + "$")
            for name in names]


def test_every_bridge_entry_is_a_pair_ros_gz_bridge_maps_onto_an_interface_topic():
    entries = yaml.safe_load(BRIDGE.read_text())
    assert entries == bridge_entries()
    listed = _interface_topics()
    for entry in entries:
        assert set(entry) <= {"ros_topic_name", "gz_topic_name", "ros_type_name",
                              "gz_type_name", "direction", "lazy", "subscriber_queue",
                              "publisher_queue"}, entry
        assert entry["gz_type_name"] in ROS_GZ_MAPPINGS[entry["ros_type_name"]], entry
        assert entry["direction"] in {"GZ_TO_ROS", "ROS_TO_GZ", "BIDIRECTIONAL"}
        assert any(p.match(entry["ros_topic_name"]) for p in listed), (
            f"{entry['ros_topic_name']} is not listed in docs/ros_interface.md")
    ros_topics = {e["ros_topic_name"] for e in entries}
    for topic in ("overhead/color/image_raw", "overhead/aligned_depth_to_color/image_raw",
                  "wrist/color/image_raw", "joint_states", "/clock"):
        assert topic in ros_topics


def test_every_gazebo_topic_the_bridge_reads_or_writes_is_one_the_world_or_robot_uses():
    world = WORLD.read_text()
    robot = ROBOT.read_text()
    overhead = ET.parse(WORLD).getroot().find(".//sensor[@name='overhead']").findtext("topic")
    wrist = next(s for s in ET.parse(ROBOT).getroot().iter("sensor")
                 if s.get("name") == "wrist_camera").findtext("topic")
    for entry in bridge_entries():
        gz = entry["gz_topic_name"]
        if gz == "/clock":
            continue
        if gz.startswith(f"/{overhead}/"):
            assert gz.rsplit("/", 1)[1] in {"image", "depth_image", "camera_info"}
        elif gz.startswith(f"/{wrist.rsplit('/', 1)[0]}/"):
            assert gz.rsplit("/", 1)[1] in {"image", "camera_info"}
        elif gz.startswith("/world/graspq/"):
            assert "<world name=\"graspq\">" in world
        else:
            assert f">{gz}<" in robot, f"{gz} is in no controller or sensor of the robot"
