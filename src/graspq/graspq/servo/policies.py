"""What the servo runtime asks of a policy, and the policies it can run besides ONNX.

The runtime needs one call, ``decide(obs)``, returning the greedy action, the Q-values, the
paper's grasp probabilities (softmax of Q) and the decision latency: exactly what
:class:`graspq.policy.runtime.OnnxPolicy` returns, the deployable policy. The others here run
in the same loop for comparison and testing:

- :class:`AgentPolicy`: a trained :class:`~graspq.learning.agent.QAgent` in torch, greedy,
  the policy ``graspq eval`` scores (needs torch).
- :class:`RandomPolicy`: uniform random actions from a seeded generator.
- :class:`SequencePolicy`: replays a fixed action sequence (e.g. one read from an episode log).
- :class:`OracleDecisions`: the scripted privileged oracle of :mod:`graspq.sim.oracle`
  (simulation only: it reads the true object pose).

A policy that does not fit the configuration raises a ``ValueError`` when it is built (the
ONNX loader's ``PolicyMismatchError`` is one); an observation it cannot use makes ``decide``
raise a ``ValueError`` (``BadObservationError``). The runtime turns both into holds.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from graspq.actions import NUM_ACTIONS, Action

if TYPE_CHECKING:
    from graspq.learning.agent import QAgent
    from graspq.sim.oracle import OraclePolicy
    from graspq.sim.settings import EnvConfig


class Decision(Protocol):
    """One decision (``graspq.policy.runtime.PolicyDecision`` has this shape)."""

    @property
    def action(self) -> int: ...  # an Action (IntEnum) or its index

    @property
    def q_values(self) -> np.ndarray: ...  # float32 (A,)

    @property
    def grasp_probabilities(self) -> np.ndarray: ...  # float32 (A,), softmax of q_values

    @property
    def latency_ms(self) -> float: ...  # wall time of the decision


@runtime_checkable
class Policy(Protocol):
    """Anything that decides an action from one observation (:mod:`graspq.observation`).

    A greedy policy may also have ``revisit_window = W > 0``: the runtime then takes the best
    action by the decision's Q-values that does not go back to a pose of the episode's last
    W steps (:class:`graspq.actions.GreedyChooser`), the rule the policy was evaluated with.
    """

    def decide(self, obs: Mapping[str, np.ndarray]) -> Decision: ...


@dataclasses.dataclass(frozen=True)
class SimpleDecision:
    """A :class:`Decision` made by the policies of this module."""

    action: Action
    q_values: np.ndarray
    grasp_probabilities: np.ndarray
    latency_ms: float


def softmax(values: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, float32 (the paper's grasp probability readout)."""
    values = np.asarray(values, dtype=np.float64)
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return (shifted / shifted.sum(axis=-1, keepdims=True)).astype(np.float32)


def _uniform_decision(action: int, latency_ms: float) -> SimpleDecision:
    return SimpleDecision(Action(int(action)), np.zeros(NUM_ACTIONS, np.float32),
                          np.full(NUM_ACTIONS, 1.0 / NUM_ACTIONS, np.float32), latency_ms)


class AgentPolicy:
    """A :class:`~graspq.learning.agent.QAgent`'s greedy policy (``argmax_a Q(o, a)``, eval
    mode), the same decision ``graspq eval`` makes.

    ``revisit_window`` (the training config's, as ``graspq eval`` uses it) asks the servo
    runtime never to move back to a pose of the episode's last steps; ``decide`` is
    stateless.

    Raises :class:`graspq.policy.runtime.PolicyMismatchError` (as the ONNX loader does) if
    the agent's network does not fit ``env_config`` (image size, depth bounds, actions).
    """

    def __init__(self, agent: QAgent, env_config: EnvConfig,
                 clock: Callable[[], float] = time.perf_counter,
                 revisit_window: int = 0) -> None:
        network = agent.online.config
        camera = env_config.camera
        problems = []
        if network.image_size != camera.image_size:
            problems.append(f"image size: agent {network.image_size}, config "
                            f"{camera.image_size}")
        if tuple(agent.depth_bounds) != (camera.depth_near_m, camera.depth_far_m):
            problems.append(f"depth bounds: agent {tuple(agent.depth_bounds)} m, config "
                            f"{(camera.depth_near_m, camera.depth_far_m)} m")
        if network.num_actions != NUM_ACTIONS:
            problems.append(f"actions: agent {network.num_actions}, action table "
                            f"{NUM_ACTIONS}")
        if problems:
            from graspq.policy.runtime import PolicyMismatchError  # onnxruntime: only here

            raise PolicyMismatchError("agent does not fit this configuration: "
                                      + "; ".join(problems))
        self.agent = agent
        self.revisit_window = revisit_window
        self._clock = clock

    def decide(self, obs: Mapping[str, np.ndarray]) -> SimpleDecision:
        start = self._clock()
        q = self.agent.q_values(obs)
        latency_ms = (self._clock() - start) * 1e3
        return SimpleDecision(Action(int(np.argmax(q))), q.astype(np.float32), softmax(q),
                              latency_ms)


class RandomPolicy:
    """Uniformly random actions from a seeded generator (Q-values reported as zeros)."""

    def __init__(self, rng: np.random.Generator) -> None:
        self._rng = rng

    def decide(self, obs: Mapping[str, np.ndarray]) -> SimpleDecision:
        return _uniform_decision(int(self._rng.integers(NUM_ACTIONS)), 0.0)


class SequencePolicy:
    """Replays ``actions`` in order, then repeats the last one."""

    def __init__(self, actions: Sequence[int]) -> None:
        if not actions:
            raise ValueError("SequencePolicy needs at least one action")
        self._actions = [Action(int(a)) for a in actions]
        self._next = 0

    def decide(self, obs: Mapping[str, np.ndarray]) -> SimpleDecision:
        action = self._actions[min(self._next, len(self._actions) - 1)]
        self._next += 1
        return _uniform_decision(action, 0.0)


class OracleDecisions:
    """The privileged scripted oracle as a policy (simulation only; ignores ``obs`` and reads
    the true state of the oracle's env at the moment of the decision)."""

    def __init__(self, oracle: OraclePolicy) -> None:
        self._oracle = oracle

    def decide(self, obs: Mapping[str, np.ndarray]) -> SimpleDecision:
        return _uniform_decision(self._oracle.act(), 0.0)
