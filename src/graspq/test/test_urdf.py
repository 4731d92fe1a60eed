"""graspq.sim.urdf: the URDF that robot_state_publisher and rviz2 use is the simulated arm.
Its forward kinematics (composed here from the parsed file) puts the fingertip, the fingers
and the cameras where MuJoCo puts them, and the committed file is the generator's output."""

import math
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import mujoco
import numpy as np
import pytest

from graspq.sim.cameras import MUJOCO_TO_OPTICAL
from graspq.sim.scene import ARM_JOINTS, FINGER_JOINTS, build_scene
from graspq.sim.settings import EnvConfig
from graspq.sim.urdf import OVERHEAD_OPTICAL_FRAME, TIP_LINK, WRIST_OPTICAL_FRAME, robot_urdf

COMMITTED = Path(__file__).resolve().parents[2] / "graspq_bringup" / "urdf" / "graspq_baxter.urdf"


def _rpy_matrix(roll, pitch, yaw):
    cr, sr, cp, sp, cy, sy = (math.cos(roll), math.sin(roll), math.cos(pitch),
                              math.sin(pitch), math.cos(yaw), math.sin(yaw))
    rx = np.array([[1, 0, 0], [0, cr, -sr], [0, sr, cr]])
    ry = np.array([[cp, 0, sp], [0, 1, 0], [-sp, 0, cp]])
    rz = np.array([[cy, -sy, 0], [sy, cy, 0], [0, 0, 1]])
    return rz @ ry @ rx


def _axis_rotation(axis, angle):
    axis = np.asarray(axis) / np.linalg.norm(axis)
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def _link_poses(urdf_text, positions):
    """Pose (R, p) of every link in the root frame for joint ``positions`` (by name)."""
    root = ET.fromstring(urdf_text)
    joints = {j.find("child").get("link"): j for j in root.findall("joint")}
    poses = {}

    def pose(link):
        if link in poses:
            return poses[link]
        joint = joints.get(link)
        if joint is None:
            poses[link] = (np.eye(3), np.zeros(3))
            return poses[link]
        parent_r, parent_p = pose(joint.find("parent").get("link"))
        origin = joint.find("origin")
        xyz = np.array([float(v) for v in origin.get("xyz").split()])
        r = parent_r @ _rpy_matrix(*[float(v) for v in origin.get("rpy").split()])
        p = parent_p + parent_r @ xyz
        q = positions.get(joint.get("name"), 0.0)
        axis_el = joint.find("axis")
        if joint.get("type") == "revolute":
            r = r @ _axis_rotation([float(v) for v in axis_el.get("xyz").split()], q)
        elif joint.get("type") == "prismatic":
            p = p + r @ (q * np.array([float(v) for v in axis_el.get("xyz").split()]))
        poses[link] = (r, p)
        return poses[link]

    for link in joints:
        pose(link)
    return poses


def test_urdf_forward_kinematics_match_mujoco():
    scene = build_scene(EnvConfig())
    model, data = scene.model, mujoco.MjData(scene.model)
    text = robot_urdf()
    rng = np.random.default_rng(0)
    for _ in range(5):
        arm = rng.uniform(scene.arm_range[:, 0], scene.arm_range[:, 1])
        fingers = rng.uniform(0.0, 0.02, 2)
        data.qpos[scene.arm_qpos_adr] = arm
        data.qpos[scene.finger_qpos_adr] = fingers
        mujoco.mj_forward(model, data)
        positions = dict(zip(ARM_JOINTS + FINGER_JOINTS, [*arm, *fingers], strict=True))
        poses = _link_poses(text, positions)
        tip_r, tip_p = poses[TIP_LINK]
        assert np.allclose(tip_p, data.site_xpos[scene.tcp_site], atol=1e-6)
        assert np.allclose(tip_r, data.site_xmat[scene.tcp_site].reshape(3, 3), atol=1e-6)
        for body in ("right_gripper_l_finger", "right_gripper_r_finger"):
            assert np.allclose(poses[body][1], data.xpos[model.body(body).id], atol=1e-6)
        for camera, frame in ((scene.wrist_camera, WRIST_OPTICAL_FRAME),
                              (scene.overhead_camera, OVERHEAD_OPTICAL_FRAME)):
            r, p = poses[frame]
            assert np.allclose(p, data.cam_xpos[camera], atol=1e-6)
            assert np.allclose(r, data.cam_xmat[camera].reshape(3, 3) @ MUJOCO_TO_OPTICAL,
                               atol=1e-6)


def test_joint_limits_in_the_urdf_are_the_simulated_ones():
    scene = build_scene(EnvConfig())
    root = ET.fromstring(robot_urdf())
    limits = {j.get("name"): j.find("limit") for j in root.findall("joint")
              if j.find("limit") is not None}
    for name, (low, high) in zip(ARM_JOINTS, scene.arm_range, strict=True):
        assert float(limits[name].get("lower")) == pytest.approx(low)
        assert float(limits[name].get("upper")) == pytest.approx(high)


def test_committed_urdf_is_the_generated_one():
    assert COMMITTED.read_text() == robot_urdf(), (
        "src/graspq_bringup/urdf/graspq_baxter.urdf is stale: regenerate it with "
        "`graspq urdf --out src/graspq_bringup/urdf/graspq_baxter.urdf`")


@pytest.mark.skipif(shutil.which("check_urdf") is None,
                    reason="check_urdf missing (Debian liburdfdom-tools)")
def test_check_urdf_accepts_it():
    result = subprocess.run(["check_urdf", str(COMMITTED)], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Successfully Parsed XML" in result.stdout
