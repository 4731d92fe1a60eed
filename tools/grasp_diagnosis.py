#!/usr/bin/env python3
"""Where does a trained policy go wrong? Greedy episodes, each step checked against the oracle.

Runs a checkpoint's greedy policy on the final-evaluation episodes (or any seeded set) and, at
every step, asks the scripted oracle what it would do in the same state (privileged pose; it
never acts). Prints, per object type: the outcomes, and how the time-outs end (a loop of two
opposite moves, a longer cycle, or neither); with a revisit window, how many greedy choices
the rule overrode (moves back to a recent pose) and what it took instead; for each oracle
action, how often the policy takes it and what it takes instead (so "the turn is never
taken" shows as a row); the gripper's error at the moment it closes (yaw still to turn,
horizontal offset, height above the lowest allowed), split by outcome; the Q-value of each
action taken against the discounted return that followed it (a Q above the return is
overestimation: the first step of every episode, and every step of the episodes a close
ended, whose returns no time limit cut), and where the oracle moves in x or y, the gap
between the Q of its move and of the opposite one; and, for a network
trained with the auxiliary pose loss, how well its pose head reads the object's offset and
the cube's yaw. For the cube it also splits the outcomes by the yaw to turn at the start, and
the oracle's turns by the yaw still to turn (past 45 deg less half a turn step, either turn
takes as many steps: see ``OraclePolicy.tied_turn``).

Usage: .venv/bin/python tools/grasp_diagnosis.py --checkpoint runs/NAME [--episodes 90]
    [--seed 2000000] [--revisit-window W]  (default: the checkpoint's revisit_window)
"""

from __future__ import annotations

import argparse
import collections
import math

import numpy as np
import torch

from graspq.actions import MOVE_DIRECTIONS, Action, GreedyChooser, action_name, close_turn_steps
from graspq.bad_input import refused_by_name
from graspq.learning.demonstrations import TURNS
from graspq.learning.policy_io import load_agent
from graspq.learning.pose import decode_pose, pose_target
from graspq.learning.reproduce import FINAL_EVAL_EPISODES, FINAL_EVAL_SEED
from graspq.learning.settings import evaluation_revisit_window
from graspq.sim.env import BaxterGraspEnv
from graspq.sim.oracle import OraclePolicy
from graspq.sim.rollout import EpisodeRecord, run_episodes
from graspq.sim.settings import OBJECT_TYPES

OPPOSITE_XY = {int(a): int(b) for a, b in ((Action.PLUS_X, Action.MINUS_X),
                                           (Action.MINUS_X, Action.PLUS_X),
                                           (Action.PLUS_Y, Action.MINUS_Y),
                                           (Action.MINUS_Y, Action.PLUS_Y))}


def _closes(action: int) -> bool:
    """CLOSE or a turned close (``actions.close_yaw_turns``): the action that ends a grasp."""
    return close_turn_steps(action) is not None


class _CheckedPolicy:
    """The greedy policy, with the oracle's choice, the closing errors and (if the network
    has a pose head) its pose predictions recorded."""

    def __init__(self, env: BaxterGraspEnv, agent, revisit_window: int) -> None:
        self.env, self.agent, self.oracle = env, agent, OraclePolicy(env)
        self.chooser = GreedyChooser(revisit_window)
        self.pairs: list[tuple[int, int]] = []  # (oracle, policy) of the running episode
        self.close_error: tuple[float, float, float] | None = None
        self.poses: list[tuple[np.ndarray, np.ndarray]] = []  # (target, predicted)
        self.blocked: collections.Counter[str] = collections.Counter()  # what was taken instead
        self.start_yaw: float | None = None  # |yaw to turn| at the episode's start, deg
        self.turns: list[tuple[float, int, int]] = []  # (|yaw|, oracle's turn, taken)
        self.q_taken: list[float] = []  # Q(s, a) of each action taken in the running episode
        # Where the oracle moves in x or y: Q(its move) - Q(the opposite move), the action gap
        # that decides whether the greedy policy heads for the object or away.
        self.move_gaps: list[float] = []

    def reset(self) -> None:
        self.chooser.reset()

    def __call__(self, observation) -> int:
        if self.agent.online.pose_head is None:
            q = self.agent.q_values(observation)
        else:  # the Q-values and the pose prediction from one pass, in eval mode
            self.agent.online.eval()
            with torch.no_grad():
                q, predicted = self.agent.online.forward_with_pose(
                    *self.agent._inputs(observation))
            q = q[0].numpy()
            self.poses.append((pose_target(self.oracle), predicted[0].numpy()))
        action = int(self.chooser.choose(q))
        self.q_taken.append(float(q[action]))
        if action != int(np.argmax(q)):  # the rule overrode a move back to a recent pose
            self.blocked[action_name(action)] += 1
        wanted = int(self.oracle.act())
        self.pairs.append((wanted, action))
        if wanted in OPPOSITE_XY:
            self.move_gaps.append(float(q[wanted] - q[OPPOSITE_XY[wanted]]))
        yaw = abs(math.degrees(self.oracle.yaw_error()))
        if self.start_yaw is None:
            self.start_yaw = yaw
        if wanted in TURNS:
            self.turns.append((yaw, wanted, action))
        if _closes(action):
            position, _ = self.env.fingertip_command
            offset = self.oracle.object_offset()
            self.close_error = (abs(math.degrees(self.oracle.yaw_error())),
                                1000 * float(np.hypot(*offset[:2])),
                                1000 * float(position[2] - self.oracle.lowest_height()))
        return action


class _RewardLog:
    """The env as run_episodes drives it (reset, step, render), keeping the running episode's
    rewards for the value check."""

    def __init__(self, env: BaxterGraspEnv) -> None:
        self.env = env
        self.rewards: list[float] = []

    def reset(self, **kwargs):  # noqa: ANN003, ANN201 - BaxterGraspEnv.reset's
        self.rewards = []
        return self.env.reset(**kwargs)

    def step(self, action: int):  # noqa: ANN201 - BaxterGraspEnv.step's
        result = self.env.step(action)
        self.rewards.append(float(result[1]))
        return result

    def render(self):  # noqa: ANN201
        return self.env.render()


def returns_to_go(rewards: list[float], gamma: float) -> np.ndarray:
    """The discounted return from each step to the episode's end: G_t = r_t + gamma G_t+1."""
    returns = np.zeros(len(rewards))
    following = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        following = rewards[t] + gamma * following
        returns[t] = following
    return returns


def loop_axis(actions: list[int], length: int = 8) -> str:
    """How an episode's action sequence ends: "loop on x" (y, z, yaw) if its last ``length``
    actions alternate between the two opposite moves of one axis (the greedy policy undoing
    its own step, state after state); "cycle of 4: A, B, C, D" if they repeat four moves
    that bring the gripper back where it was (what a loop can become when the policy may not
    undo its last move); else "no loop"."""
    tail = actions[-length:]
    if len(tail) < length:
        return "no loop"
    for period in (2, 4):
        cycle = tail[-period:]
        repeats = all(tail[i] == tail[i + period] for i in range(length - period))
        if not repeats or any(_closes(a) for a in cycle):
            continue
        net = np.sum([MOVE_DIRECTIONS[Action(a)] for a in cycle], axis=0)
        if not net.any():  # back where it was, every ``period`` moves
            if period == 2:  # two opposite moves of one axis
                axis = int(np.flatnonzero(MOVE_DIRECTIONS[Action(cycle[0])])[0])
                return f"loop on {('x', 'y', 'z', 'yaw')[axis]}"
            return "cycle of 4: " + ", ".join(Action(a).name for a in cycle)
    return "no loop"


def diagnose(checkpoint: str, episodes: int, seed: int,
             revisit_window: int | None = None) -> str:
    """The report, as markdown. ``revisit_window`` overrides the checkpoint's."""
    agent, env_config, training = load_agent(checkpoint)
    window = evaluation_revisit_window(training, revisit_window)
    env = BaxterGraspEnv(env_config)
    checked = _CheckedPolicy(env, agent, window)
    outcomes: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    agreement: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    closes: dict[tuple[str, str], list] = collections.defaultdict(list)
    poses: dict[str, list] = collections.defaultdict(list)
    loops: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    blocked: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    by_start_yaw: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    turns: list[tuple[float, int, int]] = []
    # (Q of the action taken, discounted return from there): the first step of every episode,
    # and every step of the episodes a close ended (a time-out's return stops at the limit).
    values: dict[tuple[str, str], list] = collections.defaultdict(list)
    move_gaps: dict[str, list[float]] = collections.defaultdict(list)
    bands = _yaw_bands(env.config.actions.yaw_step_deg)
    logged = _RewardLog(env)

    def on_episode(record: EpisodeRecord) -> None:
        outcomes[record.object][record.outcome] += 1
        if record.outcome == "timeout":
            loops[record.object][loop_axis([taken for _, taken in checked.pairs])] += 1
        for wanted, taken in checked.pairs:
            agreement[record.object][(wanted, taken)] += 1
        if checked.close_error is not None:
            closes[(record.object, record.outcome)].append(checked.close_error)
        poses[record.object] += checked.poses
        blocked[record.object] += checked.blocked
        if record.object == "cube":
            by_start_yaw[_band(bands, checked.start_yaw)][record.outcome] += 1
            turns.extend(checked.turns)
        returns = returns_to_go(logged.rewards, training.gamma)
        values[(record.object, "first")].append((checked.q_taken[0], returns[0]))
        if record.outcome != "timeout":
            values[(record.object, "closed")] += list(zip(checked.q_taken, returns,
                                                          strict=True))
        move_gaps[record.object] += checked.move_gaps
        checked.pairs, checked.close_error, checked.poses = [], None, []
        checked.q_taken, checked.move_gaps = [], []
        checked.blocked, checked.start_yaw, checked.turns = collections.Counter(), None, []

    try:
        run_episodes(logged, checked, episodes, seed, object_type=OBJECT_TYPES,
                     on_episode=on_episode)
    finally:
        env.close()
    rule = (f", never moving back to a pose of its last {window} steps" if window > 1 else
            ", never undoing its previous move" if window == 1 else "")
    lines = [f"Checkpoint `{checkpoint}`, {episodes} greedy episodes from seed {seed}{rule}.",
             ""]
    for kind in OBJECT_TYPES:
        lines += [f"## {kind}", "", "Outcomes: " + ", ".join(
            f"{name} {count}" for name, count in sorted(outcomes[kind].items())), ""]
        if loops[kind]:
            lines += ["Time-outs by how they end: " + ", ".join(
                f"{axis} {count}" for axis, count in sorted(loops[kind].items())), ""]
        if blocked[kind]:
            lines += [f"Moves back blocked: {blocked[kind].total()}; taken instead: " + ", ".join(
                f"{name} {count}" for name, count in blocked[kind].most_common()), ""]
        lines += ["| oracle action | states | policy agrees | policy's other choices |",
                  "|---|---|---|---|"]
        for wanted in Action:
            taken = {action_name(a): n for (w, a), n in agreement[kind].items() if w == wanted}
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
        lines += _value_report(values[(kind, "first")], values[(kind, "closed")],
                               training.gamma, move_gaps[kind])
        if kind == "cube":
            lines += _yaw_report(bands, by_start_yaw, turns)
        if poses[kind]:
            lines += _pose_report(kind, poses[kind])
    return "\n".join(lines)


def _yaw_bands(step_deg: float) -> list[tuple[float, float]]:
    """|yaw to turn| bands, deg: aligned (half a step), then one band per further turn, the
    last cut at 45 (with 15 deg steps: 37.5-45, where both turns take three steps)."""
    edges = [0.0]
    while edges[-1] + step_deg < 45.0:
        edges.append(step_deg / 2 if len(edges) == 1 else edges[-1] + step_deg)
    return list(zip(edges, edges[1:] + [45.0], strict=True))


def _band(bands: list[tuple[float, float]], yaw: float | None) -> str:
    for low, high in bands:
        if yaw is not None and yaw <= high + 1e-6:
            return f"{low:g}-{high:g} deg"
    return "none"


def _yaw_report(bands: list[tuple[float, float]], by_start: dict[str, collections.Counter],
                turns: list[tuple[float, int, int]]) -> list[str]:
    """The cube's outcomes by the yaw to turn at the start, and what the policy does where the
    oracle turns, by the yaw still to turn."""
    lines = ["| yaw to turn at the start | episodes | outcomes |", "|---|---|---|"]
    for low, high in bands:
        label = f"{low:g}-{high:g} deg"
        if by_start.get(label):
            outcomes = ", ".join(f"{name} {n}" for name, n in sorted(by_start[label].items()))
            lines.append(f"| {label} | {by_start[label].total()} | {outcomes} |")
    lines += ["", "| yaw still to turn, oracle turns | states | policy turns the oracle's way "
              "| the other way | descends | closes | else |", "|---|---|---|---|---|---|---|"]
    for low, high in bands:
        label = f"{low:g}-{high:g} deg"
        taken = [(wanted, action) for yaw, wanted, action in turns
                 if _band(bands, yaw) == label]
        if taken:
            same = sum(action == wanted for wanted, action in taken)
            other = sum(action != wanted and action in TURNS
                        for wanted, action in taken)
            down = sum(action == Action.MINUS_Z for _, action in taken)
            close = sum(_closes(action) for _, action in taken)
            cells = [same, other, down, close, len(taken) - same - other - down - close]
            lines.append(f"| {label} | {len(taken)} | "
                         + " | ".join(f"{n / len(taken):.0%}" for n in cells) + " |")
    return lines + [""]


def _value_report(first: list[tuple[float, float]], closed: list[tuple[float, float]],
                  gamma: float, move_gaps: list[float]) -> list[str]:
    """Q of the actions taken against the discounted return that followed (gamma of the
    run): a Q above the return over many states is overestimation. Then the gap between the
    oracle's x/y move and its opposite: small or negative, and the greedy policy wanders."""
    lines = [f"| values (gamma {gamma:g}) | states | mean Q(s, a) of the action taken | mean "
             "discounted return from there | Q minus return |", "|---|---|---|---|---|"]
    for label, pairs in (("first step of every episode", first),
                         ("every step of the episodes a close ended", closed)):
        if pairs:
            q, returned = np.asarray(pairs).T
            lines.append(f"| {label} | {len(pairs)} | {q.mean():.2f} | {returned.mean():.2f} "
                         f"| {q.mean() - returned.mean():+.2f} |")
    if move_gaps:
        gaps = np.asarray(move_gaps)
        lines += ["", "| action gap where the oracle moves in x or y | states | mean | 10th "
                  "percentile | the opposite move valued higher |", "|---|---|---|---|---|",
                  f"| Q(the oracle's move) - Q(its opposite) | {gaps.size} | {gaps.mean():+.2f} "
                  f"| {np.percentile(gaps, 10):+.2f} | {np.mean(gaps < 0):.0%} |"]
    return lines + [""]


def _pose_report(kind: str, pairs: list[tuple[np.ndarray, np.ndarray]]) -> list[str]:
    """How far the pose head's predictions are from the truth, by height above the object."""
    target, predicted = (np.stack(side) for side in zip(*pairs, strict=True))
    (target_m, target_yaw), (predicted_m, predicted_yaw) = map(decode_pose, (target, predicted))
    offset_mm = 1000 * (predicted_m - target_m)
    # a cube's yaw repeats every 90 deg
    yaw_error = (np.degrees(predicted_yaw - target_yaw) + 45) % 90 - 45
    above_cm = -100 * target_m[:, 2]  # fingertip above the object's centre
    lines = ["| pose head, fingertip above object | states | offset error x / y / z, mm (rms) "
             + ("| yaw error, deg (rms, median abs) |" if kind == "cube" else "|"),
             "|---|---|---|" + ("---|" if kind == "cube" else "")]
    for low, high, label in ((-np.inf, 4, "under 4 cm"), (4, 8, "4-8 cm"),
                             (8, np.inf, "8 cm or more")):
        rows = (above_cm >= low) & (above_cm < high)
        if rows.any():
            rms = np.sqrt((offset_mm[rows] ** 2).mean(axis=0))
            cells = [label, str(int(rows.sum())), " / ".join(f"{v:.1f}" for v in rms)]
            if kind == "cube":
                cells.append(f"{np.sqrt((yaw_error[rows] ** 2).mean()):.1f}, "
                             f"{np.median(np.abs(yaw_error[rows])):.1f}")
            lines.append("| " + " | ".join(cells) + " |")
    return lines + [""]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="checkpoint file or run directory")
    parser.add_argument("--episodes", type=int, default=FINAL_EVAL_EPISODES)
    parser.add_argument("--seed", type=int, default=FINAL_EVAL_SEED)
    parser.add_argument("--revisit-window", type=int, default=None, metavar="W",
                        help="never move back to a pose of the last W steps; 0 = plain "
                        "argmax, 1 = never undo the previous move (default: the "
                        "checkpoint's revisit_window)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with refused_by_name(parser):
        report = diagnose(args.checkpoint, args.episodes, args.seed, args.revisit_window)
    print(report)


if __name__ == "__main__":
    main()
