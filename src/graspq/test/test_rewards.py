"""The parameterised reward of the paper (Sec. IV-D)."""

import pytest

from graspq.rewards import Outcome, RewardConfig, step_reward

CONFIG = RewardConfig(success=7.0, partial=2.0, not_executed=-3.0, step=-0.5)


@pytest.mark.parametrize(("executed", "outcome", "expected"), [
    (True, Outcome.RUNNING, -0.5),
    (False, Outcome.RUNNING, -3.5),
    (True, Outcome.TIMEOUT, -0.5),
    (True, Outcome.SUCCESS, 7.0),
    (True, Outcome.PARTIAL, 2.0),
    (True, Outcome.MISS, 0.0),
])
def test_step_reward_terms(executed, outcome, expected):
    terms = step_reward(CONFIG, executed, outcome)
    assert terms.total == pytest.approx(expected)
    assert sum(terms.as_dict().values()) == pytest.approx(terms.total)


def test_defaults_are_the_papers():
    assert RewardConfig() == RewardConfig(success=10.0, partial=1.0, not_executed=-1.0,
                                          step=-0.025)
