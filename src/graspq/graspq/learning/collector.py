"""Training from episodes that something else runs: a robot (or a simulated one) over ROS.

The trainer normally steps its own MuJoCo env. With an :class:`EpisodeCollector` (the
training node's ROS backend), each episode is run by the servo runtime on a robot instead:
the runtime calls the policy handed to :meth:`EpisodeCollector.collect` on each synchronised
observation and reports each finished step as a :class:`~graspq.servo.runtime.StepRecord`,
whose ``(obs, action, reward, next_obs, terminated, truncated)`` is exactly a training
transition. Steps arrive on the robot's threads; the trainer learns from them on its own
thread, between frames (``idle``), so an update never delays a frame. The agent's network is
shared by both threads, so decisions and updates take :attr:`AgentGuard.lock` in turn.

Learning from a robot has no privileged teacher: demonstrations, oracle labels and the pose
loss need the simulator's hidden state, and are refused with the robot backend.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from graspq.actions import Action, EpisodeExploration
from graspq.config import ConfigError
from graspq.servo.policies import SimpleDecision, softmax
from graspq.sim.rollout import EpisodeRecord, RolloutSummary
from graspq.sim.settings import OBJECT_TYPES

if TYPE_CHECKING:
    from graspq.learning.agent import QAgent
    from graspq.learning.settings import TrainingConfig
    from graspq.servo.policies import Policy
    from graspq.servo.runtime import StepRecord

PRIVILEGED_KEYS = ("demo_episodes", "expert_labels", "pose_loss_weight")


class EpisodeCollector(Protocol):
    """Runs whole episodes on a robot with a given policy."""

    def collect(self, env_seed: int, policy: Policy, on_step: Callable[[StepRecord], None],
                idle: Callable[[], None], object_type: str | None = None) -> EpisodeRecord:
        """One episode: the scene reset from ``env_seed`` (and ``object_type`` if given),
        then the servo loop with ``policy`` until it ends; ``on_step`` gets each finished
        step (on any thread), ``idle`` is called often on the calling thread meanwhile."""
        ...


def check_collectable(training: TrainingConfig) -> None:
    """Refuse, naming the key, a config that needs the simulator's privileged state."""
    for key in PRIVILEGED_KEYS:
        if getattr(training, key):
            raise ConfigError(key, "needs the simulator's privileged state (the oracle), "
                              "which a robot backend does not have: set it to its default")


class AgentGuard:
    """The agent with the lock that its decisions (robot threads) and updates take."""

    def __init__(self, agent: QAgent) -> None:
        self.agent = agent
        self.lock = threading.Lock()

    def q_values(self, obs: Mapping[str, np.ndarray]) -> np.ndarray:
        with self.lock:
            return self.agent.q_values(obs)


class ExploringPolicy:
    """Epsilon-greedy over the agent's Q-values (the training episodes' policy), as a servo
    runtime policy, for one episode (its ``exploration`` holds the episode's random streak).
    Its own generator: the trainer's is used on another thread."""

    revisit_window = 0

    def __init__(self, guard: AgentGuard, exploration: EpisodeExploration,
                 rng: np.random.Generator) -> None:
        self._guard, self._exploration, self._rng = guard, exploration, rng

    def decide(self, obs: Mapping[str, np.ndarray]) -> SimpleDecision:
        start = time.perf_counter()
        q_values = self._guard.q_values(obs)
        action = self._exploration.choose(lambda: int(np.argmax(q_values)), len(q_values),
                                          self._rng)
        return SimpleDecision(Action(action), np.asarray(q_values, np.float32), softmax(q_values),
                              (time.perf_counter() - start) * 1e3)


class GreedyGuardedPolicy(ExploringPolicy):
    """The greedy policy of evaluations (epsilon 0), with the run's revisit window."""

    def __init__(self, guard: AgentGuard, revisit_window: int) -> None:
        super().__init__(guard, EpisodeExploration(0.0), np.random.default_rng(0))
        self.revisit_window = revisit_window


def collect_training_episode(collector: EpisodeCollector, guard: AgentGuard, env_seed: int,
                             exploration: EpisodeExploration, rng: np.random.Generator,
                             learn: Callable[[StepRecord], None]) -> EpisodeRecord:
    """One exploring episode on the robot; ``learn`` is called on this thread for each
    finished step, in order."""
    steps: queue.SimpleQueue[StepRecord] = queue.SimpleQueue()

    def drain() -> None:
        while not steps.empty():
            learn(steps.get())

    policy = ExploringPolicy(guard, exploration, rng)
    record = collector.collect(env_seed, policy, steps.put, drain)
    drain()
    return record


def evaluate_collected(collector: EpisodeCollector, guard: AgentGuard, episodes: int,
                       seed: int, revisit_window: int) -> dict[str, Any]:
    """Greedy success on the robot over the evaluation episode set (seeds ``seed + i``,
    objects cycling as ``graspq eval``)."""
    policy = GreedyGuardedPolicy(guard, revisit_window)
    records = [collector.collect(seed + i, policy, lambda _step: None, lambda: None,
                                 OBJECT_TYPES[i % len(OBJECT_TYPES)])
               for i in range(episodes)]
    return RolloutSummary(records).as_dict()
