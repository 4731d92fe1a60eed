"""Tests for graspq.learning.targets against hand-computed values on tiny tensors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from graspq.learning.replay import ReplayBuffer
from graspq.learning.targets import (
    Learner,
    label_balance_weights,
    margin_loss,
    q_of_actions,
    td_loss,
    td_targets,
)

# Two next states, three actions. Sample 0: online argmax is action 1, target argmax action 0,
# so DQN (target max = 4) and DDQN (target at online argmax = 2) differ.
NEXT_Q_ONLINE = torch.tensor([[1.0, 5.0, 2.0], [0.0, 0.0, 3.0]])
NEXT_Q_TARGET = torch.tensor([[4.0, 2.0, 3.0], [1.0, 7.0, 2.0]])
REWARDS = torch.tensor([1.0, -1.0])
LIVE = torch.tensor([False, False])


def targets(learner: str, terminated: torch.Tensor = LIVE,
            gamma: float | torch.Tensor = 0.5) -> torch.Tensor:
    return td_targets(learner, REWARDS, terminated, NEXT_Q_ONLINE, NEXT_Q_TARGET, gamma)


def test_qlearning_uses_the_online_max() -> None:
    # V = max online = [5, 3] -> [1 + 0.5 * 5, -1 + 0.5 * 3]
    assert targets("qlearning").tolist() == [3.5, 0.5]
    # It must not need (or read) a target network.
    assert td_targets(Learner.QLEARNING, REWARDS, LIVE, NEXT_Q_ONLINE, None, 0.5).tolist() == [
        3.5, 0.5]


def test_dqn_uses_the_target_max() -> None:
    # V = max target = [4, 7] -> [1 + 2, -1 + 3.5]
    assert targets("dqn").tolist() == [3.0, 2.5]
    assert td_targets("dqn", REWARDS, LIVE, None, NEXT_Q_TARGET, 0.5).tolist() == [3.0, 2.5]


def test_ddqn_uses_online_argmax_and_target_value() -> None:
    # online argmax = [1, 2]; target values there = [2, 2] -> [1 + 1, -1 + 1]
    assert targets("ddqn").tolist() == [2.0, 0.0]
    assert targets("ddqn").tolist() != targets("dqn").tolist()


@pytest.mark.parametrize("learner", list(Learner))
def test_terminated_transitions_do_not_bootstrap(learner: Learner) -> None:
    bootstrapped = targets(learner)
    result = targets(learner, terminated=torch.tensor([True, False]))
    assert result[0].item() == 1.0  # the reward alone
    assert result[1].item() == bootstrapped[1].item()


def test_terminal_next_values_cannot_poison_the_target() -> None:
    # A terminal next state's Q is never used: even inf must not leak in as nan.
    next_q = torch.tensor([[float("inf"), 0.0], [1.0, 2.0]])
    result = td_targets("dqn", REWARDS, torch.tensor([True, False]), None, next_q, 0.5)
    assert result.tolist() == [1.0, 0.0]


def test_truncated_transitions_bootstrap() -> None:
    """A time-limit cut is not an MDP end: the replay keeps the flags apart, the target uses
    only ``terminated``."""
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(capacity=4, image_size=4)

    def obs() -> dict:
        return {"overhead_rgbd": rng.uniform(0.5, 1.1, (4, 4, 4)).astype(np.float32),
                "wrist_rgb": rng.integers(0, 256, (4, 4, 3), dtype=np.uint8),
                "motor": np.zeros(8, np.float32)}

    buffer.add(obs(), 0, -0.025, obs(), terminated=False, truncated=True)
    batch = buffer.sample(1, rng)
    assert batch.truncated.tolist() == [True] and batch.terminated.tolist() == [False]
    next_q = torch.tensor([[2.0, 4.0, 1.0]])
    result = td_targets("dqn", torch.from_numpy(batch.rewards),
                        torch.from_numpy(batch.terminated), None, next_q, 0.5)
    assert result.item() == pytest.approx(-0.025 + 0.5 * 4.0)


def test_per_sample_gamma_for_n_step() -> None:
    gamma = torch.tensor([0.5, 0.25])  # e.g. gamma**steps with steps = [1, 2], gamma = 0.5
    # DQN: [1 + 0.5 * 4, -1 + 0.25 * 7]
    assert targets("dqn", gamma=gamma).tolist() == [3.0, 0.75]
    with pytest.raises(ValueError, match="gamma"):
        targets("dqn", gamma=torch.tensor([0.5, 0.5, 0.5]))


def test_targets_carry_no_gradient() -> None:
    online = NEXT_Q_ONLINE.clone().requires_grad_(True)
    result = td_targets("qlearning", REWARDS, LIVE, online, None, 0.5)
    assert not result.requires_grad


def test_bad_learner_and_missing_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="learner must be one of qlearning, dqn, ddqn"):
        targets("sarsa")
    with pytest.raises(ValueError, match="dqn needs next_q_target"):
        td_targets("dqn", REWARDS, LIVE, NEXT_Q_ONLINE, None, 0.5)
    with pytest.raises(ValueError, match="ddqn needs next_q_online"):
        td_targets("ddqn", REWARDS, LIVE, None, NEXT_Q_TARGET, 0.5)
    with pytest.raises(ValueError, match="rewards"):
        td_targets("dqn", REWARDS[:1], LIVE, None, NEXT_Q_TARGET, 0.5)


def test_learner_values_and_target_network_use() -> None:
    assert [learner.value for learner in Learner] == ["qlearning", "dqn", "ddqn"]
    assert not Learner("qlearning").uses_target_network
    assert Learner.DQN.uses_target_network and Learner.DDQN.uses_target_network


def test_q_of_actions() -> None:
    q = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    assert q_of_actions(q, torch.tensor([2, 0])).tolist() == [3.0, 4.0]


def test_mse_and_huber_on_known_values() -> None:
    q_taken = torch.tensor([0.0, 0.0])
    target = torch.tensor([0.5, 3.0])
    # MSE (paper eq. 5): (0.25 + 9) / 2
    assert td_loss(q_taken, target).item() == pytest.approx(4.625)
    assert td_loss(q_taken, target, "mse").item() == pytest.approx(4.625)
    # Huber, delta 1: 0.5 * 0.5**2 = 0.125 and 3 - 0.5 = 2.5 -> mean 1.3125
    assert td_loss(q_taken, target, "huber").item() == pytest.approx(1.3125)
    with pytest.raises(ValueError, match="loss kind must be one of mse, huber"):
        td_loss(q_taken, target, "l1")


def test_importance_weights_scale_each_rows_loss() -> None:
    q_taken = torch.tensor([0.0, 0.0])
    target = torch.tensor([0.5, 3.0])
    weights = torch.tensor([1.0, 0.25])
    # (1 * 0.25 + 0.25 * 9) / 2 and (1 * 0.125 + 0.25 * 2.5) / 2
    assert td_loss(q_taken, target, "mse", weights).item() == pytest.approx(1.25)
    assert td_loss(q_taken, target, "huber", weights).item() == pytest.approx(0.375)
    assert td_loss(q_taken, target, "mse", torch.ones(2)).item() == pytest.approx(4.625)
    with pytest.raises(ValueError, match="weights"):
        td_loss(q_taken, target, "mse", torch.ones(3))


def test_loss_gradient_reaches_q_only() -> None:
    q = torch.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    y = td_targets("qlearning", torch.zeros(2), LIVE, q, None, 1.0)
    td_loss(q_of_actions(q, torch.tensor([0, 1])), y).backward()
    # d/dq mean((q_a - y)^2) = (q_a - y) with y = max q treated as a constant.
    assert q.grad.tolist() == [[-1.0, 0.0], [0.0, 0.0]]


def test_margin_loss_on_known_values() -> None:
    q = torch.tensor([[1.0, 2.0, 0.5], [3.0, 0.0, 2.5]], requires_grad=True)
    # Row 0, expert 1: max(1 + 0.8, 2 + 0, 0.5 + 0.8) - 2 = 0 (already ahead by the margin).
    # Row 1, expert 2: max(3 + 0.8, 0 + 0.8, 2.5) - 2.5 = 1.3.
    loss = margin_loss(q, torch.tensor([1, 2]), 0.8)
    assert loss.item() == pytest.approx(0.65)
    loss.backward()
    # Only row 1 has a gradient: +1/2 on the violating action, -1/2 on the expert's.
    assert q.grad.tolist() == [[0.0, 0.0, 0.0], [0.5, 0.0, -0.5]]


def test_weighted_margin_loss_scales_each_row() -> None:
    q = torch.tensor([[1.0, 2.0, 0.5], [3.0, 0.0, 2.5]], requires_grad=True)
    # Row losses 0 and 1.3 (as above); weights 3 and 0.5: mean(0 * 3, 1.3 * 0.5) = 0.325.
    loss = margin_loss(q, torch.tensor([1, 2]), 0.8, torch.tensor([3.0, 0.5]))
    assert loss.item() == pytest.approx(0.325)
    loss.backward()
    assert q.grad.tolist() == [[0.0, 0.0, 0.0], [0.25, 0.0, -0.25]]


def test_margin_loss_with_a_tied_label_accepts_either_action() -> None:
    q = torch.tensor([[1.0, 2.0, 0.5, 0.0], [3.0, 0.0, 2.5, 1.0], [0.0, 1.0, 0.9, 0.2]],
                     requires_grad=True)
    # Row 0, expert 1, tie 2: max(1 + 0.8, 2, 0.5, 0 + 0.8) - max(2, 0.5) = 0.
    # Row 1, expert 2, tie 3: max(3 + 0.8, 0 + 0.8, 2.5, 1) - max(2.5, 1) = 1.3.
    # Row 2, expert 2, no tie: max(0.8, 1.8, 0.9, 1.0) - 0.9 = 0.9 (the plain loss).
    loss = margin_loss(q, torch.tensor([1, 2, 2]), 0.8, ties=torch.tensor([2, 3, -1]))
    assert loss.item() == pytest.approx((0 + 1.3 + 0.9) / 3)
    loss.backward()
    # Row 1: the better of the pair (action 2) takes the gradient, not the tie (action 3).
    assert q.grad[1].tolist() == pytest.approx([1 / 3, 0.0, -1 / 3, 0.0])
    assert q.grad[2].tolist() == pytest.approx([0.0, 1 / 3, -1 / 3, 0.0])
    # A tie on the lower action changes nothing where the expert already leads.
    plain = margin_loss(q.detach(), torch.tensor([1, 2, 2]), 0.8)
    no_ties = margin_loss(q.detach(), torch.tensor([1, 2, 2]), 0.8, ties=torch.tensor([-1] * 3))
    assert no_ties.item() == pytest.approx(plain.item())


def test_label_balance_weights_by_hand() -> None:
    # Shares 0.75 / 0.25 / 0 (the unseen action counts as seen once: share 1/8).
    counts = np.array([6, 2, 0])
    np.testing.assert_allclose(label_balance_weights(counts, 0.0), [1, 1, 1])
    # Inverse frequency: 1/0.75, 1/0.25, 8, divided by their label-weighted mean
    # 0.75 * 4/3 + 0.25 * 4 = 2, so each seen action's labels weigh 0.5 in total.
    np.testing.assert_allclose(label_balance_weights(counts, 1.0), [2 / 3, 2, 4], rtol=1e-6)
    # Inverse square root: (0.75 ** -0.5, 0.25 ** -0.5) / (0.75 ** 0.5 + 0.25 ** 0.5).
    mean = 0.75 ** 0.5 + 0.5
    np.testing.assert_allclose(label_balance_weights(counts, 0.5)[:2],
                               [0.75 ** -0.5 / mean, 2 / mean], rtol=1e-6)
    for bad_counts, power in (([0, 0], 0.5), ([1, -1], 0.5), ([1, 1], 1.5)):
        with pytest.raises(ValueError):
            label_balance_weights(np.array(bad_counts), power)
