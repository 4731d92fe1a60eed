"""The learning agent: online and target GQN, epsilon-greedy acting, one TD update.

The three learners share this code; they differ only in the TD target
(:func:`graspq.learning.targets.td_targets`) and in whether a target network exists.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping

import numpy as np
import torch

from graspq.actions import TURNS, EpisodeExploration, close_actions
from graspq.learning.model import GQNConfig, GQNInput, GraspQNetwork, preprocess
from graspq.learning.pose import NO_POSE, POSE_TARGETS, pose_loss
from graspq.learning.precision import autocast, resolve_precision
from graspq.learning.replay import NO_EXPERT, ReplayBatch
from graspq.learning.settings import TrainingConfig
from graspq.learning.targets import (
    Learner,
    label_balance_weights,
    margin_loss,
    q_of_actions,
    td_loss,
    td_targets,
)
from graspq.observation import OVERHEAD_KEY, WRIST_KEY


def random_shift(images: np.ndarray, pad: int, generator: torch.Generator) -> np.ndarray:
    """Shift each image by up to ``pad`` pixels (replicate padding, random crop; DrQ,
    Kostrikov et al. 2020). images: (N, S, S, C), as the replay stores them.

    Done on the stored arrays before they become float tensors: shifting commutes with
    :func:`~graspq.learning.model.preprocess` (per pixel), and slicing uint8 rows costs
    about a tenth of a float tensor gather (docs/performance.md)."""
    if images.ndim != 4 or images.shape[1] != images.shape[2]:
        raise ValueError(f"random_shift needs (N, S, S, C) images, got {images.shape}")
    size = images.shape[1]
    offsets = torch.randint(0, 2 * pad + 1, (images.shape[0], 2), generator=generator)
    padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="edge")
    shifted = np.empty_like(images)
    for row, (dy, dx) in enumerate(offsets.tolist()):
        shifted[row] = padded[row, dy:dy + size, dx:dx + size]
    return shifted


class QAgent:
    """Online network, optional target network, Adam, and the update rule."""

    def __init__(self, config: TrainingConfig, network: GQNConfig, depth_near_m: float,
                 depth_far_m: float,
                 memory_format: torch.memory_format = torch.channels_last) -> None:
        self.config = config
        self.memory_format = memory_format
        self.learner = Learner(config.learner)
        self.precision = resolve_precision(config.precision)  # of updates; acting is fp32
        self.depth_bounds = (depth_near_m, depth_far_m)
        if config.pose_loss_weight > 0:
            network = dataclasses.replace(network, pose_outputs=POSE_TARGETS)
        self.online = GraspQNetwork(network).to(memory_format=memory_format)
        self.target = copy.deepcopy(self.online) if self.learner.uses_target_network else None
        if self.target is not None:
            self.target.eval()
            self.target.requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.online.parameters(), lr=config.learning_rate,
                                          eps=config.adam_eps)
        self.updates = 0
        self.loss_parts: dict[str, float] = {}  # the last update's loss terms, for the logs
        self.td_errors = np.zeros(0, np.float32)  # the last update's replay rows' TD errors
        # Per action, the margin loss's weight of a row with that label (None = all 1):
        # turn_margin_weight, times balance_labels' weights once they are known.
        self._turn_weights = np.ones(network.num_actions, np.float32)
        self._turn_weights[list(TURNS)] = config.turn_margin_weight
        self.label_weights: torch.Tensor | None = (
            None if config.turn_margin_weight == 1.0 else torch.as_tensor(self._turn_weights))
        self._augment_generator = torch.Generator().manual_seed(config.seed + 17)

    # ------------------------------------------------------------------------- acting
    def _inputs(self, obs: Mapping[str, np.ndarray], augment: bool = False,
                rows: np.ndarray | None = None):
        """Network input of ``obs``; with ``rows``, of those rows alone (after the shift,
        which draws one offset per row of the whole batch either way)."""
        if self.online.config.views == "single":  # the wrist image is neither converted nor used
            obs = {key: value for key, value in obs.items() if key != WRIST_KEY}
        pad = self.config.augment_shift_px
        if augment and pad:
            # Overhead first, then the wrist: the generator's order since the first runs.
            obs = {**obs, **{key: random_shift(obs[key], pad, self._augment_generator)
                             for key in (OVERHEAD_KEY, WRIST_KEY) if key in obs}}
        if rows is not None:
            obs = {key: value[rows] for key, value in obs.items()}
        return preprocess(obs, "cpu", *self.depth_bounds, memory_format=self.memory_format)

    @torch.no_grad()
    def q_values(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Q-values (A,) of one observation, network in eval mode."""
        self.online.eval()
        return self.online(*self._inputs(obs))[0].numpy()

    def act(self, obs: Mapping[str, np.ndarray], exploration: EpisodeExploration,
            rng: np.random.Generator) -> int:
        """The episode's ``exploration`` choice over the greedy action
        (:meth:`graspq.actions.EpisodeExploration.choose`: the RNG stream does not depend on
        the network's outputs, so resumed runs replay exactly)."""
        return exploration.choose(lambda: int(np.argmax(self.q_values(obs))),
                                  self.online.config.num_actions, rng)

    # ------------------------------------------------------------------------- learning
    def set_learning_rate(self, rate: float) -> None:
        """Adam's step size from here on (the trainer sets the schedule's each episode)."""
        for group in self.optimizer.param_groups:
            group["lr"] = rate

    def balance_labels(self, counts: np.ndarray) -> np.ndarray:
        """Weight the margin loss by ``label_balance_weights(counts, margin_balance)``; the
        counts are the demonstrations' labels, which a resumed run records again, so the
        weights need no checkpoint. Returns the weights."""
        weights = label_balance_weights(counts, self.config.margin_balance) * self._turn_weights
        self.label_weights = torch.as_tensor(weights)
        return weights

    def update(self, batch: ReplayBatch, demos: ReplayBatch | None = None) -> float:
        """One gradient step on a batch plus ``demos``, extra rows (demonstrations, and with
        ``close_replay_rows`` CLOSE transitions drawn from the replay) that no new priority
        covers; returns the loss.

        The TD loss covers every row. If ``demo_margin`` > 0, the large-margin loss of DQfD
        (Hester et al. 2018, eq. 2) pushes the expert's action at least the margin above
        every other action on every row that has an expert label: the demonstrations (whose
        label is the action taken) and, with ``expert_labels``, the agent's own transitions
        labelled by the teacher (DAgger, Ross et al. 2011). A row with a tied label
        (``expert_turn_ties``) accepts either action. If ``pose_loss_weight`` > 0, the
        auxiliary pose loss (:mod:`graspq.learning.pose`) covers every row with a pose target.
        Each row's TD loss is scaled by its importance weight (prioritised replay; 1 for
        uniform draws), and :attr:`td_errors` keeps the replay rows' TD errors for their new
        priorities.
        """
        cfg = self.config
        net = self.online
        if demos is not None:
            batch = concat_batches(batch, demos) if batch is not None else demos
        with torch.no_grad():
            next_q_target, next_q_online = self._next_q(batch)
            gamma = torch.as_tensor(cfg.gamma ** batch.steps, dtype=torch.float32)
            targets = td_targets(self.learner, torch.as_tensor(batch.rewards),
                                 torch.as_tensor(batch.terminated), next_q_online,
                                 next_q_target, gamma)
        net.train()
        inputs = self._inputs(batch.obs, augment=True)
        pose = None
        # Losses, targets and comparisons are formed in float32, outside the autocast region.
        with autocast(self.precision):
            if cfg.pose_loss_weight > 0:
                q, predicted_pose = net.forward_with_pose(*inputs)
            else:
                q, predicted_pose = net(*inputs), None
        q = q.float()
        if predicted_pose is not None:
            pose = pose_loss(predicted_pose.float(), torch.as_tensor(batch.pose_targets),
                             cfg.pose_yaw_weight)
        actions = torch.as_tensor(batch.actions)
        if cfg.advantage_learning > 0:
            targets = targets - cfg.advantage_learning * self._action_gap(inputs, actions)
        q_taken = q_of_actions(q, actions)
        replay_rows = len(batch.actions) - (0 if demos is None else len(demos.actions))
        self.td_errors = (targets - q_taken.detach())[:replay_rows].numpy()
        weights = None if (batch.weights == 1).all() else torch.as_tensor(batch.weights)
        loss = td_loss(q_taken, targets, cfg.loss, weights)
        parts = {"td": loss}
        hindsight = torch.as_tensor(np.isfinite(batch.close_labels))
        if bool(hindsight.any()):
            # A terminal target for Q(s, CLOSE), and for every turned close (the object is
            # not under the gripper at any yaw): the close value the episode's success
            # revealed (graspq.learning.hindsight), on the TD loss's scale, each close
            # counting as a label of its own (summed over the closes, mean over the rows).
            close_q = q[hindsight][:, close_actions(q.shape[1])]
            labels = torch.as_tensor(batch.close_labels)[hindsight]
            parts["hindsight"] = close_q.shape[1] * td_loss(
                close_q.reshape(-1), labels.repeat_interleave(close_q.shape[1]), cfg.loss)
            loss = loss + parts["hindsight"]
        if pose is not None:
            parts["pose"] = pose
            loss = loss + cfg.pose_loss_weight * pose
        labelled = torch.as_tensor(batch.expert_actions != NO_EXPERT)
        if cfg.demo_margin > 0 and bool(labelled.any()):
            expert = torch.as_tensor(batch.expert_actions)[labelled]
            ties = torch.as_tensor(batch.expert_ties)[labelled]
            weights = None if self.label_weights is None else self.label_weights[expert]
            parts["margin"] = margin_loss(q[labelled], expert, cfg.demo_margin, weights, ties)
            loss = loss + parts["margin"]
        self.loss_parts = {name: float(value.detach()) for name, value in parts.items()}
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip_norm)
        self.optimizer.step()
        self.updates += 1
        if self.target is not None and self.updates % cfg.target_update_every == 0:
            self.sync_target()
        return float(loss.detach())

    @torch.no_grad()
    def _action_gap(self, inputs: GQNInput, actions: torch.Tensor) -> torch.Tensor:
        """V'(s) - Q'(s, a): how far the target network values the action taken below its best
        at the same (augmented) state; >= 0, in float32. Advantage learning's correction."""
        with autocast(self.precision):
            q = self.target(*inputs).float()
        return q.max(dim=1).values - q_of_actions(q, actions)

    def _next_q(self, batch: ReplayBatch) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """Target and online Q(s', .) (None where the learner uses neither), (N, A).

        Only the rows whose episode goes on are evaluated: a terminated row's target is its
        reward alone (:func:`td_targets` ignores its next values, left at 0 here), and that
        is about a fifth of a batch with 3-step windows, and every close row. Both networks
        see next states in eval mode, so a row's values do not depend on the others."""
        live = np.flatnonzero(~np.asarray(batch.terminated, bool))
        # The shift draws its offsets for every row, so the generator's stream does not
        # depend on how many rows end their episode.
        next_inputs = self._inputs(batch.next_obs, augment=True, rows=live)

        def evaluated(network: GraspQNetwork) -> torch.Tensor:
            values = torch.zeros(len(batch.terminated), self.online.config.num_actions)
            if live.size:
                network.eval()  # BatchNorm running statistics; next states do not update them
                with autocast(self.precision):
                    values[torch.as_tensor(live)] = network(*next_inputs).float()
            return values

        uses_online = self.learner in (Learner.QLEARNING, Learner.DDQN)
        return (None if self.target is None else evaluated(self.target),
                evaluated(self.online) if uses_online else None)

    def sync_target(self) -> None:
        """Hard copy of the online weights into the target network."""
        if self.target is not None:
            self.target.load_state_dict(self.online.state_dict())

    # ------------------------------------------------------------------------- state
    def state_dict(self) -> dict:
        """Everything needed to resume: weights, target weights, optimizer, counters, RNG."""
        return {
            "online": self.online.state_dict(),
            "target": None if self.target is None else self.target.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "updates": self.updates,
            "augment_rng": self._augment_generator.get_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Inverse of :meth:`state_dict`."""
        self.online.load_state_dict(state["online"])
        if self.target is not None:
            if state["target"] is None:
                raise ValueError("checkpoint has no target network but the learner needs one")
            self.target.load_state_dict(state["target"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.updates = int(state["updates"])
        self._augment_generator.set_state(state["augment_rng"])


def concat_batches(first: ReplayBatch, second: ReplayBatch) -> ReplayBatch:
    """Two batches as one (same keys; the second's rows come last)."""

    def joined(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {key: np.concatenate([a[key], b[key]]) for key in a}

    return ReplayBatch(
        obs=joined(first.obs, second.obs), actions=np.concatenate([first.actions, second.actions]),
        rewards=np.concatenate([first.rewards, second.rewards]),
        next_obs=joined(first.next_obs, second.next_obs),
        terminated=np.concatenate([first.terminated, second.terminated]),
        truncated=np.concatenate([first.truncated, second.truncated]),
        steps=np.concatenate([first.steps, second.steps]),
        indices=np.concatenate([first.indices, second.indices]),
        expert_actions=np.concatenate([first.expert_actions, second.expert_actions]),
        pose_targets=np.concatenate([first.pose_targets, second.pose_targets]),
        expert_ties=np.concatenate([first.expert_ties, second.expert_ties]),
        weights=np.concatenate([first.weights, second.weights]),
        close_labels=np.concatenate([first.close_labels, second.close_labels]))


def single_transition_batch(obs: Mapping[str, np.ndarray], action: int, reward: float,
                            next_obs: Mapping[str, np.ndarray], terminated: bool,
                            truncated: bool) -> ReplayBatch:
    """The latest transition as a batch of one (the Q-learning baseline has no replay)."""

    def batched(o: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {key: np.asarray(value)[None] for key, value in o.items()
                if key in (OVERHEAD_KEY, WRIST_KEY, "motor")}

    return ReplayBatch(
        obs=batched(obs), actions=np.array([action], np.int64),
        rewards=np.array([reward], np.float32), next_obs=batched(next_obs),
        terminated=np.array([terminated]), truncated=np.array([truncated]),
        steps=np.ones(1, np.int64), indices=np.zeros(1, np.int64),
        expert_actions=np.full(1, NO_EXPERT, np.int64), pose_targets=NO_POSE[None].copy(),
        expert_ties=np.full(1, NO_EXPERT, np.int64), weights=np.ones(1, np.float32),
        close_labels=np.full(1, np.nan, np.float32))
