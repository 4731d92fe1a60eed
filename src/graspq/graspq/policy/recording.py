"""Observations recorded from the MuJoCo scene, for calibrating and checking an int8 policy.

The int8 policy must act like the float32 one in the states the policy itself meets, so half
of the episodes are driven by the float32 policy (greedy, plus a share of random actions so
that it also strays, and leaves the loops its revisit window would end), the other half by
the privileged oracle (approach, descent and closed grippers, which a weak policy rarely
reaches). Episode ``i`` is seeded ``seed + i`` and its object cycles cube, sphere, cylinder,
as ``graspq eval`` does, so two sets recorded with seeds far apart share no episode.
"""

from __future__ import annotations

import numpy as np

from graspq.actions import NUM_ACTIONS
from graspq.observation import MOTOR_KEY, OVERHEAD_KEY, WRIST_KEY
from graspq.policy.runtime import OnnxPolicy
from graspq.sim.settings import OBJECT_TYPES, EnvConfig

RANDOM_SHARE = 0.2
"""Share of steps that take a uniformly random action instead of the driver's."""


def record_observations(env_config: EnvConfig, policy: OnnxPolicy | None, count: int,
                        seed: int) -> dict[str, np.ndarray]:
    """``count`` observations of seeded episodes, stacked on a batch axis (all three keys of
    :mod:`graspq.observation`, whatever the policy's views).

    Even episodes follow ``policy`` (None: the oracle drives every episode), odd ones the
    oracle; each step takes a random action with probability :data:`RANDOM_SHARE`. The random
    draws come from a generator seeded with ``seed``, so a set is reproducible.
    """
    from graspq.sim.env import BaxterGraspEnv
    from graspq.sim.oracle import OraclePolicy

    if count < 1:
        raise ValueError(f"need at least one observation, got {count}")
    rng = np.random.default_rng(seed)
    env = BaxterGraspEnv(env_config)
    frames: list[dict[str, np.ndarray]] = []
    try:
        oracle = OraclePolicy(env)
        episode = 0
        while len(frames) < count:
            obs, _ = env.reset(seed=seed + episode,
                               options={"object": OBJECT_TYPES[episode % len(OBJECT_TYPES)]})
            by_policy = policy is not None and episode % 2 == 0
            done = False
            while not done and len(frames) < count:
                frames.append(obs)
                action = int(policy.decide(obs).action if by_policy else oracle.act())
                if rng.random() < RANDOM_SHARE:
                    action = int(rng.integers(NUM_ACTIONS))
                obs, _, terminated, truncated, _ = env.step(action)
                done = terminated or truncated
            episode += 1
    finally:
        env.close()
    return {key: np.stack([frame[key] for frame in frames])
            for key in (OVERHEAD_KEY, WRIST_KEY, MOTOR_KEY)}
