#!/usr/bin/env python3
"""How far off the object a CLOSE may start and still lift it: the grasp tolerance a policy
has to reach, per object type and yaw, along x and along y.

Each cell resets the scene with the object at the workspace centre shifted by the offset
(the fingertip starts above the centre) and closes at once; S = lifted, p = touched but not
lifted (partial), . = missed. With the descend close this is the precision the reward-only
learner must perceive (docs/results_reward_only_notes.md).

Usage: .venv/bin/python tools/close_tolerance.py [--env-config config/env_reward_only.yaml]
           [--objects cube:60 cube:75 sphere:0 cylinder:0] [--max-mm 24] [--step-mm 4]
"""

from __future__ import annotations

import argparse
import math

from graspq.actions import Action
from graspq.bad_input import refused_by_name
from graspq.config import load_config
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import ENV_NODE_NAME, EnvConfig


def _cell(env: BaxterGraspEnv, kind: str, x: float, y: float, yaw_deg: float) -> str:
    env.reset(seed=1, options={"object": kind, "object_pose": (x, y, math.radians(yaw_deg))})
    _, reward, _, _, _ = env.step(int(Action.CLOSE))
    rewards = env.config.rewards
    return "S" if reward == rewards.success else ("p" if reward == rewards.partial else ".")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-config", default="config/env_reward_only.yaml")
    parser.add_argument("--objects", nargs="+", default=["cube:60", "cube:75", "sphere:0",
                                                         "cylinder:0"],
                        help="TYPE:YAW_DEG (world yaw; the gripper starts at start_yaw_deg)")
    parser.add_argument("--max-mm", type=int, default=24)
    parser.add_argument("--step-mm", type=int, default=4)
    args = parser.parse_args()
    with refused_by_name(parser):
        config = load_config(EnvConfig, args.env_config, ENV_NODE_NAME)
    offsets = range(-args.max_mm, args.max_mm + 1, args.step_mm)
    env = BaxterGraspEnv(config)
    try:
        cx, cy = config.scene.workspace_center_xy_m
        print(f"close_mode {config.actions.close_mode}; offsets in mm: "
              + " ".join(f"{d:+d}" for d in offsets))
        for item in args.objects:
            kind, _, yaw = item.partition(":")
            for axis in ("x", "y"):
                cells = [_cell(env, kind, cx + d / 1000 * (axis == "x"),
                               cy + d / 1000 * (axis == "y"), float(yaw or 0))
                         for d in offsets]
                print(f"{kind:>9} yaw {float(yaw or 0):5.1f} along {axis}: {' '.join(cells)}")
    finally:
        env.close()


if __name__ == "__main__":
    main()
