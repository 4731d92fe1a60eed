#!/usr/bin/env python3
"""Can the GQN read where the object lies against the fingertip, from either view? A probe.

Single-view DDQN on the reward-only recipe closes where it starts (docs/results_reward_only.md):
it never learns the moves towards the object. Before blaming the learner, this asks the
cameras: it records objects anywhere in the scene's spawn range with the fingertip starting
over them, at most ``--offset-m`` away in x and y (the env's ``start_offset_half_xy_m``), so
that the object and the gripper both move about the overhead view, and trains a GQN of the
recipe's widths to regress the object's offset from the fingertip (x, y, cm) on its first two
outputs. On the held-out last 20 % it reports the median error per axis, how often both axes
are read within half a move step, and how often the read picks the right move per axis (stay
within half a step, else the step towards the object), against reading no offset at all.

With ``--offset-channels`` each view is also probed with ``network.fingertip_offset_channels``
(each overhead pixel's point less the fingertip position as three more input channels).

Usage: MUJOCO_GL=egl .venv/bin/python tools/offset_probe.py [--views single multi]
    [--states 3000] [--updates 3000] [--offset-m 0.04] [--seed 0] [--offset-channels]
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np
import torch

from graspq.bad_input import refused_by_name
from graspq.config import load_config
from graspq.observation import MOTOR_KEY, OVERHEAD_KEY, WRIST_KEY
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.settings import EnvConfig

_spec = importlib.util.spec_from_file_location("yaw_probe", Path(__file__).with_name(
    "yaw_probe.py"))
yaw_probe = importlib.util.module_from_spec(_spec)
sys.modules["yaw_probe"] = yaw_probe
_spec.loader.exec_module(yaw_probe)


def record(config: EnvConfig, count: int, offset_m: float, seed: int
           ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """``count`` first observations and the object's offset from the commanded fingertip
    (N, 2) in cm, the fingertip starting within ``offset_m`` of the object in x and y."""
    env = BaxterGraspEnv(config)
    keys = (OVERHEAD_KEY, WRIST_KEY, MOTOR_KEY)
    observations: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    offsets = np.empty((count, 2), np.float32)
    try:
        for i in range(count):
            obs, _ = env.reset(seed=seed * 1_000_000 + i,
                               options={"start_offset_half_xy_m": offset_m})
            for key in keys:
                observations[key].append(obs[key])
            offsets[i] = (env.object_position()[:2] - env.fingertip_command[0][:2]) * 100
    finally:
        env.close()
    return {key: np.stack(value) for key, value in observations.items()}, offsets


def _moves(offset_cm: np.ndarray, half_step_cm: float) -> np.ndarray:
    """Per axis: 0 to stay (within half a step), else the sign of the step towards it."""
    return np.where(np.abs(offset_cm) <= half_step_cm, 0, np.sign(offset_cm)).astype(int)


def probe(obs: dict[str, np.ndarray], offsets: np.ndarray, views: str, updates: int,
          seed: int, half_step_cm: float, config: EnvConfig, offset_channels: bool = False
          ) -> dict[str, float]:
    """Train an offset regressor on the first 80 % of the states; held-out figures."""
    train = int(yaw_probe._held_out(len(offsets))[0])
    read, seconds = yaw_probe._fit(obs, offsets, train, views, updates, seed, config,
                                   offset_channels)
    truth = offsets[yaw_probe._held_out(len(offsets))]
    error = np.abs(read - truth)
    right = _moves(read, half_step_cm) == _moves(truth, half_step_cm)
    return {"median_x_cm": float(np.median(error[:, 0])),
            "median_y_cm": float(np.median(error[:, 1])),
            "within_half_step": float(np.mean(np.all(error <= half_step_cm, axis=1))),
            "right_move_per_axis": float(np.mean(right)),
            "right_move_both": float(np.mean(np.all(right, axis=1))),
            "unread_median_cm": float(np.median(np.abs(truth))),
            "train_seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-config", default="config/env_reward_only.yaml")
    parser.add_argument("--views", nargs="+", choices=("multi", "single"),
                        default=["single", "multi"])
    parser.add_argument("--states", type=int, default=3000)
    parser.add_argument("--updates", type=int, default=3000)
    parser.add_argument("--offset-m", type=float, default=0.04,
                        help="the fingertip starts within this of the object in x and y")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--offset-channels", action="store_true",
                        help="also each view with network.fingertip_offset_channels")
    args = parser.parse_args()
    if args.states < 10:
        parser.error("--states must be at least 10 (20 %% of them are held out)")
    if not 0.0 <= args.offset_m <= 0.13:
        parser.error("--offset-m must lie in [0, 0.13] m (the workspace's half width)")
    torch.set_num_threads(1)
    with refused_by_name(parser):
        config = load_config(EnvConfig, args.env_config, "graspq_env")
    half_step_cm = config.actions.translation_step_m * 100 / 2
    obs, offsets = record(config, args.states, args.offset_m, args.seed)
    print(f"{args.states} objects anywhere in the spawn range, the fingertip within "
          f"{args.offset_m * 100:g} cm of each at the start height; {args.updates} updates of "
          f"{yaw_probe._BATCH}; held out: the last {yaw_probe._HELD_OUT:.0%}; a right move: "
          f"stay within {half_step_cm:g} cm, else the step towards the object")
    print("| views | median error x / y | both within half a step | right move per axis | "
          "right move, both axes | offset unread (median) | train s |")
    print("|---|---|---|---|---|---|---|")
    variants = [(views, channels) for views in args.views
                for channels in ((False, True) if args.offset_channels else (False,))]
    for views, channels in variants:
        result = probe(obs, offsets, views, args.updates, args.seed, half_step_cm, config,
                       channels)
        name = f"{views} + offset channels" if channels else views
        print(f"| {name} | {result['median_x_cm']:.2f} / {result['median_y_cm']:.2f} cm | "
              f"{result['within_half_step']:.0%} | {result['right_move_per_axis']:.0%} | "
              f"{result['right_move_both']:.0%} | {result['unread_median_cm']:.2f} cm | "
              f"{result['train_seconds']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
