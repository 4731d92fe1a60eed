"""Held-out object types (issue #22, part 4): drawn within their config ranges, placed at rest
on the table with the right lowest point, picked by the oracle, carried by the training types'
bodies without changing the training scene, spawnable in Gazebo, and run by `graspq eval`."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import mujoco
import numpy as np
import pytest

from graspq.config import ConfigError, validate
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.observation import MOTOR_KEY, OVERHEAD_KEY, WRIST_KEY
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.gazebo_world import object_sdf, object_spawn_height
from graspq.sim.objects import draw_object, lowest_point, lowest_point_z
from graspq.sim.oracle import OraclePolicy
from graspq.sim.rollout import make_policy, run_episodes
from graspq.sim.scene import SHAPES
from graspq.sim.settings import (
    ALL_OBJECT_TYPES,
    HELDOUT_OBJECT_TYPES,
    OBJECT_TYPES,
    TRAINING_OBJECT_TYPES,
    CameraConfig,
    EnvConfig,
    ObjectConfig,
)

OBJECTS = ObjectConfig()


def _ranges(kind: str) -> tuple[tuple[float, float], ...]:
    """The config ranges of ``kind`` (m), in the order of ``ObjectSpec.half_size`` x, y, z."""
    o = OBJECTS
    if kind.startswith("cube"):
        side = getattr(o, f"{kind}_side_m")
        return side, side, side
    if kind.startswith("sphere"):
        return (getattr(o, f"{kind}_diameter_m"),)
    if kind.startswith("cylinder"):
        diameter = getattr(o, f"{kind}_diameter_m")
        return diameter, diameter, getattr(o, f"{kind}_height_m")
    if kind == "box":
        return o.box_long_side_m, o.box_narrow_side_m, o.box_height_m
    if kind == "ellipsoid":
        return o.ellipsoid_length_m, o.ellipsoid_width_m, o.ellipsoid_height_m
    diameter = getattr(o, f"{kind}_diameter_m")
    return getattr(o, f"{kind}_length_m"), diameter, diameter


def test_type_tuples_keep_the_training_types_apart():
    assert OBJECT_TYPES == TRAINING_OBJECT_TYPES == ("cube", "sphere", "cylinder")
    assert ObjectConfig().types == TRAINING_OBJECT_TYPES  # what training draws from
    assert set(HELDOUT_OBJECT_TYPES) >= {"box", "capsule", "ellipsoid", "lying_cylinder",
                                         "cube_small", "cube_large", "sphere_small",
                                         "sphere_large", "cylinder_small", "cylinder_large"}
    assert tuple(SHAPES) == ALL_OBJECT_TYPES == TRAINING_OBJECT_TYPES + HELDOUT_OBJECT_TYPES
    assert ObjectConfig(types=("box", "cube")).types == ("box", "cube")


@pytest.mark.parametrize("kind", HELDOUT_OBJECT_TYPES)
def test_drawn_sizes_lie_in_the_config_ranges(kind):
    rng = np.random.default_rng(3)
    for _ in range(50):
        spec = draw_object(EnvConfig(), rng, kind)
        assert spec.kind == kind
        for half, (low, high) in zip(spec.half_size, _ranges(kind), strict=False):
            assert low - 1e-12 <= 2 * half <= high + 1e-12
        if kind == "box":
            assert spec.half_size[0] >= 1.5 * spec.half_size[1]  # long side along x
        # The gripper (47.7 mm open, 8 mm reads as closed) can close across it.
        assert 0.008 < spec.width < 0.040


def test_scaled_training_shapes_lie_outside_the_training_ranges():
    o = OBJECTS
    for shape in ("cube_side_m", "sphere_diameter_m", "cylinder_diameter_m"):
        base = shape.split("_")[0]
        small, large = (getattr(o, shape.replace(base, f"{base}_{size}"))
                        for size in ("small", "large"))
        assert small[1] < getattr(o, shape)[0] and large[0] > getattr(o, shape)[1]
    assert o.cylinder_small_height_m[1] < o.cylinder_height_m[0]
    assert o.cylinder_large_height_m[0] > o.cylinder_height_m[1]


def test_a_box_must_not_be_a_cube():
    with pytest.raises(ConfigError, match="box_long_side_m"):
        ObjectConfig(box_narrow_side_m=(0.02, 0.03), box_long_side_m=(0.04, 0.06))


def test_an_unknown_type_is_refused_naming_the_known_ones():
    with pytest.raises(ValueError, match="lying_cylinder"):
        draw_object(EnvConfig(), np.random.default_rng(0), "pyramid")
    with pytest.raises(ConfigError, match="pyramid"):
        validate(ObjectConfig(types=("pyramid",)), "objects.")
    validate(ObjectConfig(types=ALL_OBJECT_TYPES), "objects.")  # every type is a choice


def _kinds(weights, draws, seed=5):
    config = dataclasses.replace(EnvConfig(), objects=dataclasses.replace(
        EnvConfig().objects, type_weights=weights))
    rng = np.random.default_rng(seed)
    return [draw_object(config, rng).kind for _ in range(draws)]


def test_type_weights_set_how_often_each_type_is_drawn():
    # Equal weights, one or one per type, draw the very objects the default draws.
    assert _kinds((1.0, 1.0, 1.0), 60) == _kinds((1.0,), 60) == _kinds((3.0,), 60)
    kinds = _kinds((6.0, 1.0, 1.0), 2000)
    assert kinds.count("cube") / 2000 == pytest.approx(0.75, abs=0.04)
    assert kinds.count("sphere") / 2000 == pytest.approx(0.125, abs=0.03)
    with pytest.raises(ConfigError, match="objects.type_weights"):
        ObjectConfig(type_weights=(2.0, 1.0))
    with pytest.raises(ConfigError, match="type_weights"):
        validate(ObjectConfig(type_weights=(1.0, 0.0, 1.0)), "objects.")


@pytest.mark.parametrize("kind", HELDOUT_OBJECT_TYPES)
def test_placed_at_rest_on_the_table_with_the_right_lowest_point(env, kind):
    env.reset(seed=11, options={"object": kind})
    spec, table = env.object_spec, env.config.scene.table_top_z_m
    body = env.scene.objects[kind].body_id
    mujoco.mj_step(env.model, env.data, nstep=250)  # half a second more: still at rest
    rotation = env.data.xmat[body].reshape(3, 3)
    centre = env.object_position()
    assert abs(lowest_point_z(env.scene, env.data, kind) - table) < 1e-3
    # The Gazebo judge's version, from the body pose and the spec, agrees.
    assert lowest_point(kind, spec.half_size, centre[2], rotation) == pytest.approx(
        lowest_point_z(env.scene, env.data, kind), abs=1e-6)
    assert centre[2] - table == pytest.approx(spec.half_height, abs=1e-3)
    assert np.hypot(*(centre[:2] - (spec.x, spec.y))) < 2e-3
    assert np.linalg.norm(env.data.cvel[body]) < 0.02  # not rolling or rocking
    assert rotation[2, 2] > 0.999  # upright as placed (a lying shape lies by its geom)
    # The geom is the shape asked for, and the fingers can close across its y side.
    geom = env.scene.objects[kind].geom_id
    assert mujoco.mjtGeom(env.model.geom_type[geom]).name.lower() == \
        f"mjgeom_{SHAPES[kind].geom}"


def test_parked_bodies_neither_collide_nor_show(env):
    env.reset(seed=4, options={"object": "ellipsoid"})  # on the sphere's body
    model, table = env.model, env.config.scene.table_top_z_m
    for handle in env.scene.bodies:
        if handle.name == "sphere":
            continue
        assert model.geom_contype[handle.geom_id] == model.geom_conaffinity[handle.geom_id] == 0
        assert env.data.xpos[handle.body_id][2] < table - 0.5  # under the table, out of view
    assert all(a != env.scene.objects["cube"].geom_id and b != env.scene.objects["cube"].geom_id
               for a, b in env.data.contact.geom[:env.data.ncon])


def test_a_held_out_episode_leaves_the_training_scene_as_it_was():
    """The same training episode, from a fresh scene and after held-out shapes have reshaped
    the bodies: the same images and state."""
    fresh, used = BaxterGraspEnv(), BaxterGraspEnv()
    try:
        for kind in ("capsule", "ellipsoid", "box"):
            used.reset(seed=1, options={"object": kind})
            used.step(0)
        for kind in TRAINING_OBJECT_TYPES:
            a, _ = fresh.reset(seed=101, options={"object": kind})
            b, _ = used.reset(seed=101, options={"object": kind})
            for _ in range(3):
                for key in (OVERHEAD_KEY, WRIST_KEY, MOTOR_KEY):
                    np.testing.assert_array_equal(a[key], b[key], err_msg=f"{kind} {key}")
                np.testing.assert_array_equal(fresh.data.qpos, used.data.qpos)
                a, *_ = fresh.step(5)
                b, *_ = used.step(5)
    finally:
        fresh.close()
        used.close()


@pytest.mark.parametrize(("kind", "seed"), [("box", 0), ("lying_cylinder", 0),
                                            ("cylinder_small", 0)])
def test_the_oracle_picks_held_out_types(env, kind, seed):
    summary = run_episodes(env, make_policy("oracle", env, seed), 3, seed, object_type=kind)
    assert [r.outcome for r in summary.episodes] == ["success"] * 3


def test_the_oracle_turns_elongated_shapes_across_their_narrow_side(env):
    env.reset(seed=0, options={"object": "box", "object_pose": (0.68, -0.45, np.radians(80))})
    oracle = OraclePolicy(env)
    assert oracle.yaw_period() == pytest.approx(np.pi)
    error = oracle.yaw_error()
    assert abs(error) <= np.pi / 2
    # Start tool yaw 150 deg: the box at 80 deg is 70 deg (mod 180) away.
    assert abs(np.degrees(error)) == pytest.approx(70.0, abs=1.0)
    env.reset(seed=0, options={"object": "sphere_large"})
    assert oracle.yaw_period() is None and oracle.yaw_error() == 0.0


@pytest.mark.parametrize("kind", HELDOUT_OBJECT_TYPES)
def test_gazebo_spawns_every_held_out_shape_resting_on_the_table(kind):
    config = EnvConfig()
    spec = draw_object(config, np.random.default_rng(2), kind)
    sdf = ET.fromstring(object_sdf(spec))
    geometry = sdf.find("model/link/collision/geometry")
    assert geometry.find(SHAPES[kind].geom) is not None
    z = object_spawn_height(spec, config)
    rotation = np.array([[np.cos(spec.yaw), -np.sin(spec.yaw), 0.0],
                         [np.sin(spec.yaw), np.cos(spec.yaw), 0.0], [0.0, 0.0, 1.0]])
    assert lowest_point(kind, spec.half_size, z, rotation) == pytest.approx(
        config.scene.table_top_z_m, abs=1e-9)


# ------------------------------------------------------------------------- the CLI
TINY_ENV = dataclasses.replace(EnvConfig(), camera=CameraConfig(image_size=32), max_steps=6)
TINY = TrainingConfig(
    learner="ddqn", episodes=1, seed=5, batch_size=4, replay_capacity=64, learning_starts=4,
    eval_episodes=1, checkpoint_every=1, torch_threads=1,
    network=NetworkConfig(stream_channels=4, joint_channels=4, fc_width=16, motor_width=8))


def _graspq(*args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"))
    return subprocess.run([sys.executable, "-m", "graspq.cli", *args], capture_output=True,
                          text=True, timeout=300, env=env, check=False)


def test_eval_runs_a_checkpoint_and_its_policy_file_on_a_held_out_type(tmp_path, train_run):
    run = train_run(tmp_path / "run", TINY, TINY_ENV)
    policy = tmp_path / "policy.onnx"
    exported = _graspq("export", "--checkpoint", str(run), "--out", str(policy))
    assert exported.returncode == 0, exported.stderr
    for source in (["--checkpoint", str(run)], ["--policy", str(policy)]):
        result = _graspq("eval", *source, "--episodes", "2", "--object", "box", "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)
        assert report["episodes"] == 2 and report["object"] == "box"
        assert set(report["per_object"]) == {"box"}


def test_a_bad_object_name_is_a_clear_error():
    for command in (["eval", "--checkpoint", "nowhere"], ["sim"]):
        result = _graspq(*command, "--object", "pyramid", "--episodes", "1")
        assert result.returncode == 2
        assert "Traceback" not in result.stderr
        assert "pyramid" in result.stderr and "lying_cylinder" in result.stderr


def test_sim_runs_the_oracle_on_a_held_out_type():
    result = _graspq("sim", "--policy", "oracle", "--object", "box", "--episodes", "2",
                     "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["per_object"] == {"box": {"episodes": 2, "success_rate": 1.0}}

