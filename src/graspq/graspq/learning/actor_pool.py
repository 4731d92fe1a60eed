"""Episode workers as Ray actors: placement, weights through the object store, restarts.

``graspq train --actors N`` keeps one episode in flight per actor and learns from whichever
finishes first. Ray does the distributed work: it starts the actor processes (on this machine,
or on a cluster with ``--ray ADDRESS``), ships the learner's weights through its object store
(one ``ray.put`` per version, shared by every actor), and restarts an actor whose process dies
(``max_restarts=-1``), running its interrupted episode again from the start on the new
process (``max_task_retries=-1``): the learner gets every episode whole, once, or not at all.
An episode whose scene raises is dropped and its actor restarted.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from graspq.learning.actors import ActorEpisode, EpisodeTask, EpisodeWorker
from graspq.learning.settings import TrainingConfig
from graspq.sim.settings import EnvConfig

LOCAL = "local"  # --ray value: start Ray in this process, on this machine
_MAX_FAILURES_IN_A_ROW = 5  # an actor failing this often in a row is a bug, not bad luck


class ActorPoolError(ValueError):
    """The actors cannot start or go on (Ray missing, no cluster at the address, episodes
    that keep failing). A ValueError, so the CLI reports it as bad input, without a
    traceback."""


def _import_ray() -> Any:
    try:
        import ray
    except ImportError as exc:
        raise ActorPoolError("--actors needs Ray: pip install -r requirements.txt (it pins "
                             "ray), or run with --actors 1") from exc
    return ray


def _worker_env() -> dict[str, str]:
    """Environment the actor processes need on any node (headless MuJoCo rendering)."""
    return {"MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}


class ActorPool:
    """``count`` Ray actors, each an :class:`EpisodeWorker`."""

    def __init__(self, training: TrainingConfig, env_config: EnvConfig, count: int,
                 address: str = LOCAL, log: Callable[[str], None] = print) -> None:
        if count < 1:
            raise ActorPoolError(f"--actors must be at least 1, got {count}")
        self._ray = ray = _import_ray()
        self._log = log
        self._owns_ray = not ray.is_initialized()
        if self._owns_ray:
            runtime_env = {"env_vars": _worker_env()}
            try:
                if address == LOCAL:
                    # Each actor asks for a core; a machine with fewer still runs them all.
                    ray.init(num_cpus=max(count, os.cpu_count() or 1), include_dashboard=False,
                             runtime_env=runtime_env, log_to_driver=False)
                else:
                    ray.init(address=address, runtime_env=runtime_env, log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise ActorPoolError(f"cannot start or reach Ray at {address!r}: "
                                     f"{str(exc).splitlines()[0]}") from exc
        remote = ray.remote(num_cpus=1, max_restarts=-1, max_task_retries=-1)(EpisodeWorker)
        self._in_flight: dict[Any, tuple[int, EpisodeTask]] = {}
        self._failures = [0] * count
        self._weights: Any = None
        self.version = 0
        self.actors = [remote.remote(training, env_config, index) for index in range(count)]
        try:  # wait until every scene is built: a broken worker fails here, not mid-run
            ray.get([actor.pid.remote() for actor in self.actors])
        except ray.exceptions.RayError as exc:
            self.close()
            raise ActorPoolError(f"the actors could not start: {str(exc).splitlines()[-1]}"
                                 ) from exc

    @property
    def count(self) -> int:
        return len(self.actors)

    def publish(self, weights: Mapping[str, Any]) -> int:
        """Put new online weights in the object store; tasks sent from now on act with them.
        Returns their version."""
        self._weights = self._ray.put({name: tensor.detach().cpu().clone()
                                       for name, tensor in weights.items()})
        self.version += 1
        return self.version

    def idle(self) -> list[int]:
        """Actors with no episode in flight."""
        busy = {actor for actor, _ in self._in_flight.values()}
        return [actor for actor in range(self.count) if actor not in busy]

    def submit(self, actor: int, task: EpisodeTask) -> None:
        """Start ``task`` on ``actor`` (with the latest published weights)."""
        if self._weights is None:
            raise ActorPoolError("publish weights before the first episode")
        ref = self.actors[actor].run_episode.remote(task, self._weights)
        self._in_flight[ref] = (actor, task)

    def next_finished(self) -> ActorEpisode | None:
        """Wait for the next episode to end; ``None`` if it was dropped (its actor raised,
        and is being restarted)."""
        ray = self._ray
        ready, _ = ray.wait(list(self._in_flight), num_returns=1)
        actor, task = self._in_flight.pop(ready[0])
        try:
            episode = ray.get(ready[0])
        except ray.exceptions.RayTaskError as exc:
            self._fail(actor, task, f"its scene raised: {str(exc).splitlines()[-1]}")
            ray.kill(self.actors[actor], no_restart=False)
            return None
        except ray.exceptions.RayActorError as exc:
            self._fail(actor, task, f"it died: {str(exc).splitlines()[0]}")
            return None
        self._failures[actor] = 0
        return episode

    def _fail(self, actor: int, task: EpisodeTask, why: str) -> None:
        self._failures[actor] += 1
        self._log(f"actor {actor}: episode {task.index} dropped whole, {why}")
        if self._failures[actor] >= _MAX_FAILURES_IN_A_ROW:
            raise ActorPoolError(f"actor {actor} failed {self._failures[actor]} episodes in "
                                 "a row; stopping (the run's last checkpoint is intact)")

    def actor_pids(self) -> list[int]:
        """Process ids of the actors (for tests and diagnostics)."""
        return self._ray.get([actor.pid.remote() for actor in self.actors])

    def close(self, drain_s: float = 60.0) -> None:
        """Stop the actors, and Ray if this pool started it. Episodes in flight are let finish
        (up to ``drain_s``) and dropped, as episodes never started: killing an actor mid-task
        would have Ray report a failed task it then never retries."""
        if self._in_flight:
            self._ray.wait(list(self._in_flight), num_returns=len(self._in_flight),
                           timeout=drain_s)
        for actor in self.actors:
            self._ray.kill(actor, no_restart=True)
        self._in_flight.clear()
        if self._owns_ray:
            self._ray.shutdown()
