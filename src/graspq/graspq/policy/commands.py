"""``graspq export`` and ``graspq bench policy``, plugged into :mod:`graspq.cli`.

Handlers import torch and onnxruntime only when they run, so ``graspq --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import Any

from graspq.reporting import print_report


def _cmd_export(args: argparse.Namespace) -> int:
    from graspq.policy.export import export_checkpoint

    report = export_checkpoint(args.checkpoint, args.out, seed=args.seed)
    print_report(report.as_dict(), args.json, f"graspq export {args.out}")
    return 0


def _cmd_bench_policy(args: argparse.Namespace) -> int:
    from graspq.config import validate
    from graspq.policy.bench import bench_policy
    from graspq.policy.runtime import PolicyConfig

    if args.seconds <= 0:
        raise ValueError("--seconds must be positive")
    config = PolicyConfig()
    overrides: dict[str, Any] = {"intra_op_threads": args.threads,
                                 "graph_optimization": args.graph_optimization,
                                 "allow_spinning": args.allow_spinning}
    config = dataclasses.replace(config, **{key: value for key, value in overrides.items()
                                            if value is not None})
    validate(config)  # --threads 0 is an error naming the key, not an ONNX Runtime default
    report = bench_policy(args.checkpoint, args.seconds, config)
    print_report(report, args.json, "graspq bench policy")
    return 0


def register(commands: Any, bench: Any) -> None:
    """Add ``export`` to the top-level subcommands and ``policy`` to ``graspq bench``."""
    export = commands.add_parser(
        "export", help="export a checkpoint's policy to ONNX (checked against torch)")
    export.add_argument("--checkpoint", type=Path, required=True,
                        help="checkpoint file or run directory")
    export.add_argument("--out", type=Path, required=True, help="policy file to write (.onnx)")
    export.add_argument("--seed", type=int, default=0,
                        help="seed of the parity observations (random and rendered)")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(handler=_cmd_export)

    policy = bench.add_parser(
        "policy", help="batch-1 policy latency: ONNX Runtime against torch eager")
    policy.add_argument("--checkpoint", type=Path,
                        help="checkpoint file or run directory (default: a fresh default "
                        "multi-view GQN)")
    policy.add_argument("--seconds", type=float, default=10.0, help="measuring time")
    policy.add_argument("--threads", type=int,
                        help="CPU threads for both ONNX Runtime and torch (default: "
                        "PolicyConfig.intra_op_threads)")
    policy.add_argument("--graph-optimization",
                        help="ONNX Runtime graph optimisation level: disabled, basic, extended "
                        "or all (default: PolicyConfig.graph_optimization)")
    policy.add_argument("--allow-spinning", action="store_true", default=None,
                        help="let idle ONNX Runtime threads spin")
    policy.add_argument("--json", action="store_true", help="print one JSON object")
    policy.set_defaults(handler=_cmd_bench_policy)
