#!/usr/bin/env python3
"""How well can the GQN read the oracle's next action off its inputs? A supervised probe.

Records noisy-oracle episodes (a random action with probability ``--epsilon``, every state
labelled with the oracle's choice), trains a GQN as a classifier of those labels on the first
80 % of the states and reports held-out accuracy as it goes, both with BatchNorm's running
statistics (eval mode, what acting and TD targets use) and with batch statistics (train
mode). It separates "the network cannot perceive it" from "Q-learning does not learn it".

Usage: .venv/bin/python tools/imitation_probe.py [--episodes 1600] [--epsilon 0.2]
    [--updates 4000] [--bn-momentum 1.0 0.1] [--seed 0] [--balance [POWER]]
    [--motor joints fingertip] [--fingertip-unit-m 0.01]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from graspq.actions import NUM_ACTIONS, Action
from graspq.learning.demonstrations import record_oracle_episodes
from graspq.learning.fingertip import DEFAULT_UNIT_M
from graspq.learning.model import GraspQNetwork, preprocess
from graspq.learning.replay import ReplayBuffer
from graspq.learning.settings import NetworkConfig
from graspq.learning.targets import label_balance_weights
from graspq.sim.env import BaxterGraspEnv

_BATCH = 32
_CHECK_EVERY = 500
_EVAL_CHUNK = 256


def record(episodes: int, epsilon: float, seed: int) -> ReplayBuffer:
    """Noisy-oracle episodes with oracle labels, in a replay buffer."""
    env = BaxterGraspEnv()
    buffer = ReplayBuffer(episodes * (env.config.max_steps + 1), env.config.camera.image_size)
    try:
        seeds = range(5_000_000 + seed * episodes, 5_000_000 + (seed + 1) * episodes)
        noise = np.random.default_rng(seed)  # one generator through all, as before
        record_oracle_episodes(env, buffer, ((env_seed, noise) for env_seed in seeds), epsilon)
    finally:
        env.close()
    return buffer


def probe(buffer: ReplayBuffer, momentum: float, updates: int, seed: int,
          balance: float = 0.0, motor: str = "joints",
          fingertip_unit_m: float = DEFAULT_UNIT_M) -> list[str]:
    """Train a classifier; one report line per check. ``balance`` weights each action's
    loss by its share of the training labels to the power -balance (1: rare turns count as
    much as common moves; :func:`graspq.learning.targets.label_balance_weights`).
    ``motor``: "joints" (the paper's motor state) or "fingertip" (with the fingertip pose
    computed from it, network.fingertip_features)."""
    label = motor if motor == "joints" else f"{motor}, {fingertip_unit_m:g} m units"
    torch.manual_seed(seed)
    # The widths of config/training_demos.yaml.
    widths = NetworkConfig(stream_channels=16, joint_channels=32, fc_width=128,
                           batchnorm_momentum=momentum,
                           fingertip_features=motor == "fingertip",
                           fingertip_unit_m=fingertip_unit_m)
    net = GraspQNetwork(widths.gqn(buffer.image_size, "multi"))
    optimizer = torch.optim.Adam(net.parameters(), lr=3e-4)
    slots = np.flatnonzero(buffer._valid)  # written in episode order: split by time
    split = int(0.8 * slots.size)
    train, held_out = slots[:split], slots[split:]
    labels = buffer._expert

    def inputs(index: np.ndarray):
        return preprocess(buffer._gather(index), "cpu", buffer.depth_near_m, buffer.depth_far_m)

    def predict(index: np.ndarray, train_mode: bool) -> tuple[np.ndarray, np.ndarray]:
        """(predicted, label) of ``index``; train mode keeps only full chunks, whose batch
        statistics are those of _EVAL_CHUNK states."""
        net.train(train_mode)
        chunks = [index[i:i + _EVAL_CHUNK] for i in range(0, index.size, _EVAL_CHUNK)]
        # (Fewer states than one chunk: all of them as one batch.)
        chunks = [c for c in chunks if c.size == _EVAL_CHUNK or not train_mode] or [index]
        with torch.no_grad():
            predicted = [net(*inputs(c)).argmax(1).numpy() for c in chunks]
        kept = np.concatenate(chunks)
        return np.concatenate(predicted), labels[kept]

    def accuracy(index: np.ndarray, train_mode: bool) -> float:
        predicted, wanted = predict(index, train_mode)
        return float(np.mean(predicted == wanted))

    weights = None
    if balance:  # the trainer's margin_balance weights, here on the cross-entropy
        counts = np.bincount(labels[train], minlength=NUM_ACTIONS)
        weights = torch.as_tensor(label_balance_weights(counts, balance))
    rng = np.random.default_rng(seed)
    lines, start = [], time.perf_counter()
    for update in range(1, updates + 1):
        batch = train[rng.integers(0, train.size, _BATCH)]
        net.train()
        loss = torch.nn.functional.cross_entropy(net(*inputs(batch)),
                                                 torch.as_tensor(labels[batch]),
                                                 weight=weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if update % _CHECK_EVERY == 0:
            lines.append(f"| {label} | {momentum:g} | {update} | "
                         f"{accuracy(held_out, False):.1%} | {accuracy(held_out, True):.1%} | "
                         f"{time.perf_counter() - start:.0f} |")
    predicted, wanted = predict(held_out, False)
    per_action = [_action_report(predicted[wanted == a], a)
                  for a in range(NUM_ACTIONS) if np.any(wanted == a)]
    lines.append(f"|  |  | per action (eval mode, end): {', '.join(per_action)} | | | |")
    return lines


def _action_report(predicted: np.ndarray, label: int) -> str:
    """"CLOSE 74% (else MINUS_Z 15%)": how often the label is predicted, and the most common
    wrong prediction."""
    report = f"{Action(label).name} {np.mean(predicted == label):.0%}"
    wrong = predicted[predicted != label]
    if wrong.size:
        common = int(np.bincount(wrong, minlength=NUM_ACTIONS).argmax())
        report += f" (else {Action(common).name} {np.mean(predicted == common):.0%})"
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=1600)
    parser.add_argument("--epsilon", type=float, default=0.2)
    parser.add_argument("--updates", type=int, default=4000)
    parser.add_argument("--bn-momentum", type=float, nargs="+", default=[1.0, 0.1])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--balance", type=float, nargs="?", const=1.0, default=0.0,
                        metavar="POWER", help="weight the loss by action frequency to the "
                        "power -POWER (alone: 1, inverse frequency; 0.5: inverse square root)")
    parser.add_argument("--fingertip-unit-m", type=float, default=DEFAULT_UNIT_M,
                        help="length that counts as 1 in the fingertip position features")
    parser.add_argument("--motor", nargs="+", choices=("joints", "fingertip"),
                        default=["joints"], help="motor input: the joint angles alone, or "
                        "with the fingertip pose computed from them (network.fingertip_features)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    buffer = record(args.episodes, args.epsilon, args.seed)
    print(f"{len(buffer)} labelled states from {args.episodes} episodes "
          f"(epsilon {args.epsilon:g}); held out: the last 20 %")
    print("| motor input | BN momentum | updates | held-out accuracy, eval mode | train mode "
          "| seconds |")
    print("|---|---|---|---|---|---|")
    for motor in args.motor:
        for momentum in args.bn_momentum:
            for line in probe(buffer, momentum, args.updates, args.seed, args.balance, motor,
                              args.fingertip_unit_m):
                print(line, flush=True)


if __name__ == "__main__":
    main()
