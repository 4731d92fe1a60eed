"""The privileged oracle proves the physics can pick every object type."""

import math

import pytest

from graspq.actions import Action
from graspq.sim.oracle import OraclePolicy
from graspq.sim.rollout import make_policy, run_episodes


@pytest.mark.parametrize("kind", ["cube", "sphere", "cylinder"])
def test_oracle_picks_every_object_type(env, kind):
    summary = run_episodes(env, make_policy("oracle", env, 0), 8, seed=500, object_type=kind)
    report = summary.as_dict()
    assert report["per_object"][kind]["success_rate"] == 1.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cube", "sphere", "cylinder"])
def test_oracle_reaches_95_percent_over_200_episodes(env, kind):
    summary = run_episodes(env, make_policy("oracle", env, 0), 200, seed=0, object_type=kind)
    assert summary.as_dict()["per_object"][kind]["success_rate"] >= 0.95


def _cube_with_yaw_to_turn(env, degrees: float) -> OraclePolicy:
    """The env reset with a cube at the workspace centre, ``degrees`` of yaw still to turn."""
    scene = env.config.scene
    cube_yaw = math.radians(scene.start_yaw_deg + degrees)  # the tool starts at start_yaw
    env.reset(seed=0, options={"object": "cube",
                               "object_pose": (*scene.workspace_center_xy_m, cube_yaw)})
    oracle = OraclePolicy(env)
    assert math.degrees(oracle.yaw_error()) == pytest.approx(degrees, abs=1.0)
    return oracle


@pytest.mark.parametrize(("degrees", "turn", "tie"), [
    (41.0, Action.PLUS_YAW, Action.MINUS_YAW),  # three turns either way
    (-41.0, Action.MINUS_YAW, Action.PLUS_YAW),
    (30.0, Action.PLUS_YAW, None),  # two turns this way, three the other
    (-20.0, Action.MINUS_YAW, None),
])
def test_tied_turn_only_where_both_ways_take_as_many_turns(env, degrees, turn, tie):
    oracle = _cube_with_yaw_to_turn(env, degrees)
    assert oracle.tied_turn(turn) == tie
    # The oracle's own direction is the one with the fewest turns.
    own = 1 if turn == Action.PLUS_YAW else -1
    assert oracle.turns_needed(own) <= oracle.turns_needed(-own)
    assert oracle.tied_turn(Action.MINUS_Z) is None  # only a turn can tie


def test_no_tie_without_a_turn_to_make(env):
    oracle = _cube_with_yaw_to_turn(env, 2.0)
    assert oracle.turns_needed(1) == oracle.turns_needed(-1) == 0
    assert oracle.tied_turn(Action.PLUS_YAW) is None
    env.reset(seed=0, options={"object": "sphere"})
    assert OraclePolicy(env).tied_turn(Action.PLUS_YAW) is None
