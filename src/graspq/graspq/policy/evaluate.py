"""``graspq eval --policy FILE.onnx``: an exported policy (float32 or int8) in the MuJoCo scene,
scored on the episode set ``graspq eval`` scores a checkpoint on.

Same episodes (seed ``seed + i``, objects cycling cube, sphere, cylinder), same greedy rule
(argmax with the file's revisit window), under the env config stored in the file, so a
policy file and the checkpoint it came from compare directly; and so do the float32 and int8
files of one checkpoint (issue #25).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from graspq.actions import GreedyChooser
from graspq.policy import metadata as meta
from graspq.policy.runtime import OnnxPolicy


class OnnxGreedyPolicy:
    """An :class:`OnnxPolicy`'s greedy choice for :func:`graspq.sim.rollout.run_episodes`
    (which calls :meth:`reset` as each episode starts)."""

    def __init__(self, policy: OnnxPolicy, revisit_window: int) -> None:
        self.policy = policy
        self.chooser = GreedyChooser(revisit_window)

    def reset(self) -> None:
        """Forget the episode's moves (a new episode)."""
        self.chooser.reset()

    def __call__(self, obs: dict[str, np.ndarray]) -> int:
        return int(self.chooser.choose(self.policy.decide(obs).q_values))


def evaluate_policy_file(path: str | Path, episodes: int, seed: int,
                         revisit_window: int | None = None,
                         object_type: str | None = None) -> dict[str, Any]:
    """Greedy success of the policy file over ``episodes`` object-balanced episodes (the
    report of ``graspq eval``, plus the file's precision). ``revisit_window`` None: the
    file's own. ``object_type``: every episode on this type (a held-out one too) instead."""
    from graspq.sim.env import BaxterGraspEnv
    from graspq.sim.rollout import run_episodes
    from graspq.sim.settings import OBJECT_TYPES

    if episodes < 1:
        raise ValueError("--episodes must be at least 1")
    if revisit_window is not None and revisit_window < 0:
        raise ValueError(f"--revisit-window must be 0 or more, got {revisit_window}")
    env_config = meta.stored_env_config(path)
    policy = OnnxPolicy(path, env_config)
    window = policy.revisit_window if revisit_window is None else revisit_window
    env = BaxterGraspEnv(env_config)
    try:
        summary = run_episodes(env, OnnxGreedyPolicy(policy, window), episodes, seed,
                               object_type=object_type or OBJECT_TYPES)
    finally:
        env.close()
    return {**summary.as_dict(), "policy": str(path), "precision": policy.precision,
            "seed": seed, "revisit_window": window}
