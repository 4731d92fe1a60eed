"""``graspq servo --sim``, plugged into :mod:`graspq.cli`.

Runs the servo runtime on the MuJoCo scene with every sensor a separate device (latency and
jitter included) over the same episode set as ``graspq eval`` (seeds ``seed + i``, objects
cycling cube, sphere, cylinder), so its success rate compares with eval's directly. Handlers
import the heavy modules only when they run, so ``graspq --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from graspq.reporting import print_report

_SCRIPTED = ("random", "oracle")


def _warn(line: str) -> None:
    print(line, file=sys.stderr)


def _policy(args: argparse.Namespace, env: Any, env_config: Any, servo: Any) -> tuple[Any, str]:
    """The policy the flags name, and a label for the report."""
    import numpy as np

    from graspq.servo import policies

    if args.checkpoint is not None:
        import torch

        from graspq.learning.policy_io import load_agent

        torch.set_num_threads(servo.policy_threads)
        agent, _, training = load_agent(args.checkpoint)
        return (policies.AgentPolicy(agent, env_config,
                                     revisit_window=training.revisit_window),
                str(args.checkpoint))
    if args.policy == "random":
        return policies.RandomPolicy(np.random.default_rng(args.seed)), "random"
    if args.policy == "oracle":
        from graspq.sim.oracle import OraclePolicy

        return policies.OracleDecisions(OraclePolicy(env)), "oracle"
    from graspq.policy.runtime import OnnxPolicy, PolicyConfig

    path = Path(args.policy)
    policy = OnnxPolicy(path, env_config,
                        config=PolicyConfig(intra_op_threads=servo.policy_threads))
    return policy, str(path)


def _env_config(args: argparse.Namespace) -> Any:
    from graspq.config import load_config
    from graspq.sim.settings import ENV_NODE_NAME, EnvConfig

    if args.env_config is not None:
        return load_config(EnvConfig, args.env_config, ENV_NODE_NAME)
    if args.checkpoint is not None:  # as `graspq eval`: the config it was trained under
        from graspq.learning.policy_io import load_agent

        return load_agent(args.checkpoint)[1]
    return EnvConfig()


def _cmd_servo(args: argparse.Namespace) -> int:
    from graspq.config import apply_overrides, load_config, to_mapping
    from graspq.servo.episode_log import EpisodeLogger
    from graspq.servo.runtime import ServoRuntime
    from graspq.servo.settings import SERVO_NODE_NAME, ServoSimConfig
    from graspq.servo.sim_devices import ServoSim, run_servo_episodes
    from graspq.sim.env import BaxterGraspEnv
    from graspq.sim.settings import OBJECT_TYPES

    if not args.sim:
        raise ValueError("only --sim runs from the command line; on a robot the servo runtime "
                         "runs inside the servo ROS node")
    if args.episodes < 1:
        raise ValueError("--episodes must be at least 1")
    if (args.policy is None) == (args.checkpoint is None):
        raise ValueError("give exactly one of --policy (ONNX file, random, oracle) and "
                         "--checkpoint")
    config = (ServoSimConfig() if args.config is None
              else load_config(ServoSimConfig, args.config, SERVO_NODE_NAME))
    if args.zero_latency:
        config = dataclasses.replace(config, devices=config.devices.zero_latency())
    config = apply_overrides(config, list(args.set or []))
    env_config = _env_config(args)
    env = BaxterGraspEnv(env_config)
    logger = None
    try:
        policy, label = _policy(args, env, env_config, config.servo)
        if args.log_dir is not None:
            logger = EpisodeLogger(args.log_dir, env_config,
                                   {"policy": label, "servo_sim_config": to_mapping(config)})
        runtime = ServoRuntime(env_config, config.servo, policy, warn=_warn,
                               on_step=None if logger is None else logger.write)
        sim = ServoSim(env, runtime, config.devices, seed=args.seed)
        done = 0

        def on_episode(result: Any) -> None:
            nonlocal done
            done += 1
            if logger is not None:
                logger.finish(result.outcome, result.episode_return,
                              {"seed": result.seed, "object": result.object})
            print(f"servo episode {done}/{args.episodes}: {result.object} {result.outcome} "
                  f"in {result.steps} steps", file=sys.stderr)

        report = run_servo_episodes(sim, args.episodes, args.seed,
                                    object_type=args.object or OBJECT_TYPES,
                                    on_episode=on_episode)
    finally:
        if logger is not None:
            logger.close()
        env.close()
    report.update(policy=label, seed=args.seed, zero_latency=bool(args.zero_latency))
    if logger is not None:
        report["log_dir"] = str(args.log_dir)
    print_report(report, args.json, f"graspq servo --sim --policy {label}")
    return 0


def register(commands: Any, bench: Any) -> None:
    """Add ``servo`` to the top-level subcommands."""
    from graspq.sim.settings import OBJECT_TYPES

    servo = commands.add_parser(
        "servo", help="run the servo runtime (Algorithm 1) on the MuJoCo scene with separate, "
        "latent, jittery camera and joint streams")
    servo.add_argument("--sim", action="store_true",
                       help="drive the simulated scene (the only mode outside ROS)")
    servo.add_argument("--policy", help=f"ONNX policy file from `graspq export`, or one of "
                       f"{', '.join(_SCRIPTED)}")
    servo.add_argument("--checkpoint", type=Path,
                       help="run a training checkpoint's network in torch instead of ONNX")
    servo.add_argument("--episodes", type=int, default=90)
    servo.add_argument("--seed", type=int, default=2_000_000,
                       help="episode i uses seed + i (default: graspq eval's)")
    servo.add_argument("--object", choices=OBJECT_TYPES,
                       help="only this object type (default: cycle through all, as eval)")
    servo.add_argument("--env-config", type=Path,
                       help="env config the policy runs under (default: built-in, or the "
                       "checkpoint's)")
    servo.add_argument("--config", type=Path,
                       help="servo + simulated-device config (default: built-in; "
                       "config/servo.yaml holds the defaults)")
    servo.add_argument("--zero-latency", action="store_true",
                       help="no latency or jitter on any device")
    servo.add_argument("--set", action="append", metavar="KEY=VALUE",
                       help="override a servo or device setting, e.g. --set servo.slop_s=0.03 "
                       "--set devices.overhead_latency_s=0.05 (repeatable)")
    servo.add_argument("--log-dir", type=Path,
                       help="write one MCAP episode log per episode here")
    servo.add_argument("--json", action="store_true", help="print one JSON object")
    servo.set_defaults(handler=_cmd_servo)
