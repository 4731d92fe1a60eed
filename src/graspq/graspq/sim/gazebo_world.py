"""The MuJoCo scene as a Gazebo Harmonic world, written from the same scene parameters.

``graspq gazebo`` writes three files, none edited by hand (tests keep them equal to this
module's output):

- ``worlds/graspq_table.sdf`` (SDF 1.9): the table, the floor, the overhead RGB-D camera, a
  visual-only marker of the spawn square, the light, and the world systems the interface
  needs (physics at the scene's time step, user commands for spawn/remove/set-pose, scene
  broadcaster, contact, sensors);
- ``src/graspq_bringup/urdf/graspq_baxter_gazebo.urdf``: the URDF of ``graspq urdf`` with the
  physics a simulator needs (inertias, collision shapes, fixed to ``world``) and ``<gazebo>``
  blocks: a joint position controller per arm and finger joint (starting at the home pose),
  the joint state publisher, the wrist camera and a contact sensor on each finger pad;
- ``worlds/graspq_table_bridge.yaml``: the ros_gz_bridge topics, Gazebo's names onto the robot
  interface's (docs/ros_interface.md) and the Gazebo driver's own.

Every pose and size comes from the compiled MuJoCo model of the config, so the two
simulators show the robot the same scene. Gazebo cameras look along their link's +x with +z
up, MuJoCo's along -z with +y up: :data:`MUJOCO_TO_GAZEBO_CAMERA` turns one into the other.
Episode objects are spawned by the Gazebo driver from :func:`object_sdf`.
"""

from __future__ import annotations

import math
from xml.sax.saxutils import quoteattr

import numpy as np
import yaml

from graspq.sim.cameras import MUJOCO_TO_OPTICAL, fixed_camera_optical_pose
from graspq.sim.kinematics import quat_matrix
from graspq.sim.objects import ObjectSpec, object_inertia
from graspq.sim.scene import (
    ARM_JOINTS,
    FINGER_GEOMS,
    FINGER_JOINTS,
    FINGER_STROKE_M,
    build_scene,
    check_object_type,
)
from graspq.sim.settings import EnvConfig
from graspq.sim.urdf import (
    OVERHEAD_OPTICAL_FRAME,
    ROBOT_NAME,
    WRIST_OPTICAL_FRAME,
    robot_urdf,
    rpy,
)

WORLD_NAME = "graspq"
OBJECT_MODEL = "graspq_object"
SDF_VERSION = "1.9"
MUJOCO_TO_GAZEBO_CAMERA = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, 1.0], [-1.0, 0.0, 0.0]])
"""Columns: a Gazebo camera's x (forward), y (left), z (up) in the MuJoCo camera's axes."""

ARM_SPEED_RAD_S = 2.5  # Baxter's shoulder and elbow velocity limit; the controllers' cap
FINGER_SPEED_M_S = 0.1
CONTROLLER_P_GAIN = 10.0
CLIP_NEAR_M, CLIP_FAR_M = 0.05, 3.0
CONTACT_RATE_HZ = 500

# Gazebo-side topics (relative names resolve under "/").
OVERHEAD_GZ_TOPIC = "graspq/overhead"  # rgbd_camera: /image, /depth_image, /camera_info
WRIST_GZ_TOPIC = "graspq/wrist/image"  # camera: and the sibling graspq/wrist/camera_info
WRIST_GZ_INFO_TOPIC = "graspq/wrist/camera_info"
JOINT_STATE_GZ_TOPIC = f"/world/{WORLD_NAME}/model/{ROBOT_NAME}/joint_state"
OBJECT_POSE_GZ_TOPIC = f"/world/{WORLD_NAME}/dynamic_pose/info"  # scene broadcaster


def joint_command_gz_topic(joint: str) -> str:
    return f"/graspq/joint/{joint}/cmd_pos"


def contact_gz_topic(pad: str) -> str:
    return f"/graspq/contacts/{pad}"


# The Gazebo driver's ROS topics (not the robot interface: its own link to the simulator).
def joint_command_ros_topic(joint: str) -> str:
    return f"gazebo/joint/{joint}/cmd_pos"


def contact_ros_topic(pad: str) -> str:
    return f"gazebo/contacts/{pad}"


OBJECT_POSE_ROS_TOPIC = "gazebo/dynamic_poses"


def pose_text(position: np.ndarray, rotation: np.ndarray) -> str:
    """``x y z roll pitch yaw`` of an SDF ``<pose>``."""
    return " ".join(f"{v:.9g}" for v in (*position, *rpy(rotation)))


def _image_block(size: int, fovy_deg: float, frame: str) -> list[str]:
    # Square images: the horizontal field of view is the vertical one.
    return [f"        <camera><horizontal_fov>{math.radians(fovy_deg):.9g}</horizontal_fov>",
            f"          <image><width>{size}</width><height>{size}</height>"
            "<format>R8G8B8</format></image>",
            f"          <clip><near>{CLIP_NEAR_M}</near><far>{CLIP_FAR_M}</far></clip>",
            "        </camera>",
            f"        <gz_frame_id>{frame}</gz_frame_id>"]


def world_sdf(config: EnvConfig | None = None, rate_hz: float = 30.0) -> str:
    """The world's SDF text (see the module docstring); cameras update at ``rate_hz``."""
    config = config if config is not None else EnvConfig()
    scene = build_scene(config)
    model = scene.model
    table = model.geom("table_top").id
    table_body = int(model.geom_bodyid[table])
    table_size = 2 * model.geom_size[table]
    table_pose = pose_text(model.body_pos[table_body] + model.geom_pos[table], np.eye(3))
    floor_z = float(model.geom_pos[model.geom("floor").id][2])
    camera_position, optical = fixed_camera_optical_pose(model, scene.overhead_camera)
    # MUJOCO_TO_OPTICAL is its own inverse: back to MuJoCo's camera axes, then Gazebo's.
    camera_pose = pose_text(camera_position,
                            optical @ MUJOCO_TO_OPTICAL @ MUJOCO_TO_GAZEBO_CAMERA)
    spawn = 2 * config.scene.spawn_half_xy_m
    cx, cy = config.scene.workspace_center_xy_m
    top = config.scene.table_top_z_m
    lines = [
        '<?xml version="1.0"?>',
        "<!-- Generated by `graspq gazebo` from the MuJoCo scene (graspq.sim.gazebo_world);",
        "     do not edit. The robot is spawned from graspq_bringup's",
        "     urdf/graspq_baxter_gazebo.urdf; objects by the Gazebo driver. -->",
        f'<sdf version="{SDF_VERSION}">',
        f"  <world name={quoteattr(WORLD_NAME)}>",
        '    <physics name="graspq_step" type="ignored">',
        f"      <max_step_size>{config.physics.timestep_s:.9g}</max_step_size>",
        "      <real_time_factor>1</real_time_factor>",
        "    </physics>",
        f"    <gravity>{' '.join(f'{v:.9g}' for v in model.opt.gravity)}</gravity>",
        '    <plugin filename="gz-sim-physics-system" name="gz::sim::systems::Physics"/>',
        '    <plugin filename="gz-sim-user-commands-system" '
        'name="gz::sim::systems::UserCommands"/>',
        '    <plugin filename="gz-sim-scene-broadcaster-system" '
        'name="gz::sim::systems::SceneBroadcaster"/>',
        '    <plugin filename="gz-sim-contact-system" name="gz::sim::systems::Contact"/>',
        '    <plugin filename="gz-sim-sensors-system" name="gz::sim::systems::Sensors">',
        "      <render_engine>ogre2</render_engine>",
        "    </plugin>",
        '    <light type="directional" name="ceiling">',
        "      <pose>0.6 -0.3 1.5 0 0 0</pose>",
        "      <cast_shadows>false</cast_shadows>",
        "      <diffuse>0.8 0.8 0.8 1</diffuse>",
        "      <direction>0 0 -1</direction>",
        "    </light>",
        '    <model name="floor">',
        "      <static>true</static>",
        f"      <pose>0 0 {floor_z:.9g} 0 0 0</pose>",
        '      <link name="floor">',
        '        <collision name="floor_collision"><geometry><plane><normal>0 0 1</normal>'
        "<size>6 6</size></plane></geometry></collision>",
        '        <visual name="floor_visual"><geometry><plane><normal>0 0 1</normal>'
        "<size>6 6</size></plane></geometry></visual>",
        "      </link>",
        "    </model>",
        '    <model name="table">',
        "      <static>true</static>",
        f"      <pose>{table_pose}</pose>",
        '      <link name="table_top">',
        '        <collision name="table_top_collision">',
        f"          <geometry><box><size>{' '.join(f'{v:.9g}' for v in table_size)}</size>"
        "</box></geometry>",
        "          <surface><friction><ode>"
        f"<mu>{model.geom_friction[table][0]:.6g}</mu>"
        f"<mu2>{model.geom_friction[table][0]:.6g}</mu2></ode></friction></surface>",
        "        </collision>",
        '        <visual name="table_top_visual">',
        f"          <geometry><box><size>{' '.join(f'{v:.9g}' for v in table_size)}</size>"
        "</box></geometry>",
        "          <material><diffuse>0.55 0.45 0.35 1</diffuse></material>",
        "        </visual>",
        "      </link>",
        "    </model>",
        '    <model name="spawn_area">',
        "      <static>true</static>",
        f"      <pose>{cx:.9g} {cy:.9g} {top + 0.0005:.9g} 0 0 0</pose>",
        '      <link name="spawn_area">',
        '        <visual name="spawn_area">',
        f"          <geometry><box><size>{spawn:.9g} {spawn:.9g} 0.001</size></box></geometry>",
        "          <material><diffuse>0.5 0.4 0.3 1</diffuse></material>",
        "        </visual>",
        "      </link>",
        "    </model>",
        '    <model name="overhead_camera">',
        "      <static>true</static>",
        f"      <pose>{camera_pose}</pose>",
        '      <link name="overhead_camera">',
        '        <sensor name="overhead" type="rgbd_camera">',
        *_image_block(config.camera.image_size, config.camera.overhead_fovy_deg,
                      OVERHEAD_OPTICAL_FRAME),
        "          <always_on>true</always_on>",
        f"          <update_rate>{rate_hz:.9g}</update_rate>",
        f"          <topic>{OVERHEAD_GZ_TOPIC}</topic>",
        "        </sensor>",
        "      </link>",
        "    </model>",
        "  </world>",
        "</sdf>",
    ]
    return "\n".join(lines) + "\n"


def _plugin(filename: str, name: str, body: list[str]) -> list[str]:
    return [f"    <plugin filename={quoteattr(filename)} name={quoteattr(name)}>",
            *(f"      {line}" for line in body), "    </plugin>"]


def collision_name_in_sdf(link: str, collision: str) -> str:
    """The name sdformat gives a URDF link's (first) named collision when it converts the URDF
    (checked against ``ign sdf -p`` by the tests)."""
    return f"{link}_fixed_joint_lump__{collision}_collision"


def gazebo_extensions(config: EnvConfig, home_joints: np.ndarray,
                      rate_hz: float = 30.0) -> tuple[str, ...]:
    """The ``<gazebo>`` blocks of the Gazebo URDF: controllers, joint states, wrist camera,
    finger contact sensors."""
    scene = build_scene(config)
    model = scene.model
    lines = ["  <gazebo>"]
    starts = [*(float(v) for v in home_joints), FINGER_STROKE_M, FINGER_STROKE_M]
    for joint, start in zip((*ARM_JOINTS, *FINGER_JOINTS), starts, strict=True):
        cap = ARM_SPEED_RAD_S if joint in ARM_JOINTS else FINGER_SPEED_M_S
        lines += _plugin("gz-sim-joint-position-controller-system",
                         "gz::sim::systems::JointPositionController", [
                             f"<joint_name>{joint}</joint_name>",
                             f"<topic>{joint_command_gz_topic(joint)}</topic>",
                             "<use_velocity_commands>true</use_velocity_commands>",
                             f"<p_gain>{CONTROLLER_P_GAIN}</p_gain>",
                             f"<cmd_max>{cap}</cmd_max>", f"<cmd_min>{-cap}</cmd_min>",
                             f"<initial_position>{start:.9g}</initial_position>"])
    lines += _plugin("gz-sim-joint-state-publisher-system",
                     "gz::sim::systems::JointStatePublisher",
                     [f"<joint_name>{joint}</joint_name>"
                      for joint in (*ARM_JOINTS, *FINGER_JOINTS)])
    lines.append("  </gazebo>")
    wrist = scene.wrist_camera
    wrist_link = model.body(int(model.cam_bodyid[wrist])).name
    wrist_pose = pose_text(model.cam_pos[wrist],
                           quat_matrix(model.cam_quat[wrist]) @ MUJOCO_TO_GAZEBO_CAMERA)
    lines += [f"  <gazebo reference={quoteattr(wrist_link)}>",
              '    <sensor name="wrist_camera" type="camera">',
              f"      <pose>{wrist_pose}</pose>",
              *(line[2:] for line in _image_block(config.camera.image_size,
                                                  config.camera.wrist_fovy_deg,
                                                  WRIST_OPTICAL_FRAME)),
              "      <always_on>true</always_on>",
              f"      <update_rate>{rate_hz:.9g}</update_rate>",
              f"      <topic>{WRIST_GZ_TOPIC}</topic>",
              "    </sensor>",
              "  </gazebo>"]
    for pad in FINGER_GEOMS:
        link = model.body(int(model.geom_bodyid[model.geom(pad).id])).name
        lines += [f"  <gazebo reference={quoteattr(link)}>",
                  f'    <sensor name="{pad}_contact" type="contact">',
                  "      <contact>",
                  f"        <collision>{collision_name_in_sdf(link, pad)}</collision>",
                  f"        <topic>{contact_gz_topic(pad)}</topic>",
                  "      </contact>",
                  "      <always_on>true</always_on>",
                  f"      <update_rate>{CONTACT_RATE_HZ}</update_rate>",
                  "    </sensor>",
                  "  </gazebo>"]
    return tuple(lines)


def gazebo_robot_urdf(config: EnvConfig | None = None) -> str:
    """The URDF that Gazebo spawns (see the module docstring)."""
    from graspq.sim.env import BaxterGraspEnv

    config = config if config is not None else EnvConfig()
    env = BaxterGraspEnv(config)
    try:
        home = env.home_joints
    finally:
        env.close()
    return robot_urdf(config, physical=True, extensions=gazebo_extensions(config, home))


def bridge_entries() -> list[dict[str, str]]:
    """ros_gz_bridge YAML entries: Gazebo's topics onto the robot interface's names and
    types, and the Gazebo driver's own topics."""
    overhead = f"/{OVERHEAD_GZ_TOPIC}"
    image, info = "sensor_msgs/msg/Image", "sensor_msgs/msg/CameraInfo"

    def entry(ros: str, gz: str, ros_type: str, gz_type: str, direction: str) -> dict:
        return {"ros_topic_name": ros, "gz_topic_name": gz, "ros_type_name": ros_type,
                "gz_type_name": gz_type, "direction": direction}

    entries = [
        entry("/clock", "/clock", "rosgraph_msgs/msg/Clock", "gz.msgs.Clock", "GZ_TO_ROS"),
        entry("overhead/color/image_raw", f"{overhead}/image", image, "gz.msgs.Image",
              "GZ_TO_ROS"),
        entry("overhead/color/camera_info", f"{overhead}/camera_info", info,
              "gz.msgs.CameraInfo", "GZ_TO_ROS"),
        entry("overhead/aligned_depth_to_color/image_raw", f"{overhead}/depth_image", image,
              "gz.msgs.Image", "GZ_TO_ROS"),
        entry("overhead/aligned_depth_to_color/camera_info", f"{overhead}/camera_info", info,
              "gz.msgs.CameraInfo", "GZ_TO_ROS"),
        entry("wrist/color/image_raw", f"/{WRIST_GZ_TOPIC}", image, "gz.msgs.Image",
              "GZ_TO_ROS"),
        entry("wrist/color/camera_info", f"/{WRIST_GZ_INFO_TOPIC}", info,
              "gz.msgs.CameraInfo", "GZ_TO_ROS"),
        entry("joint_states", JOINT_STATE_GZ_TOPIC, "sensor_msgs/msg/JointState",
              "gz.msgs.Model", "GZ_TO_ROS"),
        entry(OBJECT_POSE_ROS_TOPIC, OBJECT_POSE_GZ_TOPIC, "tf2_msgs/msg/TFMessage",
              "gz.msgs.Pose_V", "GZ_TO_ROS"),
    ]
    entries += [entry(joint_command_ros_topic(joint), joint_command_gz_topic(joint),
                      "std_msgs/msg/Float64", "gz.msgs.Double", "ROS_TO_GZ")
                for joint in (*ARM_JOINTS, *FINGER_JOINTS)]
    entries += [entry(contact_ros_topic(pad), contact_gz_topic(pad),
                      "ros_gz_interfaces/msg/Contacts", "gz.msgs.Contacts", "GZ_TO_ROS")
                for pad in FINGER_GEOMS]
    return entries


def bridge_yaml() -> str:
    header = ("# Generated by `graspq gazebo` (graspq.sim.gazebo_world); do not edit.\n"
              "# ros_gz_bridge topics of the GraspQ world. The services (create, remove,\n"
              "# set_pose, control) go on parameter_bridge's command line\n"
              "# (launch/gazebo.launch.py).\n")
    return header + yaml.safe_dump(bridge_entries(), sort_keys=False)


def object_geometry(spec: ObjectSpec) -> str:
    """The SDF ``<geometry>`` content of ``spec``'s shape, every type the MuJoCo scene draws
    (held-out ones included: SDF 1.9 has box, sphere, cylinder, capsule and ellipsoid). A
    lying shape's axis is SDF's z, turned onto the object's x by :func:`object_shape_pose`."""
    a, b, c = spec.half_size
    geom = check_object_type(spec.kind).geom
    if geom == "box":
        return f"<box><size>{2 * a:.9g} {2 * b:.9g} {2 * c:.9g}</size></box>"
    if geom == "sphere":
        return f"<sphere><radius>{a:.9g}</radius></sphere>"
    if geom == "ellipsoid":
        return f"<ellipsoid><radii>{a:.9g} {b:.9g} {c:.9g}</radii></ellipsoid>"
    if not spec.shape.lying:  # upright cylinder: radius a, half height c
        return f"<cylinder><radius>{a:.9g}</radius><length>{2 * c:.9g}</length></cylinder>"
    if geom == "cylinder":  # lying: half length a, radius b
        return f"<cylinder><radius>{b:.9g}</radius><length>{2 * a:.9g}</length></cylinder>"
    # lying capsule: SDF's length is the cylindrical part's, between the two hemispheres
    return f"<capsule><radius>{b:.9g}</radius><length>{2 * (a - b):.9g}</length></capsule>"


def object_shape_pose(spec: ObjectSpec) -> str:
    """The collision's and visual's ``<pose>`` in the object's link: a lying shape's axis (SDF
    cylinders and capsules run along z) turned onto x, a quarter turn about y; else none."""
    return f"<pose>0 0 0 0 {math.pi / 2:.9g} 0</pose>" if spec.shape.lying else ""


def object_sdf(spec: ObjectSpec) -> str:
    """An episode's object as an SDF model, spawned at its pose by the Gazebo driver (its
    pose comes back on the world's dynamic poses, for the judge)."""
    ixx, iyy, izz = object_inertia(spec)
    rgba = " ".join(f"{v:.4g}" for v in spec.rgba)
    mu = f"{spec.friction:.6g}"
    return "\n".join([
        f'<sdf version="{SDF_VERSION}">',
        f"  <model name={quoteattr(OBJECT_MODEL)}>",
        '    <link name="body">',
        "      <inertial>",
        f"        <mass>{spec.mass_kg:.9g}</mass>",
        f"        <inertia><ixx>{ixx:.9g}</ixx><iyy>{iyy:.9g}</iyy><izz>{izz:.9g}</izz>"
        "<ixy>0</ixy><ixz>0</ixz><iyz>0</iyz></inertia>",
        "      </inertial>",
        f'      <collision name="{spec.kind}_collision">{object_shape_pose(spec)}',
        f"        <geometry>{object_geometry(spec)}</geometry>",
        f"        <surface><friction><ode><mu>{mu}</mu><mu2>{mu}</mu2></ode></friction>"
        "</surface>",
        "      </collision>",
        f'      <visual name="{spec.kind}_visual">{object_shape_pose(spec)}',
        f"        <geometry>{object_geometry(spec)}</geometry>",
        f"        <material><diffuse>{rgba}</diffuse><ambient>{rgba}</ambient></material>",
        "      </visual>",
        "    </link>",
        "  </model>",
        "</sdf>",
    ]) + "\n"


def object_spawn_height(spec: ObjectSpec, config: EnvConfig) -> float:
    """Where the object's centre goes at spawn: resting on the table, as the scene puts it."""
    return config.scene.table_top_z_m + spec.half_height
