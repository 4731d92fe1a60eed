"""What the CPU is, from Linux's ``/proc/cpuinfo``: read once, for the benchmarks' reports, the
run's timing record and the choice of training precision."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import NamedTuple

CPUINFO = Path("/proc/cpuinfo")


class CpuInfo(NamedTuple):
    model: str  # the first "model name", or "unknown"
    flags: frozenset[str]  # the first "flags" line's names (empty where unreadable)


@functools.cache
def cpu_info() -> CpuInfo:
    """This machine's CPU model and flags (``unknown`` and none where there is no cpuinfo)."""
    model, flags = "unknown", frozenset()
    try:
        lines = CPUINFO.read_text().splitlines()
    except OSError:
        return CpuInfo(model, flags)
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() == "model name" and model == "unknown":
            model = value.strip()
        elif key.strip() == "flags" and not flags:
            flags = frozenset(value.split())
    return CpuInfo(model, flags)
