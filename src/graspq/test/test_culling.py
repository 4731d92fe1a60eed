"""The cameras leave out only geoms they cannot show (graspq.sim.culling): culled images are
the full scene's, pixel for pixel, wherever the arm goes."""

import dataclasses

import numpy as np
import pytest

from graspq.actions import Action
from graspq.sim.cameras import CameraRig
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import EnvConfig

A = Action
# Up to the top of the workspace (where the wrist camera sees farthest), round its corners,
# turned both ways, then down at a corner: the floor shows past the table's edge on the way.
TOUR = (*[A.PLUS_Z] * 10, *[A.MINUS_X] * 13, *[A.PLUS_Y] * 13, *[A.PLUS_X] * 26,
        *[A.MINUS_Y] * 26, *[A.PLUS_YAW] * 6, *[A.MINUS_X] * 26, *[A.MINUS_YAW] * 12,
        *[A.MINUS_Z] * 24)


@pytest.fixture(scope="module")
def full_rig(env):
    rig = CameraRig(env.scene, env.config.camera.image_size, cull=False)
    yield rig
    rig.close()


def _assert_same_images(env, full_rig):
    culled, full = env.cameras.render(env.data), full_rig.render(env.data)
    for key in full:
        np.testing.assert_array_equal(culled[key], full[key], err_msg=key)


def test_culled_images_are_the_full_scenes_along_a_tour_of_the_workspace(env, full_rig):
    culling = env.cameras._culling
    floor = env.scene.floor_geom
    floor_hidden_from_wrist = set()
    for seed, kind in ((0, "cube"), (1, "cylinder")):
        env.reset(seed=seed, options={"object": kind})
        _assert_same_images(env, full_rig)
        for action in TOUR:
            env.step(action)
            _assert_same_images(env, full_rig)
            floor_hidden_from_wrist.add(bool(
                culling.hidden(env.data, env.scene.wrist_camera, 1.0)[floor]))
        env.step(A.CLOSE)
        _assert_same_images(env, full_rig)
    assert floor_hidden_from_wrist == {True, False}, "the tour must see the floor and not"


def test_what_the_overhead_camera_leaves_out(env):
    env.reset(seed=0, options={"object": "sphere"})
    hidden = env.cameras._culling.hidden(env.data, env.scene.overhead_camera, 1.0)
    objects = env.scene.objects
    assert hidden[env.scene.floor_geom]  # behind the table
    assert hidden[objects["cube"].geom_id] and hidden[objects["cylinder"].geom_id]  # parked
    assert not hidden[objects["sphere"].geom_id]
    assert not hidden[env.scene.table_geom]
    assert not hidden[sorted(env.scene.finger_geoms)[0]]


def test_the_floor_is_drawn_where_it_shows():
    # A table smaller than the overhead view: the floor shows around it.
    small = dataclasses.replace(EnvConfig().scene, table_half_size_xy_m=(0.12, 0.12),
                                table_center_xy_m=(0.68, -0.45))
    env = BaxterGraspEnv(dataclasses.replace(EnvConfig(), scene=small))
    full = CameraRig(env.scene, env.config.camera.image_size, cull=False)
    try:
        observation, _ = env.reset(seed=0)
        assert not env.cameras._culling.hidden(env.data, env.scene.overhead_camera,
                                               1.0)[env.scene.floor_geom]
        depth = observation["overhead_rgbd"][..., 3]
        assert depth.max() > env.config.camera.overhead_distance_m + 0.5  # floor pixels
        _assert_same_images(env, full)
    finally:
        full.close()
        env.close()


def test_rendering_leaves_the_models_geom_groups_as_they_were(env):
    env.reset(seed=0)
    before = env.model.geom_group.copy()
    env.cameras.render(env.data)
    np.testing.assert_array_equal(env.model.geom_group, before)

