"""TD targets and loss for the three learners, on one code path.

The learners differ only in how the value of the next state is read (paper Sec. III;
design.md "Learners"):

- ``qlearning``: ``max_a Q(s', a)`` from the online network itself (no target network).
- ``dqn``: ``max_a Q'(s', a)`` from the target network.
- ``ddqn``: ``Q'(s', argmax_a Q(s', a))``: the online network picks the action, the target
  network values it (van Hasselt et al., 2016).

The target is ``r + gamma * V(s')`` unless the transition *terminated* (the MDP ended: the
gripper closed), where it is ``r``. A *truncated* transition (time limit) is cut short by the
episode budget, not by the MDP, so it still bootstraps; the two flags are kept apart as in
stable-baselines3 (https://github.com/DLR-RM/stable-baselines3/issues/284; Pardo et al.,
"Time Limits in Reinforcement Learning", arXiv:1712.00378). With n-step
returns, ``rewards`` is the discounted n-step sum and ``gamma`` the per-sample ``gamma**n``.
"""

from __future__ import annotations

import enum

import numpy as np
import torch
import torch.nn.functional as F


# (str, Enum) rather than StrEnum: the package supports Python 3.10.
class Learner(str, enum.Enum):
    """Which TD target to use; the value is the config / CLI spelling."""

    QLEARNING = "qlearning"
    DQN = "dqn"
    DDQN = "ddqn"

    @property
    def uses_target_network(self) -> bool:
        """Whether the learner reads a separate, periodically copied target network."""
        return self is not Learner.QLEARNING


class LossKind(str, enum.Enum):
    """TD loss: mean squared error (paper eq. 5, the default) or Huber."""

    MSE = "mse"
    HUBER = "huber"


def _parse(enum_type: type[enum.Enum], value: str, name: str) -> enum.Enum:
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(member.value for member in enum_type)
        raise ValueError(f"{name} must be one of {choices}; got {value!r}") from None


def next_state_values(learner: Learner | str, next_q_online: torch.Tensor | None,
                      next_q_target: torch.Tensor | None) -> torch.Tensor:
    """V(s') per sample, (N,), detached.

    Args:
        learner: which target (see module docstring).
        next_q_online: online network's Q(s', .), (N, A); needed by qlearning and ddqn.
        next_q_target: target network's Q'(s', .), (N, A); needed by dqn and ddqn.
    """
    learner = _parse(Learner, learner, "learner")
    needs_online = learner in (Learner.QLEARNING, Learner.DDQN)
    needs_target = learner in (Learner.DQN, Learner.DDQN)
    if needs_online and next_q_online is None:
        raise ValueError(f"learner {learner.value} needs next_q_online")
    if needs_target and next_q_target is None:
        raise ValueError(f"learner {learner.value} needs next_q_target")
    for name, q in (("next_q_online", next_q_online), ("next_q_target", next_q_target)):
        if q is not None and q.dim() != 2:
            raise ValueError(f"{name} must be (N, num_actions), got {tuple(q.shape)}")
    if needs_online and needs_target and next_q_online.shape != next_q_target.shape:
        raise ValueError(f"next_q_online {tuple(next_q_online.shape)} and next_q_target "
                         f"{tuple(next_q_target.shape)} differ in shape")
    # Targets are constants of the regression (semi-gradient TD); for qlearning this stops
    # the gradient flowing through the online network's own bootstrap.
    with torch.no_grad():
        if learner is Learner.QLEARNING:
            values = next_q_online.max(dim=1).values
        elif learner is Learner.DQN:
            values = next_q_target.max(dim=1).values
        else:
            best = next_q_online.argmax(dim=1, keepdim=True)
            values = next_q_target.gather(1, best).squeeze(1)
    return values.detach()


def td_targets(learner: Learner | str, rewards: torch.Tensor, terminated: torch.Tensor,
               next_q_online: torch.Tensor | None, next_q_target: torch.Tensor | None,
               gamma: float | torch.Tensor) -> torch.Tensor:
    """TD targets ``r + gamma * V(s')``, with no bootstrap where ``terminated``; (N,), detached.

    Args:
        learner: ``qlearning``, ``dqn`` or ``ddqn``.
        rewards: (N,) float, the reward (or discounted n-step reward sum) of each transition.
        terminated: (N,) bool, True where the episode ended in the MDP (never pass
            truncation here: time-limit cuts bootstrap).
        next_q_online: online network's Q(s', .), (N, A), or None where unused (dqn).
        next_q_target: target network's Q'(s', .), (N, A), or None where unused (qlearning).
        gamma: discount, a float or a per-sample (N,) tensor (``gamma**n`` for n-step).
    """
    values = next_state_values(learner, next_q_online, next_q_target)
    if rewards.shape != values.shape or terminated.shape != values.shape:
        raise ValueError(f"rewards {tuple(rewards.shape)} and terminated "
                         f"{tuple(terminated.shape)} must both be {tuple(values.shape)}")
    if isinstance(gamma, torch.Tensor) and gamma.dim() > 0 and gamma.shape != values.shape:
        raise ValueError(f"gamma must be a scalar or {tuple(values.shape)}, "
                         f"got {tuple(gamma.shape)}")
    rewards = rewards.detach().to(values.dtype)
    # torch.where rather than (1 - terminated) * V: a terminal next state's Q may be anything
    # (even inf early on), and 0 * inf would be nan.
    bootstrap = torch.where(terminated.bool(), torch.zeros_like(values), gamma * values)
    return rewards + bootstrap


def q_of_actions(q: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Q(s, a) for the taken actions: q (N, A), actions (N,) integer -> (N,)."""
    return q.gather(1, actions.long().unsqueeze(1)).squeeze(1)


def td_loss(q_taken: torch.Tensor, targets: torch.Tensor,
            kind: LossKind | str = LossKind.MSE,
            weights: torch.Tensor | None = None) -> torch.Tensor:
    """Mean TD loss over the batch, a scalar.

    ``mse``: mean squared TD error, paper eq. 5, ``E[(y - Q(s, a))^2]``. ``huber``: the Huber
    loss with delta 1 (quadratic within 1 of the target, linear beyond; DQN's error clipping).
    ``weights`` (N,), if given, scale each row's loss before the mean (prioritised replay's
    importance weights).
    """
    kind = _parse(LossKind, kind, "loss kind")
    if q_taken.shape != targets.shape:
        raise ValueError(f"q_taken {tuple(q_taken.shape)} and targets "
                         f"{tuple(targets.shape)} differ in shape")
    if weights is not None and weights.shape != targets.shape:
        raise ValueError(f"weights {tuple(weights.shape)} must be {tuple(targets.shape)}")
    if kind is LossKind.MSE:
        per_row = F.mse_loss(q_taken, targets, reduction="none")
    else:
        per_row = F.huber_loss(q_taken, targets, delta=1.0, reduction="none")
    return per_row.mean() if weights is None else (weights.to(per_row.dtype) * per_row).mean()


def margin_loss(q: torch.Tensor, expert: torch.Tensor, margin: float,
                weights: torch.Tensor | None = None,
                ties: torch.Tensor | None = None) -> torch.Tensor:
    """DQfD large-margin loss (Hester et al. 2018, eq. 2), mean over rows:
    ``max_a (Q(s, a) + margin * [a != expert]) - Q(s, expert)``. q: (B, A), expert: (B,);
    ``weights`` (B,), if given, scale each row before the mean (see
    :func:`label_balance_weights`). ``ties`` (B,), if given, names a second expert action
    per row (-1: none): such a row asks that the better of the two lead every other action
    by the margin, ``max_a (Q(s, a) + margin * [a not in {expert, tie}]) - max(Q(s, expert),
    Q(s, tie))``, and leaves their order to the TD loss."""
    margins = torch.full_like(q, margin)
    margins.scatter_(1, expert[:, None], 0.0)
    expert_q = q_of_actions(q, expert)
    tied = ties >= 0 if ties is not None else None
    if tied is not None and bool(tied.any()):
        rows = torch.nonzero(tied)[:, 0]
        margins[rows, ties[rows]] = 0.0
        tie_q = q_of_actions(q, ties.clamp(min=0))
        expert_q = torch.where(tied, torch.maximum(expert_q, tie_q), expert_q)
    per_row = (q + margins).max(dim=1).values - expert_q
    return per_row.mean() if weights is None else (weights * per_row).mean()


def label_balance_weights(counts: np.ndarray, power: float) -> np.ndarray:
    """Per-action weights ``share ** -power`` from how often each action is a label.

    ``power`` 0 weights every label alike; 1 gives each action the same total weight however
    rare it is (inverse frequency); values between soften that. The weights are scaled so
    their mean over the labels' own distribution is 1: the loss keeps its size on average.
    An action never seen as a label counts as seen once (a finite weight it rarely uses).
    """
    counts = np.asarray(counts, np.float64)
    if counts.ndim != 1 or counts.size == 0 or (counts < 0).any() or counts.sum() <= 0:
        raise ValueError(f"label counts must be non-negative with a positive sum, got {counts}")
    if not 0.0 <= power <= 1.0:
        raise ValueError(f"balance power must be in [0, 1], got {power}")
    shares = np.maximum(counts, 1.0) / counts.sum()
    weights = shares ** -power
    return (weights / np.sum(counts / counts.sum() * weights)).astype(np.float32)
