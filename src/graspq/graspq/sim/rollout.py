"""Run seeded episodes with a policy and summarise them per object type."""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from graspq.actions import action_name, close_turn_steps
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy

Policy = Callable[[dict[str, np.ndarray]], int]
POLICIES = ("oracle", "random")


def make_policy(name: str, env: BaxterGraspEnv, seed: int) -> Policy:
    """A scripted policy by name: ``oracle`` (privileged object pose) or ``random``."""
    if name == "oracle":
        oracle = OraclePolicy(env)
        return lambda _obs: int(oracle.act())
    if name == "random":
        rng = np.random.default_rng(seed)
        return lambda _obs: int(rng.integers(env.action_space.n))
    raise ValueError(f"unknown policy {name!r} (known: {', '.join(POLICIES)})")


@dataclasses.dataclass(frozen=True)
class EpisodeRecord:
    """What one episode did."""

    seed: int
    object: str
    outcome: str
    steps: int
    episode_return: float
    closing_action: str | None = None
    """The action that closed the gripper and ended the episode (``CLOSE``, or a turned close
    such as ``CLOSE_YAW+2``); None for a time-out or where it was not recorded."""


@dataclasses.dataclass(frozen=True)
class RolloutSummary:
    """Success statistics over a set of episodes."""

    episodes: list[EpisodeRecord]

    def as_dict(self) -> dict[str, Any]:
        """The JSON report of ``graspq sim`` / ``graspq eval``."""
        records = self.episodes
        per_object: dict[str, dict[str, float]] = {}
        by_kind: dict[str, list[EpisodeRecord]] = collections.defaultdict(list)
        for record in records:
            by_kind[record.object].append(record)
        for kind in sorted(by_kind):
            group = by_kind[kind]
            per_object[kind] = {"episodes": len(group),
                                "success_rate": _rate(r.outcome == "success" for r in group)}
        successes = [r.steps for r in records if r.outcome == "success"]
        return {
            "episodes": len(records),
            "success_rate": _rate(r.outcome == "success" for r in records),
            "per_object": per_object,
            "mean_steps": float(np.mean([r.steps for r in records])) if records else 0.0,
            "mean_steps_to_success": float(np.mean(successes)) if successes else None,
            "mean_return": float(np.mean([r.episode_return for r in records]))
            if records else 0.0,
            "outcomes": dict(collections.Counter(r.outcome for r in records)),
            # Which close ended each object's episodes (a turned close says at what yaw).
            "closing_actions": {kind: dict(collections.Counter(
                r.closing_action for r in by_kind[kind] if r.closing_action is not None))
                for kind in sorted(by_kind)},
        }


def _rate(flags: Any) -> float:
    flags = list(flags)
    return float(np.mean(flags)) if flags else 0.0


def run_episodes(env: BaxterGraspEnv, policy: Policy, episodes: int, seed: int, *,
                 object_type: str | Sequence[str] | None = None,
                 on_frame: Callable[[np.ndarray], None] | None = None,
                 on_episode: Callable[[EpisodeRecord], None] | None = None) -> RolloutSummary:
    """Run ``episodes`` episodes, episode ``i`` seeded with ``seed + i``.

    ``object_type``: None draws the object from the seed; a name fixes it; a sequence of names
    is cycled through (a balanced evaluation set). ``on_frame`` receives the camera panel of
    every observation (needs ``render_mode="rgb_array"``); ``on_episode`` each finished
    episode's record. A policy with a ``reset()`` method (a stateful one, such as the
    greedy policy that never undoes its previous move) has it called as each episode starts.
    """
    kinds = [object_type] if isinstance(object_type, str) else object_type
    records = []
    reset_policy = getattr(policy, "reset", None)
    for index in range(episodes):
        options = {"object": kinds[index % len(kinds)]} if kinds else None
        observation, info = env.reset(seed=seed + index, options=options)
        if reset_policy is not None:
            reset_policy()
        if on_frame is not None:
            on_frame(env.render())
        total, done = 0.0, False
        while not done:
            action = int(policy(observation))
            observation, reward, terminated, truncated, info = env.step(action)
            total += reward
            done = terminated or truncated
            if on_frame is not None:
                on_frame(env.render())
        closed = terminated and close_turn_steps(action) is not None
        record = EpisodeRecord(seed + index, info["object"], info["outcome"], info["steps"],
                               total, action_name(action) if closed else None)
        records.append(record)
        if on_episode is not None:
            on_episode(record)
    return RolloutSummary(records)


@contextmanager
def frame_writer(video: Path | None, frames_dir: Path | None,
                 fps: int = 10) -> Iterator[Callable[[np.ndarray], None] | None]:
    """A frame sink writing an MP4 (``video``) or numbered PNGs (``frames_dir``), or None."""
    if video is None and frames_dir is None:
        yield None
        return
    import imageio.v2 as imageio  # only needed when a person wants to look

    if video is not None:
        video.parent.mkdir(parents=True, exist_ok=True)
        writer = imageio.get_writer(video, fps=fps, macro_block_size=1)
        try:
            yield writer.append_data
        finally:
            writer.close()
        return
    frames_dir.mkdir(parents=True, exist_ok=True)
    counter = iter(range(10**9))
    yield lambda frame: imageio.imwrite(frames_dir / f"frame_{next(counter):06d}.png", frame)
