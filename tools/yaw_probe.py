#!/usr/bin/env python3
"""Can the GQN read a cube's yaw from where the reward-only policy closes? A supervised probe.

The reward-only policy closes from the start height (the descend close lowers it), and it never
turns first (docs/results_reward_only.md). Turning pays only if the network can tell how far
the fingers are off the cube's faces. This probe asks that of the cameras alone: it records
cubes lying under the gripper (within ``--offset-m`` of the start position, any yaw), each
observed from a given fingertip height through a given wrist-camera field of view, and trains
a GQN (the recipe's widths) to regress the yaw still to turn, as (cos 4e, sin 4e) on its first
two outputs (a cube repeats every 90 deg). On held-out cubes it reports the median error of
the read yaw and how often the read decides the right action at the turn step's resolution:
close (within half a turn step), turn one way or the other.

Each setting is a fresh set of cubes and a fresh network; the held-out cubes are the same
draws in every setting (same seeds), only the camera or the height differs.

With ``--checkpoint RUN`` it asks a trained policy instead, on cubes drawn the same way in the
run's own scene at its start height: per band of the yaw still to turn, how often closing
right there lifts the cube (each state is closed once after it is observed), the greedy
action (close, the turn towards a face, the turn away, anything else), and the mean Q-values
of close, of the turn towards a face and of the best x, y or z move. A policy that has learnt
to turn shows Q(turn) above Q(close) and above the moves where the close fails. A second
table takes the turn towards a face, and the best move, from the same cubes instead and sets
each one's Q against its one-step target r + gamma max Q' there: a turn valued further below
its own target than the move is short of updates (exploration); a target as low as the
turn's value says the turned states themselves are valued low. A run trained with advantage
learning has its correction in the target, - alpha (max Q(s) - Q(s, a)) of the same network
at the cube's state: its fixed point holds every action below the best by 1 / (1 - alpha)
times its gap, so without it a non-greedy action would look far below its target.

With ``--close-value N ...`` it asks whether a Q-learner's close targets could teach that: the
same network regresses the reward of closing (success, partial or miss, as the close's
terminal target is) from N closed cubes, and the report compares its value per yaw band with
the real one on held-out cubes. Few closed cubes against many says whether the data or the
learner is short.

Usage: MUJOCO_GL=egl .venv/bin/python tools/yaw_probe.py [--settings 70:0.15 35:0.15 70:0.06]
    [--views multi single] [--states 2500] [--updates 2000] [--seed 0]
    (a setting is WRIST_FOVY_DEG:HEIGHT_ABOVE_TABLE_M)
       MUJOCO_GL=egl .venv/bin/python tools/yaw_probe.py --checkpoint RUN [--states 600]
       MUJOCO_GL=egl .venv/bin/python tools/yaw_probe.py --close-value 500 2000 [--states 2500]
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch

from graspq.actions import MOVE_DIRECTIONS, TURNS, Action
from graspq.bad_input import refused_by_name
from graspq.config import apply_overrides, load_config
from graspq.learning.model import GraspQNetwork, preprocess
from graspq.learning.policy_io import load_agent
from graspq.learning.settings import NetworkConfig, TrainingConfig
from graspq.observation import MOTOR_KEY, OVERHEAD_KEY, WRIST_KEY
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.settings import EnvConfig

_BATCH = 32
_HELD_OUT = 0.2
_CUBE_PERIOD_DEG = 90.0


class Step(NamedTuple):
    """What one action taken right after an observation led to."""

    outcome: str  # the env's outcome ("success", "partial", "miss", "running", ...)
    reward: float
    observation: dict[str, np.ndarray]  # the observation after the action
    yaw_to_turn_deg: float  # the yaw still to turn after the action


def record(config: EnvConfig, height_m: float, count: int, offset_m: float, seed: int,
           follow: Callable[[int, float], Action] | None = None
           ) -> tuple[dict[str, np.ndarray], np.ndarray, list[Step]]:
    """``count`` observations of a cube near the start position, its yaw to turn (deg), and
    (with ``follow``, given the cube's index and that yaw) what taking ``follow(i, yaw)``
    right after each observation led to. The same seeds give the same cubes whatever follows."""
    env = BaxterGraspEnv(config)
    rng = np.random.default_rng(seed)
    centre = np.asarray(config.scene.workspace_center_xy_m)
    keys = (OVERHEAD_KEY, WRIST_KEY, MOTOR_KEY)
    observations: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    yaw_to_turn = np.empty(count)
    steps: list[Step] = []
    try:
        oracle = OraclePolicy(env)
        for i in range(count):
            x, y = centre + rng.uniform(-offset_m, offset_m, 2)
            obs, _ = env.reset(seed=seed * 1_000_000 + i, options={
                "object": "cube", "object_pose": (x, y, rng.uniform(-math.pi, math.pi)),
                "start_height_above_table_m": height_m})
            for key in keys:
                observations[key].append(obs[key])
            yaw_to_turn[i] = math.degrees(oracle.yaw_error())
            if follow is not None:
                after, reward, _, _, info = env.step(follow(i, yaw_to_turn[i]))
                steps.append(Step(info["outcome"], float(reward),
                                  {key: after[key] for key in keys},
                                  math.degrees(oracle.yaw_error())))
    finally:
        env.close()
    return ({key: np.stack(value) for key, value in observations.items()}, yaw_to_turn,
            steps)


def _close(_index: int, _yaw_deg: float) -> Action:
    return Action.CLOSE


def _turn_towards(_index: int, yaw_deg: float) -> Action:
    """The turn that lessens the yaw still to turn (the sign ``ask_policy`` calls towards)."""
    return Action.PLUS_YAW if yaw_deg > 0 else Action.MINUS_YAW


def _decision(yaw_deg: np.ndarray, half_step_deg: float) -> np.ndarray:
    """0: close (within half a turn step of a face), 1/-1: turn that way."""
    return np.where(np.abs(yaw_deg) <= half_step_deg, 0, np.sign(yaw_deg)).astype(int)


def _held_out(count: int) -> np.ndarray:
    """Indices of the held-out states: the last ``_HELD_OUT`` of ``count``."""
    return np.arange(int((1 - _HELD_OUT) * count), count)


def _fit(obs: dict[str, np.ndarray], target: np.ndarray, train: int, views: str,
         updates: int, seed: int, config: EnvConfig, offset_channels: bool = False
         ) -> tuple[np.ndarray, float]:
    """Train a fresh GQN (the recipe's widths; with ``offset_channels``, the
    ``network.fingertip_offset_channels`` extension too) to regress ``target`` (N, K) on its
    first K outputs from the first ``train`` states; its outputs on the held-out last 20 % and
    the training time."""
    torch.manual_seed(seed)
    widths = NetworkConfig(stream_channels=16, joint_channels=32, fc_width=128,
                           fingertip_features=True, fingertip_offset_channels=offset_channels)
    net = GraspQNetwork(widths.gqn(config.camera.image_size, views))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-4)
    near, far = config.camera.depth_near_m, config.camera.depth_far_m
    wanted = torch.as_tensor(target, dtype=torch.float32)
    outputs = wanted.shape[1]

    def inputs(index: np.ndarray):
        chosen = {key: value[index] for key, value in obs.items()
                  if views == "multi" or key != WRIST_KEY}
        return preprocess(chosen, "cpu", near, far)

    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    net.train()
    for _ in range(updates):
        batch = rng.integers(0, train, _BATCH)
        loss = torch.nn.functional.mse_loss(net(*inputs(batch))[:, :outputs], wanted[batch])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    net.eval()
    held_out = _held_out(len(target))
    with torch.no_grad():
        return net(*inputs(held_out))[:, :outputs].numpy(), time.perf_counter() - start


def probe(obs: dict[str, np.ndarray], yaw_deg: np.ndarray, views: str, updates: int,
          seed: int, half_step_deg: float, config: EnvConfig) -> dict[str, float]:
    """Train a yaw regressor on the first 80 % of the states; held-out figures."""
    angle = np.radians(yaw_deg) * (360.0 / _CUBE_PERIOD_DEG)
    held_out = _held_out(yaw_deg.size)
    read, seconds = _fit(obs, np.stack((np.cos(angle), np.sin(angle)), 1), held_out[0],
                         views, updates, seed, config)
    read_deg = np.degrees(np.arctan2(read[:, 1], read[:, 0])) * (_CUBE_PERIOD_DEG / 360.0)
    wanted = yaw_deg[held_out]
    error = np.abs((read_deg - wanted + _CUBE_PERIOD_DEG / 2) % _CUBE_PERIOD_DEG
                   - _CUBE_PERIOD_DEG / 2)
    decided = _decision(read_deg, half_step_deg) == _decision(wanted, half_step_deg)
    return {"median_error_deg": float(np.median(error)),
            "within_half_step": float(np.mean(error <= half_step_deg)),
            "right_decision": float(np.mean(decided)),
            "held_out": int(held_out.size),
            "train_seconds": seconds}


def _bands(half_step_deg: float) -> tuple[tuple[float, float], ...]:
    """Bands of |yaw to turn|: within half a turn step, within one more step, the rest."""
    return ((0.0, half_step_deg), (half_step_deg, 3 * half_step_deg), (3 * half_step_deg, 45.0))


def _in_band(yaw_deg: np.ndarray, low: float, high: float) -> np.ndarray:
    return (np.abs(yaw_deg) >= low) & ((np.abs(yaw_deg) < high) | (high >= 45.0))


def learn_close_value(config: EnvConfig, states: int, train_sizes: list[int], updates: int,
                      offset_m: float, seed: int) -> list[str]:
    """Report lines: a GQN regressing the reward of closing (success, partial, miss: noisy
    and binary, as a Q-learner's close targets are) from few or many closed cubes; does its
    value follow the yaw on held-out cubes?"""
    obs, yaw, closes = record(config, config.scene.start_height_above_table_m, states,
                              offset_m, seed, follow=_close)
    reward = np.array([[step.reward] for step in closes])
    held_out = _held_out(states)
    bands = _bands(config.actions.yaw_step_deg / 2)
    header = " | ".join(f"{low:g}-{high:g} deg" for low, high in bands)
    lines = [f"{states} cubes closed once each at the start height; held out: the last "
             f"{held_out.size}; {updates} updates of {_BATCH}; per band of the yaw to turn: "
             "mean predicted reward of closing (mean actual)",
             f"| train cubes | {header} | train s |", "|---" * (len(bands) + 2) + "|"]
    in_band = [_in_band(yaw[held_out], *band) for band in bands]
    actual = [_band_mean(reward[held_out, 0], rows) for rows in in_band]
    for size in train_sizes:
        predicted, seconds = _fit(obs, reward, size, "multi", updates, seed, config)
        cells = [f"{_band_mean(predicted[:, 0], rows)} ({value})"
                 for rows, value in zip(in_band, actual, strict=True)]
        lines.append(f"| {size} | {' | '.join(cells)} | {seconds:.0f} |")
    return lines


def _band_mean(values: np.ndarray, rows: np.ndarray) -> str:
    """Mean of ``values[rows]`` to two places, or "n/a" for a band no held-out cube fell in."""
    return f"{values[rows].mean():.2f}" if rows.any() else "n/a"


def _one_step_targets(steps: list[Step], q_after: np.ndarray, training: TrainingConfig,
                      gap: np.ndarray) -> np.ndarray:
    """Each step's reward plus the discounted best value where it led, less advantage
    learning's correction as the trainer's target has it: alpha times ``gap``, the action's
    distance below the best at the state it was taken in (no correction where alpha is 0)."""
    return (np.array([step.reward for step in steps]) + training.gamma * q_after.max(1)
            - training.advantage_learning * gap)


def ask_policy(checkpoint: str, count: int, offset_m: float, seed: int) -> list[str]:
    """Report lines: what a trained policy does with cubes under its gripper, by yaw band, and
    whether its turn's value agrees with where the turn leads (one-step look-ahead)."""
    agent, config, training = load_agent(Path(checkpoint))
    height = config.scene.start_height_above_table_m
    obs, yaw, closes = record(config, height, count, offset_m, seed, follow=_close)
    _, _, turns = record(config, height, count, offset_m, seed, follow=_turn_towards)

    def q_of(observations: list[dict[str, np.ndarray]]) -> np.ndarray:
        return np.stack([agent.q_values(o) for o in observations])

    q = q_of([{key: value[i] for key, value in obs.items()} for i in range(yaw.size)])
    moves = [int(action) for action in MOVE_DIRECTIONS if action not in TURNS]
    best_move_action = np.array(moves)[q[:, moves].argmax(1)]
    _, _, moved = record(config, height, count, offset_m, seed,
                         follow=lambda i, _yaw: Action(best_move_action[i]))
    q_turned = q_of([step.observation for step in turns])
    q_moved = q_of([step.observation for step in moved])
    toward = np.array([int(_turn_towards(i, value)) for i, value in enumerate(yaw)])
    away = np.where(toward == int(Action.PLUS_YAW), int(Action.MINUS_YAW),
                    int(Action.PLUS_YAW))
    rows = np.arange(yaw.size)
    greedy = q.argmax(1)
    best_move = q[:, moves].max(1)  # the best x, y or z move (what "other" takes)
    lifted = np.array([step.outcome == "success" for step in closes])
    turn_target = _one_step_targets(turns, q_turned, training, q.max(1) - q[rows, toward])
    move_target = _one_step_targets(moved, q_moved, training, q.max(1) - best_move)
    closes_after = q_turned.argmax(1) == int(Action.CLOSE)
    yaw_after = np.abs([step.yaw_to_turn_deg for step in turns])
    half_step = config.actions.yaw_step_deg / 2
    lines = [f"{checkpoint}: {count} cubes within {offset_m * 100:g} cm of the start position "
             f"at the start height ({height * 100:g} cm)",
             "| yaw to turn | cubes | closing there lifts | greedy: close | turn towards | "
             "turn away | other | mean Q(close) | mean Q(turn towards) | mean Q(best move) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    look_ahead = [
        f"one step on from the same cubes (gamma {training.gamma:g}, advantage learning "
        f"{training.advantage_learning:g}): the turn towards a face and the best move, each "
        "against its one-step target r + gamma max Q' - alpha (max Q - Q)",
        "| yaw to turn | mean yaw to turn after the turn | Q(turn towards) | its target | "
        "Q'(close) after it | greedy closes after it | Q(best move) | its target |",
        "|---|---|---|---|---|---|---|---|"]
    for low, high in _bands(half_step):
        band = _in_band(yaw, low, high)
        if not band.any():
            continue
        chosen = greedy[band]
        share = [np.mean(chosen == int(Action.CLOSE)), np.mean(chosen == toward[band]),
                 np.mean(chosen == away[band])]
        q_toward = q[rows[band], toward[band]].mean()
        lines.append(
            f"| {low:g}-{high:g} deg | {band.sum()} | {lifted[band].mean():.0%} | "
            + " | ".join(f"{value:.0%}" for value in share) + f" | {1 - sum(share):.0%} | "
            f"{q[band, int(Action.CLOSE)].mean():.2f} | {q_toward:.2f} | "
            f"{best_move[band].mean():.2f} |")
        look_ahead.append(
            f"| {low:g}-{high:g} deg | {yaw_after[band].mean():.1f} deg | {q_toward:.2f} | "
            f"{turn_target[band].mean():.2f} | {q_turned[band, int(Action.CLOSE)].mean():.2f} "
            f"| {closes_after[band].mean():.0%} | {best_move[band].mean():.2f} | "
            f"{move_target[band].mean():.2f} |")
    return lines + [""] + look_ahead


def _setting(text: str) -> tuple[float, float]:
    """``FOVY_DEG:HEIGHT_M`` of ``--settings`` as two numbers, or argparse's error naming it."""
    try:
        fovy, height = (float(part) for part in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not FOVY_DEG:HEIGHT_M") from None
    return fovy, height


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env-config", default="config/env_reward_only.yaml")
    parser.add_argument("--settings", nargs="+", type=_setting,
                        default=[_setting(s) for s in ("70:0.15", "35:0.15", "70:0.06")],
                        metavar="FOVY_DEG:HEIGHT_M")
    parser.add_argument("--views", nargs="+", choices=("multi", "single"), default=["multi"])
    parser.add_argument("--states", type=int, default=2500)
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--offset-m", type=float, default=0.01,
                        help="cubes lie within this of the start position in x and y")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--checkpoint", help="ask this run's policy instead (see above)")
    parser.add_argument("--close-value", type=int, nargs="+", metavar="TRAIN_CUBES",
                        help="instead: regress the reward of closing from this many closed "
                        "cubes (each size a fresh network; held out: the last 20 %% of "
                        "--states) and compare its value per yaw band with the real one")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.close_value:
        limit = int(_held_out(args.states)[0])
        if max(args.close_value) > limit:
            parser.error(f"--close-value sizes must be at most {limit} (80 % of --states)")
        with refused_by_name(parser):
            base = load_config(EnvConfig, args.env_config, "graspq_env")
        print("\n".join(learn_close_value(base, args.states, args.close_value, args.updates,
                                          args.offset_m, args.seed)))
        return
    if args.checkpoint:
        with refused_by_name(parser):
            lines = ask_policy(args.checkpoint, args.states, args.offset_m, args.seed)
        print("\n".join(lines))
        return
    with refused_by_name(parser):
        base = load_config(EnvConfig, args.env_config, "graspq_env")
    half_step = base.actions.yaw_step_deg / 2
    print(f"{args.states} cubes per setting within {args.offset_m * 100:g} cm of the start "
          f"position, any yaw; {args.updates} updates of {_BATCH}; held out: the last "
          f"{_HELD_OUT:.0%}; a right decision: close within {half_step:g} deg of a face, "
          "else the turn towards it")
    print("| wrist fovy | height above table | views | median yaw error | within "
          f"{half_step:g} deg | right decision | train s |")
    print("|---|---|---|---|---|---|---|")
    for fovy, height in args.settings:
        config = apply_overrides(base, [f"camera.wrist_fovy_deg={fovy:g}"])
        obs, yaw, _ = record(config, height, args.states, args.offset_m, args.seed)
        for views in args.views:
            result = probe(obs, yaw, views, args.updates, args.seed, half_step, config)
            print(f"| {fovy:g} deg | {height * 100:g} cm | {views} | "
                  f"{result['median_error_deg']:.1f} deg | {result['within_half_step']:.0%} | "
                  f"{result['right_decision']:.0%} | {result['train_seconds']:.0f} |",
                  flush=True)


if __name__ == "__main__":
    main()
