#!/usr/bin/env python3
"""Where does a trained policy go wrong? Greedy episodes, each step checked against the oracle.

Runs a checkpoint's greedy policy on the final-evaluation episodes (or any seeded set) and, at
every step, asks the scripted oracle what it would do in the same state (privileged pose; it
never acts). Prints, per object type: the outcomes; for each oracle action, how often the
policy takes it and what it takes instead (so "the turn is never taken" shows as a row); and
the gripper's error at the moment it closes (yaw still to turn, horizontal offset, height
above the lowest allowed), split by outcome.

Usage: .venv/bin/python tools/grasp_diagnosis.py --checkpoint runs/NAME [--episodes 90]
    [--seed 2000000]
"""

from __future__ import annotations

import argparse
import collections
import math

import numpy as np
import torch

from graspq.actions import Action
from graspq.learning.policy_io import load_agent
from graspq.learning.reproduce import FINAL_EVAL_EPISODES, FINAL_EVAL_SEED
from graspq.learning.trainer import greedy_policy
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.rollout import EpisodeRecord, run_episodes
from graspq.sim.settings import OBJECT_TYPES


class _CheckedPolicy:
    """The greedy policy, with the oracle's choice and the closing errors recorded."""

    def __init__(self, env: BaxterGraspEnv, policy) -> None:
        self.env, self.policy, self.oracle = env, policy, OraclePolicy(env)
        self.pairs: list[tuple[int, int]] = []  # (oracle, policy) of the running episode
        self.close_error: tuple[float, float, float] | None = None

    def __call__(self, observation) -> int:
        action = int(self.policy(observation))
        self.pairs.append((int(self.oracle.act()), action))
        if action == Action.CLOSE:
            position, _ = self.env.fingertip_command
            offset = self.env.object_position() - position
            self.close_error = (abs(math.degrees(self.oracle.yaw_error())),
                                1000 * float(np.hypot(*offset[:2])),
                                1000 * float(position[2] - self.oracle.lowest_height()))
        return action


def diagnose(checkpoint: str, episodes: int, seed: int) -> str:
    """The report, as markdown."""
    agent, env_config, _ = load_agent(checkpoint)
    env = BaxterGraspEnv(env_config)
    checked = _CheckedPolicy(env, greedy_policy(agent))
    outcomes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    agreement: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    closes: dict[tuple[str, str], list] = collections.defaultdict(list)

    def on_episode(record: EpisodeRecord) -> None:
        outcomes[record.object][record.outcome] += 1
        for wanted, taken in checked.pairs:
            agreement[record.object][(wanted, taken)] += 1
        if checked.close_error is not None:
            closes[(record.object, record.outcome)].append(checked.close_error)
        checked.pairs, checked.close_error = [], None

    try:
        run_episodes(env, checked, episodes, seed, object_type=OBJECT_TYPES,
                     on_episode=on_episode)
    finally:
        env.close()
    lines = [f"Checkpoint `{checkpoint}`, {episodes} greedy episodes from seed {seed}.", ""]
    for kind in OBJECT_TYPES:
        lines += [f"## {kind}", "", "Outcomes: " + ", ".join(
            f"{name} {count}" for name, count in sorted(outcomes[kind].items())), ""]
        lines += ["| oracle action | states | policy agrees | policy's other choices |",
                  "|---|---|---|---|"]
        for wanted in Action:
            taken = {Action(a).name: n for (w, a), n in agreement[kind].items() if w == wanted}
            total = sum(taken.values())
            if total:
                others = sorted(((n, name) for name, n in taken.items() if name != wanted.name),
                                reverse=True)[:3]
                lines.append(f"| {wanted.name} | {total} | "
                             f"{taken.get(wanted.name, 0) / total:.0%} | "
                             + ", ".join(f"{name} {n / total:.0%}" for n, name in others) + " |")
        lines += ["", "| outcome | closes | yaw to turn, deg (mean, max) | horizontal offset, "
                  "mm (mean, max) | height above lowest, mm (mean) |", "|---|---|---|---|---|"]
        for (object_kind, outcome), errors in sorted(closes.items()):
            if object_kind == kind:
                yaw, offset, height = np.asarray(errors).T
                lines.append(f"| {outcome} | {len(errors)} | {yaw.mean():.1f}, {yaw.max():.1f}"
                             f" | {offset.mean():.1f}, {offset.max():.1f} | "
                             f"{height.mean():.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    parser.add_argument("--episodes", type=int, default=FINAL_EVAL_EPISODES)
    parser.add_argument("--seed", type=int, default=FINAL_EVAL_SEED)
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(diagnose(args.checkpoint, args.episodes, args.seed))


if __name__ == "__main__":
    main()
