"""``graspq export`` and ``graspq bench policy``, plugged into :mod:`graspq.cli`.

Handlers import torch and onnxruntime only when they run, so ``graspq --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any

from graspq.policy import quantize
from graspq.reporting import print_report

EXIT_REFUSED = 3
"""``graspq export --quantize int8``: the float32 file was written, the int8 one refused."""


def _cmd_export(args: argparse.Namespace) -> int:
    from graspq.policy.export import export_checkpoint

    if args.quantize == "int8":  # bad options fail before the export, not after it
        quantize.check_options(args.calibration_observations, args.agreement_observations,
                               args.min_agreement)
    report = export_checkpoint(args.checkpoint, args.out, seed=args.seed).as_dict()
    if args.quantize == "int8":
        # An int8 file left from an earlier export was made from another float32 file: never
        # leave it beside the new one, whether or not the new int8 copy is accepted.
        quantize.int8_path(args.out).unlink(missing_ok=True)
        try:
            report["int8"] = quantize.quantize_policy(
                args.out, calibration_count=args.calibration_observations,
                agreement_count=args.agreement_observations,
                min_agreement=args.min_agreement, seed=args.seed).as_dict()
        except quantize.AgreementError as exc:
            print(f"graspq export: {exc} (the float32 policy {args.out} was written)",
                  file=sys.stderr)
            return EXIT_REFUSED
    print_report(report, args.json, f"graspq export {args.out}")
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
    report = bench_policy(args.checkpoint, args.seconds, config, args.int8_format,
                          not args.int8_per_tensor, args.baseline)
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
    export.add_argument("--quantize", choices=("int8",),
                        help="also write a statically quantised copy beside --out "
                        "(policy.onnx -> policy.int8.onnx), calibrated on observations "
                        "recorded from the scene; refused (exit 3, no int8 file) when it picks "
                        "the float32 policy's action on fewer than --min-agreement of them")
    export.add_argument("--calibration-observations", type=int,
                        default=quantize.CALIBRATION_OBSERVATIONS, metavar="N",
                        help="recorded observations that calibrate the int8 ranges")
    export.add_argument("--agreement-observations", type=int,
                        default=quantize.AGREEMENT_OBSERVATIONS, metavar="N",
                        help="recorded observations (other episodes) the int8 policy is "
                        "checked on")
    export.add_argument("--min-agreement", type=float, default=quantize.MIN_AGREEMENT,
                        metavar="SHARE", help="least share of those with the float32 "
                        "policy's action")
    export.add_argument("--json", action="store_true", help="print one JSON object")
    export.set_defaults(handler=_cmd_export)

    policy = bench.add_parser(
        "policy", help="batch-1 policy latency: float32 and int8 ONNX Runtime against torch "
        "eager")
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
    policy.add_argument("--int8-format", choices=quantize.QUANT_FORMATS,
                        default=quantize.QUANT_FORMAT,
                        help="ONNX Runtime quantisation format of the int8 side (default: the "
                        "one graspq export writes)")
    policy.add_argument("--int8-per-tensor", action="store_true",
                        help="one weight scale per tensor instead of per output channel")
    policy.add_argument("--baseline", type=Path, metavar="FILE.onnx",
                        help="also time this policy file (the same checkpoint exported by an "
                        "earlier GraspQ, say) in the same blocks: baseline_* keys")
    policy.add_argument("--json", action="store_true", help="print one JSON object")
    policy.set_defaults(handler=_cmd_bench_policy)
