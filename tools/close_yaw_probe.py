#!/usr/bin/env python3
"""At which yaw should a close close? Each close's lift rate on cubes under the gripper.

Cubes lie within ``--offset-m`` of the start position at any yaw (tools/yaw_probe.py's draws:
the same seeds give the same cubes). Each close of the action set (CLOSE and, with
``actions.close_yaw_turns`` N, the turned closes of +-1..N yaw steps) is taken once on every
cube from the start height. Per band of the yaw still to turn (by the nearest whole number of
turn steps), the table gives each close's lift rate, the aimed close's (the one that turns the
nearest whole number of steps towards a face) and the best close's per cube: the ceiling of a
policy that reads the yaw from its images and picks the close to match.

With ``--checkpoint RUN`` (a run trained with turned closes) it asks that policy too: on the
same cubes, how often its greedy first action is a close, the aimed close, and how often the
close it picks lifts the cube. With ``--episodes N`` it also runs the policy's greedy cube
episodes (the final evaluation's seeds, 2000000...) and, at the step that closes, gives the
yaw still to turn before and after the close's own turn and the fingertip's horizontal offset
from the cube, by outcome, and the lift rate by that residual yaw and by that offset.

Usage: MUJOCO_GL=egl .venv/bin/python tools/close_yaw_probe.py [--turns 3] [--states 300]
       MUJOCO_GL=egl .venv/bin/python tools/close_yaw_probe.py --checkpoint RUN [--states 300]
           [--episodes 100]
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import torch

from graspq.actions import action_count, action_name, close_actions, close_turn_steps
from graspq.bad_input import refused_by_name
from graspq.config import apply_overrides, load_config
from graspq.learning.agent import QAgent
from graspq.learning.policy_io import load_agent
from graspq.learning.reproduce import FINAL_EVAL_SEED
from graspq.learning.settings import TrainingConfig
from graspq.learning.trainer import GreedyPolicy
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy, wrap_angle
from graspq.sim.settings import EnvConfig

_spec = importlib.util.spec_from_file_location("yaw_probe", Path(__file__).with_name(
    "yaw_probe.py"))
yaw_probe = importlib.util.module_from_spec(_spec)
sys.modules["yaw_probe"] = yaw_probe
_spec.loader.exec_module(yaw_probe)


def steps_bands(yaw_step_deg: float, turns: int) -> list[tuple[int, float, float]]:
    """(whole turn steps to a face, low, high) per band of |yaw to turn| up to 45 deg."""
    bands, low = [], 0.0
    for steps in range(turns + 1):
        high = 45.0 if steps == turns else min(45.0, (steps + 0.5) * yaw_step_deg)
        bands.append((steps, low, high))
        low = high
        if high >= 45.0:
            break
    return bands


def aimed_close(yaw_deg: float, yaw_step_deg: float, turns: int) -> int:
    """The close that turns the nearest whole number of steps towards a face (within N)."""
    steps = int(np.clip(np.round(yaw_deg / yaw_step_deg), -turns, turns))
    return next(action for action in close_actions(action_count(turns))
                if close_turn_steps(action) == steps)


def lift_table(config: EnvConfig, count: int, offset_m: float, seed: int
               ) -> tuple[dict, np.ndarray, np.ndarray]:
    """The cubes' first observations, yaws to turn (deg) and lifts (cubes x closes, bool)."""
    closes = close_actions(action_count(config.actions.close_yaw_turns))
    height = config.scene.start_height_above_table_m
    lifted, obs, yaw = [], None, None
    for action in closes:
        obs, yaw, steps = yaw_probe.record(config, height, count, offset_m, seed,
                                           follow=lambda _i, _yaw, a=action: a)
        lifted.append([step.outcome == "success" for step in steps])
    return obs, yaw, np.array(lifted).T


def report(config: EnvConfig, count: int, offset_m: float, seed: int,
           agent: QAgent | None = None) -> list[str]:
    """Report lines: each close's lift rate by band, the aimed and best close's, and with a
    trained ``agent`` its greedy choice."""
    turns = config.actions.close_yaw_turns
    step = config.actions.yaw_step_deg
    closes = close_actions(action_count(turns))
    obs, yaw, lifted = lift_table(config, count, offset_m, seed)
    aimed = np.array([closes.index(aimed_close(value, step, turns)) for value in yaw])
    rows = np.arange(yaw.size)
    greedy = None
    if agent is not None:
        q = np.stack([agent.q_values({key: value[i] for key, value in obs.items()})
                      for i in rows])
        greedy = q.argmax(1)
    names = [action_name(action) for action in closes]
    lines = [f"{count} cubes within {offset_m * 100:g} cm of the start position, any yaw, "
             f"each closed once by every close from the start height; lift rates",
             "| yaw to turn | cubes | " + " | ".join(names) + " | aimed close | best close |"
             + (" policy closes | picks the aimed | its close lifts |" if agent else ""),
             "|---" * (len(names) + 4 + (3 if agent else 0)) + "|"]
    for steps, low, high in steps_bands(step, turns):
        band = (np.abs(yaw) >= low) & ((np.abs(yaw) < high) | (high >= 45.0))
        if not band.any():
            continue
        cells = [f"{lifted[band, column].mean():.0%}" for column in range(len(closes))]
        line = (f"| {low:g}-{high:g} deg ({steps} step{'s' if steps != 1 else ''}) | "
                f"{band.sum()} | " + " | ".join(cells)
                + f" | {lifted[rows[band], aimed[band]].mean():.0%} | "
                f"{lifted[band].any(axis=1).mean():.0%} |")
        if greedy is not None:
            picks = greedy[band]
            is_close = np.isin(picks, closes)
            picked_lifts = [lifted[i, closes.index(a)] for i, a in zip(rows[band], picks,
                                                                       strict=True)
                            if a in closes]
            line += (f" {is_close.mean():.0%} | "
                     f"{np.mean(picks == np.array(closes)[aimed[band]]):.0%} | "
                     + (f"{np.mean(picked_lifts):.0%} |" if picked_lifts else "n/a |"))
        lines.append(line)
    everything = (f"all: aimed close {lifted[rows, aimed].mean():.1%}, best close "
                  f"{lifted.any(axis=1).mean():.1%}, CLOSE {lifted[:, 0].mean():.1%}")
    return lines + ["", everything]


def at_the_close(agent: QAgent, config: EnvConfig, training: TrainingConfig, episodes: int,
                 seed: int = FINAL_EVAL_SEED) -> list[str]:
    """Report lines: the policy's greedy cube episodes, and the gripper at its closing step."""
    env = BaxterGraspEnv(config)
    oracle, policy = OraclePolicy(env), GreedyPolicy(agent, training.revisit_window)
    step = config.actions.yaw_step_deg
    outcomes, before, after, offsets = [], [], [], []
    try:
        for index in range(episodes):
            obs, _ = env.reset(seed=seed + index, options={"object": "cube"})
            policy.reset()
            done, closing = False, None
            while not done:
                action = policy(obs)
                turns = close_turn_steps(action)
                if turns is not None:
                    yaw = math.degrees(oracle.yaw_error())
                    # The yaw left after the turn, folded: a cube repeats every quarter turn.
                    closing = (abs(yaw), abs(wrap_angle(yaw - turns * step, 90.0)), 100 * float(
                        np.linalg.norm(env.fingertip_position()[:2] - env.object_position()[:2])))
                obs, _, terminated, truncated, info = env.step(action)
                done = terminated or truncated
            outcomes.append(info["outcome"])
            before.append(closing[0] if terminated else np.nan)
            after.append(closing[1] if terminated else np.nan)
            offsets.append(closing[2] if terminated else np.nan)
    finally:
        env.close()
    outcome, before, after, offsets = (np.array(outcomes), np.array(before),
                                       np.array(after), np.array(offsets))
    lines = [f"{episodes} greedy cube episodes (seeds {seed}...), at the step that closes",
             "| outcome | episodes | yaw to turn before the close (mean) | after its turn "
             "(mean / median) | fingertip offset from the cube (mean / median) |",
             "|---|---|---|---|---|"]
    for kind in ("success", "partial", "miss", "timeout"):
        rows = outcome == kind
        if not rows.any():
            continue
        if kind == "timeout":
            lines.append(f"| {kind} | {rows.sum()} | n/a | n/a | n/a |")
            continue
        lines.append(f"| {kind} | {rows.sum()} | {before[rows].mean():.1f} deg | "
                     f"{after[rows].mean():.1f} / {np.median(after[rows]):.1f} deg | "
                     f"{offsets[rows].mean():.2f} / {np.median(offsets[rows]):.2f} cm |")
    closed = ~np.isnan(after)
    lift = outcome == "success"
    for name, values, edges, unit in (("yaw after the turn", after, (0, 7.5, 15, 30, 45), "deg"),
                                      ("offset", offsets, (0, 0.5, 1, 1.5, 100), "cm")):
        cells = []
        for low, high in zip(edges, edges[1:], strict=False):
            last = high == edges[-1]  # the last bin holds its upper edge
            rows = closed & (values >= low) & ((values < high) | (last & (values <= high)))
            rate = f"{lift[rows].mean():.0%}" if rows.any() else "n/a"
            cells.append(f"{low:g}-{high:g} {unit}: {rows.sum()} closes, {rate} lift")
        lines.append(f"by {name}: " + "; ".join(cells))
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-config", default="config/env_reward_only.yaml")
    parser.add_argument("--turns", type=int, default=3,
                        help="actions.close_yaw_turns without --checkpoint")
    parser.add_argument("--states", type=int, default=300)
    parser.add_argument("--offset-m", type=float, default=0.01,
                        help="cubes lie within this of the start position in x and y")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", help="also ask this run's policy (its own scene)")
    parser.add_argument("--episodes", type=int, default=0,
                        help="with --checkpoint: also this many greedy cube episodes")
    args = parser.parse_args()
    torch.set_num_threads(1)
    agent = None
    if args.checkpoint:
        # Loaded before the closes are simulated: a running training prunes its checkpoints.
        with refused_by_name(parser):
            agent, config, training = load_agent(Path(args.checkpoint))
        if not config.actions.close_yaw_turns:
            parser.error(f"{args.checkpoint} was trained without turned closes")
    else:
        with refused_by_name(parser):
            config = apply_overrides(load_config(EnvConfig, args.env_config, "graspq_env"),
                                     [f"actions.close_yaw_turns={args.turns}"])
    print("\n".join(report(config, args.states, args.offset_m, args.seed, agent)))
    if agent is not None and args.episodes > 0:
        print("\n" + "\n".join(at_the_close(agent, config, training, args.episodes)))


if __name__ == "__main__":
    main()
