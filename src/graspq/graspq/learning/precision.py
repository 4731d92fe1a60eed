"""The learner's arithmetic precision: float32, or bfloat16 mixed precision on CPUs that run
it natively.

Under bf16 the network's forward passes run in ``torch.autocast("cpu", torch.bfloat16)``:
convolutions and matrix products in bfloat16, with float32 weights, gradients and Adam state.
Q-values leave the autocast region as float32 before any target, loss or comparison is formed,
so only the layers' arithmetic changes. Acting and evaluation stay float32: at batch 1 the
casts cost more than bf16 saves (docs/performance.md).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

from graspq.cpu import cpu_info

PRECISIONS = ("auto", "fp32", "bf16")
# CPU flags (Linux /proc/cpuinfo names) of native bfloat16 arithmetic: AMX tiles (Sapphire
# Rapids and later) and AVX512-BF16 (Cooper Lake, Zen 4 and later).
NATIVE_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def _cpuinfo_flags() -> set[str]:
    return set(cpu_info().flags)


def native_bf16_features(cpu_flags: Callable[[], set[str]] = _cpuinfo_flags) -> list[str]:
    """The native bf16 features this CPU has, by the names of :data:`NATIVE_BF16_FLAGS`.

    torch's own probes (the ones oneDNN dispatches on) are asked first; they are private
    API, so where they are missing the kernel's CPU flags decide instead.
    """
    probes = {"amx_bf16": getattr(torch.cpu, "_is_amx_tile_supported", None),
              "avx512_bf16": getattr(torch.cpu, "_is_avx512_bf16_supported", None)}
    if all(probe is not None for probe in probes.values()):
        return [name for name, probe in probes.items() if probe()]
    flags = cpu_flags()
    return [name for name in NATIVE_BF16_FLAGS if name in flags]


def resolve_precision(requested: str,
                      features: Callable[[], list[str]] = native_bf16_features) -> str:
    """``fp32`` or ``bf16`` for a configured ``precision``: ``auto`` is bf16 only where the
    CPU runs it natively. An explicit ``bf16`` is honoured everywhere (emulated, slowly,
    where the CPU lacks it)."""
    if requested not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {requested!r}")
    if requested == "auto":
        return "bf16" if features() else "fp32"
    return requested


def describe_precision(requested: str, used: str) -> str:
    """One line for the logs: what was asked, what runs, and why."""
    features = native_bf16_features()
    native = ", ".join(features) if features else "no native bf16"
    if requested == "auto":
        return f"precision {used} (auto; CPU: {native})"
    return f"precision {used} (CPU: {native})"


def autocast(precision: str) -> contextlib.AbstractContextManager:
    """The context the learner's forward passes run in for a resolved precision."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
