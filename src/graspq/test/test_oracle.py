"""The privileged oracle proves the physics can pick every object type."""

import pytest

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
