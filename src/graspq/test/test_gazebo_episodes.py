"""The Gazebo driver's episodes: the MuJoCo scene's object for a seed, and the scene's judge
on what Gazebo reports (finger joints, object pose, pad contacts)."""

import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from graspq.drivers.gazebo import GazeboEpisodes, quaternion_matrix
from graspq.rewards import Outcome
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.gazebo_world import OBJECT_MODEL
from graspq.sim.settings import EnvConfig

PAD = "graspq_baxter::right_gripper_l_finger::right_gripper_l_finger_fixed_joint_lump__" \
      "l_finger_pad_collision"


@pytest.fixture(scope="module")
def env():
    env = BaxterGraspEnv(EnvConfig(max_steps=4))
    yield env
    env.close()


def test_an_episode_spawns_the_object_the_mujoco_scene_draws_for_the_seed(env):
    episodes = GazeboEpisodes(env.config)
    for seed in (0, 1, 7, 123):
        _, info = env.reset(seed=seed)
        spawn = episodes.draw(seed)
        assert episodes.spec == info["object_spec"]
        assert spawn.name == OBJECT_MODEL
        assert ET.fromstring(spawn.sdf).find("model").get("name") == OBJECT_MODEL
        # Resting on the table where the scene puts it (and where it settled, within 1 mm),
        # turned by its yaw about z.
        spec = info["object_spec"]
        assert spawn.position[:2] == (spec.x, spec.y)
        assert np.allclose(spawn.position, env.object_position(), atol=1e-3)
        rotation = quaternion_matrix(*spawn.quaternion)
        yaw = info["object_spec"].yaw
        assert np.allclose(rotation[:2, 0], [np.cos(yaw), np.sin(yaw)])
    spawn = episodes.draw(5, kind="cylinder", pose=(0.7, -0.4, 0.3))
    assert episodes.spec.kind == "cylinder"
    assert spawn.position[:2] == (0.7, -0.4)


def _pose_of_object(env):
    body = env.scene.objects[env.object_spec.kind].body_id
    return env.data.xpos[body].copy(), env.data.xmat[body].reshape(3, 3).copy()


@pytest.mark.parametrize("lift_m, fingers_m, touched, expected", [
    (0.0, 0.0, False, Outcome.MISS),
    (0.0, 0.012, True, Outcome.PARTIAL),
    (0.10, 0.012, True, Outcome.SUCCESS),
    (0.10, 0.0, True, Outcome.PARTIAL),  # lifted but the gripper is fully closed
    (0.03, 0.012, True, Outcome.PARTIAL),  # held but not high enough
])
def test_the_judge_is_the_mujoco_scenes_on_the_same_state(env, lift_m, fingers_m, touched,
                                                         expected):
    """Put the MuJoCo scene in a state, judge it there and from what Gazebo would report."""
    for seed in (3, 4, 5):  # a cube, a sphere, a cylinder or so, turned by their yaw
        env.reset(seed=seed)
        kind = env.object_spec.kind
        adr = env.scene.objects[kind].qpos_adr
        env.data.qpos[adr + 2] += lift_m
        env.data.qpos[env.scene.finger_qpos_adr] = fingers_m
        mujoco.mj_forward(env.model, env.data)
        episodes = GazeboEpisodes(env.config)
        episodes.draw(seed)
        episodes.start_watching()
        if touched:
            assert episodes.note_contact(PAD, f"{OBJECT_MODEL}::body::{kind}_collision")
        position, rotation = _pose_of_object(env)
        outcome = episodes.judge((fingers_m, fingers_m), position, rotation)
        assert outcome == env.judge_grasp(touched) == expected


def test_only_a_pad_on_the_object_counts_as_touching():
    episodes = GazeboEpisodes(EnvConfig())
    episodes.draw(0)
    episodes.start_watching()
    assert not episodes.note_contact(PAD, "table::table_top::table_top_collision")
    assert not episodes.note_contact("graspq_baxter::right_wrist::right_wrist_10_collision",
                                     f"{OBJECT_MODEL}::body::cube_collision")
    assert episodes.note_contact(f"{OBJECT_MODEL}::body::cube_collision", PAD)


def test_judging_before_any_episode_or_with_a_bad_pose_is_refused():
    episodes = GazeboEpisodes(EnvConfig())
    with pytest.raises(ValueError, match="reset"):
        episodes.judge((0.01, 0.01), np.zeros(3), np.eye(3))
    with pytest.raises(ValueError, match="quaternion"):
        quaternion_matrix(0.0, 0.0, 0.0, 0.0)
