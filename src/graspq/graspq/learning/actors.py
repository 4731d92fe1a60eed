"""Episode actors: a scene of its own and an acting copy of the GQN that run whole exploring
episodes for a learner in another process (``graspq train --actors N``, Ape-X style).

Ray places the workers (:mod:`graspq.learning.actor_pool`); this module does not import it,
so a worker is an ordinary object that runs in any process. An episode comes back whole: a
worker that dies part-way returns nothing, so the learner never sees half an episode.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from graspq.learning.agent import QAgent
from graspq.learning.demonstrations import OracleLabels, oracle_labels
from graspq.learning.settings import TrainingConfig
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.settings import EnvConfig


@dataclasses.dataclass(frozen=True)
class EpisodeTask:
    """What the learner asks of a worker: one episode, by its dispatch index."""

    index: int  # dispatch index: seeds the scene and the exploration
    env_seed: int
    epsilon: float
    rng_seed: tuple[int, ...]
    weights_version: int  # the weights the episode must act with
    reset_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # the curriculum's


@dataclasses.dataclass
class ActorEpisode:
    """One finished episode: ``steps`` transitions, observations shared between neighbours
    (``observations[t]`` -> ``actions[t]`` -> ``observations[t + 1]``)."""

    task: EpisodeTask
    actor: int
    observations: list[dict[str, np.ndarray]]
    actions: list[int]
    rewards: list[float]
    labels: list[OracleLabels | None]
    terminated: bool
    truncated: bool
    outcome: str
    object: str

    @property
    def steps(self) -> int:
        return len(self.actions)

    @property
    def episode_return(self) -> float:
        return float(sum(self.rewards))


class EpisodeWorker:
    """Runs exploring episodes with the weights the learner last sent."""

    def __init__(self, training: TrainingConfig, env_config: EnvConfig, actor: int) -> None:
        # One core per actor: the learner's update needs the others.
        torch.set_num_threads(1)
        self.actor = actor
        self.training = training
        self.env = BaxterGraspEnv(env_config)
        camera = env_config.camera
        self.agent = QAgent(training, training.network_shape(env_config),
                            camera.depth_near_m, camera.depth_far_m)
        # The labels the learner's config asks for are read here, in the state the agent is
        # in, as the single-process trainer does (its teacher never acts).
        self.teacher = (OraclePolicy(self.env)
                        if training.expert_labels or training.pose_loss_weight > 0 else None)
        self.weights_version = -1

    def pid(self) -> int:
        """This worker's process id (tests kill it to check the learner goes on)."""
        return os.getpid()

    def run_episode(self, task: EpisodeTask,
                    weights: Mapping[str, Any] | None) -> ActorEpisode:
        """One epsilon-greedy episode. ``weights`` (the online network's state dict) must
        come with any task whose version this worker does not hold yet."""
        if task.weights_version != self.weights_version:
            if weights is None:
                raise RuntimeError(f"actor {self.actor} holds weights version "
                                   f"{self.weights_version}, the task needs "
                                   f"{task.weights_version} and none came with it")
            self.agent.online.load_state_dict(weights)
            self.weights_version = task.weights_version
        rng = np.random.default_rng(task.rng_seed)
        obs, info = self.env.reset(seed=task.env_seed, options=task.reset_options)
        observations, actions, rewards, labels = [obs], [], [], []
        terminated = truncated = False
        exploration = self.training.exploration.for_episode(task.epsilon)
        while not (terminated or truncated):
            action = self.agent.act(obs, exploration, rng)
            labels.append(oracle_labels(self.teacher, self.training.expert_turn_ties)
                          if self.teacher is not None else None)
            obs, reward, terminated, truncated, info = self.env.step(action)
            observations.append(obs)
            actions.append(int(action))
            rewards.append(float(reward))
        return ActorEpisode(task, self.actor, observations, actions, rewards, labels,
                            bool(terminated), bool(truncated), info["outcome"], info["object"])

    def close(self) -> None:
        self.env.close()


def actor_epsilon(epsilon: float, actor: int, actors: int, alpha: float) -> float:
    """Ape-X's spread of exploration over actors: actor ``i`` of ``N`` explores with
    ``epsilon ** (1 + alpha * i / (N - 1))``, so actor 0 follows the schedule and the others
    explore less (alpha 0: every actor follows the schedule)."""
    if actors <= 1 or alpha == 0.0 or epsilon <= 0.0:
        return epsilon
    return float(epsilon ** (1.0 + alpha * actor / (actors - 1)))
